//! `Verifier`, `verify`, `encode` and the base64url helpers: argument conversion around
//! [`crate::jwt`]; the claims dict is built by [`super::claims`].

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use super::claims;
use super::convert::bytes_of;
use super::errors::{config_err, jwt_err, jwt_exception, key_err, kinded, with_kind};
use super::keys::{build_keys, KeySet as PyKeySet, KeySource, SOURCE_METHOD};
use super::token_cache::TokenCache;
use crate::error::ErrorKind;
use crate::error::JwtError;
use crate::jwt::b64;
use crate::jwt::claims::Registered;
use crate::jwt::seconds::Seconds;
use crate::jwt::{self, Alg, AlgSet, HmacKey, KeySet, Policy};

/// The token's bytes. A `str` that is not valid Unicode (lone surrogates) cannot be a token:
/// refuse it as malformed rather than let a UnicodeEncodeError carrying the whole token escape.
fn token_bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(text) => Ok(text.as_bytes()),
            Err(_) => Err(jwt_err(JwtError::malformed("the token is not valid text"))),
        };
    }
    bytes_of(obj, "token")
}

/// A string, or a sequence of strings, as a list (used for algorithms, audience, issuer, require).
fn str_list(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_owned()]);
    }
    if obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a str or a sequence of str, not bytes"
        )));
    }
    let mut out = Vec::new();
    for item in obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or a sequence of str")))?
    {
        let item = item?;
        let s = item
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("{what} must contain only str")))?;
        out.push(s.to_str()?.to_owned());
    }
    Ok(out)
}

/// Seconds from an int/float or a `datetime.timedelta`.
fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds or a timedelta"
        )));
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Ok(f);
    }
    if let Ok(ts) = obj.getattr(intern!(obj.py(), "total_seconds")) {
        return ts.call0()?.extract::<f64>();
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a number of seconds or a timedelta"
    )))
}

/// Unix time from an int/float or a `datetime` (naive datetimes are taken as UTC, as PyJWT does).
fn unix_time(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Seconds> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Seconds::Float(jwt::wall_clock()));
    };
    let t = unix_time_of(obj)?;
    if !t.is_finite() {
        // A NaN `now` would make every comparison false, silently turning expiry checks off.
        return Err(PyValueError::new_err("now must be a finite unix time"));
    }
    Ok(t)
}

fn unix_time_of(obj: &Bound<'_, PyAny>) -> PyResult<Seconds> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "now must be a unix time or a datetime",
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Seconds::Int(i));
        }
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Ok(Seconds::Float(f));
    }
    let py = obj.py();
    if obj.hasattr(intern!(py, "utctimetuple"))? {
        let tt = obj.call_method0(intern!(py, "utctimetuple"))?;
        let base = py
            .import(intern!(py, "calendar"))?
            .call_method1(intern!(py, "timegm"), (tt,))?
            .extract::<f64>()?;
        let micro = obj.getattr(intern!(py, "microsecond"))?.extract::<f64>()?;
        return Ok(Seconds::Float(base + micro / 1e6));
    }
    Err(PyTypeError::new_err(
        "now must be a unix time or a datetime",
    ))
}

/// An integer option in `min..=max`, or ValueError (`.kind` bad_option) — never an
/// OverflowError for a huge or negative int.
fn int_option(obj: &Bound<'_, PyAny>, name: &str, min: i64, max: i64) -> PyResult<i64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int")));
    }
    obj.extract::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            kinded(
                ErrorKind::BadOption,
                format!("{name} must be between {min} and {max}"),
            )
        })
}

/// The keyword-only knobs of `Verifier(...)` and `verify(...)`.
struct Knobs<'a, 'py> {
    max_length: Option<&'a Bound<'py, PyAny>>,
    allow_weak_key: bool,
    options: Option<&'a Bound<'py, PyAny>>,
}

fn strict_bool(v: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    v.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| PyTypeError::new_err(format!("options[{name:?}] must be True or False")))
}

