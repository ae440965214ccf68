//! Strict reading of JOSE header and claims JSON.
//!
//! `jiter` does the tokenizing. The claims have ONE walker, [`walk_claims`], generic over a
//! [`Sink`] that builds what the caller needs: a Python `dict` in production (`python/claims.rs`), the
//! text of a few named claims for `cargo test` and the fuzz targets ([`read_claims`]), or nothing
//! at all for the cheap check behind an early "expired" ([`check_only`]). The rules live in the
//! walker, so every caller gets the same verdict for the same bytes: duplicate member names are
//! refused at every depth (RFC 7515 §4 lets a parser refuse them, and accepting the last one is
//! how two parsers come to disagree about a token), nesting is bounded by [`MAX_DEPTH`], and the
//! registered claims (`exp`, `nbf`, `iat`, `iss`, `aud`) and the presence of required claims are
//! read the same way whatever is built.

use jiter::{Jiter, NumberAny, NumberInt, Peek};

use crate::error::JwtError;

/// Levels of nesting allowed, the claims object included: a container inside 63 others is the
/// deepest accepted.
pub const MAX_DEPTH: usize = 64;

/// The most claims `require` may name (they are tracked in a bit set while walking).
pub const MAX_REQUIRED: usize = 64;

const WHAT: &str = "claims are not valid JSON";

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudClaim {
    Absent,
    /// Well-formed; whether it names one of the expected audiences (false when none is expected).
    Matched(bool),
    Invalid,
}

/// The issuer claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssClaim {
    Absent,
    /// A string; whether it is one of the expected issuers (false when none is expected).
    Matched(bool),
    Invalid,
}

/// The registered claims the verifier checks, as the walker read them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Registered {
    pub exp: NumClaim,
    pub nbf: NumClaim,
    pub iat: NumClaim,
    pub iss: IssClaim,
    pub aud: AudClaim,
    /// Bit `i` is set when `require[i]` is present at the top level.
    pub present: u64,
}

impl Default for Registered {
    fn default() -> Self {
        Registered {
            exp: NumClaim::Absent,
            nbf: NumClaim::Absent,
            iat: NumClaim::Absent,
            iss: IssClaim::Absent,
            aud: AudClaim::Absent,
            present: 0,
        }
    }
}

/// What the claims are checked against while walking (borrowed from the verifier's policy).
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect<'p> {
    pub issuer: Option<&'p [String]>,
    pub audience: Option<&'p [String]>,
    /// At most [`MAX_REQUIRED`] names; later ones are never reported present.
    pub require: &'p [String],
}

/// A string the sink may replace by a ready-made copy: the `i`-th expected issuer or audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    No,
    Issuer(usize),
    Audience(usize),
}

/// What the walker builds through: one call per JSON value, in document order. Errors from a
/// sink are reported as they are (a sink refuses nothing the walker accepts, except by failing to
/// allocate).
pub trait Sink {
    /// True when `insert` and `claim` refuse a repeated name themselves (a Python dict that does
    /// not grow on insert already had the key: the check costs nothing there). The rule is the
    /// walker's either way: names are compared as decoded text, at every depth.
    const CHECKS_DUPLICATES: bool = false;
    type Value;
    type Key;
    type Array;
    type Object;
    fn key(&mut self, name: &str) -> Result<Self::Key, JwtError>;
    fn null(&mut self) -> Result<Self::Value, JwtError>;
    fn boolean(&mut self, b: bool) -> Result<Self::Value, JwtError>;
    fn string(&mut self, s: &str, known: Known) -> Result<Self::Value, JwtError>;
    fn number(&mut self, n: NumberAny) -> Result<Self::Value, JwtError>;
    fn array(&mut self) -> Result<Self::Array, JwtError>;
    fn push(&mut self, array: &mut Self::Array, v: Self::Value) -> Result<(), JwtError>;
    fn end_array(&mut self, array: Self::Array) -> Self::Value;
    fn object(&mut self) -> Result<Self::Object, JwtError>;
    fn insert(
        &mut self,
        object: &mut Self::Object,
        key: Self::Key,
        v: Self::Value,
    ) -> Result<(), JwtError>;
    fn end_object(&mut self, object: Self::Object) -> Self::Value;
    /// A member of the top-level claims object; `raw` is its value's JSON text.
    fn claim(&mut self, key: Self::Key, v: Self::Value, raw: &[u8]) -> Result<(), JwtError>;
}

