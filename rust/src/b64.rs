//! Strict base64url (RFC 4648 §5) as JWS requires: URL-safe alphabet, no padding, no whitespace,
//! and no non-canonical trailing bits (so every token has exactly one encoding).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B64Error;

pub fn encode(data: &[u8]) -> String {
    STRICT.encode(data)
}

pub fn decode(text: &[u8]) -> Result<Vec<u8>, B64Error> {
    STRICT.decode(text).map_err(|_| B64Error)
}

/// Decodes into `out` (cleared first); lets hot paths reuse one buffer.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), B64Error> {
    out.clear();
    STRICT.decode_vec(text, out).map_err(|_| B64Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for n in 0..64u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let text = encode(&data);
            assert!(!text.contains('='));
            assert_eq!(decode(text.as_bytes()).unwrap(), data);
        }
    }

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in cases {
            assert_eq!(encode(raw), text);
            assert_eq!(decode(text.as_bytes()).unwrap(), raw);
        }
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn rejects_everything_not_strict() {
        for bad in [
            "Zg==", "Zg=", "Zm9v\n", " Zm9v", "Zm+v", "Zm/v", "Z", "Zh", "Zm9", "Zm.v", "Zm9v=",
        ] {
            // "Zh" and "Zm9" carry non-canonical trailing bits ("Zg", "Zm8" are canonical).
            assert!(decode(bad.as_bytes()).is_err(), "{bad:?} should be refused");
        }
    }
}
