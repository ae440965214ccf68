#![no_main]
//! Token parsing and verification: never panics; nothing verifies unless it is exactly what the
//! key signed (a forged token would need an HMAC collision), and signing then verifying round-trips.
//! The claims go through the same walker production uses (`json::walk_claims`), and the cheap
//! early verdict never disagrees with the full parse (fault 6: malformed must always win).
use _core::jwt::{sign, Alg, AlgSet, HmacKey, KeySet, Policy, Verifier};
use _core::jwt::seconds::Seconds;
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzzing-key-fuzzing-key-fuzzing-key-64-bytes-long-for-hs512-ok!!";

fuzz_target!(|data: &[u8]| {
    let set = AlgSet::from_names(&["HS256", "HS384", "HS512"]).unwrap();
    let key = HmacKey::new(KEY, set, false).unwrap();
    let v = Verifier::new(KeySet::Single(key.clone()), Policy::new(set)).unwrap();
    // Arbitrary bytes as a token: must not panic, and must not verify (no key-made MAC).
    let _ = v.verify(data, 0.0, &["sub"]);
    // Arbitrary bytes as claims: an early verdict is the full parse's verdict, at any time.
    for now in [Seconds::Int(0), Seconds::Int(i64::MAX), Seconds::Float(1.7e9)] {
        if let Some(early) = v.early_verdict(data, now) {
            assert_eq!(Err(early), v.check_payload(data, now, &[]).map(|_| ()));
        }
    }
    // Arbitrary bytes as claims: what signs must verify to the same claims, or be refused as JSON.
    let token = sign(&key, Alg::HS256, br#"{"alg":"HS256"}"#, data).unwrap();
    let result = v.verify(token.as_bytes(), 0.0, &["sub"]);
    if result.is_ok() {
        // A token that verifies: any single-bit change must be refused.
        let mut t = token.into_bytes();
        let i = data.len() % t.len();
        t[i] ^= 1;
        assert!(v.verify(&t, 0.0, &[]).is_err(), "a changed token verified");
    }
});
