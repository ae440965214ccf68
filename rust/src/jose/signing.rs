//! Private keys, for signing tokens: `gateway.encode` and `gateway token` (tests, tools and
//! services that issue their own tokens). Not on the verification path.
//!
//! Formats: PEM `PRIVATE KEY` (PKCS#8, RFC 5208/5958), `RSA PRIVATE KEY` (PKCS#1, RFC 8017) and
//! `EC PRIVATE KEY` (SEC1, RFC 5915), and private JWKs (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
//! aws-lc-rs parses and checks every form (the same crate that verifies: see [`super::signature`]).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

use super::alg::{Alg, KeyKind};
use super::error::{Error, ErrorKind};
use super::keys::{kind_label, MIN_RSA_BITS};

/// A private key ready to sign with the algorithms its kind allows (and, for a JWK with an `alg`
/// member, only that one).
pub struct SigningKey {
    pair: Pair,
    only: Option<Alg>,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(KeyKind, EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl From<Pair> for SigningKey {
    fn from(pair: Pair) -> SigningKey {
        SigningKey { pair, only: None }
    }
}

/// The modulus size of an RSA private key in PKCS#1 or PKCS#8 DER (RustCrypto's `pkcs1` and
/// `der` decode the structures), for telling the user how small a refused key is.
fn rsa_private_bits(der_bytes: &[u8]) -> Option<usize> {
    use der::{Decode, Reader, SliceReader};
    let bits = |k: pkcs1::RsaPrivateKey<'_>| {
        let n = k.modulus.as_bytes();
        n.first()
            .map(|&top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
    };
    if let Ok(k) = pkcs1::RsaPrivateKey::from_der(der_bytes) {
        return bits(k);
    }
    // PKCS#8 PrivateKeyInfo (RFC 5208): SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }
    let mut reader = SliceReader::new(der_bytes).ok()?;
    let inner = reader
        .sequence(|r| {
            let _version: u8 = r.decode()?;
            let _algorithm: spki::AlgorithmIdentifierRef<'_> = r.decode()?;
            let key: der::asn1::OctetStringRef<'_> = r.decode()?;
            let rest = r.remaining_len();
            r.read_slice(rest)?;
            Ok(key.as_bytes())
        })
        .ok()?;
    bits(pkcs1::RsaPrivateKey::from_der(inner).ok()?)
}

/// aws-lc refuses RSA keys under 2048 bits while parsing them: say so as a weak key, with the size.
fn rsa_rejected(e: aws_lc_rs::error::KeyRejected, der_bytes: &[u8]) -> Option<Error> {
    (e.description_() == "TooSmall").then(|| {
        let size = rsa_private_bits(der_bytes).map_or_else(String::new, |b| format!(" ({b} bits)"));
        Error::new(
            ErrorKind::WeakKey,
            format!("the RSA key is too small{size}; at least {MIN_RSA_BITS} bits are required"),
        )
    })
}

fn ec_signing(kind: KeyKind) -> &'static sig::EcdsaSigningAlgorithm {
    match kind {
        KeyKind::EcP384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
        KeyKind::EcP521 => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
    }
}

const EC_KINDS: [KeyKind; 3] = [KeyKind::EcP256, KeyKind::EcP384, KeyKind::EcP521];

fn rejected(what: &str) -> Error {
    Error::new(ErrorKind::InvalidKey, format!("{what} rejected"))
}

impl SigningKey {
    fn rsa(pair: RsaKeyPair) -> Result<SigningKey, Error> {
        let bits = pair.public_modulus_len() * 8;
        if bits < MIN_RSA_BITS {
            return Err(Error::new(
                ErrorKind::WeakKey,
                format!("RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"),
            ));
        }
        Ok(Pair::Rsa(pair).into())
    }

    /// From DER: PKCS#8 of any supported kind, PKCS#1 RSA, or SEC1 EC.
    pub fn from_der(der: &[u8]) -> Result<SigningKey, Error> {
        for parse in [RsaKeyPair::from_pkcs8, RsaKeyPair::from_der] {
            match parse(der) {
                Ok(pair) => return SigningKey::rsa(pair),
                Err(e) => {
                    if let Some(weak) = rsa_rejected(e, der) {
                        return Err(weak);
                    }
                }
            }
        }
        for kind in EC_KINDS {
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(ec_signing(kind), der) {
                return Ok(Pair::Ec(kind, pair).into());
            }
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Pair::Ed25519(pair).into());
        }
        Err(Error::new(
            ErrorKind::UnsupportedKey,
            "not an RSA, EC (P-256/384/521) or Ed25519 private key in PKCS#8, PKCS#1 or SEC1 form",
        ))
    }