fn bad(msg: &str) -> JwtError {
    JwtError::malformed(msg)
}

/// The error for a member name that repeats one before it in the same object.
pub fn duplicate() -> JwtError {
    bad("duplicate member name in JSON")
}

fn syntax(_: jiter::JiterError) -> JwtError {
    bad(WHAT)
}

#[derive(Clone, Copy)]
enum Field {
    Exp,
    Nbf,
    Iat,
    Iss,
    Aud,
    /// `sub`, `jti`: strings or refused.
    StringOnly,
    Other,
}

/// A time claim (`exp`, `nbf`, `iat`) as a number of seconds. A float beyond f64 (JSON `1e400`,
/// which a parser reads as infinity) does not fit: malformed, never an "expires never" infinity.
fn num_claim(n: &NumberAny) -> Result<NumClaim, JwtError> {
    match n {
        NumberAny::Int(NumberInt::Int(i)) => Ok(NumClaim::Int(*i)),
        // An exact integer far beyond any real date either way: its sign decides every comparison
        // (a huge negative `exp` is expired, a huge positive one is not), as on the number itself.
        NumberAny::Int(NumberInt::BigInt(b)) => {
            Ok(NumClaim::Num(if b.sign() == num_bigint::Sign::Minus {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }))
        }
        NumberAny::Float(f) if f.is_finite() => Ok(NumClaim::Num(*f)),
        NumberAny::Float(_) => Err(bad("a number does not fit a 64-bit float")),
    }
}

/// Any JSON number: a float that overflows f64 is refused (NaN and Infinity are not JSON, and a
/// number read as one would compare as no number does).
fn finite(n: NumberAny) -> Result<NumberAny, JwtError> {
    match n {
        NumberAny::Float(f) if !f.is_finite() => Err(bad("a number does not fit a 64-bit float")),
        n => Ok(n),
    }
}

fn position(expected: Option<&[String]>, s: &str) -> Option<usize> {
    expected.and_then(|e| e.iter().position(|x| x == s))
}

/// One JSON value at `depth` (the claims object is depth 0, its members' values depth 1).
fn value<S: Sink>(
    j: &mut Jiter,
    peek: Peek,
    depth: usize,
    sink: &mut S,
) -> Result<S::Value, JwtError> {
    match peek {
        Peek::Null => {
            j.known_null().map_err(syntax)?;
            sink.null()
        }
        Peek::True | Peek::False => sink.boolean(j.known_bool(peek).map_err(syntax)?),
        Peek::String => sink.string(j.known_str().map_err(syntax)?, Known::No),
        Peek::Array => {
            if depth >= MAX_DEPTH {
                return Err(bad("JSON nested too deeply"));
            }
            let mut array = sink.array()?;
            let mut next = j.known_array().map_err(syntax)?;
            while let Some(p) = next {
                let v = value(j, p, depth + 1, sink)?;
                sink.push(&mut array, v)?;
                next = j.array_step().map_err(syntax)?;
            }
            Ok(sink.end_array(array))
        }
        Peek::Object => {
            if depth >= MAX_DEPTH {
                return Err(bad("JSON nested too deeply"));
            }
            let mut object = sink.object()?;
            let mut seen = (!S::CHECKS_DUPLICATES).then(NameSet::new);
            let mut key = j.known_object().map_err(syntax)?;
            while let Some(k) = key {
                if seen.as_mut().is_some_and(|seen| !seen.insert(k)) {
                    return Err(duplicate());
                }
                let k = sink.key(k)?;
                let p = j.peek().map_err(syntax)?;
                let v = value(j, p, depth + 1, sink)?;
                sink.insert(&mut object, k, v)?;
                key = j.next_key().map_err(syntax)?;
            }
            Ok(sink.end_object(object))
        }
        _ => sink.number(finite(j.known_number(peek).map_err(syntax)?)?),
    }
}

