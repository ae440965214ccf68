//! Builds the claims `dict` straight from the JSON bytes in one pass, picking out the registered
//! claims on the way.
//!
//! Duplicate member names are caught for free: a `dict` that does not grow on insert already had
//! the key. Numbers become Python objects exactly as `json.loads` makes them (ints of any size,
//! floats correctly rounded); NaN and Infinity are refused.

use jiter::{Jiter, NumberAny, NumberInt, Peek};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use pyo3::{intern, IntoPyObjectExt};

use crate::error::JwtError;
use crate::json::{self, AudClaim, IssClaim, NumClaim, Registered};
use crate::jwt::Policy;
use crate::seconds::Seconds;

const MAX_DEPTH: usize = 64;
const WHAT: &str = "claims are not valid JSON";

fn bad(_: jiter::JiterError) -> JwtError {
    JwtError::malformed(WHAT)
}

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

fn number<'py>(py: Python<'py>, n: NumberAny) -> Result<Bound<'py, PyAny>, JwtError> {
    match n {
        NumberAny::Int(NumberInt::Int(i)) => i.into_bound_py_any(py).map_err(py_err),
        NumberAny::Int(NumberInt::BigInt(b)) => b.into_bound_py_any(py).map_err(py_err),
        NumberAny::Float(f) => f.into_bound_py_any(py).map_err(py_err),
    }
}

fn value<'py>(
    py: Python<'py>,
    j: &mut Jiter,
    peek: Peek,
    depth: usize,
) -> Result<Bound<'py, PyAny>, JwtError> {
    match peek {
        Peek::Null => {
            j.known_null().map_err(bad)?;
            Ok(py.None().into_bound(py))
        }
        Peek::True | Peek::False => Ok(PyBool::new(py, j.known_bool(peek).map_err(bad)?)
            .to_owned()
            .into_any()),
        Peek::String => Ok(new_str(py, j.known_str().map_err(bad)?).into_any()),
        Peek::Array => {
            if depth >= MAX_DEPTH {
                return Err(JwtError::malformed("JSON nested too deeply"));
            }
            let list = PyList::empty(py);
            let mut next = j.known_array().map_err(bad)?;
            while let Some(p) = next {
                list.append(value(py, j, p, depth + 1)?).map_err(py_err)?;
                next = j.array_step().map_err(bad)?;
            }
            Ok(list.into_any())
        }
        Peek::Object => {
            if depth >= MAX_DEPTH {
                return Err(JwtError::malformed("JSON nested too deeply"));
            }
            let dict = PyDict::new(py);
            let mut key = j.known_object().map_err(bad)?;
            while let Some(k) = key {
                let k = key_str(py, k);
                let p = j.peek().map_err(bad)?;
                let v = value(py, j, p, depth + 1)?;
                insert_unique(&dict, k, v)?;
                key = j.next_key().map_err(bad)?;
            }
            Ok(dict.into_any())
        }
        _ => number(py, j.known_number(peek).map_err(bad)?),
    }
}

fn insert_unique<'py>(
    dict: &Bound<'py, PyDict>,
    k: Bound<'py, PyString>,
    v: Bound<'py, PyAny>,
) -> Result<(), JwtError> {
    let before = dict.len();
    dict.set_item(k, v).map_err(py_err)?;
    if dict.len() == before {
        return Err(JwtError::malformed("duplicate member name in JSON"));
    }
    Ok(())
}

