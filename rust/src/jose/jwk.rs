//! Public keys from a JWK (RFC 7517, RFC 7518 §6, RFC 8037 §2) and a JWK Set.
//!
//! Rules (issue 10), each refused with its own [`ErrorKind`]:
//! - private-key members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, and `k` of a symmetric key)
//!   are refused — in a JWK Set they refuse the whole set, never silently dropped or used;
//! - `use`, when present, must be `sig`; `key_ops`, when present, must include `verify`;
//! - `alg`, when present, must be an algorithm this library verifies and fit the key's kind;
//!   the key is then restricted to it;
//! - RSA keys under 2048 bits are refused; EC coordinates must be full-size and on the curve;
//! - an `x5c` leaf certificate's key must equal the JWK's own `n`/`e` or `x`/`y` when both are
//!   present (when only `x5c` is, the leaf's key is used);
//! - duplicate member names, at any depth, make the JSON malformed.
//!
//! In a JWK Set, an entry of a type, curve or `alg` this library does not verify with (`oct`,
//! X25519, `RSA-OAEP`, ...), one not meant for signatures (`use: enc`), or one that is broken or
//! weak is skipped and reported in [`KeySet::skipped`]; a set left with no key is refused.

use std::borrow::Cow;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jiter::JsonValue;

use super::alg::{Alg, KeyKind};
use super::error::{bounded, Error, ErrorKind};
use super::keys::{Key, KeySet, PublicKey, SkippedKey};
use super::pem::public_key_from_certificate_der;

/// At most this many entries in a JWK Set (real ones have a handful).
pub const MAX_JWKS_KEYS: usize = 1000;

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const MAX_DEPTH: usize = 32;

type Object<'a> = [(Cow<'a, str>, JsonValue<'a>)];

fn parse_json(json: &[u8]) -> Result<JsonValue<'_>, Error> {
    let value = JsonValue::parse(json, false).map_err(|_| Error::malformed("not valid JSON"))?;
    check_unique(&value, 0)?;
    Ok(value)
}

/// Refuses duplicate member names at every depth (RFC 7517 §4 / RFC 7159 §4: a JWK with two `n`
/// members means different keys to different parsers).
fn check_unique(value: &JsonValue<'_>, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::malformed("JSON nested too deeply"));
    }
    match value {
        JsonValue::Object(members) => {
            let mut names: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::malformed(format!(
                    "duplicate JSON member {}",
                    bounded(w[0])
                )));
            }
            members
                .iter()
                .try_for_each(|(_, v)| check_unique(v, depth + 1))
        }
        JsonValue::Array(items) => items.iter().try_for_each(|v| check_unique(v, depth + 1)),
        _ => Ok(()),
    }
}