/// PyJWT's `options` (a subset), so that migrating is one import: `verify_exp`, `verify_nbf`,
/// `verify_iat`, `verify_aud`, `verify_iss` (booleans) and `require` (claim names, added to
/// `require=`). `verify_signature=False` is refused: nothing here skips the signature.
fn apply_options(policy: &mut jwt::Policy, options: &Bound<'_, PyAny>) -> PyResult<()> {
    let options = options
        .cast::<PyMapping>()
        .map_err(|_| PyTypeError::new_err("options must be a mapping"))?;
    for item in options.items()?.iter() {
        let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
        let c = &mut policy.checks;
        match k.as_str() {
            "verify_signature" => {
                if !strict_bool(&v, &k)? {
                    return Err(PyValueError::new_err(
                        "options[\"verify_signature\"] = False is never supported; use gateway.unverified_claims(token) to read a token without verifying it",
                    ));
                }
            }
            "verify_exp" => c.exp = strict_bool(&v, &k)?,
            "verify_nbf" => c.nbf = strict_bool(&v, &k)?,
            "verify_iat" => c.iat = strict_bool(&v, &k)?,
            "verify_aud" => c.aud = strict_bool(&v, &k)?,
            "verify_iss" => c.iss = strict_bool(&v, &k)?,
            "require" => {
                for name in str_list(&v, "options[\"require\"]")? {
                    if !policy.require.contains(&name) {
                        policy.require.push(name);
                    }
                }
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown option {:?} (supported: verify_signature (True only), verify_exp, verify_nbf, verify_iat, verify_aud, verify_iss, require)",
                    crate::error::bounded(other, 24)
                )))
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_verifier(
    key: &Bound<'_, PyAny>,
    algorithms: Option<&Bound<'_, PyAny>>,
    audience: Option<&Bound<'_, PyAny>>,
    issuer: Option<&Bound<'_, PyAny>>,
    leeway: Option<&Bound<'_, PyAny>>,
    require: Option<&Bound<'_, PyAny>>,
    knobs: Knobs<'_, '_>,
) -> PyResult<(jwt::Verifier, Option<Py<PyAny>>)> {
    let names = match algorithms.filter(|a| !a.is_none()) {
        Some(a) => str_list(a, "algorithms")?,
        None => vec!["HS256".to_owned()],
    };
    let algs = AlgSet::from_names(&names).map_err(config_err)?;
    let (keys, source) = match build_keys(key, algs, knobs.allow_weak_key)? {
        KeySource::Static(keys) => (keys, None),
        // The verifier's own set is never used: each verification asks the source.
        KeySource::Dynamic(source) => (
            KeySet::Public(Arc::new(crate::jose::KeySet::default())),
            Some(source),
        ),
    };
    let mut policy = Policy::new(algs);
    policy.audience = audience
        .filter(|a| !a.is_none())
        .map(|a| str_list(a, "audience"))
        .transpose()?;
    policy.issuer = issuer
        .filter(|a| !a.is_none())
        .map(|a| str_list(a, "issuer"))
        .transpose()?;
    policy.leeway = leeway
        .map(|l| seconds(l, "leeway"))
        .transpose()?
        .unwrap_or(0.0);
    policy.require = require
        .filter(|a| !a.is_none())
        .map(|a| str_list(a, "require"))
        .transpose()?
        .unwrap_or_default();
    if let Some(options) = knobs.options.filter(|o| !o.is_none()) {
        apply_options(&mut policy, options)?;
    }
    // A negative or huge max_length is a bad option (ValueError), not an OverflowError.
    if let Some(n) = knobs.max_length {
        policy.max_length = int_option(n, "max_length", 16, 1 << 24)? as usize;
    }
    let verifier = jwt::Verifier::new(keys, policy).map_err(config_err)?;
    Ok((verifier, source))
}

/// The current set of a key-set source (`_gateway_key_set(kid)`).
fn source_keys(
    source: &Bound<'_, PyAny>,
    kid: Option<String>,
) -> PyResult<Arc<crate::jose::KeySet>> {
    let set = source.call_method1(SOURCE_METHOD, (kid,))?;
    Ok(set
        .cast::<PyKeySet>()
        .map_err(|_| PyTypeError::new_err(format!("{SOURCE_METHOD}() must return a KeySet")))?
        .get()
        .inner
        .clone())
}

/// The signature check against a key-set source: the current set first; when no key fits and
/// the token names a `kid`, the source is asked once more with that kid (it may refetch, at most
/// once per its cooldown) and, if it hands over a different set, the check runs once more.
fn check_with_source<'t>(
    py: Python<'_>,
    v: &jwt::Verifier,
    source: &Py<PyAny>,
    token: &'t [u8],
) -> PyResult<jwt::Verified<'t>> {
    let source = source.bind(py);
    let current = source_keys(source, None)?;
    match v.check_signature_using(token, Some(&current)) {
        Err(JwtError::KeyNotFound(msg)) => {
            let Some(kid) = crate::jwt::header::kid_of(token) else {
                return Err(jwt_exception(py, JwtError::KeyNotFound(msg)));
            };
            let again = source_keys(source, Some(kid))?;
            if Arc::ptr_eq(&again, &current) {
                return Err(jwt_exception(py, JwtError::KeyNotFound(msg)));
            }
            v.check_signature_using(token, Some(&again))
                .map_err(|e| jwt_exception(py, e))
        }
        other => other.map_err(|e| jwt_exception(py, e)),
    }
}

