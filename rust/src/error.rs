//! One error type for token verification; `py` maps each variant to one Python exception class.
//!
//! Messages are short, fixed-size sentences: they never contain the key and never more than a few
//! characters of the token, because they end up in logs and HTTP responses.

use std::fmt;

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
    InvalidIssuer,
    InvalidAudience(&'static str),
    MissingClaim(String),
}

impl JwtError {
    pub fn malformed(msg: &str) -> Self {
        JwtError::Malformed(msg.to_owned())
    }

    /// The exception class name this error maps to in Python.
    pub fn kind(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "MalformedToken",
            JwtError::InvalidSignature(_) => "InvalidSignature",
            JwtError::AlgorithmNotAllowed(_) => "AlgorithmNotAllowed",
            JwtError::Expired => "ExpiredToken",
            JwtError::NotYetValid => "NotYetValid",
            JwtError::InvalidIssuer => "InvalidIssuer",
            JwtError::InvalidAudience(_) => "InvalidAudience",
            JwtError::MissingClaim(_) => "MissingClaim",
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
            JwtError::InvalidIssuer => f.write_str("token issuer (iss) is not the expected one"),
            JwtError::InvalidAudience(m) => write!(f, "invalid audience: {m}"),
            JwtError::MissingClaim(c) => write!(f, "token is missing the required claim {c:?}"),
        }
    }
}

impl std::error::Error for JwtError {}

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
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
