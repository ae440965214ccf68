//! Raw verify per operation for the crates considered for issue 10 (asymmetric JWS).
//!
//! Run: `cd benches/crypto_choice && cargo run --release`. Keys are made and signed with aws-lc-rs,
//! then every candidate verifies the same signature over the same ~300-byte JWS signing input.
//! "parsed" = key parsed once (what a key set does); "unparsed" = key parsed on every verify
//! (the only API ring offers). Each figure is the median of 7 batches.
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as awssig, KeyPair};
use std::hint::black_box;
use std::time::Instant;

fn per_op(name: &str, iters: u32, mut f: impl FnMut() -> bool) {
    assert!(f(), "{name}: the signature must verify");
    for _ in 0..iters / 10 {
        black_box(f());
    }
    let mut batches: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                assert!(black_box(f()));
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    batches.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name:<44} {:>8.2} µs/op", batches[3]);
}

fn main() {
    let rng = SystemRandom::new();
    let msg: Vec<u8> = (0..300u32).map(|i| b'A' + (i % 26) as u8).collect();
    let msg = &msg[..];

    // ---- RSA-2048 PKCS#1 v1.5 SHA-256 (RS256) ----
    let rsa = awssig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut sig = vec![0u8; rsa.public_modulus_len()];
    rsa.sign(&awssig::RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
    let pkcs1 = rsa.public_key().as_ref().to_vec();
    println!("-- RS256, RSA-2048 (e=65537)");
    let parsed = awssig::ParsedPublicKey::new(&awssig::RSA_PKCS1_2048_8192_SHA256, &pkcs1).unwrap();
    per_op("aws-lc-rs parsed", 20000, || parsed.verify_sig(msg, &sig).is_ok());
    let un = awssig::UnparsedPublicKey::new(&awssig::RSA_PKCS1_2048_8192_SHA256, &pkcs1);
    per_op("aws-lc-rs unparsed", 20000, || un.verify(msg, &sig).is_ok());
    let un = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &pkcs1);
    per_op("ring (unparsed; ring parses per call)", 20000, || un.verify(msg, &sig).is_ok());
    {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::signature::Verifier;
        let pk = rsa::RsaPublicKey::from_pkcs1_der(&pkcs1).unwrap();
        let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk);
        let s = rsa::pkcs1v15::Signature::try_from(&sig[..]).unwrap();
        per_op("RustCrypto rsa 0.9 parsed", 5000, || vk.verify(msg, &s).is_ok());
    }

    // ---- RSA-2048 PSS SHA-256 (PS256) ----
    let mut sig = vec![0u8; rsa.public_modulus_len()];
    rsa.sign(&awssig::RSA_PSS_SHA256, &rng, msg, &mut sig).unwrap();
    println!("-- PS256, RSA-2048");
    let parsed = awssig::ParsedPublicKey::new(&awssig::RSA_PSS_2048_8192_SHA256, &pkcs1).unwrap();
    per_op("aws-lc-rs parsed", 20000, || parsed.verify_sig(msg, &sig).is_ok());
    let un = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, &pkcs1);
    per_op("ring", 20000, || un.verify(msg, &sig).is_ok());
    {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::signature::Verifier;
        let pk = rsa::RsaPublicKey::from_pkcs1_der(&pkcs1).unwrap();
        let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk);
        let s = rsa::pss::Signature::try_from(&sig[..]).unwrap();
        per_op("RustCrypto rsa 0.9 parsed", 5000, || vk.verify(msg, &s).is_ok());
    }

    // ---- ECDSA ----
    macro_rules! ecdsa {
        ($label:expr, $aws_sign:expr, $aws_verify:expr, $ring:expr, $rc:ident, $iters:expr) => {{
            let pkcs8 = awssig::EcdsaKeyPair::generate_pkcs8($aws_sign, &rng).unwrap();
            let kp = awssig::EcdsaKeyPair::from_pkcs8($aws_sign, pkcs8.as_ref()).unwrap();
            let sig = kp.sign(&rng, msg).unwrap().as_ref().to_vec();
            let point = kp.public_key().as_ref().to_vec();
            println!("-- {}", $label);
            let parsed = awssig::ParsedPublicKey::new($aws_verify, &point).unwrap();
            per_op("aws-lc-rs parsed", $iters, || parsed.verify_sig(msg, &sig).is_ok());
            let un = awssig::UnparsedPublicKey::new($aws_verify, &point);
            per_op("aws-lc-rs unparsed", $iters, || un.verify(msg, &sig).is_ok());
            let ring_alg: Option<&'static ring::signature::EcdsaVerificationAlgorithm> = $ring;
            match ring_alg {
                Some(alg) => {
                    let un = ring::signature::UnparsedPublicKey::new(alg, &point);
                    per_op("ring (unparsed)", $iters, || un.verify(msg, &sig).is_ok());
                }
                None => println!("{:<44} not supported", "ring"),
            }
            {
                use $rc::ecdsa::signature::Verifier;
                let vk = $rc::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                let s = $rc::ecdsa::Signature::from_slice(&sig).unwrap();
                per_op(concat!("RustCrypto ", stringify!($rc), " 0.13 parsed"), $iters / 4, || {
                    vk.verify(msg, &s).is_ok()
                });
            }
        }};
    }
    ecdsa!(
        "ES256, P-256",
        &awssig::ECDSA_P256_SHA256_FIXED_SIGNING,
        &awssig::ECDSA_P256_SHA256_FIXED,
        Some(&ring::signature::ECDSA_P256_SHA256_FIXED),
        p256,
        20000
    );
    ecdsa!(
        "ES384, P-384",
        &awssig::ECDSA_P384_SHA384_FIXED_SIGNING,
        &awssig::ECDSA_P384_SHA384_FIXED,
        Some(&ring::signature::ECDSA_P384_SHA384_FIXED),
        p384,
        4000
    );
    ecdsa!(
        "ES512, P-521",
        &awssig::ECDSA_P521_SHA512_FIXED_SIGNING,
        &awssig::ECDSA_P521_SHA512_FIXED,
        None,
        p521,
        2000
    );

    // ---- Ed25519 ----
    let pkcs8 = awssig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = awssig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let sig = kp.sign(msg).as_ref().to_vec();
    let pk = kp.public_key().as_ref().to_vec();
    println!("-- EdDSA, Ed25519");
    let parsed = awssig::ParsedPublicKey::new(&awssig::ED25519, &pk).unwrap();
    per_op("aws-lc-rs parsed", 20000, || parsed.verify_sig(msg, &sig).is_ok());
    let un = awssig::UnparsedPublicKey::new(&awssig::ED25519, &pk);
    per_op("aws-lc-rs unparsed", 20000, || un.verify(msg, &sig).is_ok());
    let un = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &pk);
    per_op("ring (unparsed)", 20000, || un.verify(msg, &sig).is_ok());
    {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk[..].try_into().unwrap()).unwrap();
        let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        per_op("ed25519-dalek 2 verify_strict", 20000, || vk.verify_strict(msg, &s).is_ok());
    }
}