/// The claims, the registered claims as read, and the header's `alg` with the fingerprint of the
/// public key that verified (for the cache).
type FullVerdict<'py> = (Bound<'py, PyDict>, Registered, (Alg, Option<u64>));

/// A full verification: signature, then the claims (early verdict for a passed `exp`, then the
/// walk into a dict, then the registered-claim checks). Also returns what the cache keeps.
fn verify_full<'py>(
    py: Python<'py>,
    v: &jwt::Verifier,
    source: Option<&Py<PyAny>>,
    interned: Option<&claims::ExpectedStrings>,
    token: &[u8],
    now: Seconds,
) -> PyResult<FullVerdict<'py>> {
    let raise = |e| jwt_exception(py, e);
    let checked = match source {
        None => v.check_signature(token).map_err(raise)?,
        Some(source) => check_with_source(py, v, source, token)?,
    };
    let (dict, reg) = b64::with_decoded(checked.payload_b64, |payload| {
        if let Some(early) = v.early_verdict(payload, now) {
            return Err(early);
        }
        claims::claims_dict(py, payload, v, interned)
    })
    .map_err(|_| raise(JwtError::malformed("the payload is not strict base64url")))?
    .map_err(raise)?;
    v.check_claims(&reg, now).map_err(raise)?;
    Ok((dict, reg, (checked.alg, checked.key_fingerprint)))
}

/// A reusable, immutable JWT verifier. Keys are prepared once; `verify` is thread-safe.
#[pyclass(frozen, module = "gateway")]
pub struct Verifier {
    inner: jwt::Verifier,
    /// A key-set source asked for the current keys at each verification (e.g. a JWKSClient).
    source: Option<Py<PyAny>>,
    interned: claims::ExpectedStrings,
    cache: Option<TokenCache>,
}

impl Verifier {
    fn from_parts(
        py: Python<'_>,
        inner: jwt::Verifier,
        source: Option<Py<PyAny>>,
        cache_size: usize,
    ) -> Verifier {
        let interned = claims::ExpectedStrings::new(py, &inner.policy);
        Verifier {
            inner,
            source,
            interned,
            cache: (cache_size > 0).then(|| TokenCache::new(cache_size)),
        }
    }

