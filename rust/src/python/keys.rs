//! `KeySet`: asymmetric public keys from a JWK Set, one JWK or PEM, as one immutable value that
//! verifiers share (an `Arc` of [`crate::jose::KeySet`]); and the conversion of whatever a
//! caller passes as a key (a secret, PEM text, a JWK dict, a `KeySet`, a key-set source) into
//! the keys a verifier holds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString};

use super::convert::bytes_of;
use super::errors::{config_err, key_err, kinded};
use crate::error::ErrorKind;
use crate::jose;
use crate::jwt::{self, AlgSet, HmacKey};

/// The method a key-set source (such as `gateway.JWKSClient`) has: called with `None` for the
/// current set, and with a token's `kid` when no key fitted (the source may refetch).
pub(crate) const SOURCE_METHOD: &str = "_gateway_key_set";

/// An immutable set of public keys (RFC 7517): the keys a token may be verified with, selected by
/// the token's `alg` (which fixes the key type and curve) and `kid`.
#[pyclass(frozen, module = "gateway", name = "KeySet")]
pub struct KeySet {
    pub(crate) inner: Arc<jose::KeySet>,
}

/// JSON text of a JWK or JWK Set given as `str`, `bytes` or a mapping.
fn json_of<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, [u8]>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Ok(Cow::Borrowed(bytes_of(obj, what)?));
    }
    if obj.cast::<PyMapping>().is_ok() {
        let mut out = Vec::with_capacity(512);
        super::jwt::write_json(obj, &mut out, 1)?;
        return Ok(Cow::Owned(out));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a dict, str or bytes"
    )))
}

fn alg_of(algorithm: Option<&str>) -> PyResult<Option<jose::Alg>> {
    algorithm
        .map(|a| jose::Alg::from_name(a).map_err(key_err))
        .transpose()
}

impl KeySet {
    pub(crate) fn wrap(inner: jose::KeySet) -> KeySet {
        KeySet {
            inner: Arc::new(inner),
        }
    }
}

#[pymethods]
impl KeySet {
    /// A key set from a JWK Set (RFC 7517 §5): a dict, or its JSON as str/bytes. Entries that are
    /// not signature-verification keys this library supports are skipped (see `skipped`); a set
    /// with none left, or with private-key members anywhere, raises ValueError with `.kind`.
    #[staticmethod]
    fn from_jwks(jwks: &Bound<'_, PyAny>) -> PyResult<KeySet> {
        let json = json_of(jwks, "jwks")?;
        jose::KeySet::from_jwks(&json)
            .map(KeySet::wrap)
            .map_err(key_err)
    }

    /// A key set of one JWK (RFC 7517 §4): a dict, or its JSON as str/bytes.
    #[staticmethod]
    fn from_jwk(jwk: &Bound<'_, PyAny>) -> PyResult<KeySet> {
        let json = json_of(jwk, "jwk")?;
        jose::KeySet::from_jwk(&json)
            .map(KeySet::wrap)
            .map_err(key_err)
    }

    /// A key set of one public key in PEM (RFC 7468): SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`
    /// or an X.509 `CERTIFICATE` (its subject public key). `kid` names it for tokens that carry
    /// one; `algorithm` restricts it to one algorithm.
    #[staticmethod]
    #[pyo3(signature = (pem, kid=None, algorithm=None))]
    fn from_pem(
        pem: &Bound<'_, PyAny>,
        kid: Option<&str>,
        algorithm: Option<&str>,
    ) -> PyResult<KeySet> {
        let text = bytes_of(pem, "pem")?;
        jose::KeySet::from_pem(text, kid, alg_of(algorithm)?)
            .map(KeySet::wrap)
            .map_err(key_err)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Each key's `kid`, in order (None for a key without one).
    #[getter]
    fn kids(&self) -> Vec<Option<String>> {
        self.inner
            .keys()
            .iter()
            .map(|k| k.kid().map(str::to_owned))
            .collect()
    }

    /// The algorithms some key of the set can verify, in RFC 7518 order.
    #[getter]
    fn algorithms(&self) -> Vec<&'static str> {
        let mut out: Vec<jose::Alg> = self
            .inner
            .keys()
            .iter()
            .flat_map(|k| k.algorithms())
            .collect();
        out.sort();
        out.dedup();
        out.into_iter().map(jose::Alg::name).collect()
    }

    /// Entries of the JWK Set that are not keys here: `(kid, why)`, e.g. an encryption key or an
    /// unsupported curve.
    #[getter]
    fn skipped(&self) -> Vec<(Option<String>, String)> {
        self.inner
            .skipped()
            .iter()
            .map(|s| (s.kid.clone(), s.error.message().to_owned()))
            .collect()
    }

    /// One dict per key, without key material: `kid`, `kty`, `crv` (EC/OKP) or `bits` (RSA),
    /// and `alg` (the key's own restriction, or None).
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for key in self.inner.keys() {
            let d = PyDict::new(py);
            let kind = key.kind();
            d.set_item("kid", key.kid())?;
            d.set_item("kty", kind.kty())?;
            match kind.crv() {
                Some(crv) => d.set_item("crv", crv)?,
                None => d.set_item("bits", key.public_key().bits())?,
            }
            d.set_item("alg", key.alg().map(jose::Alg::name))?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let kids: Vec<String> = self
            .inner
            .keys()
            .iter()
            .map(|k| match k.kid() {
                Some(kid) => format!("{:?}", crate::error::bounded(kid, 24)),
                None => "None".to_owned(),
            })
            .collect();
        format!(
            "KeySet({} key(s), kids=[{}])",
            self.inner.len(),
            kids.join(", ")
        )
    }
}

