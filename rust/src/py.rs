//! The Python boundary: `gateway._core`.
//!
//! Everything Python-specific lives here: argument conversion, the exception hierarchy, and the
//! claims dict built straight from the JSON bytes by `jiter` (no intermediate value tree). Errors
//! are plain Rust values until the single `jwt_err` mapping turns them into exceptions, so the
//! success path never creates an exception object.

use std::borrow::Cow;
use std::collections::HashMap;

use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use crate::b64;
use crate::cookie::{self, CookieAttrs, SameSite};
use crate::error::{ConfigError, ErrorKind, JwtError};
use crate::jwt::{self, Alg, AlgSet, HmacKey, KeySet, Policy, DEFAULT_MAX_LENGTH};
use crate::lang;
use crate::pyclaims;
use crate::request;
use crate::seconds::Seconds;

create_exception!(
    gateway,
    JWTError,
    PyValueError,
    "A token failed verification. Subclass of ValueError."
);
create_exception!(
    gateway,
    MalformedToken,
    JWTError,
    "Not a well-formed compact JWS with JSON header and claims."
);
create_exception!(
    gateway,
    InvalidSignature,
    JWTError,
    "The MAC does not match, or no key fits the token."
);
create_exception!(
    gateway,
    AlgorithmNotAllowed,
    JWTError,
    "The token's alg is none, not allowed, or does not fit the key."
);
create_exception!(
    gateway,
    ExpiredToken,
    JWTError,
    "The token's exp is in the past (beyond the leeway)."
);
create_exception!(
    gateway,
    NotYetValid,
    JWTError,
    "The token's nbf is in the future (beyond the leeway)."
);
create_exception!(
    gateway,
    InvalidIssuer,
    JWTError,
    "The token's iss is not an expected issuer."
);
create_exception!(
    gateway,
    InvalidAudience,
    JWTError,
    "The token's aud does not name an expected audience."
);
create_exception!(
    gateway,
    MissingClaim,
    JWTError,
    "A required claim is absent."
);

/// The message of an error whose text is fixed, as a `str` made once per process: the common
/// rejections (bad MAC, expired) then cost no formatting and no allocation besides the exception.
fn fixed_message<'py>(py: Python<'py>, e: &JwtError) -> Option<Bound<'py, PyString>> {
    let s = match e {
        JwtError::Expired => intern!(py, "token has expired"),
        JwtError::NotYetValid => intern!(py, "token is not yet valid (nbf)"),
        JwtError::InvalidIssuer => intern!(py, "token issuer (iss) is not the expected one"),
        JwtError::InvalidSignature("signature does not match") => {
            intern!(py, "invalid signature: signature does not match")
        }
        _ => return None,
    };
    debug_assert_eq!(s.to_str().ok(), Some(e.to_string().as_str()));
    Some(s.clone())
}

#[cold]
#[inline(never)]
fn jwt_err(e: JwtError) -> PyErr {
    Python::attach(|py| jwt_exception(py, e))
}