fn num_claim(n: &NumberAny) -> NumClaim {
    NumClaim::Num(match n {
        NumberAny::Int(NumberInt::Int(i)) => return NumClaim::Int(*i),
        NumberAny::Int(NumberInt::BigInt(b)) => {
            if b.sign() == num_bigint::Sign::Minus {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        NumberAny::Float(f) => *f,
    })
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

#[derive(Clone, Copy)]
enum Field {
    Exp,
    Nbf,
    Iat,
    Iss,
    Aud,
    Other,
}

/// Parses the claims object into a `dict` and the registered claims.
/// `now` lets an expired or not-yet-valid token stop the parse as soon as its `exp`/`nbf` is
/// read: the rejection then costs no dict building (the token's MAC has already verified).
pub fn claims_dict<'py>(
    py: Python<'py>,
    data: &[u8],
    policy: &Policy,
    now: Seconds,
    interned: Option<&ExpectedStrings>,
) -> Result<(Bound<'py, PyDict>, Registered), JwtError> {
    let position = |list: &Option<Vec<String>>, s: &str| {
        list.as_ref().and_then(|e| e.iter().position(|x| x == s))
    };
    // The expected issuer/audience as ready-made `str` objects: a token that matches (the usual
    // case) shares them instead of allocating its own.
    let reuse =
        |strs: Option<&Vec<Py<PyString>>>, i: Option<usize>, s: &str| -> Bound<'py, PyAny> {
            match i.and_then(|i| strs.and_then(|v| v.get(i))) {
                Some(cached) => cached.bind(py).clone().into_any(),
                None => new_str(py, s).into_any(),
            }
        };
    let mut j = Jiter::new(data);
    if j.peek().map_err(bad)? != Peek::Object {
        return Err(JwtError::malformed("claims are not a JSON object"));
    }
    // Sized for a typical token's claims (up to 10) so the dict is not resized while filling it;
    // a larger presize measured slower (a bigger table to allocate and clear).
    // SAFETY: _PyDict_NewPresized returns a new reference or NULL with an exception set.
    let dict = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::_PyDict_NewPresized(8))
            .map_err(py_err)?
            .cast_into_unchecked::<PyDict>()
    };
    let mut reg = Registered::default();
    let mut key = j.known_object().map_err(bad)?;
    while let Some(k) = key {
        let field = match k {
            "exp" => Field::Exp,
            "nbf" => Field::Nbf,
            "iat" => Field::Iat,
            "iss" => Field::Iss,
            "aud" => Field::Aud,
            _ => Field::Other,
        };
        let k = key_str(py, k);
        let p = j.peek().map_err(bad)?;
        let v = match (field, p) {
            (Field::Exp | Field::Nbf | Field::Iat, _) => {
                let (claim, v) = if p.is_num() {
                    let n = j.known_number(p).map_err(bad)?;
                    let claim = num_claim(&n);
                    let t = match claim {
                        NumClaim::Int(i) => Some(Seconds::Int(i)),
                        NumClaim::Num(f) => Some(Seconds::Float(f)),
                        _ => None,
                    };
                    if let Some(t) = t {
                        let verdict = match field {
                            Field::Exp if t.le(now.plus(-policy.leeway)) => Some(JwtError::Expired),
                            Field::Nbf if t.gt(now.plus(policy.leeway)) => {
                                Some(JwtError::NotYetValid)
                            }
                            _ => None,
                        };
                        if let Some(verdict) = verdict {
                            // Malformed still wins over expired: check the rest without building it.
                            let this = field_name(field);
                            if dict.contains(this).unwrap_or(true) {
                                return Err(JwtError::malformed("duplicate member name in JSON"));
                            }
                            json::finish_object(&mut j, |name| {
                                name == this || dict.contains(name).unwrap_or(true)
                            })?;
                            return Err(verdict);
                        }
                    }
                    (claim, number(py, n)?)
                } else {
                    (NumClaim::NotANumber, value(py, &mut j, p, 1)?)
                };
                match field {
                    Field::Exp => reg.exp = claim,
                    Field::Nbf => reg.nbf = claim,
                    _ => reg.iat = claim,
                }
                v
            }
            (Field::Iss, Peek::String) => {
                let s = j.known_str().map_err(bad)?;
                let i = position(&policy.issuer, s);
                reg.iss = IssClaim::Matched(i.is_some());
                reuse(interned.map(|x| &x.issuer), i, s)
            }
            (Field::Iss, _) => {
                reg.iss = IssClaim::Invalid;
                value(py, &mut j, p, 1)?
            }
            (Field::Aud, Peek::String) => {
                let s = j.known_str().map_err(bad)?;
                let i = position(&policy.audience, s);
                reg.aud = AudClaim::Matched(i.is_some());
                reuse(interned.map(|x| &x.audience), i, s)
            }
            (Field::Aud, _) => {
                let v = value(py, &mut j, p, 1)?;
                reg.aud = aud_from_py(&v);
                v
            }
            (Field::Other, _) => value(py, &mut j, p, 1)?,
        };
        insert_unique(&dict, k, v)?;
        key = j.next_key().map_err(bad)?;
    }
    j.finish().map_err(bad)?;
    Ok((dict, reg))
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Exp => "exp",
        Field::Nbf => "nbf",
        _ => "",
    }
}

fn aud_from_py(v: &Bound<'_, PyAny>) -> AudClaim {
    let Ok(list) = v.cast::<PyList>() else {
        return AudClaim::Invalid;
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        match item
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok().map(str::to_owned))
        {
            Some(s) => out.push(s),
            None => return AudClaim::Invalid,
        }
    }
    AudClaim::List(out)
}
