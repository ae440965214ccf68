//! Strict reading of JOSE header and claims JSON without building a value tree.
//!
//! `jiter` does the tokenizing; this module walks the document once, rejects duplicate member
//! names at every depth (RFC 7515 §4 lets a parser refuse them, and accepting the last one is how
//! two parsers come to disagree about a token), bounds the nesting depth, and picks out the members
//! the verifier and the gateway need.

use jiter::{Jiter, NumberAny, NumberInt, Peek};

use crate::error::JwtError;

const MAX_DEPTH: usize = 64;

/// A numeric claim (`exp`, `nbf`, `iat`) as the verifier sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumClaim {
    Absent,
    /// A JSON integer that fits i64, kept exact.
    Int(i64),
    Num(f64),
    /// Present but not a JSON number (a string, a boolean, ...).
    NotANumber,
}

/// The audience claim: a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq)]
pub enum AudClaim {
    Absent,
    List(Vec<String>),
    /// Compared with the expected audience while parsing (saves copying the strings).
    Matched(bool),
    Invalid,
}

/// The issuer claim.
#[derive(Debug, Clone, PartialEq)]
pub enum IssClaim {
    Absent,
    Str(String),
    /// Compared with the expected issuer while parsing (saves copying the string).
    Matched(bool),
    Invalid,
}

/// The registered claims the verifier checks, extracted from either the Rust or the Python path.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub exp: NumClaim,
    pub nbf: NumClaim,
    pub iat: NumClaim,
    pub iss: IssClaim,
    pub aud: AudClaim,
}

impl Default for Registered {
    fn default() -> Self {
        Registered {
            exp: NumClaim::Absent,
            nbf: NumClaim::Absent,
            iat: NumClaim::Absent,
            iss: IssClaim::Absent,
            aud: AudClaim::Absent,
        }
    }
}

/// What a walk of the claims gives back: registered claims plus the values of the claims the
/// caller asked for by name, rendered as text (strings as they are, other values as JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsView {
    pub registered: Registered,
    pub wanted: Vec<Option<String>>,
}

/// The members of a JOSE header the verifier uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub alg: Option<String>,
    pub alg_is_string: bool,
    pub kid: Option<String>,
    pub kid_invalid: bool,
    pub has_crit: bool,
    pub has_b64: bool,
}

fn bad(msg: &str) -> JwtError {
    JwtError::malformed(msg)
}

/// Duplicate member detection for one object, without heap allocation for ordinary objects:
/// names are kept in a fixed stack arena and compared linearly; an object with many or long
/// names moves to a hash set.
pub struct KeySet {
    arena: [u8; 512],
    used: usize,
    spans: [(u16, u16); 24],
    count: usize,
    hashed: Option<std::collections::HashSet<Vec<u8>>>,
}

impl Default for KeySet {
    fn default() -> Self {
        Self::new()
    }
}

impl KeySet {
    pub fn new() -> Self {
        KeySet {
            arena: [0; 512],
            used: 0,
            spans: [(0, 0); 24],
            count: 0,
            hashed: None,
        }
    }

    /// Returns false when `key` was already seen.
    pub fn insert(&mut self, key: &str) -> bool {
        let key = key.as_bytes();
        if let Some(set) = &mut self.hashed {
            return set.insert(key.to_vec());
        }
        for &(start, len) in &self.spans[..self.count] {
            if &self.arena[start as usize..(start + len) as usize] == key {
                return false;
            }
        }
        if self.count == self.spans.len() || self.used + key.len() > self.arena.len() {
            let mut set: std::collections::HashSet<Vec<u8>> = self.spans[..self.count]
                .iter()
                .map(|&(s, l)| self.arena[s as usize..(s + l) as usize].to_vec())
                .collect();
            set.insert(key.to_vec());
            self.hashed = Some(set);
            return true;
        }
        self.arena[self.used..self.used + key.len()].copy_from_slice(key);
        self.spans[self.count] = (self.used as u16, key.len() as u16);
        self.used += key.len();
        self.count += 1;
        true
    }
}

fn json_err(what: &'static str) -> impl Fn(jiter::JiterError) -> JwtError {
    move |_| bad(what)
}

/// Skips one value, checking nested objects for duplicate members.
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
            let mut seen = KeySet::new();
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