/// Where a verifier's keys come from.
#[allow(clippy::large_enum_variant)] // made once per verifier
pub(crate) enum KeySource {
    /// Fixed when the verifier is built.
    Static(jwt::KeySet),
    /// An object with [`SOURCE_METHOD`], asked for the current set at each verification.
    Dynamic(Py<PyAny>),
}

/// True for a mapping that is a JWK (`kty`) or a JWK Set (`keys`), not a `{kid: secret}` map.
fn is_jwk_mapping(mapping: &Bound<'_, PyMapping>) -> PyResult<bool> {
    for member in ["kty", "keys"] {
        if mapping.contains(member)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Public keys from key text: a JWK or JWK Set as JSON, PEM, or DER.
fn public_keys_from_text(text: &[u8]) -> Result<jose::KeySet, jose::Error> {
    let trimmed = text.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        return jose::KeySet::from_jwk_or_jwks(trimmed);
    }
    if memchr::memmem::find(text, b"-----BEGIN ").is_some() {
        return jose::KeySet::from_pem(text, None, None);
    }
    jose::public_key_from_der(text)
        .and_then(|k| jose::Key::new(k, None, None))
        .map(jose::KeySet::single)
}

/// Refuses a static key set that cannot verify any of `algs` (say an EC key with RS256 only).
fn check_fits(set: &jose::KeySet, algs: AlgSet) -> PyResult<()> {
    if set.is_empty() {
        return Err(kinded(ErrorKind::EmptyKey, "the key set is empty".into()));
    }
    let fits = algs
        .iter()
        .filter_map(jwt::Alg::asymmetric)
        .any(|a| set.keys().iter().any(|k| k.fits(a)));
    if fits {
        return Ok(());
    }
    let have: Vec<&str> = set
        .keys()
        .iter()
        .map(|k| crate::jose::keys::kind_label(k.kind()))
        .collect();
    let want: Vec<&str> = algs.iter().map(jwt::Alg::name).collect();
    Err(kinded(
        ErrorKind::KeyTypeMismatch,
        format!(
            "no key can verify {} (the keys are: {})",
            want.join(", "),
            have.join(", ")
        ),
    ))
}

/// The keys a verifier is built with, from what the caller passed as `key`:
/// - a `KeySet`;
/// - str/bytes: an HMAC secret when the algorithms are HS*, else public-key text (PEM, a JWK or
///   JWK Set as JSON, or DER) — a public key is never taken as a secret (the secret check
///   refuses key material in any of those forms);
/// - a mapping: a JWK or JWK Set when it has `kty` or `keys`, else `{kid: secret}`;
/// - an object with `_gateway_key_set` (a key-set source such as `JWKSClient`).
pub(crate) fn build_keys(
    key: &Bound<'_, PyAny>,
    algs: AlgSet,
    allow_weak: bool,
) -> PyResult<KeySource> {
    if let Ok(set) = key.cast::<KeySet>() {
        let inner = set.get().inner.clone();
        check_fits(&inner, algs)?;
        return Ok(KeySource::Static(jwt::KeySet::Public(inner)));
    }
    if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        let text = bytes_of(key, "key")?;
        if algs.has_asymmetric() && !algs.has_hmac() {
            if !jose::is_asymmetric_key_material(text) {
                let alg = algs.iter().next().map_or("RS256", jwt::Alg::name);
                return Err(kinded(
                    ErrorKind::KeyTypeMismatch,
                    format!("{alg} needs a public key (PEM, a JWK or JWK Set, DER); the key given is not one (a shared secret verifies only HS256/384/512)"),
                ));
            }
            let set = public_keys_from_text(text).map_err(key_err)?;
            check_fits(&set, algs)?;
            return Ok(KeySource::Static(jwt::KeySet::Public(Arc::new(set))));
        }
        return HmacKey::new(text, algs, allow_weak)
            .map(|k| KeySource::Static(jwt::KeySet::Single(k)))
            .map_err(config_err);
    }
    if let Ok(mapping) = key.cast::<PyMapping>() {
        if is_jwk_mapping(mapping)? {
            let json = json_of(key, "key")?;
            let set = if mapping.contains("kty")? {
                jose::KeySet::from_jwk(&json)
            } else {
                jose::KeySet::from_jwks(&json)
            }
            .map_err(key_err)?;
            check_fits(&set, algs)?;
            return Ok(KeySource::Static(jwt::KeySet::Public(Arc::new(set))));
        }
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
        return Ok(KeySource::Static(jwt::KeySet::ByKid(map)));
    }
    if key.hasattr(SOURCE_METHOD)? {
        return Ok(KeySource::Dynamic(key.clone().unbind()));
    }
    Err(PyTypeError::new_err(
        "key must be a secret (str/bytes), public-key text (PEM, JWK JSON), a JWK dict, a KeySet, a JWKSClient, or a mapping of kid to secret",
    ))
}