/// An `aud` array: built like any array, and compared with the expected audiences on the way.
fn aud_array<S: Sink>(
    j: &mut Jiter,
    expect: &Expect<'_>,
    sink: &mut S,
) -> Result<(S::Value, AudClaim), JwtError> {
    let mut array = sink.array()?;
    let (mut matched, mut valid) = (false, true);
    let mut next = j.known_array().map_err(syntax)?;
    while let Some(p) = next {
        let v = if p == Peek::String {
            let s = j.known_str().map_err(syntax)?;
            let i = position(expect.audience, s);
            matched |= i.is_some();
            sink.string(s, i.map_or(Known::No, Known::Audience))?
        } else {
            valid = false;
            value(j, p, 2, sink)?
        };
        sink.push(&mut array, v)?;
        next = j.array_step().map_err(syntax)?;
    }
    let claim = if valid {
        AudClaim::Matched(matched)
    } else {
        AudClaim::Invalid
    };
    Ok((sink.end_array(array), claim))
}

/// Walks the claims object once: checks it against the JSON rules above, reads the registered
/// claims, and hands every value to `sink`.
pub fn walk_claims<S: Sink>(
    data: &[u8],
    expect: &Expect<'_>,
    sink: &mut S,
) -> Result<Registered, JwtError> {
    let mut j = Jiter::new(data);
    if j.peek().map_err(syntax)? != Peek::Object {
        return Err(bad("claims are not a JSON object"));
    }
    let mut reg = Registered::default();
    let mut seen = (!S::CHECKS_DUPLICATES).then(NameSet::new);
    let mut key = j.known_object().map_err(syntax)?;
    while let Some(k) = key {
        if seen.as_mut().is_some_and(|seen| !seen.insert(k)) {
            return Err(duplicate());
        }
        let field = match k {
            "exp" => Field::Exp,
            "nbf" => Field::Nbf,
            "iat" => Field::Iat,
            "iss" => Field::Iss,
            "aud" => Field::Aud,
            "sub" | "jti" => Field::StringOnly,
            _ => Field::Other,
        };
        // Every position naming `k` (a name required twice is present twice).
        let mut named = 0u64;
        for (i, r) in expect.require.iter().take(MAX_REQUIRED).enumerate() {
            if r == k {
                named |= 1 << i;
            }
        }
        let skey = sink.key(k)?;
        let p = j.peek().map_err(syntax)?;
        // A required claim that is JSON null is missing (as PyJWT has it).
        if p != Peek::Null {
            reg.present |= named;
        }
        let start = j.current_index();
        let v = match (field, p) {
            (Field::Exp | Field::Nbf | Field::Iat, _) => {
                let (claim, v) = if p.is_num() {
                    let n = j.known_number(p).map_err(syntax)?;
                    (num_claim(&n)?, sink.number(n)?)
                } else {
                    (NumClaim::NotANumber, value(&mut j, p, 1, sink)?)
                };
                match field {
                    Field::Exp => reg.exp = claim,
                    Field::Nbf => reg.nbf = claim,
                    _ => reg.iat = claim,
                }
                v
            }
            (Field::Iss, Peek::String) => {
                let s = j.known_str().map_err(syntax)?;
                let i = position(expect.issuer, s);
                reg.iss = IssClaim::Matched(i.is_some());
                sink.string(s, i.map_or(Known::No, Known::Issuer))?
            }
            (Field::Iss, _) => {
                reg.iss = IssClaim::Invalid;
                value(&mut j, p, 1, sink)?
            }
            (Field::Aud, Peek::String) => {
                let s = j.known_str().map_err(syntax)?;
                let i = position(expect.audience, s);
                reg.aud = AudClaim::Matched(i.is_some());
                sink.string(s, i.map_or(Known::No, Known::Audience))?
            }
            (Field::Aud, Peek::Array) => {
                let (v, claim) = aud_array(&mut j, expect, sink)?;
                reg.aud = claim;
                v
            }
            (Field::Aud, _) => {
                reg.aud = AudClaim::Invalid;
                value(&mut j, p, 1, sink)?
            }
            // RFC 7519 §4.1.2 and §4.1.7: `sub` and `jti` are strings (PyJWT refuses others too).
            (Field::StringOnly, Peek::String) => value(&mut j, p, 1, sink)?,
            (Field::StringOnly, _) => return Err(bad("\"sub\" and \"jti\" must be strings")),
            (Field::Other, _) => value(&mut j, p, 1, sink)?,
        };
        let raw = data[start..j.current_index()].trim_ascii();
        sink.claim(skey, v, raw)?;
        key = j.next_key().map_err(syntax)?;
    }
    j.finish().map_err(syntax)?;
    Ok(reg)
}

