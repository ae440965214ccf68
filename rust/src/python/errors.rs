//! The exception tree users see, and the one mapping from an error kind to the exception raised
//! for it. Errors stay plain Rust values ([`crate::error::Error`], [`JwtError`], ...) until they
//! reach this module, so the success path never creates an exception object.
//!
//! Every exception from the core can be asked for `.kind` (the snake_case name of its
//! [`ErrorKind`]): a class attribute on the token and upstream classes (set once at import, so
//! raising costs nothing more), an instance attribute on the `ValueError`s raised for
//! configuration and path errors.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyString, PyType};

use crate::error::{ConfigError, Error, ErrorKind, JwtError};

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
create_exception!(
    gateway,
    KeyNotFound,
    JWTError,
    "No key in the key set fits the token's kid and alg (or several fit and the token has no kid)."
);
create_exception!(
    gateway,
    KeySetUnavailable,
    JWTError,
    "The key set could not be fetched and no usable copy is cached (answer 503, not 401)."
);

create_exception!(
    gateway,
    UpstreamError,
    PyException,
    "The origin could not be reached or answered badly (502)."
);
create_exception!(
    gateway,
    UpstreamTimeout,
    UpstreamError,
    "The origin did not answer within the route's timeout (504)."
);
create_exception!(
    gateway,
    UpstreamConnectError,
    UpstreamError,
    "The origin refused or failed the connection (502)."
);

create_exception!(
    gateway,
    UpstreamTLSError,
    UpstreamConnectError,
    "The TLS handshake with an HTTPS origin failed (502); `.kind` says which check: \
     tls_unknown_issuer, tls_expired, tls_name_mismatch or tls_handshake."
);