/// The `JWTError` subclass instance for `e`, made eagerly: a lazily-built PyErr costs a boxed
/// closure, a formatted message and a second call on the way out, which on the rejection paths
/// (bad MAC, expired) is a quarter of the whole verification.
#[cold]
#[inline(never)]
fn jwt_exception(py: Python<'_>, e: JwtError) -> PyErr {
    {
        let kind = match e {
            JwtError::Malformed(_) => py.get_type::<MalformedToken>(),
            JwtError::InvalidSignature(_) => py.get_type::<InvalidSignature>(),
            JwtError::AlgorithmNotAllowed(_) => py.get_type::<AlgorithmNotAllowed>(),
            JwtError::Expired => py.get_type::<ExpiredToken>(),
            JwtError::NotYetValid => py.get_type::<NotYetValid>(),
            JwtError::InvalidIssuer => py.get_type::<InvalidIssuer>(),
            JwtError::InvalidAudience(_) => py.get_type::<InvalidAudience>(),
            JwtError::MissingClaim(_) => py.get_type::<MissingClaim>(),
        };
        let msg = fixed_message(py, &e).unwrap_or_else(|| PyString::new(py, &e.to_string()));
        match kind.call1((msg,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    }
}

/// A `ValueError` whose `.kind` says what went wrong (`weak_key`, `encoded_slash`, ...), so
/// callers such as the config loader switch on the kind, never on the wording.
#[cold]
#[inline(never)]
fn kinded_value_error(kind: ErrorKind, message: String) -> PyErr {
    Python::attach(|py| {
        let err = PyValueError::new_err(message);
        // Setting an attribute on a fresh ValueError instance cannot fail short of running out
        // of memory; the error is still raised (without a kind) if it does.
        let _ = err.value(py).setattr(intern!(py, "kind"), kind.as_str());
        err
    })
}

#[cold]
fn config_err(e: ConfigError) -> PyErr {
    kinded_value_error(e.kind, e.message)
}

/// Gives an error raised while building a verifier a `.kind` if it has none yet (a wrong type
/// of argument is a `bad_option`), so every construction error can be told apart by kind.
#[cold]
fn with_kind(py: Python<'_>, err: PyErr) -> PyErr {
    let value = err.value(py);
    if !value.hasattr(intern!(py, "kind")).unwrap_or(true) {
        let _ = value.setattr(intern!(py, "kind"), ErrorKind::BadOption.as_str());
    }
    err
}

/// `str` or `bytes` → bytes, borrowed.
fn bytes_of<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    Err(PyTypeError::new_err(format!("{what} must be str or bytes")))
}

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

fn build_keys(key: &Bound<'_, PyAny>, algs: AlgSet, allow_weak: bool) -> PyResult<KeySet> {
    if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        let secret = bytes_of(key, "key")?;
        return HmacKey::new(secret, algs, allow_weak)
            .map(KeySet::Single)
            .map_err(config_err);
    }
    if let Ok(mapping) = key.cast::<PyMapping>() {
        let mut map = HashMap::new();
        for item in mapping.items()?.iter() {
            let (kid, secret): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let kid = kid
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("key mapping keys (kids) must be str"))?
                .to_str()?
                .to_owned();
            let secret = bytes_of(&secret, "each secret in the key mapping")?;
            let prepared = HmacKey::new(secret, algs, allow_weak).map_err(|e| {
                kinded_value_error(
                    e.kind,
                    format!(
                        "key for kid {:?}: {}",
                        crate::error::bounded(&kid, 32),
                        e.message
                    ),
                )
            })?;
            map.insert(kid, prepared);
        }
        return Ok(KeySet::ByKid(map));
    }
    Err(PyTypeError::new_err(
        "key must be str, bytes, or a mapping of kid to str/bytes secret",
    ))
}

#[allow(clippy::too_many_arguments)]
fn build_verifier(
    key: &Bound<'_, PyAny>,
    algorithms: Option<&Bound<'_, PyAny>>,
    audience: Option<&Bound<'_, PyAny>>,
    issuer: Option<&Bound<'_, PyAny>>,
    leeway: Option<&Bound<'_, PyAny>>,
    require: Option<&Bound<'_, PyAny>>,
    max_length: usize,
    allow_weak_key: bool,
) -> PyResult<jwt::Verifier> {
    let names = match algorithms.filter(|a| !a.is_none()) {
        Some(a) => str_list(a, "algorithms")?,
        None => vec!["HS256".to_owned()],
    };
    let algs = AlgSet::from_names(&names).map_err(config_err)?;
    let keys = build_keys(key, algs, allow_weak_key)?;
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
    policy.max_length = max_length;
    jwt::Verifier::new(keys, policy).map_err(config_err)
}

fn verify_with<'py>(
    py: Python<'py>,
    v: &jwt::Verifier,
    interned: Option<&pyclaims::ExpectedStrings>,
    token: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let raise = |e| jwt_exception(py, e);
    let token = token_bytes(token)?;
    let now = unix_time(now)?;
    let checked = v.check_signature(token).map_err(raise)?;
    let (dict, reg) = b64::with_decoded(checked.payload_b64, |payload| {
        if let Some(early) = v.early_verdict(payload, now) {
            return Err(early);
        }
        pyclaims::claims_dict(py, payload, v, interned)
    })
    .map_err(|_| raise(JwtError::malformed("the payload is not strict base64url")))?
    .map_err(raise)?;
    v.check_claims(&reg, now).map_err(raise)?;
    Ok(dict)
}

