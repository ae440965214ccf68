//! The match stage's core: route patterns in Next.js matcher syntax, compiled into one set.
//! PyO3-free.

pub mod matcher;

pub use matcher::{compile, PatternError, RouteSet};
