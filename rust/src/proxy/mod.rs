//! The proxy stage's core: the upstream client (hyper on a tokio runtime; HTTP/1.1 to plain-HTTP
//! origins, rustls with HTTP/1.1 or h2 by ALPN to HTTPS origins). Built and
//! tested without Python under the `upstream` feature.

pub mod client;
pub mod tls;
