#![no_main]
//! Key material from the network or disk (JWK Sets, JWKs, PEM, DER): parsing never panics, every
//! refusal has a kind, and a key that parses can never verify an algorithm of another kind nor a
//! signature it did not make (arbitrary bytes as the signature).
use _core::jose::{
    is_asymmetric_key_material, public_key_from_der, public_key_from_pem, verify_signature, Alg,
    Key, KeySet,
};
use libfuzzer_sys::fuzz_target;

fn exercise(key: &Key, data: &[u8]) {
    for alg in Alg::ALL {
        let r = verify_signature(alg, key, data, data);
        if alg.key_kind() != key.kind() {
            assert!(r.is_err(), "{alg} verified with a {:?} key", key.kind());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = is_asymmetric_key_material(data);
    if let Ok(set) = KeySet::from_jwks(data) {
        assert!(!set.is_empty());
        for key in set.keys() {
            exercise(key, data);
        }
        for alg in Alg::ALL {
            let _ = set.select(alg, None);
            let _ = set.select(alg, Some("k"));
        }
    }
    if let Ok(key) = Key::from_jwk(data) {
        exercise(&key, data);
    }
    if let Ok(pk) = public_key_from_pem(data) {
        exercise(&Key::new(pk, None, None).unwrap(), data);
    }
    if let Ok(pk) = public_key_from_der(data) {
        exercise(&Key::new(pk, None, None).unwrap(), data);
    }
});
