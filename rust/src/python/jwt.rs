//! `Verifier`, `verify`, `encode` and the base64url helpers: argument conversion around
//! [`crate::jwt`]; the claims dict is built by [`super::claims`].

use std::collections::HashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use super::claims;
use super::convert::bytes_of;
use super::errors::{config_err, jwt_err, jwt_exception, kinded, with_kind};
use crate::error::JwtError;
use crate::jwt::b64;
use crate::jwt::seconds::Seconds;
use crate::jwt::{self, Alg, AlgSet, HmacKey, KeySet, Policy, DEFAULT_MAX_LENGTH};

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
                kinded(
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
    interned: Option<&claims::ExpectedStrings>,
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
        claims::claims_dict(py, payload, v, interned)
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
    interned: claims::ExpectedStrings,
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
        let interned = claims::ExpectedStrings::new(key.py(), &inner.policy);
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
pub fn encode(
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
