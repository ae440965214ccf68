//! HMAC JWS (HS256/384/512) verification and signing.
//!
//! A [`Verifier`] is built once from keys ([`super::keys`]) and a [`Policy`]. The signature is checked before the claims are parsed: nothing an attacker controls beyond
//! the header is interpreted until the MAC holds.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::b64;
use super::claims::{self, AudClaim, ClaimsView, IssClaim, NumClaim, Registered};
use super::keys::{Alg, AlgSet, HmacKey, KeySet};
use super::seconds::Seconds;
use crate::error::{bounded, ConfigError, ErrorKind, JwtError};

pub const DEFAULT_MAX_LENGTH: usize = 8192;

/// What a token must satisfy beyond its signature.
#[derive(Debug, Clone)]
pub struct Policy {
    pub algorithms: AlgSet,
    pub audience: Option<Vec<String>>,
    pub issuer: Option<Vec<String>>,
    pub leeway: f64,
    pub require: Vec<String>,
    pub max_length: usize,
    /// Which registered-claim checks run (PyJWT's `options`; all on by default). The signature
    /// is always checked: there is no switch for it.
    pub checks: Checks,
}

/// The registered-claim checks a policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    pub exp: bool,
    pub nbf: bool,
    /// `iat` must be a number and not later than now + leeway.
    pub iat: bool,
    pub iss: bool,
    pub aud: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            exp: true,
            nbf: true,
            iat: true,
            iss: true,
            aud: true,
        }
    }
}

impl Policy {
    pub fn new(algorithms: AlgSet) -> Policy {
        Policy {
            algorithms,
            audience: None,
            issuer: None,
            leeway: 0.0,
            require: Vec::new(),
            max_length: DEFAULT_MAX_LENGTH,
            checks: Checks::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.leeway.is_finite() && self.leeway >= 0.0) {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "leeway must be a finite number of seconds >= 0",
            ));
        }
        if self.require.len() > claims::MAX_REQUIRED {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                format!("require may name at most {} claims", claims::MAX_REQUIRED),
            ));
        }
        if self.max_length < 16 {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "max_length must be at least 16 bytes",
            ));
        }
        if matches!(&self.audience, Some(a) if a.is_empty()) {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "audience must name at least one audience (or be None)",
            ));
        }
        if matches!(&self.issuer, Some(i) if i.is_empty()) {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "issuer must name at least one issuer (or be None)",
            ));
        }
        Ok(())
    }
}

/// Seconds since the epoch, from the precise clock. (The coarse one lags by up to a jiffy: a token
/// issued that very millisecond then read as issued in the future, `iat > now`, and was refused.)
pub fn wall_clock() -> f64 {
    precise_wall_clock()
}

fn precise_wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A reusable, immutable verifier: keys prepared once, policy fixed.
#[derive(Clone)]
pub struct Verifier {
    pub keys: KeySet,
    pub policy: Policy,
    /// Headers of tokens whose MAC verified, so the common case (every token from one issuer
    /// has the same header bytes) skips decoding the header. Only verified headers get in, so
    /// forged tokens cannot crowd out real ones.
    header_cache: [OnceLock<CachedHeader>; 4],
}

#[derive(Clone)]
struct CachedHeader {
    b64: Box<[u8]>,
    alg: Alg,
    kid: Option<String>,
}

/// The parts of a token whose signature has been checked.
pub struct Verified<'t> {
    pub payload_b64: &'t [u8],
    pub alg: Alg,
    /// The [`crate::jose::Key::fingerprint`] of the public key that verified; None for HMAC.
    pub key_fingerprint: Option<u64>,
}

/// The longest base64url signature any supported algorithm makes: RSA-8192, 1024 bytes.
const MAX_SIGNATURE_B64: usize = 1366;

