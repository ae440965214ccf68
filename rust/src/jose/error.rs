//! One error type for key parsing, key selection and signature verification.
//!
//! Each error carries a [`ErrorKind`] (what the caller must do differently) and a short message.
//! Messages never contain key material and never more than a few characters of caller-supplied
//! text (a `kid`, an `alg`), because they end up in logs and HTTP responses.

use std::fmt;

/// What went wrong, in the terms a caller answers differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not PEM / DER / JSON / base64url as the format requires (also: duplicate JSON members).
    Malformed,
    /// A well-formed key of a type or curve this library does not verify with (kty `oct`,
    /// X25519, Ed448, secp256k1, an unknown SPKI algorithm, a compressed EC point, an RSA key
    /// over 8192 bits, ...).
    UnsupportedKey,
    /// An RSA key under 2048 bits, or one with the ROCA fingerprint (CVE-2017-15361).
    WeakKey,
    /// A key that cannot be a valid public key: an EC point off its curve, a bad RSA exponent,
    /// coordinates of the wrong length, an `x5c` leaf that is not the JWK's own key, an `alg`
    /// member that does not fit the key's type or curve.
    InvalidKey,
    /// Private-key material where a public key is expected (a JWK with `d`, `p`, `q`, ... or `k`;
    /// a PEM `PRIVATE KEY` block). Refused, never silently used.
    PrivateKey,
    /// `use` is not `sig`, or `key_ops` is present without `verify`.
    KeyUsage,
    /// The algorithm is unknown, `none`, an HMAC algorithm, or cannot be verified with this key.
    AlgorithmNotAllowed,
    /// No key in the set fits the token's `alg` (type and curve) and `kid`.
    KeyNotFound,
    /// Several keys fit and the token does not say which (no `kid`, or a `kid` used twice).
    AmbiguousKey,
    /// The signature does not verify, or has the wrong length or encoding.
    InvalidSignature,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "Malformed",
            ErrorKind::UnsupportedKey => "UnsupportedKey",
            ErrorKind::WeakKey => "WeakKey",
            ErrorKind::InvalidKey => "InvalidKey",
            ErrorKind::PrivateKey => "PrivateKey",
            ErrorKind::KeyUsage => "KeyUsage",
            ErrorKind::AlgorithmNotAllowed => "AlgorithmNotAllowed",
            ErrorKind::KeyNotFound => "KeyNotFound",
            ErrorKind::AmbiguousKey => "AmbiguousKey",
            ErrorKind::InvalidSignature => "InvalidSignature",
        }
    }
}

/// A key, key-selection or signature error: a kind and a short, key-free message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Malformed, message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::UnsupportedKey, message)
    }

    pub(crate) fn invalid_key(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidKey, message)
    }

    pub(crate) fn not_allowed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::AlgorithmNotAllowed, message)
    }

    pub(crate) fn bad_signature(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidSignature, message)
    }

    /// The same error with `context: ` put before its message.
    pub(crate) fn context(self, context: &str) -> Error {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shortens caller- or token-supplied text (a `kid`, an `alg`) before it goes into a message.
pub(crate) fn bounded(text: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    format!("{out:?}")
}
