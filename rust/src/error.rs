//! What can go wrong, as one [`ErrorKind`] list with the HTTP status of each kind in one place
//! (as pingora's `ErrorType`), and [`Error`] (a kind and a message), the one error type that
//! crosses a boundary. Each stage keeps a detailed error value that converts into it:
//! [`JwtError`] (tokens: fixed messages, no allocation on the hot rejection paths),
//! [`ConfigError`] (building a verifier), `PathError`, `PatternError` and the upstream client's
//! failures. The bindings turn a kind into a Python exception in one place (`python/errors.rs`:
//! a class for tokens and origins, a `ValueError` with `.kind` otherwise), so no caller ever has
//! to read an error's wording to learn what happened.
//!
//! Messages are short, fixed-size sentences: they never contain the key and never more than a few
//! characters of the token, because they end up in logs and HTTP responses.

use std::fmt;

/// Every kind of error the core reports. `as_str` is the stable snake_case name Python sees
/// (`.kind`); `http_status` is the one place a kind becomes a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    // A token the gateway refuses.
    MalformedToken,
    InvalidSignature,
    AlgorithmNotAllowed,
    ExpiredToken,
    NotYetValid,
    InvalidIssuer,
    InvalidAudience,
    MissingClaim,
    /// No key in the key set fits the token's `alg` and `kid` (or several do and it names none).
    KeyNotFound,
    /// The key set could not be fetched and no usable copy is cached: the IdP's fault, not the
    /// token's, so a 503 rather than a 401.
    KeySetUnavailable,
    // A request path the gateway refuses.
    NotAbsolute,
    BadPercentEncoding,
    EncodedSlash,
    Backslash,
    ControlCharacter,
    Semicolon,
    PathTooLong,
    // The origin.
    UpstreamTimeout,
    UpstreamConnect,
    UpstreamFailed,
    // The TLS handshake with an HTTPS origin (issue 11): which check failed, never the certificate.
    TlsUnknownIssuer,
    TlsExpired,
    TlsNameMismatch,
    TlsHandshake,
    // Configuration, found when a verifier or a route set is built (never per request).
    WeakKey,
    PublicKeyAsSecret,
    EmptyKey,
    UnknownAlgorithm,
    UnsupportedAlgorithm,
    BadOption,
    BadPattern,
    // Keys (PEM, DER, JWK, JWK Set), found when a key set is built.
    MalformedKey,
    UnsupportedKey,
    InvalidKey,
    PrivateKey,
    KeyUsage,
    /// The key's type cannot verify the algorithms (a public key with HS*, a secret with RS*).
    KeyTypeMismatch,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MalformedToken => "malformed_token",
            ErrorKind::InvalidSignature => "invalid_signature",
            ErrorKind::AlgorithmNotAllowed => "algorithm_not_allowed",
            ErrorKind::ExpiredToken => "expired_token",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::InvalidIssuer => "invalid_issuer",
            ErrorKind::InvalidAudience => "invalid_audience",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::KeyNotFound => "key_not_found",
            ErrorKind::KeySetUnavailable => "key_set_unavailable",
            ErrorKind::NotAbsolute => "not_absolute",
            ErrorKind::BadPercentEncoding => "bad_percent_encoding",
            ErrorKind::EncodedSlash => "encoded_slash",
            ErrorKind::Backslash => "backslash",
            ErrorKind::ControlCharacter => "control_character",
            ErrorKind::Semicolon => "semicolon",
            ErrorKind::PathTooLong => "path_too_long",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamFailed => "upstream_failed",
            ErrorKind::TlsUnknownIssuer => "tls_unknown_issuer",
            ErrorKind::TlsExpired => "tls_expired",
            ErrorKind::TlsNameMismatch => "tls_name_mismatch",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::WeakKey => "weak_key",
            ErrorKind::PublicKeyAsSecret => "public_key_as_secret",
            ErrorKind::EmptyKey => "empty_key",
            ErrorKind::UnknownAlgorithm => "unknown_algorithm",
            ErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorKind::BadOption => "bad_option",
            ErrorKind::BadPattern => "bad_pattern",
            ErrorKind::MalformedKey => "malformed_key",
            ErrorKind::UnsupportedKey => "unsupported_key",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::PrivateKey => "private_key",
            ErrorKind::KeyUsage => "key_usage",
            ErrorKind::KeyTypeMismatch => "key_type_mismatch",
        }
    }

    /// The status the gateway answers with when a request ends with this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::MalformedToken
            | ErrorKind::InvalidSignature
            | ErrorKind::AlgorithmNotAllowed
            | ErrorKind::ExpiredToken
            | ErrorKind::NotYetValid
            | ErrorKind::InvalidIssuer
            | ErrorKind::InvalidAudience
            | ErrorKind::MissingClaim
            | ErrorKind::KeyNotFound => 401,
            ErrorKind::KeySetUnavailable => 503,
            ErrorKind::NotAbsolute
            | ErrorKind::BadPercentEncoding
            | ErrorKind::EncodedSlash
            | ErrorKind::Backslash
            | ErrorKind::ControlCharacter
            | ErrorKind::Semicolon
            // 400 as documented in SECURITY.md (not 414): one answer for every refused path.
            | ErrorKind::PathTooLong => 400,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamFailed
            | ErrorKind::TlsUnknownIssuer
            | ErrorKind::TlsExpired
            | ErrorKind::TlsNameMismatch
            | ErrorKind::TlsHandshake => 502,
            // A configuration error reaching a request is the gateway's own fault.
            ErrorKind::WeakKey
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
            | ErrorKind::KeyTypeMismatch => 500,
        }
    }

    /// Every kind, for tests and for the bindings' table of kinds.
    pub const ALL: [ErrorKind; 37] = [
        ErrorKind::MalformedToken,
        ErrorKind::InvalidSignature,
        ErrorKind::AlgorithmNotAllowed,
        ErrorKind::ExpiredToken,
        ErrorKind::NotYetValid,
        ErrorKind::InvalidIssuer,
        ErrorKind::InvalidAudience,
        ErrorKind::MissingClaim,
        ErrorKind::KeyNotFound,
        ErrorKind::KeySetUnavailable,
        ErrorKind::NotAbsolute,
        ErrorKind::BadPercentEncoding,
        ErrorKind::EncodedSlash,
        ErrorKind::Backslash,
        ErrorKind::ControlCharacter,
        ErrorKind::Semicolon,
        ErrorKind::PathTooLong,
        ErrorKind::UpstreamTimeout,
        ErrorKind::UpstreamConnect,
        ErrorKind::UpstreamFailed,
        ErrorKind::TlsUnknownIssuer,
        ErrorKind::TlsExpired,
        ErrorKind::TlsNameMismatch,
        ErrorKind::TlsHandshake,
        ErrorKind::WeakKey,
        ErrorKind::PublicKeyAsSecret,
        ErrorKind::EmptyKey,
        ErrorKind::UnknownAlgorithm,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::BadOption,
        ErrorKind::BadPattern,
        ErrorKind::MalformedKey,
        ErrorKind::UnsupportedKey,
        ErrorKind::InvalidKey,
        ErrorKind::PrivateKey,
        ErrorKind::KeyUsage,
        ErrorKind::KeyTypeMismatch,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not a compact JWS, bad base64url, bad JSON, wrong claim types, over the size limit.
    Malformed(String),
    /// The MAC does not match, has the wrong length, or no key fits the token's `kid`.
    InvalidSignature(&'static str),
    /// `alg` is `none`, not in the caller's list, or does not fit the key.
    AlgorithmNotAllowed(String),
    Expired,
    NotYetValid,
    /// `iat` later than now + leeway (kind `not_yet_valid`, as PyJWT's ImmatureSignatureError).
    IssuedInFuture,
    InvalidIssuer,
    InvalidAudience(&'static str),
    MissingClaim(String),
    /// No key fits the token's `alg`/`kid`, or several do and the token does not say which.
    KeyNotFound(String),
    KeySetUnavailable(String),
}

impl JwtError {
    pub fn malformed(msg: &str) -> Self {
        JwtError::Malformed(msg.to_owned())
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            JwtError::Malformed(_) => ErrorKind::MalformedToken,
            JwtError::InvalidSignature(_) => ErrorKind::InvalidSignature,
            JwtError::AlgorithmNotAllowed(_) => ErrorKind::AlgorithmNotAllowed,
            JwtError::Expired => ErrorKind::ExpiredToken,
            JwtError::NotYetValid | JwtError::IssuedInFuture => ErrorKind::NotYetValid,
            JwtError::InvalidIssuer => ErrorKind::InvalidIssuer,
            JwtError::InvalidAudience(_) => ErrorKind::InvalidAudience,
            JwtError::MissingClaim(_) => ErrorKind::MissingClaim,
            JwtError::KeyNotFound(_) => ErrorKind::KeyNotFound,
            JwtError::KeySetUnavailable(_) => ErrorKind::KeySetUnavailable,
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(m) => write!(f, "malformed token: {m}"),
            JwtError::InvalidSignature(m) => write!(f, "invalid signature: {m}"),
            JwtError::AlgorithmNotAllowed(m) => write!(f, "algorithm not allowed: {m}"),
            JwtError::Expired => f.write_str("token has expired"),
            JwtError::NotYetValid => f.write_str("token is not yet valid (nbf)"),
            JwtError::IssuedInFuture => {
                f.write_str("token is not yet valid (iat is in the future)")
            }
            JwtError::InvalidIssuer => f.write_str("token issuer (iss) is not the expected one"),
            JwtError::InvalidAudience(m) => write!(f, "invalid audience: {m}"),
            JwtError::MissingClaim(c) => write!(f, "token is missing the required claim {c:?}"),
            JwtError::KeyNotFound(m) => write!(f, "no key for the token: {m}"),
            JwtError::KeySetUnavailable(m) => write!(f, "key set unavailable: {m}"),
        }
    }
}

impl std::error::Error for JwtError {}

/// Any error the core reports across a boundary (to Python, to a log): a kind, which decides the
/// status, and a short message for people. Stage errors ([`JwtError`], [`ConfigError`], the
/// path and pattern errors) convert into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<JwtError> for Error {
    fn from(e: JwtError) -> Self {
        Error::new(e.kind(), e.to_string())
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::new(e.kind, e.message)
    }
}

