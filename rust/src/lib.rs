//! The per-request core of `gateway`.
//!
//! Every module here except `py` is free of PyO3, takes plain `&[u8]`/`&str` and is tested with
//! `cargo test --no-default-features`. `py` is the one place that knows about Python: it wraps these
//! functions and maps [`error::JwtError`] onto the exception hierarchy users see as `gateway.JWTError`.

pub mod b64;
pub mod cookie;
pub mod error;
pub mod jose;
pub mod json;
pub mod jwt;
pub mod lang;
pub mod matcher;
pub mod path;
pub mod seconds;

#[cfg(feature = "python")]
mod py;
#[cfg(feature = "python")]
mod pyclaims;
#[cfg(feature = "python")]
mod upstream;
