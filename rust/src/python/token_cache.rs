//! The verified-token cache of a `Verifier` (`cache_size`): a token seen again skips the
//! signature check and the JSON parse, and pays a lookup and a copy of its claims.
//!
//! Only what fully verified gets in. The key is the whole token, so only the identical token
//! hits. On every hit the registered claims are checked again against `now` by the same
//! [`crate::jwt::Verifier::check_claims`] the full path ends with (an entry never outlives its
//! `exp`), and, for a key set that changes (a JWKS client), the key the current set selects for
//! the token's `alg` and `kid` must still be the key that verified it, else the entry is dropped
//! and the token verified afresh. The
//! claims handed out are a copy (nested dicts and lists too), so the caller may change them.
//!
//! Memory: at most `cache_size` entries of at most `max_length` token bytes plus their claims.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::jwt::claims::Registered;
use crate::jwt::Alg;

/// A token that verified: its claims (never handed out, only copies of it), what the registered
/// claims were, and which public key verified it.
pub(crate) struct Entry {
    claims: Py<PyDict>,
    /// True when some claim holds a dict or a list, which a shallow copy would share.
    nested: bool,
    pub(crate) registered: Registered,
    /// The header's `alg` and `kid`, to select the key again on a hit.
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    pub(crate) key_fingerprint: Option<u64>,
}

/// Bounded and shared between threads; S3-FIFO eviction (quick_cache).
pub(crate) struct TokenCache {
    entries: quick_cache::sync::Cache<Box<[u8]>, Arc<Entry>>,
}

fn has_containers(d: &Bound<'_, PyDict>) -> bool {
    d.values()
        .iter()
        .any(|v| v.is_instance_of::<PyDict>() || v.is_instance_of::<PyList>())
}

/// A copy of `obj` in which every dict and list is new (strings and numbers are immutable and
/// shared). Depth is bounded by the claims walker (32).
fn deep_copy<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        let out = PyDict::new(obj.py());
        for (k, v) in d.iter() {
            out.set_item(k, deep_copy(&v)?)?;
        }
        return Ok(out.into_any());
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let items = l
            .iter()
            .map(|v| deep_copy(&v))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(obj.py(), items)?.into_any());
    }
    Ok(obj.clone())
}

fn copy_claims<'py>(d: &Bound<'py, PyDict>, nested: bool) -> PyResult<Bound<'py, PyDict>> {
    if nested {
        Ok(deep_copy(d.as_any())?.cast_into::<PyDict>()?)
    } else {
        d.copy()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    pub(crate) fn get(&self, token: &[u8]) -> Option<Arc<Entry>> {
        self.entries.get(token)
    }

    pub(crate) fn remove(&self, token: &[u8]) {
        self.entries.remove(token);
    }

    /// Remembers a verified token; the caller keeps `claims` (the cache stores its own copy).
    pub(crate) fn insert(
        &self,
        token: &[u8],
        claims: &Bound<'_, PyDict>,
        registered: Registered,
        alg: Alg,
        kid: Option<String>,
        key_fingerprint: Option<u64>,
    ) -> PyResult<()> {
        let nested = has_containers(claims);
        let entry = Entry {
            claims: copy_claims(claims, nested)?.unbind(),
            nested,
            registered,
            alg,
            kid,
            key_fingerprint,
        };
        self.entries.insert(token.into(), Arc::new(entry));
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.entries.capacity()
    }
}

impl Entry {
    /// The caller's own copy of the claims.
    pub(crate) fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        copy_claims(self.claims.bind(py), self.nested)
    }
}
