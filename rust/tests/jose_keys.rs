//! Asymmetric JOSE keys: the RFC examples, every key-parsing rule, key selection and
//! verification, each with its negative case (issue 10). `cargo test --no-default-features`.

use _core::jose::{
    is_asymmetric_key_material, public_key_from_der, public_key_from_pem, verify_signature,
    verify_with_public_key, Alg, ErrorKind, Key, KeyKind, KeySet, PublicKey,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as awssig, KeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rust/tests/fixtures/jose/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn members() -> Value {
    serde_json::from_slice(&fixture("members.json")).unwrap()
}

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64u(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn kind<T: std::fmt::Debug>(r: Result<T, _core::jose::Error>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

fn jwk(value: &Value) -> Result<Key, _core::jose::Error> {
    Key::from_jwk(value.to_string().as_bytes())
}

fn jwks(keys: &[Value]) -> Result<KeySet, _core::jose::Error> {
    KeySet::from_jwks(json!({ "keys": keys }).to_string().as_bytes())
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

// ---------------------------------------------------------------------------------------------
// RFC examples

const RFC7515_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

#[test]
fn rfc7515_a2_rs256() {
    let key = jwk(&json!({
        "kty": "RSA",
        "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
        "e": "AQAB"
    }))
    .unwrap();
    assert_eq!(key.kind(), KeyKind::Rsa);
    assert_eq!(key.public_key().bits(), 2048);
    let input = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}");
    let sig = unb64u("cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw");
    verify_signature(Alg::RS256, &key, input.as_bytes(), &sig).unwrap();
    // The same bytes are no valid signature for the other RSA algorithms.
    for alg in [Alg::RS384, Alg::RS512, Alg::PS256] {
        let r = verify_signature(alg, &key, input.as_bytes(), &sig);
        assert_eq!(kind(r), ErrorKind::InvalidSignature, "{alg}");
    }
    for at in [0, 100, sig.len() - 1] {
        let r = verify_signature(Alg::RS256, &key, input.as_bytes(), &flip(&sig, at));
        assert_eq!(kind(r), ErrorKind::InvalidSignature);
    }
    let r = verify_signature(Alg::RS256, &key, &flip(input.as_bytes(), 5), &sig);
    assert_eq!(kind(r), ErrorKind::InvalidSignature);
    // An RSA key never verifies ECDSA or EdDSA.
    let r = verify_signature(Alg::ES256, &key, input.as_bytes(), &sig[..64]);
    assert_eq!(kind(r), ErrorKind::AlgorithmNotAllowed);
    let r = verify_signature(Alg::EdDSA, &key, input.as_bytes(), &sig[..64]);
    assert_eq!(kind(r), ErrorKind::AlgorithmNotAllowed);
}

#[test]
fn rfc7515_a3_es256_high_s_accepted() {
    let key = jwk(&json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }))
    .unwrap();
    assert_eq!(key.kind(), KeyKind::EcP256);
    let input = format!("eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}");
    // The RFC's signature has a high s; JWS (unlike Bitcoin) does not require low-s.
    let sig = unb64u(
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
    );
    verify_signature(Alg::ES256, &key, input.as_bytes(), &sig).unwrap();
    let r = verify_signature(Alg::ES256, &key, input.as_bytes(), &flip(&sig, 40));
    assert_eq!(kind(r), ErrorKind::InvalidSignature);
    // A P-256 key never verifies ES384/ES512, nor RS256.
    for alg in [Alg::ES384, Alg::ES512, Alg::RS256, Alg::EdDSA] {
        let r = verify_signature(alg, &key, input.as_bytes(), &sig);
        assert_eq!(kind(r), ErrorKind::AlgorithmNotAllowed, "{alg}");
    }
}

#[test]
fn rfc8037_a4_ed25519() {
    let key = jwk(&json!({"kty": "OKP", "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
    .unwrap();
    assert_eq!(key.kind(), KeyKind::Ed25519);
    let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let sig = unb64u(
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
    );
    verify_signature(Alg::EdDSA, &key, input, &sig).unwrap();
    assert_eq!(
        kind(verify_signature(Alg::EdDSA, &key, input, &flip(&sig, 63))),
        ErrorKind::InvalidSignature
    );
    assert_eq!(
        kind(verify_signature(Alg::EdDSA, &key, input, &sig[..63])),
        ErrorKind::InvalidSignature
    );
    assert_eq!(
        kind(verify_signature(Alg::ES256, &key, input, &sig)),
        ErrorKind::AlgorithmNotAllowed
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithms

#[test]
fn algorithm_names() {
    for alg in Alg::ALL {
        assert_eq!(Alg::from_name(alg.name()).unwrap(), alg);
        assert!(alg.key_kind().algorithms().contains(&alg));
    }
    for bad in [
        "none", "None", "HS256", "HS384", "HS512", "es256", "RS1", "ES256K", "Ed25519", "",
    ] {
        assert_eq!(
            kind(Alg::from_name(bad)),
            ErrorKind::AlgorithmNotAllowed,
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signing helpers (aws-lc-rs) for round trips over every algorithm

type SignFn = Box<dyn Fn(Alg, &[u8]) -> Vec<u8>>;

struct Signer {
    key: Key,
    /// The public key as aws-lc-rs takes it: PKCS#1 DER, an uncompressed point, 32 bytes.
    raw: Vec<u8>,
    sign: SignFn,
}

fn rsa_signer() -> Signer {
    let pair = awssig::RsaKeyPair::from_pkcs8(&fixture("rsa2048.pk8.der")).unwrap();
    let m = members();
    let key = jwk(&m["rsa"]).unwrap();
    Signer {
        key,
        raw: pair.public_key().as_ref().to_vec(),
        sign: Box::new(move |alg, msg| {
            let padding: &'static dyn awssig::RsaEncoding = match alg {
                Alg::RS256 => &awssig::RSA_PKCS1_SHA256,
                Alg::RS384 => &awssig::RSA_PKCS1_SHA384,
                Alg::RS512 => &awssig::RSA_PKCS1_SHA512,
                Alg::PS256 => &awssig::RSA_PSS_SHA256,
                Alg::PS384 => &awssig::RSA_PSS_SHA384,
                Alg::PS512 => &awssig::RSA_PSS_SHA512,
                _ => unreachable!(),
            };
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &SystemRandom::new(), msg, &mut sig)
                .unwrap();
            sig
        }),
    }
}

fn ec_signer(alg: Alg) -> Signer {
    let (signing, crv, len) = match alg {
        Alg::ES256 => (&awssig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
        Alg::ES384 => (&awssig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        Alg::ES512 => (&awssig::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", 66),
        _ => unreachable!(),
    };
    let rng = SystemRandom::new();
    let pk8 = awssig::EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
    let pair = awssig::EcdsaKeyPair::from_pkcs8(signing, pk8.as_ref()).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let key = jwk(&json!({"kty": "EC", "crv": crv,
        "x": b64u(&point[1..1 + len]), "y": b64u(&point[1 + len..])}))
    .unwrap();
    Signer {
        key,
        raw: point,
        sign: Box::new(move |_, msg| {
            pair.sign(&SystemRandom::new(), msg)
                .unwrap()
                .as_ref()
                .to_vec()
        }),
    }
}

fn ed_signer() -> Signer {
    let pk8 = awssig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = awssig::Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap();
    let key = jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": b64u(pair.public_key().as_ref())}))
        .unwrap();
    Signer {
        key,
        raw: pair.public_key().as_ref().to_vec(),
        sign: Box::new(move |_, msg| pair.sign(msg).as_ref().to_vec()),
    }
}

fn signer_for(alg: Alg) -> Signer {
    match alg.key_kind() {
        KeyKind::Rsa => rsa_signer(),
        KeyKind::Ed25519 => ed_signer(),
        _ => ec_signer(alg),
    }
}

#[test]
fn every_algorithm_round_trips_and_any_single_byte_change_fails() {
    let input = b"eyJhbGciOiJ4In0.eyJzdWIiOiJhbGljZSJ9";
    for alg in Alg::ALL {
        let s = signer_for(alg);
        let sig = (s.sign)(alg, input);
        if let Some(len) = alg.fixed_signature_len() {
            assert_eq!(sig.len(), len, "{alg}");
        }
        verify_signature(alg, &s.key, input, &sig).unwrap_or_else(|e| panic!("{alg}: {e}"));
        for at in 0..sig.len() {
            let r = verify_signature(alg, &s.key, input, &flip(&sig, at));
            assert_eq!(kind(r), ErrorKind::InvalidSignature, "{alg} sig byte {at}");
        }
        for at in 0..input.len() {
            let r = verify_signature(alg, &s.key, &flip(input, at), &sig);
            assert_eq!(
                kind(r),
                ErrorKind::InvalidSignature,
                "{alg} input byte {at}"
            );
        }
        // Too short, too long, empty.
        for bad in [
            &sig[..sig.len() - 1],
            &[sig.as_slice(), &[0]].concat()[..],
            &[][..],
        ] {
            let r = verify_signature(alg, &s.key, input, bad);
            assert_eq!(
                kind(r),
                ErrorKind::InvalidSignature,
                "{alg} len {}",
                bad.len()
            );
        }
        // A key's kind decides: every algorithm of another kind is refused before any crypto.
        for other in Alg::ALL
            .into_iter()
            .filter(|o| o.key_kind() != alg.key_kind())
        {
            let r = verify_signature(other, &s.key, input, &sig);
            assert_eq!(
                kind(r),
                ErrorKind::AlgorithmNotAllowed,
                "{alg} key, {other}"
            );
        }
    }
}

#[test]
fn rsa_signature_of_one_padding_does_not_verify_as_another() {
    let s = rsa_signer();
    let input = b"a.b";
    for alg in [Alg::RS256, Alg::PS256, Alg::RS512, Alg::PS512] {
        let sig = (s.sign)(alg, input);
        for other in KeyKind::Rsa.algorithms().iter().filter(|&&o| o != alg) {
            let r = verify_signature(*other, &s.key, input, &sig);
            assert_eq!(kind(r), ErrorKind::InvalidSignature, "{alg} as {other}");
        }
    }
}

#[test]
fn rsa_signature_with_a_leading_zero_is_refused() {
    let s = rsa_signer();
    let sig = (s.sign)(Alg::RS256, b"a.b");
    let padded = [&[0u8][..], &sig].concat();
    assert_eq!(
        kind(verify_signature(Alg::RS256, &s.key, b"a.b", &padded)),
        ErrorKind::InvalidSignature
    );
}

#[test]
fn ecdsa_der_signatures_are_refused() {
    for (alg, der_alg) in [
        (Alg::ES256, &awssig::ECDSA_P256_SHA256_ASN1_SIGNING),
        (Alg::ES384, &awssig::ECDSA_P384_SHA384_ASN1_SIGNING),
        (Alg::ES512, &awssig::ECDSA_P521_SHA512_ASN1_SIGNING),
    ] {
        let rng = SystemRandom::new();
        let pk8 = awssig::EcdsaKeyPair::generate_pkcs8(der_alg, &rng).unwrap();
        let pair = awssig::EcdsaKeyPair::from_pkcs8(der_alg, pk8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let len = alg.key_kind().coordinate_len();
        let key = Key::new(
            PublicKey::from_ec_coordinates(alg.key_kind(), &point[1..1 + len], &point[1 + len..])
                .unwrap(),
            None,
            None,
        )
        .unwrap();
        let input = b"h.p";
        let der = pair.sign(&rng, input).unwrap();
        assert_eq!(der.as_ref()[0], 0x30, "a DER SEQUENCE");
        let r = verify_signature(alg, &key, input, der.as_ref());
        assert_eq!(kind(r), ErrorKind::InvalidSignature, "{alg}");
    }
}

#[test]
fn a_jwk_alg_restricts_the_key() {
    let m = members();
    let key = jwk(&with(m["rsa"].clone(), json!({"alg": "RS256"}))).unwrap();
    assert_eq!(key.alg(), Some(Alg::RS256));
    assert_eq!(key.algorithms(), vec![Alg::RS256]);
    let s = rsa_signer();
    let sig = (s.sign)(Alg::PS256, b"a.b");
    verify_signature(Alg::PS256, &s.key, b"a.b", &sig).unwrap();
    assert_eq!(
        kind(verify_signature(Alg::PS256, &key, b"a.b", &sig)),
        ErrorKind::AlgorithmNotAllowed
    );
}

// ---------------------------------------------------------------------------------------------
// PEM and DER

#[test]
fn pem_forms_of_one_rsa_key_are_the_same_key() {
    let from_jwk = jwk(&members()["rsa"]).unwrap();
    for name in [
        "rsa2048.pub.pem",
        "rsa2048.pkcs1.pem",
        "rsa2048.crt.pem",
        "rsa2048.crt.text.pem",
    ] {
        let pk = public_key_from_pem(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(pk.same_key(from_jwk.public_key()), "{name}");
        assert_eq!(pk.kind(), KeyKind::Rsa);
        assert_eq!(pk.bits(), 2048);
    }
    // A PEM-loaded key verifies what the private key signed.
    let s = rsa_signer();
    let key = Key::from_pem(&fixture("rsa2048.crt.text.pem"), Some("k1"), None).unwrap();
    assert_eq!(key.kid(), Some("k1"));
    for alg in KeyKind::Rsa.algorithms() {
        verify_signature(*alg, &key, b"x.y", &(s.sign)(*alg, b"x.y")).unwrap();
    }
}

#[test]
fn pem_forms_of_ec_and_ed25519_keys() {
    let m = members();
    let ec = jwk(&m["ec256"]).unwrap();
    for name in ["ec256.pub.pem", "ec256.crt.pem"] {
        assert!(
            public_key_from_pem(&fixture(name))
                .unwrap()
                .same_key(ec.public_key()),
            "{name}"
        );
    }
    let ed = jwk(&m["ed25519"]).unwrap();
    for name in ["ed25519.pub.pem", "ed25519.crt.pem"] {
        assert!(
            public_key_from_pem(&fixture(name))
                .unwrap()
                .same_key(ed.public_key()),
            "{name}"
        );
    }
    // The EC fixture's private key signs; its certificate's key verifies.
    let pair = awssig::EcdsaKeyPair::from_pkcs8(
        &awssig::ECDSA_P256_SHA256_FIXED_SIGNING,
        &fixture("ec256.pk8.der"),
    )
    .unwrap();
    let sig = pair.sign(&SystemRandom::new(), b"a.b").unwrap();
    let key = KeySet::from_pem(&fixture("ec256.crt.pem"), None, Some(Alg::ES256)).unwrap();
    key.verify(Alg::ES256, None, b"a.b", sig.as_ref()).unwrap();
}

#[test]
fn pem_with_a_key_alg_that_does_not_fit_is_refused() {
    let r = Key::from_pem(&fixture("ec256.pub.pem"), None, Some(Alg::ES384));
    assert_eq!(kind(r), ErrorKind::InvalidKey);
    let r = Key::from_pem(&fixture("rsa2048.pub.pem"), None, Some(Alg::EdDSA));
    assert_eq!(kind(r), ErrorKind::InvalidKey);
}

#[test]
fn pem_refusals() {
    let cases: &[(&str, ErrorKind)] = &[
        ("rsa1024.pub.pem", ErrorKind::WeakKey),
        ("secp256k1.pub.pem", ErrorKind::UnsupportedKey),
        ("ed448.pub.pem", ErrorKind::UnsupportedKey),
        ("ec256.compressed.pub.pem", ErrorKind::UnsupportedKey),
        ("rsapss.pub.pem", ErrorKind::UnsupportedKey),
        ("ed25519.key.pem", ErrorKind::PrivateKey),
    ];
    for (name, want) in cases {
        assert_eq!(kind(public_key_from_pem(&fixture(name))), *want, "{name}");
    }
    // A certificate followed by its private key (a common server bundle) is refused whole.
    let bundle = [fixture("ed25519.crt.pem"), fixture("ed25519.key.pem")].concat();
    assert_eq!(kind(public_key_from_pem(&bundle)), ErrorKind::PrivateKey);
    // Two different public keys: which one?
    let two = [fixture("rsa2048.pub.pem"), fixture("ec256.pub.pem")].concat();
    assert_eq!(kind(public_key_from_pem(&two)), ErrorKind::AmbiguousKey);
    // A chain: the first certificate (the leaf) is the key.
    let chain = [fixture("ec256.crt.pem"), fixture("rsa2048.crt.pem")].concat();
    assert_eq!(public_key_from_pem(&chain).unwrap().kind(), KeyKind::EcP256);
    for bad in [
        &b"not a pem"[..],
        b"",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
    ] {
        assert_eq!(
            kind(public_key_from_pem(bad)),
            ErrorKind::Malformed,
            "{bad:?}"
        );
    }
}

fn pem_body(name: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let start = text.find("-----BEGIN").unwrap();
    let body: String = text[start..]
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take_while(|l| !l.is_empty())
        .collect();
    STANDARD.decode(body).unwrap()
}

#[test]
fn der_forms() {
    let rsa = public_key_from_pem(&fixture("rsa2048.pub.pem")).unwrap();
    for name in ["rsa2048.pub.pem", "rsa2048.pkcs1.pem", "rsa2048.crt.pem"] {
        assert!(
            public_key_from_der(&pem_body(name)).unwrap().same_key(&rsa),
            "{name}"
        );
    }
    assert_eq!(
        public_key_from_der(&pem_body("ec256.crt.pem"))
            .unwrap()
            .kind(),
        KeyKind::EcP256
    );
    // A refusal past the structure keeps its kind, whichever of the three forms it is.
    assert_eq!(
        kind(public_key_from_der(&pem_body("rsa1024.pub.pem"))),
        ErrorKind::WeakKey
    );
    let weak_pkcs1 = &pem_body("rsa1024.pub.pem")[22..];
    assert_eq!(kind(public_key_from_der(weak_pkcs1)), ErrorKind::WeakKey);
    assert!(is_asymmetric_key_material(weak_pkcs1));
    assert_eq!(
        kind(public_key_from_der(b"\x30\x03\x02\x01\x01")),
        ErrorKind::Malformed
    );
    // Trailing bytes after the structure are not ignored.
    let mut trailing = pem_body("rsa2048.pub.pem");
    trailing.push(0);
    assert_eq!(kind(public_key_from_der(&trailing)), ErrorKind::Malformed);
}

#[test]
fn recognising_public_key_material() {
    for name in [
        "rsa2048.pub.pem",
        "rsa2048.pkcs1.pem",
        "rsa2048.crt.pem",
        "rsa2048.crt.text.pem",
        "ec256.pub.pem",
        "ed25519.key.pem",
        "rsa1024.pub.pem",
        "ed448.pub.pem",
        "members.json",
    ] {
        assert!(is_asymmetric_key_material(&fixture(name)), "{name}");
    }
    for name in ["rsa2048.pub.pem", "rsa2048.pkcs1.pem", "ec256.crt.pem"] {
        assert!(is_asymmetric_key_material(&pem_body(name)), "DER of {name}");
    }
    assert!(is_asymmetric_key_material(
        b"  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host"
    ));
    assert!(is_asymmetric_key_material(
        br#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#
    ));
    for secret in [
        &b"my-long-random-hmac-secret-0123456789"[..],
        b"",
        b"{\"k\":\"x\"}",
        &[0x30; 40],
    ] {
        assert!(!is_asymmetric_key_material(secret), "{secret:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// JWK rules

#[test]
fn jwk_private_members_are_refused() {
    let m = members();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let with_private = with(m["rsa"].clone(), json!({ member: "AQAB" }));
        assert_eq!(kind(jwk(&with_private)), ErrorKind::PrivateKey, "{member}");
        // In a set: the whole set is refused, even though another key is fine.
        let set = jwks(&[m["ec256"].clone(), with_private]);
        assert_eq!(kind(set), ErrorKind::PrivateKey, "{member} in a set");
    }
    let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
    assert_eq!(kind(jwk(&oct)), ErrorKind::PrivateKey);
    assert_eq!(kind(jwks(&[m["rsa"].clone(), oct])), ErrorKind::PrivateKey);
}

#[test]
fn jwk_use_and_key_ops() {
    let m = members();
    let ok = [
        json!({"use": "sig"}),
        json!({"key_ops": ["verify"]}),
        json!({"key_ops": ["sign", "verify"]}),
        json!({"use": "sig", "key_ops": ["verify"]}),
    ];
    for extra in ok {
        jwk(&with(m["ec256"].clone(), extra.clone())).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
    let usage = [
        json!({"use": "enc"}),
        json!({"use": "SIG"}),
        json!({"key_ops": ["sign"]}),
        json!({"key_ops": []}),
        json!({"key_ops": ["encrypt", "wrapKey"]}),
    ];
    for extra in usage {
        let r = jwk(&with(m["ec256"].clone(), extra.clone()));
        assert_eq!(kind(r), ErrorKind::KeyUsage, "{extra}");
    }
    let malformed = [
        json!({"use": 1}),
        json!({"key_ops": "verify"}),
        json!({"key_ops": [1]}),
        json!({"key_ops": ["verify", "verify"]}),
    ];
    for extra in malformed {
        let r = jwk(&with(m["ec256"].clone(), extra.clone()));
        assert_eq!(kind(r), ErrorKind::Malformed, "{extra}");
    }
}

#[test]
fn jwk_alg_must_be_supported_and_fit() {
    let m = members();
    let cases = [
        (&m["rsa"], "ES256", ErrorKind::InvalidKey),
        (&m["rsa"], "EdDSA", ErrorKind::InvalidKey),
        (&m["ec256"], "ES384", ErrorKind::InvalidKey),
        (&m["ec256"], "RS256", ErrorKind::InvalidKey),
        (&m["ed25519"], "ES256", ErrorKind::InvalidKey),
        (&m["rsa"], "HS256", ErrorKind::UnsupportedKey),
        (&m["rsa"], "RSA-OAEP", ErrorKind::UnsupportedKey),
        (&m["ec256"], "ES224", ErrorKind::UnsupportedKey),
        (&m["ec256"], "none", ErrorKind::UnsupportedKey),
    ];
    for (base, alg, want) in cases {
        let r = jwk(&with(base.clone(), json!({ "alg": alg })));
        assert_eq!(kind(r), want, "{alg} on {}", base["kty"]);
    }
    for (base, alg) in [
        (&m["rsa"], "PS512"),
        (&m["ec256"], "ES256"),
        (&m["ed25519"], "EdDSA"),
    ] {
        let key = jwk(&with(base.clone(), json!({ "alg": alg }))).unwrap();
        assert_eq!(key.alg().map(Alg::name), Some(alg));
    }
}

#[test]
fn jwk_rsa_rules() {
    // Wycheproof json_web_key_test.json "keysize_too_small": a 1024-bit modulus.
    let n1024 = "rJBIp6T1YK-RtPyvYqFFlcucqewSAA_IReSFchE8qyiQrbARqRlXWkB2DR8j_pJQnIpYELbQWZC5Cd0PTGAU8rMbar2AW6zpmBbi7aQf17lUBdt8XI9M9rq7FPVQ1dDdUXm1SVH_9qqWhvMPR422SbfHBEzCAtzK0ANDRo6qz78";
    assert_eq!(
        kind(jwk(&json!({"kty": "RSA", "n": n1024, "e": "AQAB"}))),
        ErrorKind::WeakKey
    );
    let n = members()["rsa"]["n"].as_str().unwrap().to_owned();
    let n_bytes = unb64u(&n);
    // 2047 bits: the top bit cleared.
    let mut short = n_bytes.clone();
    short[0] &= 0x7f;
    assert_eq!(
        kind(jwk(&json!({"kty": "RSA", "n": b64u(&short), "e": "AQAB"}))),
        ErrorKind::WeakKey
    );
    // A leading zero byte does not change the key (some producers write one).
    let padded = [&[0u8][..], &n_bytes].concat();
    let key = jwk(&json!({"kty": "RSA", "n": b64u(&padded), "e": "AQAB"})).unwrap();
    assert_eq!(key.public_key().bits(), 2048);
    // Exponents: 1 (Wycheproof "exponentOne"), even, too large.
    for e in ["AQ", "AQAA", "Ag", "AQAAAAAB"] {
        let r = jwk(&json!({"kty": "RSA", "n": n, "e": e}));
        assert_eq!(kind(r), ErrorKind::InvalidKey, "e={e}");
    }
    assert_eq!(
        kind(jwk(&json!({"kty": "RSA", "n": n}))),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind(jwk(&json!({"kty": "RSA", "e": "AQAB"}))),
        ErrorKind::Malformed
    );
    // base64url strictly: no padding, no standard-alphabet characters, no whitespace.
    for e in ["AQAB=", "AQ+B", "AQ/B", "AQ AB", 1.to_string().as_str()] {
        let r = jwk(&json!({"kty": "RSA", "n": n, "e": e}));
        assert_eq!(kind(r), ErrorKind::Malformed, "e={e}");
    }
    assert_eq!(
        kind(jwk(&json!({"kty": "RSA", "n": n, "e": 65537}))),
        ErrorKind::Malformed
    );
}

#[test]
fn jwk_ec_rules() {
    let m = members();
    let ec = m["ec256"].clone();
    let x = unb64u(ec["x"].as_str().unwrap());
    let mut y = unb64u(ec["y"].as_str().unwrap());
    // Off the curve (Wycheproof "invalid_point" changes one character of y).
    y[31] ^= 1;
    let off = with(ec.clone(), json!({"y": b64u(&y)}));
    assert_eq!(kind(jwk(&off)), ErrorKind::InvalidKey);
    // The point at infinity / all zeros.
    let zeros = with(
        ec.clone(),
        json!({"x": b64u(&[0; 32]), "y": b64u(&[0; 32])}),
    );
    assert_eq!(kind(jwk(&zeros)), ErrorKind::InvalidKey);
    // Coordinates not the full field size (a leading zero dropped) are refused.
    let short = with(ec.clone(), json!({"x": b64u(&x[1..])}));
    assert_eq!(kind(jwk(&short)), ErrorKind::InvalidKey);
    let long = with(ec.clone(), json!({"x": b64u(&[&[0u8][..], &x].concat())}));
    assert_eq!(kind(jwk(&long)), ErrorKind::InvalidKey);
    // A P-256 point under another crv.
    let wrong = with(ec.clone(), json!({"crv": "P-384"}));
    assert_eq!(kind(jwk(&wrong)), ErrorKind::InvalidKey);
    for crv in ["secp256k1", "P-192", "p-256"] {
        let r = jwk(&with(ec.clone(), json!({ "crv": crv })));
        assert_eq!(kind(r), ErrorKind::UnsupportedKey, "{crv}");
    }
    let mut no_crv = ec.clone();
    no_crv.as_object_mut().unwrap().remove("crv");
    assert_eq!(kind(jwk(&no_crv)), ErrorKind::Malformed);
    let mut no_y = ec.clone();
    no_y.as_object_mut().unwrap().remove("y");
    assert_eq!(kind(jwk(&no_y)), ErrorKind::Malformed);
    // Wycheproof "wrong_kty": EC members under kty RSA.
    let as_rsa = with(ec, json!({"kty": "RSA"}));
    assert_eq!(kind(jwk(&as_rsa)), ErrorKind::Malformed);
}

#[test]
fn jwk_okp_and_other_types() {
    let m = members();
    let ed = m["ed25519"].clone();
    let x = unb64u(ed["x"].as_str().unwrap());
    assert_eq!(
        kind(jwk(&with(ed.clone(), json!({"x": b64u(&x[1..])})))),
        ErrorKind::InvalidKey
    );
    for crv in ["X25519", "Ed448", "X448"] {
        assert_eq!(
            kind(jwk(&with(ed.clone(), json!({ "crv": crv })))),
            ErrorKind::UnsupportedKey
        );
    }
    assert_eq!(kind(jwk(&json!({"kty": "oct"}))), ErrorKind::UnsupportedKey);
    assert_eq!(
        kind(jwk(&json!({"kty": "AKP", "alg": "ML-DSA-44"}))),
        ErrorKind::UnsupportedKey
    );
    assert_eq!(kind(jwk(&json!({"x": "AQAB"}))), ErrorKind::Malformed);
    assert_eq!(kind(jwk(&json!({"kty": 1}))), ErrorKind::Malformed);
    assert_eq!(
        kind(jwk(&with(ed.clone(), json!({"kid": 7})))),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind(jwk(&json!(["not", "an", "object"]))),
        ErrorKind::Malformed
    );
    assert_eq!(kind(Key::from_jwk(b"{not json")), ErrorKind::Malformed);
    // Unknown members are ignored; kid is kept.
    let key = jwk(&with(ed, json!({"kid": "ed-1", "x5t": "abc", "ext": true}))).unwrap();
    assert_eq!(key.kid(), Some("ed-1"));
}

#[test]
fn jwk_duplicate_members_are_malformed() {
    let m = members();
    let n = m["rsa"]["n"].as_str().unwrap();
    let twice = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","e":"AQAB"}}"#);
    assert_eq!(kind(Key::from_jwk(twice.as_bytes())), ErrorKind::Malformed);
    let in_set =
        format!(r#"{{"keys":[{{"kty":"RSA","n":"{n}","e":"AQAB","kid":"a","kid":"b"}}]}}"#);
    assert_eq!(
        kind(KeySet::from_jwks(in_set.as_bytes())),
        ErrorKind::Malformed
    );
    let top = format!(r#"{{"keys":[],"keys":[{{"kty":"RSA","n":"{n}","e":"AQAB"}}]}}"#);
    assert_eq!(
        kind(KeySet::from_jwks(top.as_bytes())),
        ErrorKind::Malformed
    );
}

#[test]
fn jwk_x5c() {
    let m = members();
    let rsa_cert = m["rsa_x5c"].as_str().unwrap();
    let ec_cert = m["ec256_x5c"].as_str().unwrap();
    // Entra-style: n/e plus the certificate holding the same key.
    let entra = with(
        m["rsa"].clone(),
        json!({"kid": "e1", "x5c": [rsa_cert, ec_cert]}),
    );
    assert_eq!(jwk(&entra).unwrap().kid(), Some("e1"));
    let ec = with(m["ec256"].clone(), json!({"x5c": [ec_cert]}));
    jwk(&ec).unwrap();
    let ed = with(
        m["ed25519"].clone(),
        json!({"x5c": [m["ed25519_x5c"].clone()]}),
    );
    jwk(&ed).unwrap();
    // The leaf's key differs from the JWK's own members.
    let other_rsa = jwk(&json!({"kty": "RSA", "x5c": [rsa_cert]})).unwrap();
    assert!(other_rsa
        .public_key()
        .same_key(jwk(&m["rsa"]).unwrap().public_key()));
    let mismatch = with(
        json!({"kty": "RSA", "e": "AQAB"}),
        json!({"n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ", "x5c": [rsa_cert]}),
    );
    assert_eq!(kind(jwk(&mismatch)), ErrorKind::InvalidKey);
    // Leaf of another type than the JWK.
    let wrong_type = with(m["rsa"].clone(), json!({"x5c": [ec_cert]}));
    assert_eq!(kind(jwk(&wrong_type)), ErrorKind::InvalidKey);
    let x5c_only_wrong_kty = json!({"kty": "RSA", "x5c": [ec_cert]});
    assert_eq!(kind(jwk(&x5c_only_wrong_kty)), ErrorKind::InvalidKey);
    let x5c_only_wrong_crv = json!({"kty": "EC", "crv": "P-384", "x5c": [ec_cert]});
    assert_eq!(kind(jwk(&x5c_only_wrong_crv)), ErrorKind::InvalidKey);
    // Shapes.
    for bad in [
        json!([]),
        json!(rsa_cert),
        json!([1]),
        json!(["!!notbase64"]),
        json!([b64u(b"x")]),
    ] {
        let r = jwk(&with(m["rsa"].clone(), json!({ "x5c": bad })));
        assert_eq!(kind(r), ErrorKind::Malformed, "{bad}");
    }
    // base64url is not the x5c alphabet (RFC 7517 §4.7 says standard base64).
    let url = URL_SAFE_NO_PAD.encode(STANDARD.decode(rsa_cert).unwrap());
    if url != rsa_cert {
        let r = jwk(&with(m["rsa"].clone(), json!({ "x5c": [url] })));
        assert_eq!(kind(r), ErrorKind::Malformed);
    }
}

// ---------------------------------------------------------------------------------------------
// JWK Sets

#[test]
fn jwks_skips_what_it_cannot_use_and_says_why() {
    let m = members();
    let n1024 = "rJBIp6T1YK-RtPyvYqFFlcucqewSAA_IReSFchE8qyiQrbARqRlXWkB2DR8j_pJQnIpYELbQWZC5Cd0PTGAU8rMbar2AW6zpmBbi7aQf17lUBdt8XI9M9rq7FPVQ1dDdUXm1SVH_9qqWhvMPR422SbfHBEzCAtzK0ANDRo6qz78";
    let set = jwks(&[
        with(m["rsa"].clone(), json!({"kid": "rsa", "use": "sig"})),
        with(m["ec256"].clone(), json!({"kid": "ec"})),
        json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64u(&[9; 32])}),
        with(
            m["rsa"].clone(),
            json!({"kid": "enc", "use": "enc", "alg": "RSA-OAEP"}),
        ),
        with(
            m["rsa"].clone(),
            json!({"kid": "oaep", "alg": "RSA-OAEP-256"}),
        ),
        json!({"kty": "RSA", "kid": "weak", "n": n1024, "e": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "kid": "broken", "x": "AA", "y": "AA"}),
        json!({"kty": "HSM", "kid": "mystery"}),
    ])
    .unwrap();
    assert_eq!(set.len(), 2);
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid().unwrap()).collect();
    assert_eq!(kids, ["rsa", "ec"]);
    let skipped: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.kid.as_deref().unwrap(), s.error.kind()))
        .collect();
    assert_eq!(
        skipped,
        [
            (2, "x", ErrorKind::UnsupportedKey),
            (3, "enc", ErrorKind::KeyUsage),
            (4, "oaep", ErrorKind::UnsupportedKey),
            (5, "weak", ErrorKind::WeakKey),
            (6, "broken", ErrorKind::InvalidKey),
            (7, "mystery", ErrorKind::UnsupportedKey),
        ]
    );
}

#[test]
fn jwks_shape_refusals() {
    let m = members();
    assert_eq!(kind(jwks(&[])), ErrorKind::KeyNotFound);
    let only_enc = jwks(&[with(m["rsa"].clone(), json!({"use": "enc"}))]);
    assert_eq!(kind(only_enc), ErrorKind::KeyNotFound);
    for bad in [
        &b"{}"[..],
        b"[]",
        b"{\"keys\": {}}",
        b"{\"keys\": [1]}",
        b"{\"keys\": [[]]}",
        b"not json",
        b"{\"keys\": []} trailing",
    ] {
        assert_eq!(
            kind(KeySet::from_jwks(bad)),
            ErrorKind::Malformed,
            "{bad:?}"
        );
    }
    let many: Vec<Value> = (0..1001).map(|_| m["ec256"].clone()).collect();
    assert_eq!(kind(jwks(&many)), ErrorKind::Malformed);
    // from_jwk on a set, and from_jwks on a single key, are both malformed.
    assert_eq!(
        kind(KeySet::from_jwk(b"{\"keys\":[]}")),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind(KeySet::from_jwks(m["rsa"].to_string().as_bytes())),
        ErrorKind::Malformed
    );
}

// ---------------------------------------------------------------------------------------------
// Key selection

fn selection_set() -> (KeySet, Signer, Signer) {
    let rsa = rsa_signer();
    let ec = ec_signer(Alg::ES256);
    let set = KeySet::new(vec![
        Key::new(rsa.key.public_key().clone(), Some("r1".into()), None).unwrap(),
        Key::new(
            ec.key.public_key().clone(),
            Some("e1".into()),
            Some(Alg::ES256),
        )
        .unwrap(),
    ]);
    (set, rsa, ec)
}

#[test]
fn select_alg_picks_type_and_curve() {
    let (set, rsa, ec) = selection_set();
    assert_eq!(set.select(Alg::RS256, None).unwrap().kid(), Some("r1"));
    assert_eq!(set.select(Alg::PS512, None).unwrap().kid(), Some("r1"));
    assert_eq!(set.select(Alg::ES256, None).unwrap().kid(), Some("e1"));
    for alg in [Alg::ES384, Alg::ES512, Alg::EdDSA] {
        assert_eq!(kind(set.select(alg, None)), ErrorKind::KeyNotFound, "{alg}");
    }
    let sig = (rsa.sign)(Alg::RS256, b"a.b");
    assert_eq!(
        set.verify(Alg::RS256, Some("r1"), b"a.b", &sig)
            .unwrap()
            .kid(),
        Some("r1")
    );
    let sig = (ec.sign)(Alg::ES256, b"a.b");
    assert_eq!(
        set.verify(Alg::ES256, None, b"a.b", &sig).unwrap().kid(),
        Some("e1")
    );
    assert_eq!(
        kind(set.verify(Alg::ES256, None, b"a.c", &sig)),
        ErrorKind::InvalidSignature
    );
}

#[test]
fn select_kid_must_match_when_present() {
    let (set, _, _) = selection_set();
    // kid of a key of another type: no key fits.
    assert_eq!(
        kind(set.select(Alg::RS256, Some("e1"))),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        kind(set.select(Alg::ES256, Some("r1"))),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        kind(set.select(Alg::RS256, Some("nope"))),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        kind(set.select(Alg::RS256, Some(""))),
        ErrorKind::KeyNotFound
    );
    // A key without kid never fits a token that names one.
    let anonymous = KeySet::new(vec![Key::new(
        rsa_signer().key.public_key().clone(),
        None,
        None,
    )
    .unwrap()]);
    assert_eq!(
        kind(anonymous.select(Alg::RS256, Some("r1"))),
        ErrorKind::KeyNotFound
    );
    assert!(anonymous.select(Alg::RS256, None).is_ok());
}

#[test]
fn select_without_kid_needs_exactly_one_fitting_key() {
    let a = ec_signer(Alg::ES256);
    let b = ec_signer(Alg::ES256);
    let set = KeySet::new(vec![
        Key::new(a.key.public_key().clone(), Some("a".into()), None).unwrap(),
        Key::new(b.key.public_key().clone(), Some("b".into()), None).unwrap(),
        Key::new(rsa_signer().key.public_key().clone(), None, None).unwrap(),
    ]);
    assert_eq!(kind(set.select(Alg::ES256, None)), ErrorKind::AmbiguousKey);
    assert_eq!(set.select(Alg::ES256, Some("b")).unwrap().kid(), Some("b"));
    // Only one RSA key: a token without kid selects it.
    assert!(set.select(Alg::RS256, None).is_ok());
    // A kid used twice for the same type is ambiguous too.
    let dup = KeySet::new(vec![
        Key::new(a.key.public_key().clone(), Some("same".into()), None).unwrap(),
        Key::new(b.key.public_key().clone(), Some("same".into()), None).unwrap(),
    ]);
    assert_eq!(
        kind(dup.select(Alg::ES256, Some("same"))),
        ErrorKind::AmbiguousKey
    );
}

#[test]
fn select_respects_a_jwk_alg() {
    let (set, _, _) = selection_set();
    let m = members();
    let restricted = jwks(&[with(m["rsa"].clone(), json!({"kid": "r", "alg": "RS256"}))]).unwrap();
    assert!(restricted.select(Alg::RS256, Some("r")).is_ok());
    assert_eq!(
        kind(restricted.select(Alg::PS256, Some("r"))),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        kind(restricted.select(Alg::RS512, None)),
        ErrorKind::KeyNotFound
    );
    // Two RSA keys, one restricted to PS256: a kid-less RS256 token fits only the other.
    let two = KeySet::new(vec![
        set.keys()[0].clone(),
        Key::new(
            set.keys()[0].public_key().clone(),
            Some("p".into()),
            Some(Alg::PS256),
        )
        .unwrap(),
    ]);
    assert_eq!(two.select(Alg::RS256, None).unwrap().kid(), Some("r1"));
    assert_eq!(kind(two.select(Alg::PS256, None)), ErrorKind::AmbiguousKey);
}

#[test]
fn bare_public_key_verification() {
    let s = ed_signer();
    let sig = (s.sign)(Alg::EdDSA, b"a.b");
    verify_with_public_key(Alg::EdDSA, s.key.public_key(), b"a.b", &sig).unwrap();
    assert_eq!(
        kind(verify_with_public_key(
            Alg::ES256,
            s.key.public_key(),
            b"a.b",
            &sig
        )),
        ErrorKind::AlgorithmNotAllowed
    );
}

#[test]
fn key_sets_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<KeySet>();
    shareable::<Key>();
    shareable::<PublicKey>();
    shareable::<_core::jose::Error>();
}

#[test]
fn rsa_keys_over_8192_bits_are_refused() {
    let mut n = vec![0xffu8; 8192 / 8 + 1];
    n[0] = 1;
    let r = PublicKey::from_rsa_components(&n, &[1, 0, 1]);
    assert_eq!(kind(r), ErrorKind::UnsupportedKey);
    // 8192 bits exactly is within bounds (aws-lc checks the exponent and the size, not that the
    // modulus is a product of two primes, which no public-key check can).
    let at_bound = PublicKey::from_rsa_components(&[0xffu8; 1024], &[1, 0, 1]).unwrap();
    assert_eq!(at_bound.bits(), 8192);
}

#[test]
fn debug_output_has_no_key_material() {
    let key = jwk(&members()["rsa"]).unwrap();
    let text = format!("{key:?}");
    assert!(text.contains("Rsa") && text.contains("2048"), "{text}");
    assert!(!text.contains("tVAN"), "{text}");
    assert!(text.len() < 200, "{text}");
}

#[test]
fn rsa_keys_with_the_roca_fingerprint_are_refused() {
    // Wycheproof json_web_key_test.json "jws_rsa_roca_key" (tcId 7).
    let roca = json!({"kty": "RSA", "kid": "roca", "e": "AQAB",
        "n": "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE"});
    let err = jwk(&roca).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WeakKey);
    assert!(err.message().contains("ROCA"), "{err}");
    let set = jwks(&[roca, members()["rsa"].clone()]).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.skipped()[0].error.kind(), ErrorKind::WeakKey);
}

/// Timing harness, not a test: raw aws-lc-rs verify (key parsed once) against this module's
/// `verify_signature` and `KeySet::verify` (select + verify) on the same signature.
/// Run: `cargo test --release --no-default-features --test jose_keys -- --ignored --nocapture timing`
#[test]
#[ignore]
fn timing_wrapper_overhead_over_raw_aws_lc() {
    use std::hint::black_box;
    use std::time::Instant;
    /// µs per op of each closure: 7 rounds, the closures interleaved within a round so that
    /// load from other processes hits them alike; the median round per closure.
    fn interleaved_us<const N: usize>(
        iters: u32,
        fs: &mut [&mut dyn FnMut() -> bool; N],
    ) -> [f64; N] {
        for f in fs.iter_mut() {
            for _ in 0..iters / 10 {
                assert!(black_box(f()));
            }
        }
        let mut rounds: Vec<[f64; N]> = Vec::new();
        for _ in 0..7 {
            let mut round = [0.0; N];
            for (k, f) in fs.iter_mut().enumerate() {
                let t = Instant::now();
                for _ in 0..iters {
                    assert!(black_box(f()));
                }
                round[k] = t.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
            }
            rounds.push(round);
        }
        std::array::from_fn(|k| {
            let mut col: Vec<f64> = rounds.iter().map(|r| r[k]).collect();
            col.sort_by(|a, b| a.partial_cmp(b).unwrap());
            col[3]
        })
    }
    let input: Vec<u8> = (0..300u32).map(|i| b'A' + (i % 26) as u8).collect();
    for (alg, iters) in [
        (Alg::RS256, 5000),
        (Alg::PS256, 5000),
        (Alg::ES256, 3000),
        (Alg::ES384, 500),
        (Alg::ES512, 300),
        (Alg::EdDSA, 3000),
    ] {
        let s = signer_for(alg);
        let sig = (s.sign)(alg, &input);
        let raw_params: &'static dyn awssig::VerificationAlgorithm = match alg {
            Alg::RS256 => &awssig::RSA_PKCS1_2048_8192_SHA256,
            Alg::PS256 => &awssig::RSA_PSS_2048_8192_SHA256,
            Alg::ES256 => &awssig::ECDSA_P256_SHA256_FIXED,
            Alg::ES384 => &awssig::ECDSA_P384_SHA384_FIXED,
            Alg::ES512 => &awssig::ECDSA_P521_SHA512_FIXED,
            _ => &awssig::ED25519,
        };
        let raw = awssig::ParsedPublicKey::new(raw_params, &s.raw).unwrap();
        let set = KeySet::new(vec![Key::new(
            s.key.public_key().clone(),
            Some("k".into()),
            None,
        )
        .unwrap()]);
        let [base, ours, selected] = interleaved_us(
            iters,
            &mut [
                &mut || raw.verify_sig(&input, &sig).is_ok(),
                &mut || verify_signature(alg, &s.key, &input, &sig).is_ok(),
                &mut || set.verify(alg, Some("k"), &input, &sig).is_ok(),
            ],
        );
        println!(
            "{alg}: raw aws-lc {base:.2} µs/op, verify_signature {ours:.2} µs/op ({:.3}x), KeySet::verify {selected:.2} µs/op ({:.3}x)",
            ours / base,
            selected / base
        );
    }
}