    /// A cached verdict for `token`, or None to verify it in full. An entry whose key left a
    /// changing key set is dropped; one whose registered claims fail now raises that error.
    fn cached<'py>(
        &self,
        py: Python<'py>,
        cache: &TokenCache,
        token: &[u8],
        now: Seconds,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(entry) = cache.get(token) else {
            return Ok(None);
        };
        if let (Some(source), Some(fp)) = (&self.source, entry.key_fingerprint) {
            // The key the current set selects for this token now (its kid may have been renamed,
            // an alg restriction added) must still be the key that verified it: the same
            // selection a fresh verification makes, without the signature.
            let current = source_keys(source.bind(py), None)?;
            let same = entry
                .alg
                .asymmetric()
                .and_then(|a| current.select(a, entry.kid.as_deref()).ok())
                .is_some_and(|k| k.fingerprint() == fp);
            if !same {
                cache.remove(token);
                return Ok(None);
            }
        }
        if let Err(e) = self.inner.check_claims(&entry.registered, now) {
            cache.remove(token);
            return Err(jwt_exception(py, e));
        }
        entry.claims(py).map(Some)
    }
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (key, algorithms=None, audience=None, issuer=None, leeway=None, require=None, *, max_length=None, allow_weak_key=false, options=None, cache_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: &Bound<'_, PyAny>,
        algorithms: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        leeway: Option<&Bound<'_, PyAny>>,
        require: Option<&Bound<'_, PyAny>>,
        max_length: Option<&Bound<'_, PyAny>>,
        allow_weak_key: bool,
        options: Option<&Bound<'_, PyAny>>,
        cache_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = key.py();
        let cache_size = match cache_size {
            Some(n) => {
                int_option(n, "cache_size", 0, 1 << 24).map_err(|e| with_kind(py, e))? as usize
            }
            None => 0,
        };
        let knobs = Knobs {
            max_length,
            allow_weak_key,
            options,
        };
        let (inner, source) =
            build_verifier(key, algorithms, audience, issuer, leeway, require, knobs)
                .map_err(|e| with_kind(py, e))?;
        Ok(Verifier::from_parts(py, inner, source, cache_size))
    }

    /// A verifier with this one's policy and cache size and `keys` in place of its keys: one
    /// verifier per version of a key set that changes, made without I/O. Raises ValueError
    /// (`.kind` ``key_type_mismatch``) when this verifier's algorithms are HMAC ones.
    fn with_key_set(&self, py: Python<'_>, keys: &Bound<'_, PyKeySet>) -> PyResult<Verifier> {
        let inner = jwt::Verifier::new(
            KeySet::Public(keys.get().inner.clone()),
            self.inner.policy.clone(),
        )
        .map_err(config_err)?;
        let size = self.cache.as_ref().map_or(0, |c| c.capacity() as usize);
        Ok(Verifier::from_parts(py, inner, None, size))
    }

    /// Verifies `token` and returns its claims as a new dict, or raises a `JWTError` subclass.
    #[pyo3(signature = (token, now=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let token = token_bytes(token)?;
        let now = unix_time(now)?;
        if let Some(cache) = &self.cache {
            if token.len() <= self.inner.policy.max_length {
                if let Some(hit) = self.cached(py, cache, token, now)? {
                    return Ok(hit);
                }
            }
        }
        let (dict, reg, (alg, fp)) = verify_full(
            py,
            &self.inner,
            self.source.as_ref(),
            Some(&self.interned),
            token,
            now,
        )?;
        if let Some(cache) = &self.cache {
            let kid = fp.and_then(|_| crate::jwt::header::kid_of(token));
            cache.insert(token, &dict, reg, alg, kid, fp)?;
        }
        Ok(dict)
    }

    /// Entries in the verified-token cache (0 when it is off).
    #[getter]
    fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    #[getter]
    fn algorithms(&self) -> Vec<&'static str> {
        self.inner.policy.algorithms.iter().map(Alg::name).collect()
    }

    #[getter]
    fn audience(&self) -> Option<Vec<String>> {
        self.inner.policy.audience.clone()
    }

    #[getter]
    fn issuer(&self) -> Option<Vec<String>> {
        self.inner.policy.issuer.clone()
    }

    #[getter]
    fn leeway(&self) -> f64 {
        self.inner.policy.leeway
    }

    #[getter]
    fn require(&self) -> Vec<String> {
        self.inner.policy.require.clone()
    }

    #[getter]
    fn max_length(&self) -> usize {
        self.inner.policy.max_length
    }

    fn __repr__(&self) -> String {
        // Never the key: only its shape.
        let keys = match (&self.inner.keys, &self.source) {
            (_, Some(_)) => "keys from a key-set source".to_owned(),
            (KeySet::Single(_), _) => "1 key".to_owned(),
            (KeySet::ByKid(m), _) => format!("{} keys by kid", m.len()),
            (KeySet::Public(set), _) => format!("{} public key(s)", set.len()),
        };
        format!("Verifier(algorithms={:?}, {keys})", self.algorithms())
    }
}

