#![no_main]
//! Strict base64url: decode never panics, the slice decoder agrees with the reference engine,
//! and whatever decodes re-encodes to exactly the same text (one encoding per value).
use _core::jwt::b64;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reference = b64::decode(data);
    let mut buf = vec![0u8; data.len() / 4 * 3 + 3];
    let fast = b64::decode_slice(data, &mut buf).map(|n| buf[..n].to_vec());
    assert_eq!(reference, fast);
    if let Ok(bytes) = reference {
        assert_eq!(b64::encode(&bytes).as_bytes(), data);
    }
});
