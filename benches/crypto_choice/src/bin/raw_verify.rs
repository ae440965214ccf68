//! Raw aws-lc-rs verify per operation for given keys and signatures: the floor that
//! `benches/verify_asymmetric.py` compares `gateway.Verifier` with (issue 10: "each within 1.15x of
//! the chosen crate's own raw verify time").
//!
//! Usage: `raw_verify CASES_FILE [--target-ms MS] [--batches N] [--clock cpu|wall]`
//!
//! CASES_FILE has one case per line, `ALG KEY_HEX SIGNING_INPUT_HEX SIGNATURE_HEX`, the key in the
//! form aws-lc-rs takes for that algorithm: an RSA `RSAPublicKey` (PKCS#1) DER, an uncompressed
//! SEC1 EC point, or the 32 raw Ed25519 bytes. The Python benchmark writes it from the very tokens it
//! times, so both sides verify the same signature over the same signing input.
//!
//! Each key is parsed once (`ParsedPublicKey`, as the gateway's key sets do); the timed loop is
//! only `verify_sig`. Before timing, the signature must verify and a copy with one bit flipped must
//! not. Prints `ALG NS_PER_OP` once per batch (each batch >= MS milliseconds, default 150).
//!
//! `--clock cpu` (the default) times with this thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`), so
//! time spent descheduled on a shared machine is not counted; the Python side uses the same clock
//! (`time.thread_time`). `--clock wall` uses `Instant`.
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use std::hint::black_box;
use std::time::Instant;

/// Seconds on this thread's CPU clock.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn algorithm(name: &str) -> &'static dyn VerificationAlgorithm {
    match name {
        "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &sig::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &sig::RSA_PSS_2048_8192_SHA256,
        "PS384" => &sig::RSA_PSS_2048_8192_SHA384,
        "PS512" => &sig::RSA_PSS_2048_8192_SHA512,
        "ES256" => &sig::ECDSA_P256_SHA256_FIXED,
        "ES384" => &sig::ECDSA_P384_SHA384_FIXED,
        "ES512" => &sig::ECDSA_P521_SHA512_FIXED,
        "EdDSA" => &sig::ED25519,
        other => panic!("unknown algorithm {other}"),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .expect("usage: raw_verify CASES_FILE [--target-ms MS] [--batches N]");
    let mut target_ms = 150.0_f64;
    let mut batches = 1_u32;
    let mut cpu_clock = true;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--target-ms" => target_ms = args[i + 1].parse().expect("--target-ms MS"),
            "--batches" => batches = args[i + 1].parse().expect("--batches N"),
            "--clock" => cpu_clock = args[i + 1] == "cpu",
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let text = std::fs::read_to_string(path).expect("read the cases file");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            f.len(),
            4,
            "a case is: ALG KEY_HEX SIGNING_INPUT_HEX SIGNATURE_HEX"
        );
        let (name, key, msg, signature) = (f[0], unhex(f[1]), unhex(f[2]), unhex(f[3]));
        let parsed = ParsedPublicKey::new(algorithm(name), &key)
            .unwrap_or_else(|e| panic!("{name}: the key does not parse: {e:?}"));
        assert!(
            parsed.verify_sig(&msg, &signature).is_ok(),
            "{name}: the signature must verify"
        );
        let mut flipped = signature.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        assert!(
            parsed.verify_sig(&msg, &flipped).is_err(),
            "{name}: a flipped bit must not verify"
        );

        let run = |n: u64| {
            let (t, c) = (Instant::now(), thread_cpu_seconds());
            for _ in 0..n {
                assert!(black_box(&parsed)
                    .verify_sig(black_box(&msg), black_box(&signature))
                    .is_ok());
            }
            if cpu_clock {
                thread_cpu_seconds() - c
            } else {
                t.elapsed().as_secs_f64()
            }
        };
        // Calibrate: the smallest power-of-two count whose batch lasts >= target (timeit-like).
        let mut n: u64 = 8;
        while run(n) * 1000.0 < target_ms {
            n *= 2;
        }
        for _ in 0..batches {
            let secs = run(n);
            println!("{name} {:.1}", secs * 1e9 / n as f64);
        }
    }
}
