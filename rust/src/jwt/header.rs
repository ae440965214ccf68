//! The JOSE header of a compact JWS: a JSON object without duplicate members, of which the
//! verifier reads `alg` and `kid` and refuses `crit` and `b64` (unsupported extensions).

use jiter::{Jiter, Peek};

use super::claims::NameSet;
use crate::error::JwtError;

const MAX_DEPTH: usize = super::claims::MAX_DEPTH;

fn bad(msg: &str) -> JwtError {
    JwtError::malformed(msg)
}

/// The members of a JOSE header the verifier uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub alg: Option<String>,
    pub alg_is_string: bool,
    pub kid: Option<String>,
    pub kid_invalid: bool,
    /// `typ` or `cty` present but not a string (RFC 7515 §4.1.9–10).
    pub typ_invalid: bool,
    pub has_crit: bool,
    pub has_b64: bool,
}

fn json_err(what: &'static str) -> impl Fn(jiter::JiterError) -> JwtError {
    move |_| bad(what)
}

/// Skips one header value, checking nested objects for duplicate members (the header has its
/// own small reader: nothing in it is handed to callers but `alg` and `kid`).
fn skip_value(
    jiter: &mut Jiter,
    peek: Peek,
    depth: usize,
    what: &'static str,
) -> Result<(), JwtError> {
    if depth > MAX_DEPTH {
        return Err(bad("JSON nested too deeply"));
    }
    match peek {
        Peek::Object => {
            let mut seen = NameSet::new();
            let mut key = jiter.known_object().map_err(json_err(what))?;
            while let Some(k) = key {
                if !seen.insert(k) {
                    return Err(bad("duplicate member name in JSON"));
                }
                let p = jiter.peek().map_err(json_err(what))?;
                skip_value(jiter, p, depth + 1, what)?;
                key = jiter.next_key().map_err(json_err(what))?;
            }
            Ok(())
        }
        Peek::Array => {
            let mut next = jiter.known_array().map_err(json_err(what))?;
            while let Some(p) = next {
                skip_value(jiter, p, depth + 1, what)?;
                next = jiter.array_step().map_err(json_err(what))?;
            }
            Ok(())
        }
        _ => jiter.known_skip(peek).map_err(json_err(what)),
    }
}

/// Reads a JOSE header: a JSON object without duplicate members; picks out `alg`, `kid`, `crit`, `b64`.
pub fn read_header(data: &[u8]) -> Result<Header, JwtError> {
    const WHAT: &str = "header is not valid JSON";
    let mut jiter = Jiter::new(data);
    if jiter.peek().map_err(json_err(WHAT))? != Peek::Object {
        return Err(bad("header is not a JSON object"));
    }
    let mut header = Header::default();
    let mut seen = NameSet::new();
    let mut key = jiter.known_object().map_err(json_err(WHAT))?;
    while let Some(k) = key {
        if !seen.insert(k) {
            return Err(bad("duplicate member name in header"));
        }
        let field = match k {
            "alg" => HeaderField::Alg,
            "kid" => HeaderField::Kid,
            "crit" => HeaderField::Crit,
            "b64" => HeaderField::B64,
            "typ" | "cty" => HeaderField::Typ,
            _ => HeaderField::Other,
        };
        let peek = jiter.peek().map_err(json_err(WHAT))?;
        match (field, peek) {
            (HeaderField::Alg, Peek::String) => {
                header.alg = Some(jiter.known_str().map_err(json_err(WHAT))?.to_owned());
                header.alg_is_string = true;
            }
            (HeaderField::Kid, Peek::String) => {
                header.kid = Some(jiter.known_str().map_err(json_err(WHAT))?.to_owned())
            }
            (HeaderField::Typ, Peek::String) => {
                jiter.known_str().map_err(json_err(WHAT))?;
            }
            (field, _) => {
                match field {
                    HeaderField::Alg => header.alg = Some(String::new()),
                    HeaderField::Kid => header.kid_invalid = true,
                    HeaderField::Crit => header.has_crit = true,
                    HeaderField::B64 => header.has_b64 = true,
                    HeaderField::Typ => header.typ_invalid = true,
                    HeaderField::Other => {}
                }
                skip_value(&mut jiter, peek, 1, WHAT)?;
            }
        }
        key = jiter.next_key().map_err(json_err(WHAT))?;
    }
    jiter.finish().map_err(json_err(WHAT))?;
    Ok(header)
}

#[derive(Clone, Copy)]
enum HeaderField {
    Alg,
    Kid,
    Crit,
    B64,
    Typ,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let h = read_header(br#"{"alg":"HS256","kid":"k1","typ":"JWT","crit":["exp"]}"#).unwrap();
        assert_eq!(h.alg.as_deref(), Some("HS256"));
        assert_eq!(h.kid.as_deref(), Some("k1"));
        assert!(h.has_crit);
        let h = read_header(br#"{"alg":256,"kid":7}"#).unwrap();
        assert!(!h.alg_is_string);
        assert!(h.kid_invalid);
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert!(read_header(br#"{"alg":"HS256","alg":"none"}"#).is_err());
        assert!(read_header(br#"{"alg":"HS256","x":{"a":1,"a":2}}"#).is_err());
    }
}

/// The `kid` of a compact JWS's header, read without verifying anything (for asking a key-set
/// source about a kid it did not have). None when the header is unreadable or has no string kid.
pub fn kid_of(token: &[u8]) -> Option<String> {
    let end = memchr::memchr(b'.', token)?;
    super::b64::with_decoded(&token[..end], read_header)
        .ok()?
        .ok()?
        .kid
}