/// A sink that builds nothing: the walk then only checks the rules and reads the registered
/// claims, allocating nothing for ordinary claims (the early-expiry check runs on it).
pub struct Nothing;

impl Sink for Nothing {
    type Value = ();
    type Key = ();
    type Array = ();
    type Object = ();
    fn key(&mut self, _: &str) -> Result<(), JwtError> {
        Ok(())
    }
    fn null(&mut self) -> Result<(), JwtError> {
        Ok(())
    }
    fn boolean(&mut self, _: bool) -> Result<(), JwtError> {
        Ok(())
    }
    fn string(&mut self, _: &str, _: Known) -> Result<(), JwtError> {
        Ok(())
    }
    fn number(&mut self, _: NumberAny) -> Result<(), JwtError> {
        Ok(())
    }
    fn array(&mut self) -> Result<(), JwtError> {
        Ok(())
    }
    fn push(&mut self, _: &mut (), _: ()) -> Result<(), JwtError> {
        Ok(())
    }
    fn end_array(&mut self, _: ()) {}
    fn object(&mut self) -> Result<(), JwtError> {
        Ok(())
    }
    fn insert(&mut self, _: &mut (), _: (), _: ()) -> Result<(), JwtError> {
        Ok(())
    }
    fn end_object(&mut self, _: ()) {}
    fn claim(&mut self, _: (), _: (), _: &[u8]) -> Result<(), JwtError> {
        Ok(())
    }
}

/// The walk with nothing built: the same verdict on the JSON as every other caller gets.
pub fn check_only(data: &[u8], expect: &Expect<'_>) -> Result<Registered, JwtError> {
    walk_claims(data, expect, &mut Nothing)
}

/// What [`read_claims`] gives back: registered claims plus the values of the claims the caller
/// asked for by name, rendered as text (strings as they are, other values as their JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsView {
    pub registered: Registered,
    pub wanted: Vec<Option<String>>,
}

/// The sink behind [`read_claims`]: keeps the text of the wanted top-level claims.
struct Texts<'w> {
    wanted: &'w [&'w str],
    out: Vec<Option<String>>,
}

