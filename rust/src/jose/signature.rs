//! Asymmetric JWS signature verification: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA.
//!
//! # Why aws-lc-rs
//!
//! Measured on this project's 2-core machine (`benches/crypto_choice`, `cargo run --release`;
//! raw verify of one ~300-byte JWS signing input, key parsed once unless noted, median of 7
//! batches; the machine was shared with other sessions' builds (load ~4 on 2 cores), so figures
//! moved by up to ~40% between runs and the best of three runs is given):
//!
//! | verify              | aws-lc-rs 1.19 | ring 0.17 (parses per call) | RustCrypto 0.9/0.13 |
//! |---------------------|---------------:|----------------------------:|--------------------:|
//! | RS256 RSA-2048      |       19.4 µs  |                     25.1 µs | `rsa`     221 µs    |
//! | PS256 RSA-2048      |       19.7 µs  |                     26.9 µs | `rsa`     226 µs    |
//! | ES256 P-256         |       65.3 µs  |                     70.2 µs | `p256`    302 µs    |
//! | ES384 P-384         |        252 µs  |                     1001 µs | `p384`   1490 µs    |
//! | ES512 P-521         |        683 µs  |               not supported | `p521`   2526 µs    |
//! | EdDSA Ed25519       |       63.9 µs  |                     88.7 µs | `ed25519-dalek` 78 µs |
//!
//! - **aws-lc-rs** is the fastest on every algorithm, the only fast one with P-521 (so ES512 is
//!   supported rather than refused), has RSA-PSS, and lets a key be parsed once
//!   (`ParsedPublicKey`) instead of on every verify. AWS maintains it (frequent releases); it is
//!   rustls's default provider; aws-lc is BoringSSL-derived C/assembly with a FIPS 140-3
//!   validated lineage and formally verified parts (s2n-bignum, fiat-crypto field arithmetic).
//!   The 2026 aws-lc-sys advisories (RUSTSEC-2026-0044..0048: PKCS7_verify, X.509 name
//!   constraints, CRL scope, AES-CCM timing) are fixed from aws-lc-sys 0.39 (this lock: 0.47)
//!   and none is on a path used here. Cost: a C build, ~2 min of the first build on 2 cores.
//! - **ring** is nearly as fast for RS256/ES256 and builds quicker, but has no P-521 (ES512
//!   would have to be refused) and no pre-parsed public keys (it re-parses the key on every
//!   verify). It is maintained (its author resumed in March 2025 after the one-day
//!   RUSTSEC-2025-0007, since withdrawn), so it remains the fallback if the C build ever hurts.
//! - **RustCrypto** (`rsa`, `p256`/`p384`/`p521`, `ed25519-dalek`) is pure Rust but 4–11x slower
//!   for RSA and ECDSA, and `rsa` carries RUSTSEC-2023-0071 (Marvin timing leak; private-key
//!   operations, open with no fixed release) — the issue wants no crate with an open advisory.
//!   `ed25519-dalek` alone would be fine, but one crate for everything is simpler to keep current.
//!
//! This module's own cost on top of aws-lc-rs (a kind check, a length check, a slice lookup) is
//! within measurement noise: `timing_wrapper_overhead_over_raw_aws_lc` in rust/tests/jose_keys.rs
//! measured 0.99–1.08x of raw `ParsedPublicKey::verify_sig` for every algorithm.
//!
//! Nothing here is hand-written crypto: aws-lc-rs verifies; this module only checks that the
//! algorithm fits the key and that the signature has the length JWS prescribes.

use super::alg::Alg;
use super::error::{Error, ErrorKind};
use super::keys::{kind_label, Key, PublicKey};

/// Verifies a JWS signature made with `alg` over `signing_input` (`BASE64URL(header) "."
/// BASE64URL(payload)`) with `key`.
///
/// - The key's kind decides which algorithms it can ever verify (an RSA key never verifies
///   ES256, a P-256 key never ES384), and a key's own `alg` restricts it further: otherwise
///   [`ErrorKind::AlgorithmNotAllowed`]. HMAC algorithms have no [`Alg`] value at all.
/// - ECDSA signatures are the fixed-length `r || s` of RFC 7518 §3.4: a DER-encoded or
///   wrong-length signature is [`ErrorKind::InvalidSignature`]; so is an RSA signature whose
///   length is not the modulus length, and an Ed25519 signature that is not 64 bytes.
pub fn verify_signature(
    alg: Alg,
    key: &Key,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    if let Some(own) = key.alg() {
        if own != alg {
            return Err(Error::not_allowed(format!(
                "the key is for {own} only; the token says {alg}"
            )));
        }
    }
    verify_with_public_key(alg, key.public_key(), signing_input, signature)
}

/// [`verify_signature`] for a bare public key (no JWK `alg` restriction).
pub fn verify_with_public_key(
    alg: Alg,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let Some(verifier) = key.verifier(alg) else {
        return Err(Error::not_allowed(format!(
            "a {} key cannot verify {alg}",
            kind_label(key.kind())
        )));
    };
    let expected_len = alg.fixed_signature_len().or(key.rsa_modulus_len());
    if let Some(expected) = expected_len {
        if signature.len() != expected {
            return Err(Error::bad_signature(format!(
                "{alg} signature must be {expected} bytes, got {}",
                signature.len()
            )));
        }
    }
    verifier
        .verify_sig(signing_input, signature)
        .map_err(|_| Error::new(ErrorKind::InvalidSignature, "signature does not verify"))
}
