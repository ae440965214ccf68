//! The claims as a Python `dict`, built straight from the JSON bytes by the one claims walker
//! ([`crate::walker::walk_claims`]) through a sink that makes Python objects: the same rules as
//! `cargo test` and the fuzz targets exercise, with no intermediate value tree.
//!
//! Numbers become Python objects exactly as `json.loads` makes them (ints of any size, floats
//! correctly rounded); NaN and Infinity are refused by the walker.

use jiter::{NumberAny, NumberInt};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use pyo3::{intern, IntoPyObjectExt};

use crate::error::JwtError;
use crate::jwt::claims::{self as walker, Known, Registered, Sink};
use crate::jwt::{Policy, Verifier};

const WHAT: &str = "claims are not valid JSON";

fn py_err(_: PyErr) -> JwtError {
    JwtError::malformed(WHAT)
}

fn new_str<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    if s.is_ascii() {
        // SAFETY: `s` was just checked to be ASCII.
        unsafe { jiter::pystring_ascii_new(py, s) }
    } else {
        PyString::new(py, s)
    }
}

/// Claim names common enough to share one interned `str` each.
fn key_str<'py>(py: Python<'py>, k: &str) -> Bound<'py, PyString> {
    let interned = match k {
        "sub" => intern!(py, "sub"),
        "iss" => intern!(py, "iss"),
        "aud" => intern!(py, "aud"),
        "exp" => intern!(py, "exp"),
        "nbf" => intern!(py, "nbf"),
        "iat" => intern!(py, "iat"),
        "jti" => intern!(py, "jti"),
        "roles" => intern!(py, "roles"),
        "scope" => intern!(py, "scope"),
        "name" => intern!(py, "name"),
        "email" => intern!(py, "email"),
        _ => return new_str(py, k),
    };
    interned.clone()
}

/// A verifier's expected issuers and audiences as Python strings, made once.
pub struct ExpectedStrings {
    pub issuer: Vec<Py<PyString>>,
    pub audience: Vec<Py<PyString>>,
}

impl ExpectedStrings {
    pub fn new(py: Python<'_>, policy: &Policy) -> Self {
        let make = |list: &Option<Vec<String>>| -> Vec<Py<PyString>> {
            list.iter()
                .flatten()
                .map(|s| PyString::new(py, s).unbind())
                .collect()
        };
        ExpectedStrings {
            issuer: make(&policy.issuer),
            audience: make(&policy.audience),
        }
    }
}

/// Builds Python objects; the top-level members go into `claims`.
struct PySink<'py, 'i> {
    py: Python<'py>,
    claims: Bound<'py, PyDict>,
    interned: Option<&'i ExpectedStrings>,
}

/// Inserts `k` unless the dict already has it: the dict's own size tells, at no extra cost.
fn insert_new<'py>(
    dict: &Bound<'py, PyDict>,
    k: Bound<'py, PyString>,
    v: Bound<'py, PyAny>,
) -> Result<(), JwtError> {
    let before = dict.len();
    dict.set_item(k, v).map_err(py_err)?;
    if dict.len() == before {
        return Err(walker::duplicate());
    }
    Ok(())
}

impl<'py> Sink for PySink<'py, '_> {
    const CHECKS_DUPLICATES: bool = true;
    type Value = Bound<'py, PyAny>;
    type Key = Bound<'py, PyString>;
    type Array = Bound<'py, PyList>;
    type Object = Bound<'py, PyDict>;

    fn key(&mut self, name: &str) -> Result<Self::Key, JwtError> {
        Ok(key_str(self.py, name))
    }
    fn null(&mut self) -> Result<Self::Value, JwtError> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn boolean(&mut self, b: bool) -> Result<Self::Value, JwtError> {
        Ok(PyBool::new(self.py, b).to_owned().into_any())
    }
    fn string(&mut self, s: &str, known: Known) -> Result<Self::Value, JwtError> {
        // The expected issuer/audience as ready-made `str` objects: a token that matches (the
        // usual case) shares them instead of allocating its own.
        let cached = match (known, self.interned) {
            (Known::Issuer(i), Some(x)) => x.issuer.get(i),
            (Known::Audience(i), Some(x)) => x.audience.get(i),
            _ => None,
        };
        Ok(match cached {
            Some(c) => c.bind(self.py).clone().into_any(),
            None => new_str(self.py, s).into_any(),
        })
    }
    fn number(&mut self, n: NumberAny) -> Result<Self::Value, JwtError> {
        match n {
            NumberAny::Int(NumberInt::Int(i)) => i.into_bound_py_any(self.py).map_err(py_err),
            NumberAny::Int(NumberInt::BigInt(b)) => b.into_bound_py_any(self.py).map_err(py_err),
            NumberAny::Float(f) => f.into_bound_py_any(self.py).map_err(py_err),
        }
    }
    fn array(&mut self) -> Result<Self::Array, JwtError> {
        Ok(PyList::empty(self.py))
    }
    fn push(&mut self, array: &mut Self::Array, v: Self::Value) -> Result<(), JwtError> {
        array.append(v).map_err(py_err)
    }
    fn end_array(&mut self, array: Self::Array) -> Self::Value {
        array.into_any()
    }
    fn object(&mut self) -> Result<Self::Object, JwtError> {
        Ok(PyDict::new(self.py))
    }
    fn insert(
        &mut self,
        object: &mut Self::Object,
        key: Self::Key,
        v: Self::Value,
    ) -> Result<(), JwtError> {
        insert_new(object, key, v)
    }
    fn end_object(&mut self, object: Self::Object) -> Self::Value {
        object.into_any()
    }
    fn claim(&mut self, key: Self::Key, v: Self::Value, _raw: &[u8]) -> Result<(), JwtError> {
        insert_new(&self.claims, key, v)
    }
}

/// Parses the claims object into a `dict` and the registered claims.
pub fn claims_dict<'py>(
    py: Python<'py>,
    data: &[u8],
    verifier: &Verifier,
    interned: Option<&ExpectedStrings>,
) -> Result<(Bound<'py, PyDict>, Registered), JwtError> {
    // Sized for a typical token's claims (up to 10) so the dict is not resized while filling it;
    // a larger presize measured slower (a bigger table to allocate and clear).
    // SAFETY: _PyDict_NewPresized returns a new reference or NULL with an exception set.
    let claims = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::_PyDict_NewPresized(8))
            .map_err(py_err)?
            .cast_into_unchecked::<PyDict>()
    };
    let mut sink = PySink {
        py,
        claims,
        interned,
    };
    let reg = walker::walk_claims(data, &verifier.expect(), &mut sink)?;
    Ok((sink.claims, reg))
}
