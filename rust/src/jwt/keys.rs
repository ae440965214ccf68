//! HMAC keys and algorithms: which algorithms a verifier allows, and each secret with its HMAC
//! state prepared once (the hashed inner and outer padded blocks), so verifying a token costs the
//! message blocks only. Weak secrets and public keys used as secrets are refused here, when the
//! key is made, with an error kind the config loader can act on.

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::error::{bounded, ConfigError, ErrorKind, JwtError};
use crate::jose::Alg as JoseAlg;

/// A JWS algorithm (RFC 7518 §3.1; EdDSA from RFC 8037 §3.1): the HMAC ones, verified here with a
/// shared secret, and the asymmetric ones, verified by [`crate::jose`] with a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

const ALL_NAMES: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA";

impl Alg {
    pub const ALL: [Alg; 13] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
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

    /// The algorithm named exactly `name` (case-sensitive, as RFC 7518 registers them).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The registered name (RFC 7518 §3.1); the asymmetric ones are named by [`crate::jose::Alg`].
    pub fn name(self) -> &'static str {
        match (self, self.asymmetric()) {
            (_, Some(asym)) => asym.name(),
            (Alg::HS256, None) => "HS256",
            (Alg::HS384, None) => "HS384",
            (_, None) => "HS512",
        }
    }

    /// True for HS256/384/512, which take a shared secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// The asymmetric algorithm, for [`crate::jose`]; None for the HMAC ones (which have no
    /// value there, so a public key can never be handed an HMAC algorithm).
    pub fn asymmetric(self) -> Option<JoseAlg> {
        Some(match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => return None,
            Alg::RS256 => JoseAlg::RS256,
            Alg::RS384 => JoseAlg::RS384,
            Alg::RS512 => JoseAlg::RS512,
            Alg::PS256 => JoseAlg::PS256,
            Alg::PS384 => JoseAlg::PS384,
            Alg::PS512 => JoseAlg::PS512,
            Alg::ES256 => JoseAlg::ES256,
            Alg::ES384 => JoseAlg::ES384,
            Alg::ES512 => JoseAlg::ES512,
            Alg::EdDSA => JoseAlg::EdDSA,
        })
    }

    /// Output size of the hash, which is also the shortest secret RFC 7518 §3.2 allows; 0 for the
    /// asymmetric algorithms.
    pub fn mac_len(self) -> usize {
        match self {
            Alg::HS256 => 32,
            Alg::HS384 => 48,
            Alg::HS512 => 64,
            _ => 0,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of allowed algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgSet(u16);

impl AlgSet {
    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Alg> {
        Alg::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// True when the set holds at least one HMAC algorithm.
    pub fn has_hmac(self) -> bool {
        self.iter().any(Alg::is_hmac)
    }

    /// True when the set holds at least one asymmetric algorithm.
    pub fn has_asymmetric(self) -> bool {
        self.iter().any(|a| !a.is_hmac())
    }

    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<AlgSet, ConfigError> {
        if names.is_empty() {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "algorithms must list at least one algorithm, e.g. [\"RS256\"] or [\"HS256\"]",
            ));
        }
        let mut set = AlgSet(0);
        for name in names {
            let name = name.as_ref();
            match Alg::from_name(name) {
                Some(alg) => set.0 |= alg.bit(),
                None if name.eq_ignore_ascii_case("none") => {
                    return Err(ConfigError::new(
                        ErrorKind::UnknownAlgorithm,
                        "algorithm \"none\" is never accepted",
                    ))
                }
                None if name == "Ed25519" || name == "Ed448" || name == "ES256K" => {
                    return Err(ConfigError::new(ErrorKind::UnsupportedAlgorithm, format!(
                        "algorithm {name} is not supported (supported: {ALL_NAMES}; Ed25519 keys sign as \"EdDSA\")"
                    )))
                }
                None => {
                    return Err(ConfigError::new(ErrorKind::UnknownAlgorithm, format!(
                        "unknown algorithm {:?} (supported: {ALL_NAMES}; names are case-sensitive)",
                        bounded(name, 16)
                    )))
                }
            }
        }
        Ok(set)
    }
}

/// An HMAC secret with its state prepared for each allowed algorithm.
#[derive(Clone)]
pub struct HmacKey {
    hs256: Option<Hmac<Sha256>>,
    hs384: Option<Hmac<Sha384>>,
    hs512: Option<Hmac<Sha512>>,
}

impl HmacKey {
    /// Prepares `secret` for `algs`. Refuses secrets shorter than the hash output unless
    /// `allow_weak` (RFC 7518 §3.2), and PEM/SSH public keys: using a public key as an HMAC
    /// secret is the classic RS/HS algorithm-confusion attack.
    pub fn new(secret: &[u8], algs: AlgSet, allow_weak: bool) -> Result<HmacKey, ConfigError> {
        if secret.is_empty() {
            return Err(ConfigError::new(
                ErrorKind::EmptyKey,
                "the HMAC secret is empty",
            ));
        }
        // Recognised as a parser would, not by a prefix: a certificate with `openssl x509 -text`'s
        // explanation before its BEGIN line (RFC 7468 §5.2), DER, a JWK, an SSH key line.
        if crate::jose::is_asymmetric_key_material(secret) {
            return Err(ConfigError::new(
                ErrorKind::PublicKeyAsSecret,
                "the key is public-key material (a PEM, DER, JWK or SSH public key or certificate), which must never be used as an HMAC secret; verify with it under an RS/PS/ES/EdDSA algorithm instead",
            ));
        }
        if !allow_weak {
            if let Some(alg) = algs
                .iter()
                .filter(|a| a.is_hmac() && secret.len() < a.mac_len())
                .last()
            {
                return Err(ConfigError::new(ErrorKind::WeakKey, format!(
                    "the secret is {} bytes; {} needs at least {} (RFC 7518 §3.2). Use a longer random secret, or pass allow_weak_key=True to accept it",
                    secret.len(),
                    alg.name(),
                    alg.mac_len()
                )));
            }
        }
        let prep = |alg: Alg| algs.contains(alg);
        Ok(HmacKey {
            hs256: prep(Alg::HS256)
                .then(|| Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size")),
            hs384: prep(Alg::HS384)
                .then(|| Hmac::<Sha384>::new_from_slice(secret).expect("HMAC takes any key size")),
            hs512: prep(Alg::HS512)
                .then(|| Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes any key size")),
        })
    }

    /// Constant-time check of `signature` over `signing_input`.
    pub(crate) fn verify(
        &self,
        alg: Alg,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError> {
        if signature.len() != alg.mac_len() {
            return Err(JwtError::InvalidSignature("signature has the wrong length"));
        }
        let ok = match alg {
            Alg::HS256 => self.hs256.clone().map(|mut m| {
                m.update(signing_input);
                m.verify_slice(signature).is_ok()
            }),
            Alg::HS384 => self.hs384.clone().map(|mut m| {
                m.update(signing_input);
                m.verify_slice(signature).is_ok()
            }),
            Alg::HS512 => self.hs512.clone().map(|mut m| {
                m.update(signing_input);
                m.verify_slice(signature).is_ok()
            }),
            _ => None,
        };
        match ok {
            Some(true) => Ok(()),
            Some(false) => Err(JwtError::InvalidSignature("signature does not match")),
            None => Err(JwtError::AlgorithmNotAllowed(format!(
                "{} is not allowed for this key",
                alg.name()
            ))),
        }
    }

    pub fn sign(&self, alg: Alg, signing_input: &[u8]) -> Option<Vec<u8>> {
        macro_rules! mac {
            ($m:expr) => {
                $m.clone().map(|mut m| {
                    m.update(signing_input);
                    m.finalize().into_bytes().to_vec()
                })
            };
        }
        match alg {
            Alg::HS256 => mac!(self.hs256),
            Alg::HS384 => mac!(self.hs384),
            Alg::HS512 => mac!(self.hs512),
            _ => None,
        }
    }
}

/// The keys a verifier may use: one key, or a `kid` → key map for rotation.
#[derive(Clone)]
// The single-key case is the hot one; boxing it to even out the variants would cost a pointer chase.
#[allow(clippy::large_enum_variant)]
pub enum KeySet {
    Single(HmacKey),
    ByKid(HashMap<String, HmacKey>),
    /// Asymmetric public keys (PEM, JWK, JWK Set), selected by the token's `alg` and `kid`.
    Public(Arc<crate::jose::KeySet>),
}