/// A reusable, immutable HS* JWT verifier. Keys are prepared once; `verify` is thread-safe.
#[pyclass(frozen, module = "gateway")]
pub struct Verifier {
    inner: jwt::Verifier,
    interned: pyclaims::ExpectedStrings,
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (key, algorithms=None, audience=None, issuer=None, leeway=None, require=None, *, max_length=DEFAULT_MAX_LENGTH, allow_weak_key=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: &Bound<'_, PyAny>,
        algorithms: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        leeway: Option<&Bound<'_, PyAny>>,
        require: Option<&Bound<'_, PyAny>>,
        max_length: usize,
        allow_weak_key: bool,
    ) -> PyResult<Self> {
        let inner = build_verifier(
            key,
            algorithms,
            audience,
            issuer,
            leeway,
            require,
            max_length,
            allow_weak_key,
        )
        .map_err(|e| with_kind(key.py(), e))?;
        let interned = pyclaims::ExpectedStrings::new(key.py(), &inner.policy);
        Ok(Verifier { inner, interned })
    }

    /// Verifies `token` and returns its claims as a dict, or raises a `JWTError` subclass.
    #[pyo3(signature = (token, now=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        verify_with(py, &self.inner, Some(&self.interned), token, now)
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
        let keys = match &self.inner.keys {
            KeySet::Single(_) => "1 key".to_owned(),
            KeySet::ByKid(m) => format!("{} keys by kid", m.len()),
        };
        format!("Verifier(algorithms={:?}, {keys})", self.algorithms())
    }
}

/// One-shot verification: `Verifier(key, ...).verify(token, now)`.
#[pyfunction]
#[pyo3(signature = (token, key, algorithms=None, audience=None, issuer=None, leeway=None, require=None, now=None, *, max_length=DEFAULT_MAX_LENGTH, allow_weak_key=false))]
#[allow(clippy::too_many_arguments)]
fn verify<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
    algorithms: Option<&Bound<'py, PyAny>>,
    audience: Option<&Bound<'py, PyAny>>,
    issuer: Option<&Bound<'py, PyAny>>,
    leeway: Option<&Bound<'py, PyAny>>,
    require: Option<&Bound<'py, PyAny>>,
    now: Option<&Bound<'py, PyAny>>,
    max_length: usize,
    allow_weak_key: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let v = build_verifier(
        key,
        algorithms,
        audience,
        issuer,
        leeway,
        require,
        max_length,
        allow_weak_key,
    )?;
    verify_with(py, &v, None, token, now)
}

/// Appends `obj` as JSON to `out`. Registered time claims given as datetimes become ints.
fn write_json(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
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

/// Signs `claims` with an HMAC `key`; returns the compact JWS.
#[pyfunction]
#[pyo3(signature = (claims, key, algorithm="HS256", headers=None, *, allow_weak_key=false))]
fn encode(
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
            if name == "alg" {
                if v.extract::<String>().ok().as_deref() != Some(algorithm) {
                    return Err(PyValueError::new_err(
                        "headers[\"alg\"] conflicts with algorithm",
                    ));
                }
                continue;
            }
            header.set_item(k, v)?;
        }
    }
    let secret = if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        HmacKey::new(bytes_of(key, "key")?, algs, allow_weak_key).map_err(config_err)?
    } else if let Ok(map) = key.cast::<PyMapping>() {
        let kid = header.get_item("kid")?.ok_or_else(|| {
            PyValueError::new_err(
                "with a kid → key mapping, headers must name the \"kid\" to sign with",
            )
        })?;
        let secret = map
            .get_item(&kid)
            .map_err(|_| PyValueError::new_err("headers[\"kid\"] is not in the key mapping"))?;
        HmacKey::new(bytes_of(&secret, "key")?, algs, allow_weak_key).map_err(config_err)?
    } else {
        return Err(PyTypeError::new_err(
            "key must be str, bytes, or a mapping of kid to secret",
        ));
    };
    let mut header_json = Vec::with_capacity(64);
    write_json(header.as_any(), &mut header_json, 1)?;
    let mut claims_json = Vec::with_capacity(256);
    write_json(claims, &mut claims_json, 0)?;
    Ok(jwt::sign(&secret, alg, &header_json, &claims_json).expect("key prepared for alg"))
}

