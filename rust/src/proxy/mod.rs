//! The proxy stage's core: the HTTP/1.1 upstream client (hyper on a tokio runtime). Built and
//! tested without Python under the `upstream` feature.

pub mod client;