/// Reads the rest of an object whose earlier members were consumed elsewhere, checking that no
/// remaining name repeats one `seen` before or another remaining one, and that the JSON is
/// well-formed to its end. Used when a verdict (e.g. expired) is known before the whole object
/// was read: the token must still be refused as malformed if it is.
pub fn finish_object(jiter: &mut Jiter, seen: impl Fn(&str) -> bool) -> Result<(), JwtError> {
    const WHAT: &str = "claims are not valid JSON";
    let mut rest = KeySet::new();
    while let Some(k) = jiter.next_key().map_err(json_err(WHAT))? {
        if seen(k) || !rest.insert(k) {
            return Err(bad("duplicate member name in JSON"));
        }
        let p = jiter.peek().map_err(json_err(WHAT))?;
        skip_value(jiter, p, 1, WHAT)?;
    }
    jiter.finish().map_err(json_err(WHAT))
}

/// Renders a scalar or compound value as text for forwarding (strings unquoted).
fn value_text(
    jiter: &mut Jiter,
    data: &[u8],
    peek: Peek,
    depth: usize,
) -> Result<String, JwtError> {
    match peek {
        Peek::String => Ok(jiter
            .known_str()
            .map_err(json_err("claims are not valid JSON"))?
            .to_owned()),
        _ => {
            let start = jiter.current_index();
            skip_value(jiter, peek, depth, "claims are not valid JSON")?;
            let end = jiter.current_index();
            Ok(String::from_utf8_lossy(&data[start..end]).trim().to_owned())
        }
    }
}

fn number_claim(jiter: &mut Jiter, peek: Peek) -> Result<NumClaim, JwtError> {
    match peek {
        Peek::True | Peek::False | Peek::Null | Peek::String | Peek::Array | Peek::Object => {
            skip_value(jiter, peek, 1, "claims are not valid JSON")?;
            Ok(NumClaim::NotANumber)
        }
        _ => match jiter
            .known_number(peek)
            .map_err(json_err("claims are not valid JSON"))?
        {
            NumberAny::Int(NumberInt::Int(i)) => Ok(NumClaim::Int(i)),
            NumberAny::Int(NumberInt::BigInt(b)) => {
                // Far beyond any real date either way; keep the sign so a huge negative `exp` is expired.
                let negative = b.sign() == num_bigint::Sign::Minus;
                Ok(NumClaim::Num(if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }))
            }
            NumberAny::Float(f) => Ok(NumClaim::Num(f)),
        },
    }
}