fn member<'o, 'a>(obj: &'o Object<'a>, name: &str) -> Option<&'o JsonValue<'a>> {
    obj.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn string_member<'o>(obj: &'o Object<'_>, name: &str) -> Result<Option<&'o str>, Error> {
    match member(obj, name) {
        None => Ok(None),
        Some(JsonValue::Str(s)) => Ok(Some(s.as_ref())),
        Some(_) => Err(Error::malformed(format!(
            "JWK member {name:?} must be a string"
        ))),
    }
}

/// A base64url member (RFC 7515 §2: no padding); `None` when absent.
fn b64url_member(obj: &Object<'_>, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let Some(text) = string_member(obj, name)? else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(text)
        .map(Some)
        .map_err(|_| Error::malformed(format!("JWK member {name:?} is not base64url")))
}

fn required_b64url(obj: &Object<'_>, name: &str, kty: &str) -> Result<Vec<u8>, Error> {
    b64url_member(obj, name)?.ok_or_else(|| Error::malformed(format!("{kty} JWK without {name:?}")))
}

/// The key of the `x5c` leaf certificate, if the JWK has `x5c` (RFC 7517 §4.7: an array of
/// standard-base64 DER certificates, the first one holding the key).
fn x5c_leaf_key(obj: &Object<'_>) -> Result<Option<PublicKey>, Error> {
    let Some(x5c) = member(obj, "x5c") else {
        return Ok(None);
    };
    let JsonValue::Array(certs) = x5c else {
        return Err(Error::malformed("JWK member \"x5c\" must be an array"));
    };
    let mut leaf = None;
    for cert in certs.iter() {
        let JsonValue::Str(text) = cert else {
            return Err(Error::malformed("x5c entries must be strings"));
        };
        let der = STANDARD
            .decode(text.as_bytes())
            .map_err(|_| Error::malformed("x5c entries must be standard base64 (RFC 7517 §4.7)"))?;
        if leaf.is_none() {
            leaf = Some(public_key_from_certificate_der(&der).map_err(|e| e.context("x5c leaf"))?);
        }
    }
    leaf.map(Some)
        .ok_or_else(|| Error::malformed("JWK member \"x5c\" is an empty array"))
}

/// The key from a JWK's own members; `None` when they are all absent (the key may then come
/// from `x5c`).
fn own_key(obj: &Object<'_>, kty: &str) -> Result<Option<PublicKey>, Error> {
    match kty {
        "RSA" => {
            if member(obj, "n").is_none() && member(obj, "e").is_none() {
                return Ok(None);
            }
            let n = required_b64url(obj, "n", kty)?;
            let e = required_b64url(obj, "e", kty)?;
            PublicKey::from_rsa_components(&n, &e).map(Some)
        }
        "EC" => {
            let crv = string_member(obj, "crv")?
                .ok_or_else(|| Error::malformed("EC JWK without \"crv\""))?;
            let kind = match crv {
                "P-256" => KeyKind::EcP256,
                "P-384" => KeyKind::EcP384,
                "P-521" => KeyKind::EcP521,
                other => {
                    return Err(Error::unsupported(format!(
                        "EC curve {} is not supported (P-256, P-384, P-521 are)",
                        bounded(other)
                    )))
                }
            };
            if member(obj, "x").is_none() && member(obj, "y").is_none() {
                return Ok(None);
            }
            let x = required_b64url(obj, "x", kty)?;
            let y = required_b64url(obj, "y", kty)?;
            PublicKey::from_ec_coordinates(kind, &x, &y).map(Some)
        }
        "OKP" => {
            let crv = string_member(obj, "crv")?
                .ok_or_else(|| Error::malformed("OKP JWK without \"crv\""))?;
            if crv != "Ed25519" {
                return Err(Error::unsupported(format!(
                    "OKP curve {} cannot verify JWS here (EdDSA means Ed25519)",
                    bounded(crv)
                )));
            }
            match b64url_member(obj, "x")? {
                None => Ok(None),
                Some(x) => PublicKey::from_ed25519(&x).map(Some),
            }
        }
        "oct" => Err(Error::unsupported(
            "a symmetric (oct) JWK is not an asymmetric public key",
        )),
        other => Err(Error::unsupported(format!(
            "JWK kty {} is not supported (RSA, EC, OKP are)",
            bounded(other)
        ))),
    }
}

/// The curve a JWK claims, to check an `x5c`-only key against it.
fn claimed_kind(obj: &Object<'_>, kty: &str) -> Result<Option<KeyKind>, Error> {
    Ok(match (kty, string_member(obj, "crv")?) {
        ("RSA", _) => Some(KeyKind::Rsa),
        ("EC", Some("P-256")) => Some(KeyKind::EcP256),
        ("EC", Some("P-384")) => Some(KeyKind::EcP384),
        ("EC", Some("P-521")) => Some(KeyKind::EcP521),
        ("OKP", Some("Ed25519")) => Some(KeyKind::Ed25519),
        _ => None,
    })
}

fn check_usage(obj: &Object<'_>) -> Result<(), Error> {
    if let Some(usage) = string_member(obj, "use")? {
        if usage != "sig" {
            return Err(Error::new(
                ErrorKind::KeyUsage,
                format!("JWK use is {}, not \"sig\"", bounded(usage)),
            ));
        }
    }
    if let Some(ops) = member(obj, "key_ops") {
        let JsonValue::Array(ops) = ops else {
            return Err(Error::malformed("JWK member \"key_ops\" must be an array"));
        };
        let mut names = Vec::with_capacity(ops.len());
        for op in ops.iter() {
            let JsonValue::Str(op) = op else {
                return Err(Error::malformed("key_ops entries must be strings"));
            };
            if names.contains(&op.as_ref()) {
                return Err(Error::malformed("key_ops lists an operation twice"));
            }
            names.push(op.as_ref());
        }
        if !names.contains(&"verify") {
            return Err(Error::new(
                ErrorKind::KeyUsage,
                "JWK key_ops does not include \"verify\"",
            ));
        }
    }
    Ok(())
}

fn refuse_private_members(obj: &Object<'_>) -> Result<(), Error> {
    if let Some(name) = PRIVATE_MEMBERS.iter().find(|n| member(obj, n).is_some()) {
        return Err(Error::new(
            ErrorKind::PrivateKey,
            format!("the JWK holds the private-key member {name:?}; only public keys are accepted"),
        ));
    }
    Ok(())
}

/// One JWK object to a [`Key`]; private members are checked by the caller first.
fn key_from_object(obj: &Object<'_>) -> Result<Key, Error> {
    let kty = string_member(obj, "kty")?.ok_or_else(|| Error::malformed("JWK without \"kty\""))?;
    let kid = string_member(obj, "kid")?.map(str::to_owned);
    check_usage(obj)?;
    let alg = match string_member(obj, "alg")? {
        None => None,
        Some(name) => Some(Alg::from_name(name).map_err(|_| {
            Error::unsupported(format!(
                "JWK alg {} is not a signature algorithm verified here",
                bounded(name)
            ))
        })?),
    };
    let own = own_key(obj, kty)?;
    let leaf = x5c_leaf_key(obj)?;
    let public = match (own, leaf) {
        (Some(own), Some(leaf)) => {
            if !own.same_key(&leaf) {
                return Err(Error::invalid_key(
                    "the x5c leaf certificate's key is not the JWK's own key",
                ));
            }
            own
        }
        (Some(own), None) => own,
        (None, Some(leaf)) => {
            if claimed_kind(obj, kty)? != Some(leaf.kind()) {
                return Err(Error::invalid_key(
                    "the x5c leaf certificate's key is not of the JWK's kty/crv",
                ));
            }
            leaf
        }
        (None, None) => {
            return Err(Error::malformed(format!(
                "{kty} JWK without its key members (or x5c)"
            )))
        }
    };
    Key::new(public, kid, alg)
}

fn as_object<'o, 'a>(value: &'o JsonValue<'a>, what: &str) -> Result<&'o Object<'a>, Error> {
    match value {
        JsonValue::Object(obj) => Ok(obj.as_slice()),
        _ => Err(Error::malformed(format!("{what} must be a JSON object"))),
    }
}

impl Key {
    /// A key from one JWK (JSON text). Every rule of this module applies; any breach is an error.
    pub fn from_jwk(json: &[u8]) -> Result<Key, Error> {
        let value = parse_json(json)?;
        let obj = as_object(&value, "a JWK")?;
        refuse_private_members(obj)?;
        key_from_object(obj)
    }
}

impl KeySet {
    /// A key set of the one key in a JWK (see [`Key::from_jwk`]).
    pub fn from_jwk(json: &[u8]) -> Result<KeySet, Error> {
        Ok(KeySet::single(Key::from_jwk(json)?))
    }

    /// A JWK Set when the JSON object has a `keys` member, else one JWK: decided on the parsed
    /// object, never by searching the text.
    pub fn from_jwk_or_jwks(json: &[u8]) -> Result<KeySet, Error> {
        let value = parse_json(json)?;
        let obj = as_object(&value, "a JWK or JWK Set")?;
        if member(obj, "keys").is_some() && member(obj, "kty").is_none() {
            KeySet::from_jwks(json)
        } else {
            KeySet::from_jwk(json)
        }
    }

    /// A key set from a JWK Set (`{"keys": [...]}`, RFC 7517 §5). Entries that are not usable
    /// signature-verification keys are skipped and listed in [`KeySet::skipped`]; private-key
    /// members anywhere refuse the whole set; a set with no usable key is refused.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, Error> {
        let value = parse_json(json)?;
        let obj = as_object(&value, "a JWK Set")?;
        let Some(JsonValue::Array(entries)) = member(obj, "keys") else {
            return Err(Error::malformed(
                "a JWK Set needs a \"keys\" member that is an array",
            ));
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(Error::malformed(format!(
                "the JWK Set has {} keys; at most {MAX_JWKS_KEYS} are accepted",
                entries.len()
            )));
        }
        let mut objects = Vec::with_capacity(entries.len());
        for entry in entries.iter() {
            let entry = as_object(entry, "each entry of \"keys\"")?;
            refuse_private_members(entry)
                .map_err(|e| e.context(&format!("key {} of the set", objects.len())))?;
            objects.push(entry);
        }
        let mut keys = Vec::with_capacity(objects.len());
        let mut skipped = Vec::new();
        for (index, entry) in objects.into_iter().enumerate() {
            match key_from_object(entry) {
                Ok(key) => keys.push(key),
                Err(error) => skipped.push(SkippedKey {
                    index,
                    kid: string_member(entry, "kid")
                        .ok()
                        .flatten()
                        .map(str::to_owned),
                    error,
                }),
            }
        }
        if keys.is_empty() {
            let why = match skipped.first() {
                Some(first) => format!(
                    " ({} entries skipped; the first because: {})",
                    skipped.len(),
                    first.error
                ),
                None => " (\"keys\" is empty)".to_owned(),
            };
            return Err(Error::new(
                ErrorKind::KeyNotFound,
                format!("the JWK Set holds no usable signature-verification key{why}"),
            ));
        }
        Ok(KeySet::with_skipped(keys, skipped))
    }
}