impl Sink for Texts<'_> {
    /// The decoded text of a string (other values are taken from their raw JSON when wanted).
    type Value = Option<String>;
    /// Where the member goes in `wanted` (meaningful for top-level members only).
    type Key = Option<usize>;
    type Array = ();
    type Object = ();
    fn key(&mut self, name: &str) -> Result<Option<usize>, JwtError> {
        Ok(self.wanted.iter().position(|w| *w == name))
    }
    fn null(&mut self) -> Result<Option<String>, JwtError> {
        Ok(None)
    }
    fn boolean(&mut self, _: bool) -> Result<Option<String>, JwtError> {
        Ok(None)
    }
    fn string(&mut self, s: &str, _: Known) -> Result<Option<String>, JwtError> {
        Ok(Some(s.to_owned()))
    }
    fn number(&mut self, _: NumberAny) -> Result<Option<String>, JwtError> {
        Ok(None)
    }
    fn array(&mut self) -> Result<(), JwtError> {
        Ok(())
    }
    fn push(&mut self, _: &mut (), _: Option<String>) -> Result<(), JwtError> {
        Ok(())
    }
    fn end_array(&mut self, _: ()) -> Option<String> {
        None
    }
    fn object(&mut self) -> Result<(), JwtError> {
        Ok(())
    }
    fn insert(&mut self, _: &mut (), _: Option<usize>, _: Option<String>) -> Result<(), JwtError> {
        Ok(())
    }
    fn end_object(&mut self, _: ()) -> Option<String> {
        None
    }
    fn claim(&mut self, key: Option<usize>, v: Option<String>, raw: &[u8]) -> Result<(), JwtError> {
        if let Some(i) = key {
            self.out[i] = Some(v.unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned()));
        }
        Ok(())
    }
}

/// The walk keeping the text of each claim named in `wanted` (strings as they are, other values
/// as their JSON): what the Rust verifier, `cargo test` and the fuzz targets use.
pub fn read_claims(
    data: &[u8],
    expect: &Expect<'_>,
    wanted: &[&str],
) -> Result<ClaimsView, JwtError> {
    let mut sink = Texts {
        wanted,
        out: vec![None; wanted.len()],
    };
    let registered = walk_claims(data, expect, &mut sink)?;
    Ok(ClaimsView {
        registered,
        wanted: sink.out,
    })
}

/// Duplicate member detection for one object, without heap allocation for ordinary objects:
/// names are kept in a fixed stack arena and compared linearly; an object with many or long
/// names moves to a hash set.
pub struct NameSet {
    arena: [u8; 512],
    used: usize,
    spans: [(u16, u16); 24],
    count: usize,
    hashed: Option<std::collections::HashSet<Vec<u8>>>,
}

impl Default for NameSet {
    fn default() -> Self {
        Self::new()
    }
}

impl NameSet {
    pub fn new() -> Self {
        NameSet {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8], wanted: &[&str]) -> Result<ClaimsView, JwtError> {
        read_claims(data, &Expect::default(), wanted)
    }