/// One-shot verification: `Verifier(key, ...).verify(token, now)` (no cache).
#[pyfunction]
#[pyo3(signature = (token, key, algorithms=None, audience=None, issuer=None, leeway=None, require=None, now=None, *, max_length=None, allow_weak_key=false, options=None))]
#[allow(clippy::too_many_arguments)]
pub fn verify<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
    algorithms: Option<&Bound<'py, PyAny>>,
    audience: Option<&Bound<'py, PyAny>>,
    issuer: Option<&Bound<'py, PyAny>>,
    leeway: Option<&Bound<'py, PyAny>>,
    require: Option<&Bound<'py, PyAny>>,
    now: Option<&Bound<'py, PyAny>>,
    max_length: Option<&Bound<'py, PyAny>>,
    allow_weak_key: bool,
    options: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let knobs = Knobs {
        max_length,
        allow_weak_key,
        options,
    };
    // Every construction error carries `.kind`, as from `Verifier(...)`.
    let (v, source) = build_verifier(key, algorithms, audience, issuer, leeway, require, knobs)
        .map_err(|e| with_kind(py, e))?;
    let token = token_bytes(token)?;
    let now = unix_time(now).map_err(|e| with_kind(py, e))?;
    verify_full(py, &v, source.as_ref(), None, token, now).map(|(dict, _, _)| dict)
}

/// Appends `obj` as JSON to `out`. Registered time claims given as datetimes become ints.
pub(crate) fn write_json(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > 64 {
        return Err(PyValueError::new_err("claims are nested too deeply"));
    }
    if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if let Ok(s) = obj.cast::<PyString>() {
        serde_json::to_writer(&mut *out, s.to_str()?)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
    } else if obj.is_instance_of::<PyInt>() {
        out.extend_from_slice(obj.str()?.to_str()?.as_bytes());
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(PyValueError::new_err(
                "claims may not contain NaN or Infinity",
            ));
        }
        out.extend_from_slice(obj.repr()?.to_str()?.as_bytes());
    } else if let Ok(d) = obj.cast::<PyDict>() {
        out.push(b'{');
        for (i, (k, v)) in d.iter().enumerate() {
            let k = k
                .cast_into::<PyString>()
                .map_err(|_| PyTypeError::new_err("claim names must be str"))?;
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, k.to_str()?)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            out.push(b':');
            let key = k.to_str()?;
            if depth == 0
                && matches!(key, "exp" | "nbf" | "iat")
                && v.hasattr(intern!(obj.py(), "utctimetuple"))?
            {
                let ts = match unix_time(Some(&v))? {
                    Seconds::Int(i) => i,
                    Seconds::Float(f) => f.floor() as i64,
                };
                out.extend_from_slice(ts.to_string().as_bytes());
            } else {
                write_json(&v, out, depth + 1)?;
            }
        }
        out.push(b'}');
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.push(b'[');
        for (i, item) in obj.try_iter()?.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(&item?, out, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(m) = obj.cast::<PyMapping>() {
        let d = PyDict::new(obj.py());
        for item in m.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            d.set_item(k, v)?;
        }
        write_json(d.as_any(), out, depth)?;
    } else {
        let tname = obj.get_type().name()?.to_string();
        return Err(PyTypeError::new_err(format!(
            "object of type {tname} is not JSON serializable"
        )));
    }
    Ok(())
}

