#![no_main]
//! Asymmetric JWS verification (RS256, PS256, ES256, EdDSA through `jwt::Verifier` with public
//! keys): arbitrary bytes as a token never panic and never verify; a token signed with the
//! matching private key over arbitrary claims verifies (or is refused as JSON), and any one-bit
//! change to it is refused; a token is never accepted under an HMAC algorithm with these keys.
use std::sync::{Arc, LazyLock};

use _core::jose::{Key, KeySet as PublicKeys, SigningKey};
use _core::jwt::b64;
use _core::jwt::{Alg, AlgSet, KeySet, Policy, Verifier};
use libfuzzer_sys::fuzz_target;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rust/tests/fixtures/jose/");

struct Fixture {
    verifier: Verifier,
    signers: Vec<(Alg, SigningKey)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let read = |name: &str| std::fs::read(format!("{FIXTURES}{name}")).unwrap();
    let rsa = SigningKey::from_der(&read("rsa2048.pk8.der")).unwrap();
    let ec = SigningKey::from_der(&read("ec256.pk8.der")).unwrap();
    let ed = SigningKey::from_pem(&read("ed25519.key.pem")).unwrap();
    let public = |s: &SigningKey, kid: &str| {
        Key::new(
            _core::jose::public_key_from_spki_der(&s.public_key_der()).unwrap(),
            Some(kid.to_owned()),
            None,
        )
        .unwrap()
    };
    let keys = PublicKeys::new(vec![public(&rsa, "r"), public(&ec, "e"), public(&ed, "d")]);
    let algs = AlgSet::from_names(&["RS256", "PS256", "ES256", "EdDSA"]).unwrap();
    let verifier = Verifier::new(KeySet::Public(Arc::new(keys)), Policy::new(algs)).unwrap();
    let signers = vec![
        (Alg::RS256, rsa),
        (Alg::ES256, ec),
        (Alg::EdDSA, ed),
    ];
    Fixture { verifier, signers }
});

fn kid(alg: Alg) -> &'static str {
    match alg {
        Alg::RS256 | Alg::PS256 => "r",
        Alg::ES256 => "e",
        _ => "d",
    }
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    assert!(f.verifier.verify(data, 0.0, &["sub"]).is_err(), "arbitrary bytes verified");
    let Some(&selector) = data.first() else { return };
    let (alg, signer) = &f.signers[selector as usize % f.signers.len()];
    let header = format!(r#"{{"alg":"{}","kid":"{}"}}"#, alg.name(), kid(*alg));
    let mut token = b64::encode(header.as_bytes());
    token.push('.');
    token.push_str(&b64::encode(&data[1..]));
    let signature = signer.sign(alg.asymmetric().unwrap(), token.as_bytes()).unwrap();
    token.push('.');
    token.push_str(&b64::encode(&signature));
    if f.verifier.verify(token.as_bytes(), 0.0, &[]).is_ok() {
        let mut t = token.into_bytes();
        let i = data.len() % t.len();
        t[i] ^= 1;
        assert!(f.verifier.verify(&t, 0.0, &[]).is_err(), "a changed token verified");
    }
    // The same signing input under an HMAC algorithm: never accepted with public keys.
    let forged = format!(
        "{}.{}.{}",
        b64::encode(br#"{"alg":"HS256","kid":"r"}"#),
        b64::encode(&data[1..]),
        b64::encode(&[0u8; 32])
    );
    assert!(f.verifier.verify(forged.as_bytes(), 0.0, &[]).is_err());
});