/// Encodes bytes as unpadded base64url.
#[pyfunction]
fn b64url_encode(data: &[u8]) -> String {
    b64::encode(data)
}

/// Decodes strict unpadded base64url; raises ValueError otherwise.
#[pyfunction]
fn b64url_decode<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(data, "data")?;
    let decoded = b64::decode(raw).map_err(|_| {
        PyValueError::new_err(
            "not strict base64url (RFC 4648 §5: A-Z a-z 0-9 - _, no padding, canonical final bits)",
        )
    })?;
    Ok(PyBytes::new(py, &decoded))
}

/// The value of the first cookie called `name` in a Cookie header, or None.
#[pyfunction]
fn cookie_value(cookie_header: &Bound<'_, PyString>, name: &Bound<'_, PyString>) -> Option<String> {
    // Lossy: hostile text (lone surrogates) must not raise, only fail to match.
    let header = cookie_header.to_string_lossy();
    let name = name.to_string_lossy();
    cookie::cookie_value(&header, &name).map(|v| v.into_owned())
}

/// Builds a Set-Cookie header value; raises ValueError for anything that could inject a header.
#[pyfunction]
#[pyo3(signature = (name, value, *, max_age=None, path=Some("/"), domain=None, secure=true, http_only=false, same_site=Some("Lax")))]
#[allow(clippy::too_many_arguments)]
fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    path: Option<&str>,
    domain: Option<&str>,
    secure: bool,
    http_only: bool,
    same_site: Option<&str>,
) -> PyResult<String> {
    let same_site = same_site
        .map(|s| {
            SameSite::parse(s).ok_or_else(|| {
                PyValueError::new_err("same_site must be \"Strict\", \"Lax\" or \"None\"")
            })
        })
        .transpose()?;
    let attrs = CookieAttrs {
        max_age,
        path,
        domain,
        secure,
        http_only,
        same_site,
    };
    cookie::set_cookie(name, value, &attrs).map_err(PyValueError::new_err)
}

/// The entry of `supported` that best fits an Accept-Language header, or None.
#[pyfunction]
fn best_language(accept_language: &Bound<'_, PyString>, supported: Vec<String>) -> Option<String> {
    let accept_language = accept_language.to_string_lossy();
    lang::best_language(&accept_language, &supported).map(|i| supported[i].clone())
}

/// `text` with every character but `A-Z a-z 0-9 - . _ ~` percent-encoded as UTF-8, like
/// `urllib.parse.quote(text, safe="")`.
#[pyfunction]
fn percent_encode(text: &str) -> String {
    crate::path::percent_encode_component(text)
}

/// Normalizes a raw request path; raises ValueError whose `.kind` (and message) says why a path
/// is refused.
#[pyfunction]
fn normalize_path(raw: &Bound<'_, PyAny>) -> PyResult<String> {
    crate::path::normalize(bytes_of(raw, "path")?)
        .map_err(|e| kinded_value_error(e.kind(), e.to_string()))
}

/// Compiles a Next.js-style path pattern to the anchored regex the router uses.
#[pyfunction]
fn compile_pattern(pattern: &str) -> PyResult<String> {
    crate::matcher::compile(pattern)
        .map(|(src, _)| src)
        .map_err(|e| PyValueError::new_err(e.0))
}

/// Every route's path patterns compiled into one set; matching cost does not grow per route.
#[pyclass(frozen, module = "gateway._core")]
pub struct RouteSet {
    inner: crate::matcher::RouteSet,
}

#[pymethods]
impl RouteSet {
    #[new]
    fn new(routes: Vec<Vec<String>>) -> PyResult<Self> {
        crate::matcher::RouteSet::new(&routes)
            .map(|inner| RouteSet { inner })
            .map_err(|(r, p, e)| PyValueError::new_err((r, p, e.0)))
    }