impl Verifier {
    pub fn new(keys: KeySet, policy: Policy) -> Result<Verifier, ConfigError> {
        policy.validate()?;
        if let KeySet::ByKid(map) = &keys {
            if map.is_empty() {
                return Err(ConfigError::new(
                    ErrorKind::EmptyKey,
                    "the kid → key mapping is empty",
                ));
            }
        }
        // A key's type decides which algorithms it can ever verify: a shared secret never an
        // asymmetric one, a public key never an HMAC one (the RS256/HS256 confusion).
        let algs = policy.algorithms;
        match &keys {
            KeySet::Public(_) if algs.has_hmac() => {
                return Err(ConfigError::new(
                    ErrorKind::KeyTypeMismatch,
                    format!(
                        "{} needs a shared secret; a public key is never an HMAC secret (allow only RS/PS/ES/EdDSA algorithms with it)",
                        algs.iter().find(|a| a.is_hmac()).map_or("HS256", Alg::name)
                    ),
                ))
            }
            KeySet::Single(_) | KeySet::ByKid(_) if algs.has_asymmetric() => {
                return Err(ConfigError::new(
                    ErrorKind::KeyTypeMismatch,
                    format!(
                        "{} needs a public key (PEM, JWK, JWK Set or a key-set URL), not a shared secret",
                        algs.iter().find(|a| !a.is_hmac()).map_or("RS256", Alg::name)
                    ),
                ))
            }
            _ => {}
        }
        Ok(Verifier {
            keys,
            policy,
            header_cache: Default::default(),
        })
    }

    /// A header seen before on a token whose MAC verified: its alg and kid, without decoding.
    fn cached_header(&self, header_b64: &[u8]) -> Option<(Alg, Option<&str>)> {
        for slot in &self.header_cache {
            match slot.get() {
                Some(h) if &*h.b64 == header_b64 => return Some((h.alg, h.kid.as_deref())),
                Some(_) => continue,
                None => return None,
            }
        }
        None
    }

    fn remember_header(&self, header_b64: &[u8], alg: Alg, kid: Option<String>) {
        if header_b64.len() > 512 {
            return;
        }
        let entry = CachedHeader {
            b64: header_b64.into(),
            alg,
            kid,
        };
        for slot in &self.header_cache {
            match slot.get() {
                Some(h) if *h.b64 == *entry.b64 => return,
                Some(_) => continue,
                // A lost race just leaves the other thread's entry; both are correct.
                None => {
                    let _ = slot.set(entry);
                    return;
                }
            }
        }
    }

    /// Decodes and checks a header: a known, allowed `alg`; no `crit`/`b64`; a string `kid`.
    fn read_header(&self, header_b64: &[u8]) -> Result<(Alg, Option<String>), JwtError> {
        if header_b64.is_empty() {
            return Err(JwtError::malformed("the header part is empty"));
        }
        let header = b64::with_decoded(header_b64, super::header::read_header)
            .map_err(|_| JwtError::malformed("the header is not strict base64url"))??;
        // RFC 7515 §4.1.1: `alg` is required and a string. Missing, null or another type is one
        // fault, a malformed header (documented: MalformedToken, never AlgorithmNotAllowed).
        let alg_name = match (&header.alg, header.alg_is_string) {
            (Some(a), true) => a.as_str(),
            _ => {
                return Err(JwtError::malformed(
                    "the header's \"alg\" is missing or not a string",
                ))
            }
        };
        let alg = match Alg::from_name(alg_name) {
            Some(alg) if self.policy.algorithms.contains(alg) => alg,
            _ if alg_name.eq_ignore_ascii_case("none") => {
                return Err(JwtError::AlgorithmNotAllowed(
                    "\"none\" is never accepted".into(),
                ))
            }
            _ => {
                return Err(JwtError::AlgorithmNotAllowed(format!(
                    "{:?} is not in the allowed algorithms",
                    bounded(alg_name, 12)
                )))
            }
        };
        if header.has_crit {
            return Err(JwtError::malformed(
                "the header has \"crit\" extensions, which are not supported",
            ));
        }
        if header.has_b64 {
            return Err(JwtError::malformed(
                "unencoded payloads (\"b64\") are not supported",
            ));
        }
        if header.kid_invalid {
            return Err(JwtError::malformed("the header's \"kid\" is not a string"));
        }
        if header.typ_invalid {
            return Err(JwtError::malformed(
                "the header's \"typ\" or \"cty\" is not a string",
            ));
        }
        Ok((alg, header.kid))
    }

