//! The normalize stage's core: the request head (headers kept as raw bytes, Host, framing,
//! cookies parsed once), path normalization, and the Cookie/Set-Cookie rules. PyO3-free.

pub mod cookie;
pub mod head;
pub mod path;

pub use head::Head;
