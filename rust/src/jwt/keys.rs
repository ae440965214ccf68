//! HMAC keys and algorithms: which algorithms a verifier allows, and each secret with its HMAC
//! state prepared once (the hashed inner and outer padded blocks), so verifying a token costs the
//! message blocks only. Weak secrets and public keys used as secrets are refused here, when the
//! key is made, with an error kind the config loader can act on.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::error::{bounded, ConfigError, ErrorKind, JwtError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::HS256, Alg::HS384, Alg::HS512];

    pub fn from_name(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::HS256),
            "HS384" => Some(Alg::HS384),
            "HS512" => Some(Alg::HS512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    /// Output size of the hash, which is also the shortest secret RFC 7518 §3.2 allows.
    pub fn mac_len(self) -> usize {
        match self {
            Alg::HS256 => 32,
            Alg::HS384 => 48,
            Alg::HS512 => 64,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Alg::HS256 => 1,
            Alg::HS384 => 2,
            Alg::HS512 => 4,
        }
    }
}

/// Algorithm names this build knows but cannot verify yet; refused with a clear message rather
/// than "unknown", so that RS/ES keys can be added later without changing the API.
const KNOWN_ASYMMETRIC: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// A set of allowed algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgSet(u8);

impl AlgSet {
    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Alg> {
        Alg::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<AlgSet, ConfigError> {
        if names.is_empty() {
            return Err(ConfigError::new(
                ErrorKind::BadOption,
                "algorithms must list at least one algorithm, e.g. [\"HS256\"]",
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
                None if KNOWN_ASYMMETRIC.contains(&name) => {
                    return Err(ConfigError::new(ErrorKind::UnsupportedAlgorithm, format!(
                        "algorithm {name} needs an asymmetric key, which this version does not support yet (supported: HS256, HS384, HS512)"
                    )))
                }
                None => {
                    return Err(ConfigError::new(ErrorKind::UnknownAlgorithm, format!(
                        "unknown algorithm {:?} (supported: HS256, HS384, HS512)",
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
        let text = String::from_utf8_lossy(&secret[..secret.len().min(64)]);
        let trimmed = text.trim_start();
        if trimmed.starts_with("-----BEGIN")
            || trimmed.starts_with("ssh-")
            || trimmed.starts_with("ecdsa-sha2-")
        {
            return Err(ConfigError::new(
                ErrorKind::PublicKeyAsSecret,
                "the key looks like a PEM or SSH public key, which must never be used as an HMAC secret",
            ));
        }
        if !allow_weak {
            if let Some(alg) = algs.iter().filter(|a| secret.len() < a.mac_len()).last() {
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
}