    /// Indices of the routes whose patterns match `path`, in file order.
    fn matching_routes(&self, path: &str) -> Vec<usize> {
        self.inner.matching_routes(path)
    }

    /// The names `params(route, ...)` can produce (named and unnamed groups), in pattern order.
    fn param_names(&self, route: usize) -> PyResult<Vec<String>> {
        self.inner.param_names(route).ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!("there is no route {route}"))
        })
    }

    /// The named parameters of `route` for `path`, or None when it does not match.
    fn params(&self, route: usize, path: &str) -> Option<HashMap<String, String>> {
        self.inner
            .params(route, path)
            .map(|v| v.into_iter().collect())
    }
}

#[pymodule(gil_used = false)]
pub mod _core {
    #[pymodule_export]
    use super::{
        b64url_decode, b64url_encode, best_language, compile_pattern, cookie_value, encode,
        normalize_path, percent_encode, set_cookie, verify, Request, RouteSet, Verifier,
    };

    #[pymodule_export]
    use super::{
        AlgorithmNotAllowed, ExpiredToken, InvalidAudience, InvalidIssuer, InvalidSignature,
        JWTError, MalformedToken, MissingClaim, NotYetValid,
    };

    #[pymodule_export]
    use crate::upstream::{
        BodySender, Upstream, UpstreamConnectError, UpstreamError, UpstreamResponse,
        UpstreamTimeout,
    };

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}

/// A header name or value given as `bytes`, or as `str` holding latin-1 text (one character per
/// wire byte, the way ASGI servers and this module hand header text over). Borrowed when it can be.
pub(crate) fn wire_of<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let text = s.to_str()?;
        if text.is_ascii() {
            return Ok(Cow::Borrowed(text.as_bytes()));
        }
        return text
            .chars()
            .map(|c| u8::try_from(u32::from(c)))
            .collect::<Result<Vec<u8>, _>>()
            .map(Cow::Owned)
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "{what}: a character above U+00FF; header text is latin-1, one character per byte"
                ))
            });
    }
    Err(PyTypeError::new_err(format!("{what} must be bytes or str")))
}

