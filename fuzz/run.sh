#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30): `bash fuzz/run.sh 600` for a long run.
# Seeds in fuzz/corpus/<target> are committed; what the fuzzer learns goes to fuzz/corpus-run/.
# A crash leaves its input in fuzz/artifacts/<target>/; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain="$FUZZ_TOOLCHAIN"
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=nightly
else
  toolchain=stable
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
for target in b64 jwt cookie accept_language path matcher jose_keys jws_asymmetric; do
  mkdir -p "corpus-run/$target"
  echo "fuzz: $target for ${seconds}s"
  # RUSTC_BOOTSTRAP lets a stable toolchain take the sanitizer flags when nightly is absent.
  RUSTC_BOOTSTRAP=1 cargo "+$toolchain" fuzz run "$target" "corpus-run/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | grep -E "^Done|ERROR|panicked|SUMMARY" || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz: $target found a crash: see fuzz/artifacts/$target" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds}s without a crash"
