//! Public keys, keys with their JWK metadata, and key sets with JOSE key selection.
//!
//! A [`PublicKey`] is parsed and checked once (RSA size and exponent, EC point on its curve) and
//! keeps one pre-parsed aws-lc key per algorithm it can verify, so a verification does no parsing.
//! A [`Key`] adds what a JWK says about the key (`kid`, `alg`); `use`/`key_ops` are checked when the
//! JWK is read and a key that is not for verifying signatures never becomes a `Key`.
//! A [`KeySet`] selects the one key a token names, as strictly as panva/jose does.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};

use super::alg::{Alg, KeyKind};
use super::error::{bounded, Error, ErrorKind};

/// Smallest RSA modulus accepted, in bits (issue 10; NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: aws-lc's own verification limit, and a bound on the
/// work an attacker-supplied key set can cause.
pub const MAX_RSA_BITS: usize = 8192;

/// The public numbers of a key, kept to compare keys (an `x5c` leaf against the JWK's own
/// members) and never printed.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// Modulus and exponent, big-endian without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Affine coordinates, each the full field size.
    Ec { x: Vec<u8>, y: Vec<u8> },
    /// The 32-byte encoded point.
    Ed25519 { x: Vec<u8> },
}

/// A checked asymmetric public key, ready to verify.
#[derive(Clone)]
pub struct PublicKey {
    kind: KeyKind,
    bits: usize,
    material: Material,
    /// One parsed key per entry of `kind.algorithms()`, in that order.
    verifiers: Arc<[ParsedPublicKey]>,
}

