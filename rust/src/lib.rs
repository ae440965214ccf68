//! The per-request core of `gateway`, by stage, with the Python bindings apart.
//!
//! Every module but `python` is free of PyO3, takes plain `&[u8]`/`&str` and is tested with
//! `cargo test --no-default-features --features upstream`. `python` (feature `python`) is the one
//! place that knows about Python: module init, the exception tree and thin wrappers.

/// Every error kind and its HTTP status, in one place.
pub mod error;

/// normalize: the request head, path normalization, cookies.
pub mod request;

/// match: route patterns.
pub mod routing;

/// auth: JWS verification and the claims walker.
pub mod jwt;

/// auth, asymmetric: RSA/ECDSA/EdDSA keys from PEM, JWK and JWK Sets, key selection, and
/// signature verification over aws-lc-rs.
pub mod jose;

/// locale: Accept-Language negotiation.
pub mod locale;

/// limits: the rate-limit table shared by a gateway's worker processes (store = "memory").
pub mod limits;

/// correlation and observe: request ids, W3C trace context, the metrics tally.
pub mod observe;

/// proxy: the upstream HTTP client.
#[cfg(feature = "upstream")]
pub mod proxy;

#[cfg(feature = "python")]
mod python;