/// The key `encode` signs with: an HMAC secret, or a private key (PEM or JWK).
#[allow(clippy::large_enum_variant)] // made once per encode call
enum SignWith {
    Hmac(HmacKey),
    Private(crate::jose::SigningKey),
}

/// A private key from what the caller passed: PEM text, a private JWK as JSON or a dict.
fn signing_key(key: &Bound<'_, PyAny>) -> PyResult<crate::jose::SigningKey> {
    if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        let text = bytes_of(key, "key")?;
        if text.trim_ascii_start().first() == Some(&b'{') {
            return crate::jose::signing_key_from_jwk(text).map_err(key_err);
        }
        if memchr::memmem::find(text, b"-----BEGIN ").is_some() {
            return crate::jose::SigningKey::from_pem(text).map_err(key_err);
        }
        return crate::jose::SigningKey::from_der(text).map_err(key_err);
    }
    if key.cast::<PyMapping>().is_ok() {
        let mut json = Vec::with_capacity(1024);
        write_json(key, &mut json, 1)?;
        return crate::jose::signing_key_from_jwk(&json).map_err(key_err);
    }
    Err(PyTypeError::new_err(
        "for RS/PS/ES/EdDSA, key must be a private key: PEM (str/bytes), DER bytes, or a private JWK (dict or JSON)",
    ))
}

/// Refuses header members the verifier would refuse, so `encode` never writes a token that
/// `verify` rejects for its header: `kid`, `typ`, `cty` must be strings; `crit` and `b64`
/// (RFC 7797) are not supported; `alg` must be `algorithm`.
fn check_header_member(name: &str, v: &Bound<'_, PyAny>, algorithm: &str) -> PyResult<bool> {
    match name {
        "alg" => {
            if v.extract::<String>().ok().as_deref() != Some(algorithm) {
                return Err(PyValueError::new_err(
                    "headers[\"alg\"] conflicts with algorithm",
                ));
            }
            Ok(false)
        }
        "kid" | "typ" | "cty" if !v.is_instance_of::<PyString>() => Err(PyValueError::new_err(
            format!("headers[{name:?}] must be a str (RFC 7515 §4.1), not {}", v.get_type().name()?),
        )),
        "crit" | "b64" => Err(PyValueError::new_err(format!(
            "headers[{name:?}]: critical extensions and unencoded payloads (RFC 7797) are not supported"
        ))),
        _ => Ok(true),
    }
}

/// Signs `claims` with `key` under `algorithm`; returns the compact JWS. HS*: a shared secret
/// (or a `{kid: secret}` mapping with `headers["kid"]`); RS/PS/ES/EdDSA: a private key.
#[pyfunction]
#[pyo3(signature = (claims, key, algorithm="HS256", headers=None, *, allow_weak_key=false))]
pub fn encode(
    claims: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    headers: Option<&Bound<'_, PyAny>>,
    allow_weak_key: bool,
) -> PyResult<String> {
    encode_token(claims, key, algorithm, headers, allow_weak_key)
        .map_err(|e| with_kind(claims.py(), e))
}