/// The exception class raised for `kind`, or `None` for the kinds raised as a `ValueError`
/// carrying `.kind` (configuration and request-path errors).
fn class_of(py: Python<'_>, kind: ErrorKind) -> Option<Bound<'_, PyType>> {
    Some(match kind {
        ErrorKind::MalformedToken => py.get_type::<MalformedToken>(),
        ErrorKind::InvalidSignature => py.get_type::<InvalidSignature>(),
        ErrorKind::AlgorithmNotAllowed => py.get_type::<AlgorithmNotAllowed>(),
        ErrorKind::ExpiredToken => py.get_type::<ExpiredToken>(),
        ErrorKind::NotYetValid => py.get_type::<NotYetValid>(),
        ErrorKind::InvalidIssuer => py.get_type::<InvalidIssuer>(),
        ErrorKind::InvalidAudience => py.get_type::<InvalidAudience>(),
        ErrorKind::MissingClaim => py.get_type::<MissingClaim>(),
        ErrorKind::KeyNotFound => py.get_type::<KeyNotFound>(),
        ErrorKind::KeySetUnavailable => py.get_type::<KeySetUnavailable>(),
        ErrorKind::UpstreamTimeout => py.get_type::<UpstreamTimeout>(),
        ErrorKind::UpstreamConnect => py.get_type::<UpstreamConnectError>(),
        ErrorKind::UpstreamFailed => py.get_type::<UpstreamError>(),
        ErrorKind::TlsUnknownIssuer
        | ErrorKind::TlsExpired
        | ErrorKind::TlsNameMismatch
        | ErrorKind::TlsHandshake => py.get_type::<UpstreamTLSError>(),
        ErrorKind::NotAbsolute
        | ErrorKind::BadPercentEncoding
        | ErrorKind::EncodedSlash
        | ErrorKind::Backslash
        | ErrorKind::ControlCharacter
        | ErrorKind::Semicolon
        | ErrorKind::PathTooLong
        | ErrorKind::WeakKey
        | ErrorKind::PublicKeyAsSecret
        | ErrorKind::EmptyKey
        | ErrorKind::UnknownAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::BadOption
        | ErrorKind::BadPattern
        | ErrorKind::MalformedKey
        | ErrorKind::UnsupportedKey
        | ErrorKind::InvalidKey
        | ErrorKind::PrivateKey
        | ErrorKind::KeyUsage
        | ErrorKind::KeyTypeMismatch => return None,
    })
}

/// The exception instance for `kind` with `message`, made eagerly: a lazily-built PyErr costs a
/// boxed closure, a formatted message and a second call on the way out, which on the rejection
/// paths (bad MAC, expired) is a quarter of the whole verification.
#[cold]
#[inline(never)]
fn exception(py: Python<'_>, kind: ErrorKind, message: Bound<'_, PyString>) -> PyErr {
    match class_of(py, kind) {
        Some(class) => match class.call1((message,)) {
            Ok(exc) => {
                // One class for the four TLS kinds: the instance says which.
                if is_tls(kind) {
                    let _ = exc.setattr(intern!(py, "kind"), kind.as_str());
                }
                PyErr::from_value(exc)
            }
            Err(err) => err,
        },
        None => {
            let err = PyValueError::new_err(message.unbind());
            // Setting an attribute on a fresh ValueError cannot fail short of running out of
            // memory; the error is still raised (without a kind) if it does.
            let _ = err.value(py).setattr(intern!(py, "kind"), kind.as_str());
            err
        }
    }
}

impl From<Error> for PyErr {
    #[cold]
    fn from(e: Error) -> PyErr {
        Python::attach(|py| exception(py, e.kind, PyString::new(py, &e.message)))
    }
}

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

/// The `JWTError` subclass instance for `e` (holding the GIL already: the verify hot path).
#[cold]
#[inline(never)]
pub(crate) fn jwt_exception(py: Python<'_>, e: JwtError) -> PyErr {
    let msg = fixed_message(py, &e).unwrap_or_else(|| PyString::new(py, &e.to_string()));
    exception(py, e.kind(), msg)
}

#[cold]
#[inline(never)]
pub(crate) fn jwt_err(e: JwtError) -> PyErr {
    Python::attach(|py| jwt_exception(py, e))
}

/// A `ValueError` carrying `.kind` (or the kind's own class), for a message made here.
#[cold]
pub(crate) fn kinded(kind: ErrorKind, message: String) -> PyErr {
    Error::new(kind, message).into()
}

/// A key error met while *building* keys (PEM, DER, JWK, JWK Set) as a `ValueError` with
/// `.kind`: "no usable key" and "several keys" are key faults here (`empty_key`, `invalid_key`),
/// never the `KeyNotFound` a token gets.
#[cold]
pub(crate) fn key_err(e: crate::jose::Error) -> PyErr {
    use crate::jose::ErrorKind as K;
    let kind = match e.kind() {
        K::KeyNotFound => ErrorKind::EmptyKey,
        K::AmbiguousKey => ErrorKind::InvalidKey,
        _ => return Error::from(e).into(),
    };
    Error::new(kind, e.message()).into()
}

#[cold]
pub(crate) fn config_err(e: ConfigError) -> PyErr {
    Error::from(e).into()
}

/// Gives an error raised while building a verifier a `.kind` if it has none yet (a wrong type
/// of argument is a `bad_option`), so every construction error can be told apart by kind.
#[cold]
pub(crate) fn with_kind(py: Python<'_>, err: PyErr) -> PyErr {
    let value = err.value(py);
    if !value.hasattr(intern!(py, "kind")).unwrap_or(true) {
        let _ = value.setattr(intern!(py, "kind"), ErrorKind::BadOption.as_str());
    }
    err
}

fn is_tls(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::TlsUnknownIssuer
            | ErrorKind::TlsExpired
            | ErrorKind::TlsNameMismatch
            | ErrorKind::TlsHandshake
    )
}

/// The exception instance (not raised) for an upstream failure, as `Upstream.drain` hands it over.
pub(crate) fn upstream_exception<'py>(
    py: Python<'py>,
    kind: ErrorKind,
    message: String,
) -> Bound<'py, PyAny> {
    PyErr::from(Error::new(kind, message))
        .into_value(py)
        .into_bound(py)
        .into_any()
}

/// At import: each token and upstream class gets its kind as a class attribute, and the module
/// gets `ERROR_STATUS` (kind -> HTTP status, from [`ErrorKind::http_status`], the one place).
pub(crate) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let status = pyo3::types::PyDict::new(py);
    for kind in ErrorKind::ALL {
        status.set_item(kind.as_str(), kind.http_status())?;
        if let Some(class) = class_of(py, kind).filter(|_| !is_tls(kind)) {
            class.setattr(intern!(py, "kind"), kind.as_str())?;
        }
    }
    // The class's own kind, for an instance made without one (the core always sets it).
    py.get_type::<UpstreamTLSError>()
        .setattr(intern!(py, "kind"), ErrorKind::TlsHandshake.as_str())?;
    m.add("ERROR_STATUS", status)?;
    Ok(())
}