    /// Splits the token, reads the header, selects the key and checks the signature.
    pub fn check_signature<'t>(&self, token: &'t [u8]) -> Result<Verified<'t>, JwtError> {
        self.check_signature_using(token, None)
    }

    /// [`Verifier::check_signature`] with `keys` in place of the verifier's own public keys: the
    /// current version of a key set that changes (a JWK Set URL), without building a verifier.
    pub fn check_signature_using<'t>(
        &self,
        token: &'t [u8],
        keys: Option<&crate::jose::KeySet>,
    ) -> Result<Verified<'t>, JwtError> {
        if token.len() > self.policy.max_length {
            return Err(JwtError::Malformed(format!(
                "token is {} bytes, over the limit of {}",
                token.len(),
                self.policy.max_length
            )));
        }
        let first = memchr(b'.', token)
            .ok_or_else(|| JwtError::malformed("not a compact JWS (three base64url parts)"))?;
        let rest = &token[first + 1..];
        let second = memchr(b'.', rest)
            .ok_or_else(|| JwtError::malformed("not a compact JWS (three base64url parts)"))?;
        let header_b64 = &token[..first];
        let payload_b64 = &rest[..second];
        let sig_b64 = &rest[second + 1..];
        if memchr(b'.', sig_b64).is_some() {
            return Err(JwtError::malformed(
                "not a compact JWS (three base64url parts)",
            ));
        }
        let cached = self.cached_header(header_b64);
        let (alg, kid) = match cached {
            Some((alg, kid)) => (alg, kid.map(Cow::Borrowed)),
            None => {
                let (alg, kid) = self.read_header(header_b64)?;
                (alg, kid.map(Cow::Owned))
            }
        };
        let signing_input = &token[..first + 1 + second];
        let mut key_fingerprint = None;
        if let Some(asym) = alg.asymmetric() {
            let set = match (keys, &self.keys) {
                (Some(set), _) => set,
                (None, KeySet::Public(set)) => &**set,
                _ => {
                    return Err(JwtError::AlgorithmNotAllowed(format!(
                        "{} needs a public key; this verifier has a shared secret",
                        alg.name()
                    )))
                }
            };
            if sig_b64.len() > MAX_SIGNATURE_B64 {
                return Err(JwtError::InvalidSignature("signature has the wrong length"));
            }
            let mut sig = [0u8; 1024];
            let n = b64::decode_slice(sig_b64, &mut sig)
                .map_err(|_| JwtError::malformed("the signature is not strict base64url"))?;
            let key = set.verify(asym, kid.as_deref(), signing_input, &sig[..n])?;
            key_fingerprint = Some(key.fingerprint());
        } else {
            let key = match &self.keys {
                KeySet::Single(k) => k,
                KeySet::ByKid(map) => {
                    let kid = kid.as_deref().ok_or(JwtError::InvalidSignature(
                        "the token has no \"kid\" and keys are selected by kid",
                    ))?;
                    map.get(kid)
                        .ok_or(JwtError::InvalidSignature("no key for the token's \"kid\""))?
                }
                KeySet::Public(_) => {
                    return Err(JwtError::AlgorithmNotAllowed(format!(
                        "{} needs a shared secret; this verifier has public keys",
                        alg.name()
                    )))
                }
            };
            let mut sig = [0u8; 72];
            // base64url of 64 bytes is 86 characters; anything longer cannot be a valid HS* MAC.
            if sig_b64.len() > 86 {
                return Err(JwtError::InvalidSignature("signature has the wrong length"));
            }
            let n = b64::decode_slice(sig_b64, &mut sig)
                .map_err(|_| JwtError::malformed("the signature is not strict base64url"))?;
            key.verify(alg, signing_input, &sig[..n])?;
        }
        if cached.is_none() {
            self.remember_header(header_b64, alg, kid.map(Cow::into_owned));
        }
        Ok(Verified {
            payload_b64,
            alg,
            key_fingerprint,
        })
    }

    /// What the claims walker checks while reading (expected issuers and audiences, required
    /// claims), borrowed from the policy.
    pub fn expect(&self) -> claims::Expect<'_> {
        claims::Expect {
            issuer: self.policy.issuer.as_deref(),
            audience: self.policy.audience.as_deref(),
            require: &self.policy.require,
        }
    }

    /// Checks the registered claims, as [`claims::walk_claims`] read them, against the policy at
    /// time `now` (seconds since the epoch). Every path (Python dict, Rust text, early check)
    /// ends here, so they all give the same verdict for the same claims.
    pub fn check_claims(&self, reg: &Registered, now: Seconds) -> Result<(), JwtError> {
        let p = &self.policy;
        for (i, name) in p.require.iter().enumerate() {
            if reg.present & (1 << i) == 0 {
                return Err(JwtError::MissingClaim(bounded(name, 32)));
            }
        }
        let c = p.checks;
        match reg.exp {
            NumClaim::NotANumber => return Err(JwtError::malformed("\"exp\" is not a number")),
            NumClaim::Int(exp) if c.exp && Seconds::Int(exp).le(now.plus(-p.leeway)) => {
                return Err(JwtError::Expired)
            }
            NumClaim::Num(exp) if c.exp && Seconds::Float(exp).le(now.plus(-p.leeway)) => {
                return Err(JwtError::Expired)
            }
            _ => {}
        }
        match reg.nbf {
            NumClaim::NotANumber => return Err(JwtError::malformed("\"nbf\" is not a number")),
            NumClaim::Int(nbf) if c.nbf && Seconds::Int(nbf).gt(now.plus(p.leeway)) => {
                return Err(JwtError::NotYetValid)
            }
            NumClaim::Num(nbf) if c.nbf && Seconds::Float(nbf).gt(now.plus(p.leeway)) => {
                return Err(JwtError::NotYetValid)
            }
            _ => {}
        }
        match reg.iat {
            NumClaim::NotANumber => return Err(JwtError::malformed("\"iat\" is not a number")),
            // Issued in the future (beyond the leeway): not valid yet, as PyJWT has it.
            NumClaim::Int(iat) if c.iat && Seconds::Int(iat).gt(now.plus(p.leeway)) => {
                return Err(JwtError::IssuedInFuture)
            }
            NumClaim::Num(iat) if c.iat && Seconds::Float(iat).gt(now.plus(p.leeway)) => {
                return Err(JwtError::IssuedInFuture)
            }
            _ => {}
        }
        if p.issuer.is_some() && c.iss {
            match reg.iss {
                IssClaim::Absent => return Err(JwtError::MissingClaim("iss".into())),
                IssClaim::Matched(true) => {}
                _ => return Err(JwtError::InvalidIssuer),
            }
        } else if reg.iss == IssClaim::Invalid {
            return Err(JwtError::InvalidIssuer);
        }
        if !c.aud {
            return Ok(());
        }
        match (&p.audience, reg.aud) {
            (_, AudClaim::Invalid) => {
                return Err(JwtError::InvalidAudience(
                    "\"aud\" must be a string or an array of strings",
                ))
            }
            (None, AudClaim::Absent) => {}
            (None, AudClaim::Matched(_)) => {
                // RFC 7519 §4.1.3: a recipient that does not identify itself with the audience must reject.
                return Err(JwtError::InvalidAudience(
                    "the token has an audience but none is expected",
                ));
            }
            (Some(_), AudClaim::Absent) => return Err(JwtError::MissingClaim("aud".into())),
            (Some(_), AudClaim::Matched(true)) => {}
            (Some(_), AudClaim::Matched(false)) => {
                return Err(JwtError::InvalidAudience(
                    "the token is not for the expected audience",
                ))
            }
        }
        Ok(())
    }

    /// The verdict on claims whose `exp` has passed, reached without building anything:
    /// `Some(error)` is exactly what the full parse and [`Verifier::check_claims`] would report
    /// (the same walker reads the JSON, with a sink that builds nothing, and the same check
    /// follows), so malformed claims are reported as malformed here too, never as expired.
    /// `None` means "parse normally": the common case of a live token costs one SIMD byte search
    /// for `"exp":` and a number read, and a hint fooled by a nested or quoted `exp` only costs
    /// the cheap walk.
    pub fn early_verdict(&self, payload: &[u8], now: Seconds) -> Option<JwtError> {
        // Built once: constructing a SIMD searcher costs more than running it on a token.
        static EXP_KEY: LazyLock<memchr::memmem::Finder<'static>> =
            LazyLock::new(|| memchr::memmem::Finder::new(b"\"exp\":"));
        if !self.policy.checks.exp {
            return None;
        }
        let hint = claims::top_level_int_hint(payload, &EXP_KEY)?;
        if !Seconds::Int(hint).le(now.plus(-self.policy.leeway)) {
            return None;
        }
        match claims::check_only(payload, &self.expect()) {
            Err(malformed) => Some(malformed),
            Ok(reg) => self.check_claims(&reg, now).err(),
        }
    }

    /// The payload's verdict by the full walk (no early exit), keeping the text of `wanted`.
    pub fn check_payload(
        &self,
        payload: &[u8],
        now: Seconds,
        wanted: &[&str],
    ) -> Result<ClaimsView, JwtError> {
        let view = claims::read_claims(payload, &self.expect(), wanted)?;
        self.check_claims(&view.registered, now)?;
        Ok(view)
    }

    /// Full verification without Python: signature, JSON, registered claims, in the order the
    /// Python binding follows (early verdict for an expired `exp`, then the full walk). `wanted`
    /// names the claims whose values the caller needs (e.g. to forward as headers).
    pub fn verify(
        &self,
        token: &[u8],
        now: impl Into<Seconds>,
        wanted: &[&str],
    ) -> Result<ClaimsView, JwtError> {
        let now = now.into();
        let verified = self.check_signature(token)?;
        let payload = b64::decode(verified.payload_b64)
            .map_err(|_| JwtError::malformed("the payload is not strict base64url"))?;
        if let Some(verdict) = self.early_verdict(&payload, now) {
            return Err(verdict);
        }
        self.check_payload(&payload, now, wanted)
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}