/// The integer right after the first occurrence of `key` (e.g. `"exp":`), if it is one: a hint
/// only, since the match may sit inside a nested object or a string. Callers confirm with a parse.
pub fn top_level_int_hint(data: &[u8], key: &memchr::memmem::Finder<'_>) -> Option<i64> {
    let at = key.find(data)? + key.needle().len();
    let digits = &data[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || end > 18 {
        return None;
    }
    // SAFETY-free parse: at most 18 ASCII digits always fit in an i64.
    Some(
        digits[..end]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
    )
}

/// Validates the whole claims object (well-formed, no duplicate names at any depth) and returns
/// only its `exp` and `nbf`, allocating nothing: the cheap confirmation behind an early "expired".
pub fn read_exp_nbf(data: &[u8]) -> Result<(NumClaim, NumClaim), JwtError> {
    const WHAT: &str = "claims are not valid JSON";
    let mut jiter = Jiter::new(data);
    if jiter.peek().map_err(json_err(WHAT))? != Peek::Object {
        return Err(bad("claims are not a JSON object"));
    }
    let (mut exp, mut nbf) = (NumClaim::Absent, NumClaim::Absent);
    let mut seen = KeySet::new();
    let mut key = jiter.known_object().map_err(json_err(WHAT))?;
    while let Some(k) = key {
        if !seen.insert(k) {
            return Err(bad("duplicate member name in JSON"));
        }
        let slot = match k {
            "exp" => Some(&mut exp),
            "nbf" => Some(&mut nbf),
            _ => None,
        };
        let peek = jiter.peek().map_err(json_err(WHAT))?;
        match slot {
            Some(slot) => *slot = number_claim(&mut jiter, peek)?,
            None => skip_value(&mut jiter, peek, 1, WHAT)?,
        }
        key = jiter.next_key().map_err(json_err(WHAT))?;
    }
    jiter.finish().map_err(json_err(WHAT))?;
    Ok((exp, nbf))
}

/// Walks the claims object once: validates it, rejects duplicates, extracts registered claims and
/// the text of each claim named in `wanted`.
pub fn read_claims(data: &[u8], wanted: &[&str]) -> Result<ClaimsView, JwtError> {
    const WHAT: &str = "claims are not valid JSON";
    let mut jiter = Jiter::new(data);
    let mut view = ClaimsView {
        registered: Registered::default(),
        wanted: vec![None; wanted.len()],
    };
    match jiter.peek().map_err(json_err(WHAT))? {
        Peek::Object => {}
        _ => return Err(bad("claims are not a JSON object")),
    }
    let mut seen = KeySet::new();
    let mut key: Option<String> = jiter
        .known_object()
        .map_err(json_err(WHAT))?
        .map(str::to_owned);
    while let Some(k) = key {
        if !seen.insert(&k) {
            return Err(bad("duplicate member name in JSON"));
        }
        let peek = jiter.peek().map_err(json_err(WHAT))?;
        let reg = &mut view.registered;
        let slot = wanted.iter().position(|w| *w == k);
        match (k.as_str(), slot) {
            ("exp", None) => reg.exp = number_claim(&mut jiter, peek)?,
            ("nbf", None) => reg.nbf = number_claim(&mut jiter, peek)?,
            ("iat", None) => reg.iat = number_claim(&mut jiter, peek)?,
            ("iss", None) => {
                reg.iss = match peek {
                    Peek::String => {
                        IssClaim::Str(jiter.known_str().map_err(json_err(WHAT))?.to_owned())
                    }
                    _ => {
                        skip_value(&mut jiter, peek, 1, WHAT)?;
                        IssClaim::Invalid
                    }
                }
            }
            ("aud", None) => reg.aud = aud_claim(&mut jiter, peek)?,
            (name, Some(i)) => {
                // A wanted registered claim is both checked and forwarded: read it as text and
                // re-derive the registered value from that text.
                let text = value_text(&mut jiter, data, peek, 1)?;
                match name {
                    "exp" | "nbf" | "iat" => {
                        let n = match peek {
                            Peek::String
                            | Peek::True
                            | Peek::False
                            | Peek::Null
                            | Peek::Array
                            | Peek::Object => NumClaim::NotANumber,
                            _ => text.parse::<i64>().map(NumClaim::Int).unwrap_or_else(|_| {
                                NumClaim::Num(text.parse::<f64>().unwrap_or(f64::INFINITY))
                            }),
                        };
                        match name {
                            "exp" => reg.exp = n,
                            "nbf" => reg.nbf = n,
                            _ => reg.iat = n,
                        }
                    }
                    "iss" => {
                        reg.iss = if peek == Peek::String {
                            IssClaim::Str(text.clone())
                        } else {
                            IssClaim::Invalid
                        }
                    }
                    "aud" => {
                        let mut sub = Jiter::new(text.as_bytes());
                        reg.aud = if peek == Peek::String {
                            AudClaim::List(vec![text.clone()])
                        } else {
                            let p = sub.peek().map_err(json_err(WHAT))?;
                            aud_claim(&mut sub, p)?
                        };
                    }
                    _ => {}
                }
                view.wanted[i] = Some(text);
            }
            _ => skip_value(&mut jiter, peek, 1, WHAT)?,
        }
        key = jiter.next_key().map_err(json_err(WHAT))?.map(str::to_owned);
    }
    jiter.finish().map_err(json_err(WHAT))?;
    Ok(view)
}

fn aud_claim(jiter: &mut Jiter, peek: Peek) -> Result<AudClaim, JwtError> {
    const WHAT: &str = "claims are not valid JSON";
    match peek {
        Peek::String => Ok(AudClaim::List(vec![jiter
            .known_str()
            .map_err(json_err(WHAT))?
            .to_owned()])),
        Peek::Array => {
            let mut out = Vec::new();
            let mut valid = true;
            let mut next = jiter.known_array().map_err(json_err(WHAT))?;
            while let Some(p) = next {
                if p == Peek::String {
                    out.push(jiter.known_str().map_err(json_err(WHAT))?.to_owned());
                } else {
                    valid = false;
                    skip_value(jiter, p, 2, WHAT)?;
                }
                next = jiter.array_step().map_err(json_err(WHAT))?;
            }
            Ok(if valid {
                AudClaim::List(out)
            } else {
                AudClaim::Invalid
            })
        }
        _ => {
            skip_value(jiter, peek, 1, WHAT)?;
            Ok(AudClaim::Invalid)
        }
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
    let mut seen = KeySet::new();
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
            (field, _) => {
                match field {
                    HeaderField::Alg => header.alg = Some(String::new()),
                    HeaderField::Kid => header.kid_invalid = true,
                    HeaderField::Crit => header.has_crit = true,
                    HeaderField::B64 => header.has_b64 = true,
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
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registered_and_wanted() {
        let v = read_claims(
            br#"{"sub":"u1","exp":1700000000,"nbf":1.5,"iss":"me","aud":["a","b"],"roles":["x",{"y":1}],"n":12}"#,
            &["sub", "roles", "n", "missing"],
        )
        .unwrap();
        assert_eq!(v.registered.exp, NumClaim::Int(1_700_000_000));
        assert_eq!(v.registered.nbf, NumClaim::Num(1.5));
        assert_eq!(v.registered.iss, IssClaim::Str("me".into()));
        assert_eq!(
            v.registered.aud,
            AudClaim::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(v.wanted[0].as_deref(), Some("u1"));
        assert_eq!(v.wanted[1].as_deref(), Some(r#"["x",{"y":1}]"#));
        assert_eq!(v.wanted[2].as_deref(), Some("12"));
        assert_eq!(v.wanted[3], None);
    }

    #[test]
    fn wanted_registered_claims_are_still_checked() {
        let v = read_claims(
            br#"{"exp":"soon","iss":"me","aud":"x"}"#,
            &["exp", "iss", "aud"],
        )
        .unwrap();
        assert_eq!(v.registered.exp, NumClaim::NotANumber);
        assert_eq!(v.registered.iss, IssClaim::Str("me".into()));
        assert_eq!(v.registered.aud, AudClaim::List(vec!["x".into()]));
        assert_eq!(v.wanted[0].as_deref(), Some("soon"));
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert!(read_claims(br#"{"a":1,"a":2}"#, &[]).is_err());
        assert!(read_claims(br#"{"a":{"b":1,"b":2}}"#, &[]).is_err());
        assert!(read_claims(br#"{"a":[{"b":1,"b":2}]}"#, &[]).is_err());
        assert!(
            read_claims(br#"{"a\u0062":1,"ab":2}"#, &[]).is_err(),
            "escaped duplicates are duplicates"
        );
        let many: String = (0..40)
            .map(|i| format!("\"k{i}\":{i},"))
            .collect::<String>()
            + "\"k7\":0";
        assert!(read_claims(format!("{{{many}}}").as_bytes(), &[]).is_err());
        assert!(read_header(br#"{"alg":"HS256","alg":"none"}"#).is_err());
        let long_keys: String = (0..30)
            .map(|i| format!("\"{}{i}\":{i},", "k".repeat(40)))
            .collect::<String>();
        assert!(read_claims(
            format!("{{{long_keys}\"{}3\":1}}", "k".repeat(40)).as_bytes(),
            &[]
        )
        .is_err());
        assert!(read_claims(format!("{{{long_keys}\"x\":1}}").as_bytes(), &[]).is_ok());
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        for bad in [
            &b"[]"[..],
            b"1",
            b"\"x\"",
            b"{",
            b"{}x",
            b"{\"a\":NaN}",
            b"{\"a\":01}",
            b"",
            b"{'a':1}",
        ] {
            assert!(
                read_claims(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(read_claims(format!("{{\"a\":{deep}}}").as_bytes(), &[]).is_err());
    }

    #[test]
    fn big_numbers_keep_their_sign() {
        let v = read_claims(
            br#"{"exp":1000000000000000000000000000000,"nbf":-1000000000000000000000000000000}"#,
            &[],
        )
        .unwrap();
        assert_eq!(v.registered.exp, NumClaim::Num(f64::INFINITY));
        assert_eq!(v.registered.nbf, NumClaim::Num(f64::NEG_INFINITY));
    }

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
}