fn encode_token(
    claims: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    headers: Option<&Bound<'_, PyAny>>,
    allow_weak_key: bool,
) -> PyResult<String> {
    let algs = AlgSet::from_names(&[algorithm]).map_err(config_err)?;
    let alg = Alg::from_name(algorithm).expect("validated above");
    if !claims.is_instance_of::<PyDict>() && claims.cast::<PyMapping>().is_err() {
        return Err(PyTypeError::new_err("claims must be a mapping"));
    }
    let py = claims.py();
    let header = PyDict::new(py);
    header.set_item("alg", algorithm)?;
    header.set_item("typ", "JWT")?;
    if let Some(h) = headers.filter(|h| !h.is_none()) {
        let h = h
            .cast::<PyMapping>()
            .map_err(|_| PyTypeError::new_err("headers must be a mapping"))?;
        for item in h.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let name = k
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err("header names must be str"))?;
            if check_header_member(&name, &v, algorithm)? {
                header.set_item(k, v)?;
            }
        }
    }
    let with = if !alg.is_hmac() {
        SignWith::Private(signing_key(key)?)
    } else if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        SignWith::Hmac(
            HmacKey::new(bytes_of(key, "key")?, algs, allow_weak_key).map_err(config_err)?,
        )
    } else if let Ok(map) = key.cast::<PyMapping>() {
        let kid = header.get_item("kid")?.ok_or_else(|| {
            PyValueError::new_err(
                "with a kid → key mapping, headers must name the \"kid\" to sign with",
            )
        })?;
        let secret = map
            .get_item(&kid)
            .map_err(|_| PyValueError::new_err("headers[\"kid\"] is not in the key mapping"))?;
        SignWith::Hmac(
            HmacKey::new(bytes_of(&secret, "key")?, algs, allow_weak_key).map_err(config_err)?,
        )
    } else {
        return Err(PyTypeError::new_err(
            "key must be str, bytes, or a mapping of kid to secret",
        ));
    };
    let mut header_json = Vec::with_capacity(64);
    write_json(header.as_any(), &mut header_json, 1)?;
    let mut claims_json = Vec::with_capacity(256);
    write_json(claims, &mut claims_json, 0)?;
    match with {
        SignWith::Hmac(secret) => {
            Ok(jwt::sign(&secret, alg, &header_json, &claims_json).expect("key prepared for alg"))
        }
        SignWith::Private(private) => {
            let asym = alg.asymmetric().expect("not HMAC");
            let mut token = b64::encode(&header_json);
            token.push('.');
            token.push_str(&b64::encode(&claims_json));
            let sig = private.sign(asym, token.as_bytes()).map_err(key_err)?;
            token.push('.');
            token.push_str(&b64::encode(&sig));
            Ok(token)
        }
    }
}

/// The JSON object in one base64url part of a token, as a dict; nothing is verified.
fn unverified_part<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    index: usize,
    what: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let token = token_bytes(token)?;
    if token.len() > 64 * 1024 {
        return Err(jwt_err(JwtError::malformed("token is over 64 KiB")));
    }
    let part = token
        .split(|&b| b == b'.')
        .nth(index)
        .filter(|_| token.iter().filter(|&&b| b == b'.').count() == 2)
        .ok_or_else(|| {
            jwt_err(JwtError::malformed(
                "not a compact JWS (three base64url parts)",
            ))
        })?;
    let json = b64::decode(part).map_err(|_| {
        jwt_err(JwtError::Malformed(format!(
            "the {what} is not strict base64url"
        )))
    })?;
    let value = jiter::PythonParse::default()
        .python_parse(py, &json)
        .map_err(|_| jwt_err(JwtError::Malformed(format!("the {what} is not valid JSON"))))?;
    value.cast_into::<PyDict>().map_err(|_| {
        jwt_err(JwtError::Malformed(format!(
            "the {what} is not a JSON object"
        )))
    })
}

/// The token's JOSE header, decoded but NOT verified: for choosing a key (`kid`, `alg`) and for
/// debugging. Raises MalformedToken when it is not a compact JWS with a JSON object header.
#[pyfunction]
pub fn unverified_header<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    unverified_part(py, token, 0, "header")
}

/// The token's claims, decoded but NOT verified: anyone can write any claims into a token. For
/// debugging and logging only; never for a decision.
#[pyfunction]
pub fn unverified_claims<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    unverified_part(py, token, 1, "payload")
}

/// Encodes bytes as unpadded base64url.
#[pyfunction]
pub fn b64url_encode(data: &[u8]) -> String {
    b64::encode(data)
}

/// Decodes strict unpadded base64url; raises ValueError otherwise.
#[pyfunction]
pub fn b64url_decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(data, "data")?;
    let decoded = b64::decode(raw).map_err(|_| {
        PyValueError::new_err(
            "not strict base64url (RFC 4648 §5: A-Z a-z 0-9 - _, no padding, canonical final bits)",
        )
    })?;
    Ok(PyBytes::new(py, &decoded))
}
