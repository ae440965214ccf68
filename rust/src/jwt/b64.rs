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

/// Decodes into a caller's buffer (e.g. on the stack); returns the decoded length. The buffer
/// must hold `text.len() * 3 / 4 + 3` bytes or the call fails.
pub fn decode_slice(text: &[u8], out: &mut [u8]) -> Result<usize, B64Error> {
    // base64-simd (SIMD, strict about padding and trailing bits) on the hot path; its output
    // matches the `base64` engine above, which the tests check.
    let need = base64_simd::URL_SAFE_NO_PAD
        .decoded_length(text)
        .map_err(|_| B64Error)?;
    if need > out.len() {
        return Err(B64Error);
    }
    base64_simd::URL_SAFE_NO_PAD
        .decode(text, base64_simd::Out::from_slice(&mut out[..need]))
        .map(|d| d.len())
        .map_err(|_| B64Error)
}

/// Calls `f` with the decoded bytes, decoding on the stack when `text` is small.
pub fn with_decoded<R>(text: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, B64Error> {
    // Two sizes so the usual ~200-byte payload does not pay for zeroing a large buffer.
    let need = text.len() / 4 * 3 + 3;
    if need <= 384 {
        let mut buf = [0u8; 384];
        let n = decode_slice(text, &mut buf)?;
        Ok(f(&buf[..n]))
    } else if need <= 2048 {
        let mut buf = [0u8; 2048];
        let n = decode_slice(text, &mut buf)?;
        Ok(f(&buf[..n]))
    } else {
        Ok(f(&decode(text)?))
    }
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
    fn slice_decoder_agrees_with_the_reference_engine() {
        let texts = [
            "",
            "Zg",
            "Zh",
            "Zm8",
            "Zm9",
            "Zm9v",
            "Zg==",
            "Zm+v",
            "Zm9v\n",
            "Z",
            "-_8",
            "_-__",
            "Zm9vYmFy",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
        ];
        for t in texts {
            let mut buf = [0u8; 128];
            let fast = decode_slice(t.as_bytes(), &mut buf).map(|n| buf[..n].to_vec());
            assert_eq!(fast, decode(t.as_bytes()), "{t:?}");
        }
        // Every 1-3 character text over an alphabet covering all classes of byte.
        let alphabet: Vec<u8> = b"AQgwBCDhZz09-_+/=. \n\0\xff".to_vec();
        let mut buf = [0u8; 16];
        for a in &alphabet {
            for b in &alphabet {
                for c in &alphabet {
                    for t in [
                        vec![*a],
                        vec![*a, *b],
                        vec![*a, *b, *c],
                        vec![b'Q', b'Q', *a, *b, *c],
                    ] {
                        let fast = decode_slice(&t, &mut buf).map(|n| buf[..n].to_vec());
                        assert_eq!(fast, decode(&t), "{:?}", String::from_utf8_lossy(&t));
                    }
                }
            }
        }
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
