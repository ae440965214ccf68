//! The auth stage's core: HS* JWS verification (keys, the verifier, the claims walker, the JOSE
//! header) and the base64url and time arithmetic it rests on. PyO3-free.

pub mod b64;
pub mod claims;
pub mod header;
pub mod keys;
pub mod seconds;
pub mod verify;

pub use keys::{Alg, AlgSet, HmacKey, KeySet};
pub use verify::{sign, wall_clock, Checks, Policy, Verified, Verifier, DEFAULT_MAX_LENGTH};
