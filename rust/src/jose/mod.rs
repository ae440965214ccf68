//! Asymmetric JOSE: public keys (PEM, DER, JWK, JWK Set), key selection and signature
//! verification for RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA (Ed25519).
//!
//! Free of PyO3: bytes and `&str` in, one [`Error`] (with an [`ErrorKind`]) out, tested with
//! `cargo test --no-default-features`. The crypto is aws-lc-rs (why: [`signature`]); the key
//! formats are decoded by RustCrypto's `spki`/`pkcs1`/`x509-cert`, the `pem` crate and `jiter`.
//!
//! ```text
//! let keys = KeySet::from_jwks(jwks_json)?;              // or from_jwk / from_pem
//! let alg = Alg::from_name(header_alg)?;                 // after the caller's allow-list
//! let key = keys.select(alg, header_kid)?;               // KeyNotFound / AmbiguousKey
//! verify_signature(alg, key, signing_input, &signature)?; // InvalidSignature
//! ```

pub mod alg;
pub mod error;
pub mod jwk;
pub mod keys;
pub mod pem;
pub mod signature;
pub mod signing;

pub use alg::{Alg, KeyKind};
pub use error::{Error, ErrorKind};
pub use jwk::signing_key_from_jwk;
pub use keys::{Key, KeySet, PublicKey, SkippedKey, MAX_RSA_BITS, MIN_RSA_BITS};
pub use pem::{
    is_asymmetric_key_material, public_key_from_certificate_der, public_key_from_der,
    public_key_from_pem, public_key_from_pkcs1_der, public_key_from_spki_der,
};
pub use signature::{verify_signature, verify_with_public_key};
pub use signing::SigningKey;