    /// From PEM text holding one `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block.
    pub fn from_pem(text: &[u8]) -> Result<SigningKey, Error> {
        let blocks = pem::parse_many(text).map_err(|_| Error::malformed("PEM does not decode"))?;
        let mut private = blocks.iter().filter(|b| b.tag().ends_with("PRIVATE KEY"));
        let block = private
            .next()
            .ok_or_else(|| Error::malformed("no PRIVATE KEY block in the PEM"))?;
        if private.next().is_some() {
            return Err(Error::new(
                ErrorKind::AmbiguousKey,
                "the PEM holds several private keys; give one",
            ));
        }
        if block.tag() == "ENCRYPTED PRIVATE KEY" {
            return Err(Error::new(
                ErrorKind::UnsupportedKey,
                "encrypted private keys are not supported; decrypt it first",
            ));
        }
        SigningKey::from_der(block.contents())
    }

    /// From the members of a private JWK, already decoded from base64url.
    pub(crate) fn from_jwk_members(
        kty: &str,
        crv: Option<&str>,
        get: &dyn Fn(&str) -> Result<Vec<u8>, Error>,
    ) -> Result<SigningKey, Error> {
        match kty {
            "RSA" => {
                let (n, e, d) = (get("n")?, get("e")?, get("d")?);
                let (p, q) = (get("p")?, get("q")?);
                let (dp, dq, qi) = (get("dp")?, get("dq")?, get("qi")?);
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n, e },
                    d,
                    p,
                    q,
                    dP: dp,
                    dQ: dq,
                    qInv: qi,
                };
                let bits = components.public_key.n.len() * 8;
                SigningKey::rsa(RsaKeyPair::from_components(&components).map_err(|e| {
                    if e.description_() == "TooSmall" {
                        Error::new(
                            ErrorKind::WeakKey,
                            format!("the RSA key is too small (about {bits} bits); at least {MIN_RSA_BITS} bits are required"),
                        )
                    } else {
                        rejected("RSA private JWK")
                    }
                })?)
            }
            "EC" => {
                let kind = match crv {
                    Some("P-256") => KeyKind::EcP256,
                    Some("P-384") => KeyKind::EcP384,
                    Some("P-521") => KeyKind::EcP521,
                    _ => {
                        return Err(Error::new(
                            ErrorKind::UnsupportedKey,
                            "EC JWK curve must be P-256, P-384 or P-521",
                        ))
                    }
                };
                let (d, x, y) = (get("d")?, get("x")?, get("y")?);
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let pair =
                    EcdsaKeyPair::from_private_key_and_public_key(ec_signing(kind), &d, &point)
                        .map_err(|_| rejected("EC private JWK"))?;
                Ok(Pair::Ec(kind, pair).into())
            }
            "OKP" if crv == Some("Ed25519") => {
                let (d, x) = (get("d")?, get("x")?);
                Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                    .map(|p| Pair::Ed25519(p).into())
                    .map_err(|_| rejected("Ed25519 private JWK"))
            }
            _ => Err(Error::new(
                ErrorKind::UnsupportedKey,
                "private JWK must be RSA, EC (P-256/384/521) or OKP Ed25519",
            )),
        }
    }

    pub fn kind(&self) -> KeyKind {
        match &self.pair {
            Pair::Rsa(_) => KeyKind::Rsa,
            Pair::Ec(kind, _) => *kind,
            Pair::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Restricts the key to `alg` (a JWK's own `alg`); refuses an `alg` its kind cannot sign.
    pub fn restricted_to(mut self, alg: Alg) -> Result<SigningKey, Error> {
        if alg.key_kind() != self.kind() {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!("alg {alg} does not fit a {} key", kind_label(self.kind())),
            ));
        }
        self.only = Some(alg);
        Ok(self)
    }

    /// The JWS signature of `message` with `alg`, which must fit the key's kind.
    pub fn sign(&self, alg: Alg, message: &[u8]) -> Result<Vec<u8>, Error> {
        if alg.key_kind() != self.kind() {
            return Err(Error::new(
                ErrorKind::AlgorithmNotAllowed,
                format!("a {} key cannot sign {alg}", kind_label(self.kind())),
            ));
        }
        if let Some(only) = self.only.filter(|&only| only != alg) {
            return Err(Error::new(
                ErrorKind::AlgorithmNotAllowed,
                format!("the key is for {only} only (its JWK \"alg\"); asked to sign {alg}"),
            ));
        }
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    Alg::RS256 => &sig::RSA_PKCS1_SHA256,
                    Alg::RS384 => &sig::RSA_PKCS1_SHA384,
                    Alg::RS512 => &sig::RSA_PKCS1_SHA512,
                    Alg::PS256 => &sig::RSA_PSS_SHA256,
                    Alg::PS384 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .map_err(|_| Error::new(ErrorKind::InvalidKey, "RSA signing failed"))?;
                Ok(out)
            }
            Pair::Ec(_, pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::new(ErrorKind::InvalidKey, "ECDSA signing failed")),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// The public half, as SPKI DER (for a JWK Set or PEM to verify with).
    pub fn public_key_der(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::AsDer;
        match &self.pair {
            Pair::Rsa(pair) => pair
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ec(_, pair) => pair
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ed25519(pair) => pair
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
        }
    }
}