    #[test]
    fn reads_registered_and_wanted() {
        let issuer = vec!["me".to_string()];
        let audience = vec!["b".to_string()];
        let require = vec!["sub".to_string(), "nope".to_string(), "n".to_string()];
        let expect = Expect {
            issuer: Some(&issuer),
            audience: Some(&audience),
            require: &require,
        };
        let v = read_claims(
            br#"{"sub":"u1","exp":1700000000,"nbf":1.5,"iss":"me","aud":["a","b"],"roles":["x",{"y":1}],"n":12}"#,
            &expect,
            &["sub", "roles", "n", "missing", "exp"],
        )
        .unwrap();
        assert_eq!(v.registered.exp, NumClaim::Int(1_700_000_000));
        assert_eq!(v.registered.nbf, NumClaim::Num(1.5));
        assert_eq!(v.registered.iss, IssClaim::Matched(true));
        assert_eq!(v.registered.aud, AudClaim::Matched(true));
        assert_eq!(v.registered.present, 0b101);
        let twice = vec!["sub".to_string(), "sub".to_string()];
        let twice_expect = Expect {
            require: &twice,
            ..Expect::default()
        };
        let once = read_claims(br#"{"sub":"a"}"#, &twice_expect, &[]).unwrap();
        assert_eq!(once.registered.present, 0b11, "a name required twice");
        assert_eq!(v.wanted[0].as_deref(), Some("u1"));
        assert_eq!(v.wanted[1].as_deref(), Some(r#"["x",{"y":1}]"#));
        assert_eq!(v.wanted[2].as_deref(), Some("12"));
        assert_eq!(v.wanted[3], None);
        assert_eq!(v.wanted[4].as_deref(), Some("1700000000"));
    }

    #[test]
    fn registered_claims_of_the_wrong_type() {
        let v = read(br#"{"exp":"soon","iss":["me"],"aud":[1]}"#, &["exp"]).unwrap();
        assert_eq!(v.registered.exp, NumClaim::NotANumber);
        assert_eq!(v.registered.iss, IssClaim::Invalid);
        assert_eq!(v.registered.aud, AudClaim::Invalid);
        assert_eq!(v.wanted[0].as_deref(), Some("soon"));
        let v = read(br#"{"iss":"x","aud":"y"}"#, &[]).unwrap();
        assert_eq!(v.registered.iss, IssClaim::Matched(false));
        assert_eq!(v.registered.aud, AudClaim::Matched(false));
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert!(read(br#"{"a":1,"a":2}"#, &[]).is_err());
        assert!(read(br#"{"a":{"b":1,"b":2}}"#, &[]).is_err());
        assert!(read(br#"{"a":[{"b":1,"b":2}]}"#, &[]).is_err());
        assert!(read(br#"{"aud":[{"b":1,"b":2}]}"#, &[]).is_err());
        assert!(
            read(br#"{"a\u0062":1,"ab":2}"#, &[]).is_err(),
            "escaped duplicates are duplicates"
        );
        let many: String = (0..40)
            .map(|i| format!("\"k{i}\":{i},"))
            .collect::<String>()
            + "\"k7\":0";
        assert!(read(format!("{{{many}}}").as_bytes(), &[]).is_err());
        let long_keys: String = (0..30)
            .map(|i| format!("\"{}{i}\":{i},", "k".repeat(40)))
            .collect::<String>();
        assert!(read(
            format!("{{{long_keys}\"{}3\":1}}", "k".repeat(40)).as_bytes(),
            &[]
        )
        .is_err());
        assert!(read(format!("{{{long_keys}\"x\":1}}").as_bytes(), &[]).is_ok());
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
            b"{\"a\":\"\\q\"}",
        ] {
            assert!(
                read(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(
                read(bad, &[]).is_err(),
                check_only(bad, &Expect::default()).is_err()
            );
        }
    }

    /// `depth` levels of nesting, the claims object included.
    fn nested(depth: usize, claims: &str) -> String {
        let inner = depth - 1;
        format!(
            "{{{claims}\"deep\":{}{}}}",
            "[".repeat(inner),
            "]".repeat(inner)
        )
    }

    #[test]
    fn nesting_limit_is_the_same_for_every_sink() {
        let ok = nested(MAX_DEPTH, "");
        let too_deep = nested(MAX_DEPTH + 1, "");
        assert!(read(ok.as_bytes(), &[]).is_ok());
        assert!(check_only(ok.as_bytes(), &Expect::default()).is_ok());
        assert!(read(too_deep.as_bytes(), &["deep"]).is_err());
        assert!(check_only(too_deep.as_bytes(), &Expect::default()).is_err());
        let objects = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        assert!(read(objects.as_bytes(), &[]).is_err());
        assert!(check_only(objects.as_bytes(), &Expect::default()).is_err());
    }

    #[test]
    fn big_numbers_keep_their_sign() {
        let v = read(
            br#"{"exp":1000000000000000000000000000000,"nbf":-1000000000000000000000000000000}"#,
            &[],
        )
        .unwrap();
        assert_eq!(v.registered.exp, NumClaim::Num(f64::INFINITY));
        assert_eq!(v.registered.nbf, NumClaim::Num(f64::NEG_INFINITY));
    }
}