/// A private key from a private JWK (JSON text): RSA with every CRT member, EC with `d`, `x`,
/// `y`, OKP Ed25519 with `d` and `x`. `use`/`key_ops`, when present, must allow signing.
pub fn signing_key_from_jwk(json: &[u8]) -> Result<super::signing::SigningKey, Error> {
    let value = parse_json(json)?;
    let obj = as_object(&value, "a JWK")?;
    let kty = string_member(obj, "kty")?.ok_or_else(|| Error::malformed("JWK without \"kty\""))?;
    if let Some(u) = string_member(obj, "use")? {
        if u != "sig" {
            return Err(Error::new(
                ErrorKind::KeyUsage,
                "JWK \"use\" is not \"sig\"",
            ));
        }
    }
    // RFC 7517 §4.3: key_ops, when present, must allow signing.
    if let Some(ops) = member(obj, "key_ops") {
        let JsonValue::Array(ops) = ops else {
            return Err(Error::malformed("JWK \"key_ops\" must be an array"));
        };
        if !ops
            .iter()
            .any(|o| matches!(o, JsonValue::Str(s) if s == "sign"))
        {
            return Err(Error::new(
                ErrorKind::KeyUsage,
                "JWK \"key_ops\" does not include \"sign\"",
            ));
        }
    }
    let crv = string_member(obj, "crv")?;
    let get = |name: &str| required_b64url(obj, name, kty);
    let key = super::signing::SigningKey::from_jwk_members(kty, crv, &get)?;
    match string_member(obj, "alg")? {
        Some(alg) => key.restricted_to(Alg::from_name(alg)?),
        None => Ok(key),
    }
}