/// Wire bytes as latin-1 `str`: one character per byte, whatever the bytes are.
fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: latin-1 decoding cannot fail; it returns a new reference (or NULL on memory
    // exhaustion, which `from_owned_ptr` turns into a panic rather than undefined behaviour).
    unsafe {
        Bound::from_owned_ptr(
            py,
            pyo3::ffi::PyUnicode_DecodeLatin1(
                bytes.as_ptr().cast(),
                bytes.len() as pyo3::ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
        .cast_into_unchecked::<PyString>()
    }
}

/// The request as the core sees it: built once from the ASGI scope, raw header bytes kept here,
/// the per-request facts (size, Host, framing) worked out in one pass, cookies parsed at most
/// once. Frozen, so every stage can read it from any thread without locks.
#[pyclass(frozen, module = "gateway._core")]
pub struct Request {
    head: request::Head,
    /// The caller's `(name, value)` tuples when each was a tuple of two `bytes`: forwarding hands
    /// back these same objects instead of making new ones.
    items: Option<Vec<Py<PyAny>>>,
}

#[pymethods]
impl Request {
    #[new]
    #[pyo3(signature = (method, raw_path, query_string, headers, client, scheme))]
    fn new(
        method: String,
        raw_path: &Bound<'_, PyAny>,
        query_string: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        client: Option<String>,
        scheme: String,
    ) -> PyResult<Self> {
        let raw_path = wire_of(raw_path, "raw_path")?;
        let query_string = wire_of(query_string, "query_string")?;
        let mut pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = Vec::new();
        let mut items = Vec::new();
        let mut reusable = true;
        for item in headers.try_iter()? {
            let item = item?;
            let (k, v) = if let Ok(t) = item.cast::<PyTuple>() {
                if t.len() != 2 {
                    return Err(PyValueError::new_err(
                        "each header must be a (name, value) pair",
                    ));
                }
                (t.get_item(0)?, t.get_item(1)?)
            } else {
                reusable = false;
                item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                    .map_err(|_| PyTypeError::new_err("each header must be a (name, value) pair"))?
            };
            reusable &= k.is_instance_of::<PyBytes>() && v.is_instance_of::<PyBytes>();
            pairs.push((k, v));
            items.push(item.unbind());
        }
        let mut wire = Vec::with_capacity(pairs.len());
        for (k, v) in &pairs {
            wire.push((wire_of(k, "header name")?, wire_of(v, "header value")?));
        }
        let head = request::Head::new(
            method,
            &raw_path,
            &query_string,
            wire.iter().map(|(k, v)| (&**k, &**v)),
            client,
            scheme,
        );
        Ok(Request {
            head,
            items: reusable.then_some(items),
        })
    }

    #[getter]
    fn method(&self) -> &str {
        &self.head.method
    }

    #[getter]
    fn raw_path<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.head.raw_path)
    }

    /// The query with bytes outside 0x21..0x7E percent-encoded.
    #[getter]
    fn query(&self) -> &str {
        &self.head.query
    }

    #[getter]
    fn client(&self) -> Option<&str> {
        self.head.client.as_deref()
    }

    #[getter]
    fn scheme(&self) -> &str {
        &self.head.scheme
    }

    #[getter]
    fn head_size(&self) -> usize {
        self.head.head_size
    }

    #[getter]
    fn host_count(&self) -> usize {
        self.head.host_count
    }

    /// The first Host value as sent (latin-1 text).
    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.head.host_raw().map(|h| latin1_str(py, h))
    }

    /// The Host for routing: lower-case, no port, no trailing dot, IPv6 without brackets.
    #[getter]
    fn host_name(&self) -> Option<&str> {
        self.head.host_name()
    }

    #[getter]
    fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    #[getter]
    fn content_length_valid(&self) -> bool {
        self.head.content_length_valid
    }

    #[getter]
    fn chunked(&self) -> bool {
        self.head.chunked
    }

    /// The first value of header `name`, as latin-1 text.
    fn header<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyString>> {
        self.head.value(name.as_bytes()).map(|v| latin1_str(py, v))
    }

    /// Every value of header `name`, in order, as latin-1 text.
    fn header_values<'py>(&self, py: Python<'py>, name: &str) -> Vec<Bound<'py, PyString>> {
        self.head
            .values(name.as_bytes())
            .map(|v| latin1_str(py, v))
            .collect()
    }

    /// The first cookie called `name` (all Cookie headers, parsed once per request).
    fn cookie(&self, name: &str) -> Option<&str> {
        self.head.cookie(name)
    }

    /// Every cookie called `name`, in order, at most 8.
    fn cookies(&self, name: &str) -> Vec<&str> {
        self.head.cookies(name)
    }

    /// The raw header pairs minus the names in `drop` (lower-case) and the names listed in any
    /// Connection header: what may go on to the origin, byte for byte.
    fn forward_headers<'py>(
        &self,
        py: Python<'py>,
        drop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let names: Vec<Bound<'py, PyString>> = drop
            .try_iter()?
            .map(|n| {
                n?.cast_into::<PyString>()
                    .map_err(|_| PyTypeError::new_err("drop must hold str header names"))
            })
            .collect::<PyResult<_>>()?;
        let names: Vec<&[u8]> = names
            .iter()
            .map(|n| n.to_str().map(str::as_bytes))
            .collect::<PyResult<_>>()?;
        let keep = self.head.forward_indices(&names);
        let out = PyList::empty(py);
        for i in keep {
            match &self.items {
                Some(items) => out.append(items[i].bind(py))?,
                None => {
                    let (k, v) = self.head.header_at(i);
                    out.append((PyBytes::new(py, k), PyBytes::new(py, v)))?
                }
            }
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        // Method and path only: headers carry cookies and tokens.
        format!(
            "Request({} {:?})",
            crate::error::bounded(&self.head.method, 16),
            crate::error::bounded(&String::from_utf8_lossy(&self.head.raw_path), 64)
        )
    }
}