/// Signs `header_json` and `claims_json` with `key` under `alg`; the JSON is taken as given.
pub fn sign(key: &HmacKey, alg: Alg, header_json: &[u8], claims_json: &[u8]) -> Option<String> {
    let mut token = b64::encode(header_json);
    token.push('.');
    token.push_str(&b64::encode(claims_json));
    let mac = key.sign(alg, token.as_bytes())?;
    token.push('.');
    token.push_str(&b64::encode(&mac));
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier(algs: &[&str]) -> Verifier {
        let set = AlgSet::from_names(algs).unwrap();
        Verifier::new(
            KeySet::Single(HmacKey::new(KEY, set, true).unwrap()),
            Policy::new(set),
        )
        .unwrap()
    }

    fn token(alg: Alg, header: &str, claims: &str) -> String {
        let key = HmacKey::new(
            KEY,
            AlgSet::from_names(&["HS256", "HS384", "HS512"]).unwrap(),
            true,
        )
        .unwrap();
        sign(&key, alg, header.as_bytes(), claims.as_bytes()).unwrap()
    }

    #[test]
    fn rfc7515_appendix_a1() {
        // RFC 7515 A.1: HS256 with the JWK "k" below; the example's exp (1300819380) is in the past.
        let k = b64::decode(b"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow").unwrap();
        let set = AlgSet::from_names(&["HS256"]).unwrap();
        let v = Verifier::new(
            KeySet::Single(HmacKey::new(&k, set, false).unwrap()),
            Policy::new(set),
        )
        .unwrap();
        let tok = b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let view = v
            .verify(tok, 1300819379.0, &["http://example.com/is_root"])
            .unwrap();
        assert_eq!(view.wanted[0].as_deref(), Some("true"));
        assert_eq!(view.registered.iss, IssClaim::Matched(false));
        assert_eq!(
            v.verify(tok, 1300819381.0, &[]).unwrap_err(),
            JwtError::Expired
        );
    }

    #[test]
    fn signs_and_verifies_each_alg() {
        for alg in Alg::ALL.into_iter().filter(|a| a.is_hmac()) {
            let v = verifier(&[alg.name()]);
            let t = token(
                alg,
                &format!(r#"{{"alg":"{}"}}"#, alg.name()),
                r#"{"sub":"a"}"#,
            );
            assert_eq!(
                v.verify(t.as_bytes(), 0.0, &["sub"]).unwrap().wanted[0].as_deref(),
                Some("a")
            );
        }
    }

    #[test]
    fn refuses_alg_outside_policy_and_none() {
        let v = verifier(&["HS256"]);
        let t = token(Alg::HS512, r#"{"alg":"HS512"}"#, "{}");
        assert!(matches!(
            v.verify(t.as_bytes(), 0.0, &[]),
            Err(JwtError::AlgorithmNotAllowed(_))
        ));
        let none = format!(
            "{}.{}.",
            b64::encode(br#"{"alg":"none"}"#),
            b64::encode(b"{}")
        );
        assert!(matches!(
            v.verify(none.as_bytes(), 0.0, &[]),
            Err(JwtError::AlgorithmNotAllowed(_))
        ));
        // A header claiming HS256 but carrying an HS512-length MAC.
        let t = token(Alg::HS512, r#"{"alg":"HS256"}"#, "{}");
        assert!(matches!(
            v.verify(t.as_bytes(), 0.0, &[]),
            Err(JwtError::InvalidSignature(_))
        ));
    }

    #[test]
    fn every_single_byte_change_is_rejected() {
        let v = verifier(&["HS256"]);
        let t = token(
            Alg::HS256,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"1234567890","n":1}"#,
        );
        assert!(v.verify(t.as_bytes(), 0.0, &[]).is_ok());
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            for delta in [1u8, 2, 4, 32, 128] {
                let mut m = bytes.to_vec();
                m[i] ^= delta;
                assert!(
                    v.verify(&m, 0.0, &[]).is_err(),
                    "change at {i} by {delta} accepted"
                );
            }
        }
    }

    #[test]
    fn weak_and_public_keys_are_refused() {
        let set = AlgSet::from_names(&["HS256"]).unwrap();
        assert!(HmacKey::new(b"short", set, false).is_err());
        assert!(HmacKey::new(b"short", set, true).is_ok());
        assert!(HmacKey::new(
            b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
            set,
            true
        )
        .is_err());
        let s512 = AlgSet::from_names(&["HS512"]).unwrap();
        assert!(
            HmacKey::new(KEY, s512, false).is_err(),
            "32 bytes is too short for HS512"
        );
        assert!(AlgSet::from_names(&["none"]).is_err());
        assert!(AlgSet::from_names(&["RS256", "EdDSA"]).is_ok());
        assert!(AlgSet::from_names(&["Ed448"]).is_err());
        assert!(AlgSet::from_names(&["rs256"]).is_err());
        // A shared secret never verifies an asymmetric algorithm, whatever the policy says.
        let mixed = AlgSet::from_names(&["HS256", "RS256"]).unwrap();
        assert!(Verifier::new(
            KeySet::Single(HmacKey::new(KEY, mixed, false).unwrap()),
            Policy::new(mixed)
        )
        .is_err());
        assert!(AlgSet::from_names::<&str>(&[]).is_err());
    }

    #[test]
    fn claims_rules() {
        let set = AlgSet::from_names(&["HS256"]).unwrap();
        let mut policy = Policy::new(set);
        policy.audience = Some(vec!["api".into()]);
        policy.issuer = Some(vec!["me".into(), "you".into()]);
        policy.leeway = 10.0;
        policy.require = vec!["sub".into()];
        let v = Verifier::new(
            KeySet::Single(HmacKey::new(KEY, set, false).unwrap()),
            policy,
        )
        .unwrap();
        let h = r#"{"alg":"HS256"}"#;
        let ok = token(
            Alg::HS256,
            h,
            r#"{"sub":"x","iss":"you","aud":["web","api"],"exp":100,"nbf":50}"#,
        );
        assert!(v.verify(ok.as_bytes(), 105.0, &[]).is_ok(), "within leeway");
        assert_eq!(
            v.verify(ok.as_bytes(), 110.0, &[]).unwrap_err(),
            JwtError::Expired
        );
        assert!(
            v.verify(ok.as_bytes(), 40.0, &[]).is_ok(),
            "nbf within leeway"
        );
        assert_eq!(
            v.verify(ok.as_bytes(), 39.0, &[]).unwrap_err(),
            JwtError::NotYetValid
        );
        let cases = [
            (r#"{"iss":"you","aud":"api"}"#, ErrorKind::MissingClaim),
            (r#"{"sub":"x","aud":"api"}"#, ErrorKind::MissingClaim),
            (
                r#"{"sub":"x","iss":"them","aud":"api"}"#,
                ErrorKind::InvalidIssuer,
            ),
            (
                r#"{"sub":"x","iss":["you"],"aud":"api"}"#,
                ErrorKind::InvalidIssuer,
            ),
            (r#"{"sub":"x","iss":"you"}"#, ErrorKind::MissingClaim),
            (
                r#"{"sub":"x","iss":"you","aud":"web"}"#,
                ErrorKind::InvalidAudience,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":[]}"#,
                ErrorKind::InvalidAudience,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":["api",1]}"#,
                ErrorKind::InvalidAudience,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":"api","exp":"100"}"#,
                ErrorKind::MalformedToken,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":"api","exp":true}"#,
                ErrorKind::MalformedToken,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":"api","iat":null}"#,
                ErrorKind::MalformedToken,
            ),
            // A float beyond f64 is malformed, never an infinity that expires never (or always).
            (
                r#"{"sub":"x","iss":"you","aud":"api","exp":-1e400}"#,
                ErrorKind::MalformedToken,
            ),
            (
                r#"{"sub":"x","iss":"you","aud":"api","exp":1e400}"#,
                ErrorKind::MalformedToken,
            ),
        ];
        for (claims, kind) in cases {
            let t = token(Alg::HS256, h, claims);
            assert_eq!(
                v.verify(t.as_bytes(), 60.0, &[]).unwrap_err().kind(),
                kind,
                "{claims}"
            );
        }
        // No audience expected: a token carrying one is refused.
        let plain = verifier(&["HS256"]);
        let t = token(Alg::HS256, h, r#"{"aud":"api"}"#);
        assert_eq!(
            plain.verify(t.as_bytes(), 0.0, &[]).unwrap_err().kind(),
            ErrorKind::InvalidAudience
        );
    }

    /// Claims nested `levels` deep (the claims object counts as one), with `exp`.
    fn deep_claims(levels: usize, exp: i64) -> String {
        let inner = levels - 1;
        format!(
            r#"{{"sub":"a","iss":"me","exp":{exp},"deep":{}{}}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
    }

    #[test]
    fn early_verdict_only_answers_what_the_full_parse_would() {
        let set = AlgSet::from_names(&["HS256"]).unwrap();
        let mut policy = Policy::new(set);
        policy.require = vec!["sub".into()];
        policy.issuer = Some(vec!["me".into()]);
        let v = Verifier::new(
            KeySet::Single(HmacKey::new(KEY, set, true).unwrap()),
            policy,
        )
        .unwrap();
        let now = Seconds::Int(1_000);
        let early = |claims: &str| v.early_verdict(claims.as_bytes(), now);
        let full = |claims: &str| v.check_payload(claims.as_bytes(), now, &[]).err();
        let cases = [
            (
                r#"{"sub":"a","iss":"me","exp":999}"#,
                Some(ErrorKind::ExpiredToken),
            ),
            (
                r#"{"sub":"a","iss":"me","exp":1000}"#,
                Some(ErrorKind::ExpiredToken),
            ),
            // Live, absent or non-number exp: the full parse decides.
            (r#"{"sub":"a","iss":"me","exp":1001}"#, None),
            (r#"{"sub":"a","iss":"me"}"#, None),
            (
                r#"{"sub":"a","iss":"me","exp":"1"}"#,
                Some(ErrorKind::MalformedToken),
            ),
            // A nested or quoted "exp": is a false hint; the real exp decides.
            (r#"{"sub":"a","iss":"me","x":{"exp":1},"exp":5000}"#, None),
            (r#"{"sub":"a","iss":"me","x":"\"exp\":1","exp":5000}"#, None),
            (r#"{"sub":"a","iss":"me","x":{"exp":1}}"#, None),
            // Malformed wins over expired, wherever the fault is.
            (r#"{"exp":1,"exp":5000}"#, Some(ErrorKind::MalformedToken)),
            (
                r#"{"exp":1,"a":{"b":1,"b":2}}"#,
                Some(ErrorKind::MalformedToken),
            ),
            (r#"{"exp":1,"a":}"#, Some(ErrorKind::MalformedToken)),
            (r#"{"exp":1} x"#, Some(ErrorKind::MalformedToken)),
            (
                r#"{"exp":1,"iat":"x","sub":"a","iss":"me"}"#,
                Some(ErrorKind::ExpiredToken),
            ),
            // The policy's own order decides between the other rejections.
            (r#"{"exp":1}"#, Some(ErrorKind::MissingClaim)),
            (
                r#"{"sub":"a","iss":"me","nbf":5000,"exp":1}"#,
                Some(ErrorKind::ExpiredToken),
            ),
            (
                r#"{"sub":"a","iss":"you","exp":1}"#,
                Some(ErrorKind::ExpiredToken),
            ),
        ];
        for (claims, want) in cases {
            let f = full(claims);
            assert_eq!(f.as_ref().map(JwtError::kind), want, "full: {claims}");
            if let Some(e) = early(claims) {
                assert_eq!(Some(e), f, "early disagrees with full: {claims}");
            }
        }
        // Fault 6: claims nested 64 deep are malformed whether the token is live or expired.
        for exp in [999, 5000] {
            let deep = deep_claims(claims::MAX_DEPTH + 1, exp);
            assert_eq!(
                full(&deep).map(|e| e.kind()),
                Some(ErrorKind::MalformedToken)
            );
            assert_eq!(
                early(&deep).map(|e| e.kind()),
                (exp == 999).then_some(ErrorKind::MalformedToken)
            );
            let ok = deep_claims(claims::MAX_DEPTH, exp);
            assert_eq!(
                full(&ok).map(|e| e.kind()),
                (exp == 999).then_some(ErrorKind::ExpiredToken)
            );
        }
    }

    #[test]
    fn structure_rules() {
        let v = verifier(&["HS256"]);
        let good = token(Alg::HS256, r#"{"alg":"HS256"}"#, "{}");
        let parts: Vec<&str> = good.split('.').collect();
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{good}."),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}.{}.{}.x", parts[0], parts[1], parts[2]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            format!("{}.{}.", parts[0], parts[1]),
            format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]),
            format!("{}.{}.{}AAAA", parts[0], parts[1], parts[2]),
        ] {
            assert!(v.verify(bad.as_bytes(), 0.0, &[]).is_err(), "{bad:?}");
        }
        let long = "a".repeat(DEFAULT_MAX_LENGTH + 1);
        assert!(matches!(
            v.verify(long.as_bytes(), 0.0, &[]),
            Err(JwtError::Malformed(_))
        ));
        let crit = token(Alg::HS256, r#"{"alg":"HS256","crit":["x"],"x":1}"#, "{}");
        assert!(v.verify(crit.as_bytes(), 0.0, &[]).is_err());
        let dup = token(Alg::HS256, r#"{"alg":"HS256"}"#, r#"{"sub":"a","sub":"b"}"#);
        assert!(v.verify(dup.as_bytes(), 0.0, &[]).is_err());
    }

    #[test]
    fn kid_selects_the_key() {
        let set = AlgSet::from_names(&["HS256"]).unwrap();
        let other = b"another-secret-another-secret-!!";
        let mut map = HashMap::new();
        map.insert("k1".to_string(), HmacKey::new(KEY, set, false).unwrap());
        map.insert("k2".to_string(), HmacKey::new(other, set, false).unwrap());
        let v = Verifier::new(KeySet::ByKid(map), Policy::new(set)).unwrap();
        let k2 = HmacKey::new(other, set, false).unwrap();
        let good = sign(&k2, Alg::HS256, br#"{"alg":"HS256","kid":"k2"}"#, b"{}").unwrap();
        assert!(v.verify(good.as_bytes(), 0.0, &[]).is_ok());
        let wrong = sign(&k2, Alg::HS256, br#"{"alg":"HS256","kid":"k1"}"#, b"{}").unwrap();
        assert!(v.verify(wrong.as_bytes(), 0.0, &[]).is_err());
        let unknown = sign(
            &k2,
            Alg::HS256,
            br#"{"alg":"HS256","kid":"../../etc/passwd"}"#,
            b"{}",
        )
        .unwrap();
        assert!(v.verify(unknown.as_bytes(), 0.0, &[]).is_err());
        let none = sign(&k2, Alg::HS256, br#"{"alg":"HS256"}"#, b"{}").unwrap();
        assert!(v.verify(none.as_bytes(), 0.0, &[]).is_err());
    }
}