/// Shortens caller- or token-supplied text before it is put into a message.
pub fn bounded(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// A configuration mistake found when a verifier is built (weak key, unknown algorithm, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConfigError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_snake_case_with_a_status() {
        let mut names = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            let s = k.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(names.insert(s), "{s} twice");
            assert!((400..600).contains(&k.http_status()), "{s}");
        }
        assert_eq!(ErrorKind::ExpiredToken.http_status(), 401);
        assert_eq!(ErrorKind::ControlCharacter.http_status(), 400);
        assert_eq!(ErrorKind::UpstreamTimeout.http_status(), 504);
    }
}

impl From<crate::jose::Error> for Error {
    fn from(e: crate::jose::Error) -> Self {
        use crate::jose::ErrorKind as K;
        let kind = match e.kind() {
            K::Malformed => ErrorKind::MalformedKey,
            K::UnsupportedKey => ErrorKind::UnsupportedKey,
            K::WeakKey => ErrorKind::WeakKey,
            K::InvalidKey => ErrorKind::InvalidKey,
            K::PrivateKey => ErrorKind::PrivateKey,
            K::KeyUsage => ErrorKind::KeyUsage,
            K::AlgorithmNotAllowed => ErrorKind::KeyTypeMismatch,
            K::KeyNotFound | K::AmbiguousKey => ErrorKind::KeyNotFound,
            K::InvalidSignature => ErrorKind::InvalidSignature,
        };
        Error::new(kind, e.message())
    }
}

impl From<crate::jose::Error> for JwtError {
    /// A key-selection or signature error met while verifying a token.
    fn from(e: crate::jose::Error) -> Self {
        use crate::jose::ErrorKind as K;
        match e.kind() {
            K::KeyNotFound | K::AmbiguousKey => JwtError::KeyNotFound(e.message().to_owned()),
            K::AlgorithmNotAllowed => JwtError::AlgorithmNotAllowed(e.message().to_owned()),
            _ => JwtError::InvalidSignature("signature does not verify"),
        }
    }
}