fn verification_algorithm(alg: Alg) -> &'static dyn sig::VerificationAlgorithm {
    match alg {
        Alg::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Alg::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        Alg::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Alg::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Alg::ES512 => &sig::ECDSA_P521_SHA512_FIXED,
        Alg::EdDSA => &sig::ED25519,
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(&top) => (be.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

impl PublicKey {
    /// An RSA public key from its modulus and exponent (big-endian; leading zero bytes ignored).
    /// Refuses moduli under [`MIN_RSA_BITS`] or over [`MAX_RSA_BITS`], and exponents that are even,
    /// under 3 or larger than aws-lc accepts (33 bits).
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Result<PublicKey, Error> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if bits < MIN_RSA_BITS {
            return Err(Error::new(
                ErrorKind::WeakKey,
                format!(
                    "RSA key of {bits} bits refused: at least {MIN_RSA_BITS} bits are required"
                ),
            ));
        }
        if bits > MAX_RSA_BITS {
            return Err(Error::new(
                ErrorKind::WeakKey,
                format!("RSA key of {bits} bits refused: at most {MAX_RSA_BITS} bits are accepted"),
            ));
        }
        let e_odd = e.last().is_some_and(|b| b & 1 == 1);
        if !e_odd || bit_length(e) < 2 || bit_length(e) > 33 {
            return Err(Error::invalid_key(
                "RSA public exponent must be odd, at least 3 and at most 33 bits",
            ));
        }
        let spki = RsaPublicKeyComponents { n, e }
            .as_der()
            .map_err(|_| Error::invalid_key("RSA public key rejected (modulus or exponent)"))?;
        let key = PublicKey::parsed(KeyKind::Rsa, spki.as_ref())?;
        Ok(PublicKey {
            bits,
            material: Material::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            ..key
        })
    }

    /// An EC public key from its affine coordinates, each exactly the field size (RFC 7518
    /// §6.2.1.2). Refuses a point that is not on the curve (or is the point at infinity).
    pub fn from_ec_coordinates(kind: KeyKind, x: &[u8], y: &[u8]) -> Result<PublicKey, Error> {
        let len = kind.coordinate_len();
        let crv = match kind {
            KeyKind::EcP256 | KeyKind::EcP384 | KeyKind::EcP521 => kind.crv().unwrap_or(""),
            _ => return Err(Error::invalid_key("not an EC key kind")),
        };
        if x.len() != len || y.len() != len {
            return Err(Error::invalid_key(format!(
                "{crv} coordinates must be {len} bytes each (got {} and {})",
                x.len(),
                y.len()
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let key = PublicKey::parsed(kind, &point)
            .map_err(|_| Error::invalid_key(format!("the EC point is not on the {crv} curve")))?;
        Ok(PublicKey {
            material: Material::Ec {
                x: x.to_vec(),
                y: y.to_vec(),
            },
            ..key
        })
    }

    /// An Ed25519 public key from its 32-byte encoding (RFC 8032 §5.1.5).
    pub fn from_ed25519(x: &[u8]) -> Result<PublicKey, Error> {
        if x.len() != 32 {
            return Err(Error::invalid_key(format!(
                "an Ed25519 public key is 32 bytes (got {})",
                x.len()
            )));
        }
        let key = PublicKey::parsed(KeyKind::Ed25519, x)
            .map_err(|_| Error::invalid_key("Ed25519 public key rejected"))?;
        Ok(PublicKey {
            material: Material::Ed25519 { x: x.to_vec() },
            ..key
        })
    }

    /// Parses `bytes` once per algorithm of `kind`. The material is filled in by the caller.
    fn parsed(kind: KeyKind, bytes: &[u8]) -> Result<PublicKey, Error> {
        let verifiers = kind
            .algorithms()
            .iter()
            .map(|&alg| ParsedPublicKey::new(verification_algorithm(alg), bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid_key("public key rejected by aws-lc"))?;
        let bits = match kind {
            KeyKind::Rsa => 0,
            KeyKind::EcP256 => 256,
            KeyKind::EcP384 => 384,
            KeyKind::EcP521 => 521,
            KeyKind::Ed25519 => 256,
        };
        Ok(PublicKey {
            kind,
            bits,
            material: Material::Ed25519 { x: Vec::new() },
            verifiers: verifiers.into(),
        })
    }

    /// The key's type and curve, which alone decide the algorithms it can ever verify.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The modulus size for RSA; the curve size for EC and Ed25519.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// True when both are the same public key (same kind and public numbers).
    pub fn same_key(&self, other: &PublicKey) -> bool {
        self.kind == other.kind && self.material == other.material
    }

    /// The pre-parsed aws-lc key for `alg`, if this key's kind can verify `alg` at all.
    pub(crate) fn verifier(&self, alg: Alg) -> Option<&ParsedPublicKey> {
        let at = self.kind.algorithms().iter().position(|&a| a == alg)?;
        self.verifiers.get(at)
    }

    /// RSA modulus length in bytes, which is also the length of every valid RSA signature.
    pub(crate) fn rsa_modulus_len(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { n, .. } => Some(n.len()),
            _ => None,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material: keys end up in logs through Debug.
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.same_key(other)
    }
}

impl Eq for PublicKey {}

/// A public key with what its JWK (or its caller) says about it: `kid` and `alg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    public: PublicKey,
    kid: Option<String>,
    alg: Option<Alg>,
}

impl Key {
    /// A key with an optional `kid` and an optional `alg` that restricts it to one algorithm.
    /// Refuses an `alg` the key's kind can never verify (say ES384 on a P-256 key).
    pub fn new(public: PublicKey, kid: Option<String>, alg: Option<Alg>) -> Result<Key, Error> {
        if let Some(alg) = alg {
            if alg.key_kind() != public.kind() {
                return Err(Error::invalid_key(format!(
                    "alg {alg} does not fit a {} key",
                    kind_label(public.kind())
                )));
            }
        }
        Ok(Key { public, kid, alg })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn kind(&self) -> KeyKind {
        self.public.kind()
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm this key is restricted to (a JWK's own `alg`), if any.
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    /// The algorithms this key can verify: its kind's, narrowed by its own `alg`.
    pub fn algorithms(&self) -> Vec<Alg> {
        self.kind()
            .algorithms()
            .iter()
            .copied()
            .filter(|&a| self.alg.map_or(true, |own| own == a))
            .collect()
    }

    /// True when a token signed with `alg` may be verified with this key.
    pub fn fits(&self, alg: Alg) -> bool {
        alg.key_kind() == self.kind() && self.alg.map_or(true, |own| own == alg)
    }
}

/// A human name for a key kind, for messages.
pub(crate) fn kind_label(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa => "RSA",
        KeyKind::EcP256 => "EC P-256",
        KeyKind::EcP384 => "EC P-384",
        KeyKind::EcP521 => "EC P-521",
        KeyKind::Ed25519 => "Ed25519",
    }
}

/// An entry of a JWK Set that was not turned into a key, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the set's `keys` array.
    pub index: usize,
    /// The entry's `kid`, when it had a string one.
    pub kid: Option<String>,
    pub error: Error,
}

/// The keys a token may be verified with.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    pub fn new(keys: Vec<Key>) -> KeySet {
        KeySet {
            keys,
            skipped: Vec::new(),
        }
    }

    pub(crate) fn with_skipped(keys: Vec<Key>, skipped: Vec<SkippedKey>) -> KeySet {
        KeySet { keys, skipped }
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Entries of the JWK Set this came from that are not keys here (unsupported type or curve,
    /// an encryption key, a weak or broken key), each with its reason.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token with header `alg` and `kid` is to be verified with, selected as the
    /// strictest JOSE libraries do:
    /// - `alg` decides the key type and curve, and a key's own `alg` (when it has one) must equal it;
    /// - when the token has a `kid`, only keys with that same `kid` fit;
    /// - exactly one key must fit: none is [`ErrorKind::KeyNotFound`], several is
    ///   [`ErrorKind::AmbiguousKey`] (a token without `kid` facing several keys of its type, or a
    ///   `kid` that the set uses twice for that type).
    pub fn select(&self, alg: Alg, kid: Option<&str>) -> Result<&Key, Error> {
        let mut found: Option<&Key> = None;
        let mut count = 0usize;
        for key in &self.keys {
            if !key.fits(alg) {
                continue;
            }
            if let Some(kid) = kid {
                if key.kid() != Some(kid) {
                    continue;
                }
            }
            count += 1;
            if found.is_none() {
                found = Some(key);
            }
        }
        match (found, count) {
            (Some(key), 1) => Ok(key),
            (None, _) => Err(Error::new(
                ErrorKind::KeyNotFound,
                match kid {
                    Some(kid) => format!("no key with kid {} fits alg {alg}", bounded(kid)),
                    None => format!("no key fits alg {alg}"),
                },
            )),
            (Some(_), n) => Err(Error::new(
                ErrorKind::AmbiguousKey,
                match kid {
                    Some(kid) => format!("{n} keys share kid {} for alg {alg}", bounded(kid)),
                    None => format!("the token has no kid and {n} keys fit alg {alg}"),
                },
            )),
        }
    }

    /// Selects the key for `alg`/`kid` and verifies `signature` over `signing_input` with it;
    /// returns the key that verified.
    pub fn verify(
        &self,
        alg: Alg,
        kid: Option<&str>,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<&Key, Error> {
        let key = self.select(alg, kid)?;
        super::signature::verify_signature(alg, key, signing_input, signature)?;
        Ok(key)
    }
}
