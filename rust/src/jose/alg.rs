//! The asymmetric JWS algorithms (RFC 7518 §3.3–3.5, RFC 8037 §3.1) and the key kinds they need.

use super::error::{bounded, Error};

/// An asymmetric JWS signature algorithm. HMAC algorithms are deliberately not in this enum: an
/// asymmetric key is never an HMAC secret, so there is no value that could confuse the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    /// EdDSA with Ed25519 only (RFC 8037); Ed448 keys are refused as unsupported.
    EdDSA,
}

/// The kind of a public key, which alone decides the algorithms it can ever verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

impl KeyKind {
    /// The algorithms a key of this kind can verify, and no others.
    pub fn algorithms(self) -> &'static [Alg] {
        match self {
            KeyKind::Rsa => &[
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
            KeyKind::EcP256 => &[Alg::ES256],
            KeyKind::EcP384 => &[Alg::ES384],
            KeyKind::EcP521 => &[Alg::ES512],
            KeyKind::Ed25519 => &[Alg::EdDSA],
        }
    }

    /// The JWK `kty`.
    pub fn kty(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::EcP256 | KeyKind::EcP384 | KeyKind::EcP521 => "EC",
            KeyKind::Ed25519 => "OKP",
        }
    }

    /// The JWK `crv`, for EC and OKP keys.
    pub fn crv(self) -> Option<&'static str> {
        match self {
            KeyKind::Rsa => None,
            KeyKind::EcP256 => Some("P-256"),
            KeyKind::EcP384 => Some("P-384"),
            KeyKind::EcP521 => Some("P-521"),
            KeyKind::Ed25519 => Some("Ed25519"),
        }
    }

    /// Length in bytes of one EC coordinate (RFC 7518 §6.2.1.2: always the full field size),
    /// or of an Ed25519 public key.
    pub fn coordinate_len(self) -> usize {
        match self {
            KeyKind::Rsa => 0,
            KeyKind::EcP256 => 32,
            KeyKind::EcP384 => 48,
            KeyKind::EcP521 => 66,
            KeyKind::Ed25519 => 32,
        }
    }
}

impl Alg {
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// Parses a JWS `alg` name (case-sensitive, RFC 7515 §4.1.1). `none`, the HMAC algorithms and
    /// anything unknown are refused with [`ErrorKind::AlgorithmNotAllowed`](super::ErrorKind).
    pub fn from_name(name: &str) -> Result<Alg, Error> {
        Ok(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "ES512" => Alg::ES512,
            "EdDSA" => Alg::EdDSA,
            "none" => return Err(Error::not_allowed("alg \"none\" is never accepted")),
            "HS256" | "HS384" | "HS512" => {
                return Err(Error::not_allowed(format!(
                    "{name} is an HMAC algorithm and an asymmetric key is never an HMAC secret"
                )))
            }
            other => {
                return Err(Error::not_allowed(format!(
                    "unknown or unsupported algorithm {} (supported: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)",
                    bounded(other)
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// The one key kind (type and curve) this algorithm verifies with.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyKind::Rsa
            }
            Alg::ES256 => KeyKind::EcP256,
            Alg::ES384 => KeyKind::EcP384,
            Alg::ES512 => KeyKind::EcP521,
            Alg::EdDSA => KeyKind::Ed25519,
        }
    }

    /// The fixed signature length for ECDSA (`r || s`, RFC 7518 §3.4) and EdDSA; `None` for RSA,
    /// whose signature length is the modulus length.
    pub fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Alg::ES256 => Some(64),
            Alg::ES384 => Some(96),
            Alg::ES512 => Some(132),
            Alg::EdDSA => Some(64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
