//! Public keys from PEM and DER: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`) and X.509
//! certificates (`CERTIFICATE`, whose SubjectPublicKeyInfo is used; the certificate itself is not
//! validated — it is a container for the key, as in PyJWT).
//!
//! The DER structures are decoded by RustCrypto's `spki`, `pkcs1` and `x509-cert` crates and the
//! PEM armour by the `pem` crate, which skips explanatory text before `-----BEGIN` (RFC 7468 §5.2,
//! what `openssl x509 -text` writes). Nothing here decodes ASN.1 by hand.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoRef;

use super::alg::{Alg, KeyKind};
use super::error::{Error, ErrorKind};
use super::keys::{Key, KeySet, PublicKey};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const X448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.111");
const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// A public key from a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7).
pub fn public_key_from_spki_der(der: &[u8]) -> Result<PublicKey, Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|_| Error::malformed("not a DER SubjectPublicKeyInfo"))?;
    let oid = spki.algorithm.oid;
    let params = spki.algorithm.parameters;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::malformed("SubjectPublicKeyInfo key bits are not whole bytes"))?;
    if oid == RSA_ENCRYPTION {
        if params.is_some_and(|p| !p.is_null()) {
            return Err(Error::malformed(
                "rsaEncryption parameters must be NULL or absent",
            ));
        }
        public_key_from_pkcs1_der(bits)
    } else if oid == EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = params
            .ok_or_else(|| Error::malformed("EC key without a named curve"))?
            .decode_as()
            .map_err(|_| {
                Error::unsupported("EC key parameters must name a curve (explicit curves refused)")
            })?;
        let kind = if curve == SECP256R1 {
            KeyKind::EcP256
        } else if curve == SECP384R1 {
            KeyKind::EcP384
        } else if curve == SECP521R1 {
            KeyKind::EcP521
        } else {
            return Err(Error::unsupported(format!(
                "EC curve {curve} is not supported (P-256, P-384, P-521 are)"
            )));
        };
        let len = kind.coordinate_len();
        match bits.first() {
            Some(4) if bits.len() == 1 + 2 * len => {
                PublicKey::from_ec_coordinates(kind, &bits[1..1 + len], &bits[1 + len..])
            }
            Some(2) | Some(3) => Err(Error::unsupported(
                "compressed EC points are not supported; use the uncompressed form",
            )),
            _ => Err(Error::invalid_key(
                "EC point has the wrong encoding or length",
            )),
        }
    } else if oid == ED25519 {
        if params.is_some() {
            return Err(Error::malformed(
                "Ed25519 keys have no parameters (RFC 8410)",
            ));
        }
        PublicKey::from_ed25519(bits)
    } else if oid == RSASSA_PSS {
        Err(Error::unsupported(
            "RSASSA-PSS-restricted keys (id-RSASSA-PSS) are not supported; use an rsaEncryption key",
        ))
    } else if oid == ED448 || oid == X25519 || oid == X448 {
        Err(Error::unsupported(
            "Ed448, X25519 and X448 keys cannot verify JWS here (EdDSA means Ed25519)",
        ))
    } else {
        Err(Error::unsupported(format!(
            "public key algorithm {oid} is not supported"
        )))
    }
}

/// An RSA public key from a DER PKCS#1 `RSAPublicKey` (RFC 8017 §A.1.1).
pub fn public_key_from_pkcs1_der(der: &[u8]) -> Result<PublicKey, Error> {
    let key = pkcs1::RsaPublicKey::from_der(der)
        .map_err(|_| Error::malformed("not a DER PKCS#1 RSAPublicKey"))?;
    PublicKey::from_rsa_components(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

/// The public key of a DER X.509 certificate. The certificate is not validated (no chain, dates
/// or signature): it is taken as a container for the key.
pub fn public_key_from_certificate_der(der: &[u8]) -> Result<PublicKey, Error> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|_| Error::malformed("not a DER X.509 certificate"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| Error::malformed("certificate SubjectPublicKeyInfo does not re-encode"))?;
    public_key_from_spki_der(&spki).map_err(|e| e.context("certificate public key"))
}

/// A public key from DER in any of the three forms: SPKI, PKCS#1 `RSAPublicKey` or an X.509
/// certificate.
pub fn public_key_from_der(der: &[u8]) -> Result<PublicKey, Error> {
    // The three structures differ enough that at most one decodes. The first result that gets
    // past the DER structure (a key, or a refusal such as WeakKey) is the answer; when none
    // decodes, the SPKI attempt's error is reported.
    type Parser = fn(&[u8]) -> Result<PublicKey, Error>;
    let parsers: [Parser; 3] = [
        public_key_from_spki_der,
        public_key_from_pkcs1_der,
        public_key_from_certificate_der,
    ];
    let mut first_malformed = None;
    for parse in parsers {
        match parse(der) {
            Err(e) if e.kind() == ErrorKind::Malformed => {
                first_malformed.get_or_insert(e);
            }
            other => return other,
        }
    }
    Err(first_malformed.unwrap_or_else(|| Error::malformed("not DER")))
}

/// What a PEM block is, by its label (RFC 7468 §4).
enum Block {
    Spki,
    Pkcs1,
    Certificate,
    Private,
    Other,
}

fn classify(tag: &str) -> Block {
    match tag {
        "PUBLIC KEY" => Block::Spki,
        "RSA PUBLIC KEY" => Block::Pkcs1,
        "CERTIFICATE" | "X509 CERTIFICATE" | "X.509 CERTIFICATE" => Block::Certificate,
        t if t.contains("PRIVATE KEY") => Block::Private,
        _ => Block::Other,
    }
}

/// A public key from PEM text: one `PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE` block (of a
/// certificate chain, the first certificate, the leaf). Text around the blocks is ignored, and so
/// are blocks of other labels (`EC PARAMETERS`). A `... PRIVATE KEY` block anywhere is refused
/// ([`ErrorKind::PrivateKey`]): a verifier is never handed a private key. Several public keys
/// (not a chain) are refused as ambiguous.
pub fn public_key_from_pem(pem_text: &[u8]) -> Result<PublicKey, Error> {
    let blocks = pem::parse_many(pem_text).map_err(|_| Error::malformed("PEM does not decode"))?;
    if blocks.is_empty() {
        return Err(Error::malformed("no PEM block (-----BEGIN ...-----) found"));
    }
    let mut keys = Vec::new();
    let mut first_cert = None;
    for block in &blocks {
        match classify(block.tag()) {
            Block::Private => {
                return Err(Error::new(
                    ErrorKind::PrivateKey,
                    "the PEM holds a private key; give the public key or certificate",
                ))
            }
            Block::Spki => keys.push(public_key_from_spki_der(block.contents())),
            Block::Pkcs1 => keys.push(public_key_from_pkcs1_der(block.contents())),
            Block::Certificate => {
                if first_cert.is_none() {
                    first_cert = Some(public_key_from_certificate_der(block.contents()));
                }
            }
            Block::Other => {}
        }
    }
    if let Some(cert) = first_cert {
        keys.push(cert);
    }
    match keys.len() {
        0 => Err(Error::malformed(
            "no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block in the PEM",
        )),
        1 => keys.pop().unwrap_or_else(|| unreachable!()),
        n => Err(Error::new(
            ErrorKind::AmbiguousKey,
            format!("the PEM holds {n} public keys; give one"),
        )),
    }
}

/// True when `bytes` is asymmetric key material in a form people keep on disk, recognised as a
/// parser would rather than by a prefix:
/// - PEM (RFC 7468) of a key, certificate or request, with or without explanatory text before it
///   (`openssl x509 -text`), and RFC 4716 SSH2 / OpenPGP armour;
/// - DER, or base64 of DER without armour (Keycloak's realm "Public key"), that parses as a
///   public key or certificate — a weak or unsupported key is still a key;
/// - a JWK or JWK Set (JSON with `kty` or `keys`), with or without a UTF-8 BOM;
/// - OpenSSH public keys and certificates anywhere in a line (`authorized_keys` options before
///   them, `known_hosts` host names before them).
///
/// Meant for refusing such material as an HMAC secret; it errs on the side of saying yes.
pub fn is_asymmetric_key_material(bytes: &[u8]) -> bool {
    const ARMOUR: [&[u8]; 5] = [
        b"KEY-----",
        b"CERTIFICATE-----",
        b"CERTIFICATE REQUEST-----",
        b"KEY BLOCK-----",
        b"---- BEGIN SSH2 PUBLIC KEY ----",
    ];
    const SSH_KEY_TYPES: [&[u8]; 6] = [
        b"ssh-rsa",
        b"ssh-ed25519",
        b"ssh-ed448",
        b"ssh-dss",
        b"ecdsa-sha2-nistp",
        b"sk-ssh-ed25519@openssh.com",
    ];
    let has = |needle: &[u8]| memchr::memmem::find(bytes, needle).is_some();
    if (has(b"-----BEGIN ") || has(b"---- BEGIN ")) && ARMOUR.iter().any(|l| has(l)) {
        return true;
    }
    let text = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .trim_ascii();
    // An OpenSSH key type followed by a space and base64 (`AAAA`: the length of the type name),
    // anywhere: after authorized_keys options or a known_hosts host, and `-cert-v01` forms.
    for key_type in SSH_KEY_TYPES
        .iter()
        .copied()
        .chain([&b"sk-ecdsa-sha2-nistp"[..]])
    {
        let mut at = 0;
        while let Some(i) = memchr::memmem::find(&text[at..], key_type) {
            let rest = &text[at + i + key_type.len()..];
            let after_name = rest
                .iter()
                .position(|&b| b == b' ')
                .map(|sp| &rest[sp + 1..]);
            if after_name.is_some_and(|r| r.starts_with(b"AAAA")) {
                return true;
            }
            at += i + key_type.len();
        }
    }
    if matches!(text.first(), Some(b'{')) {
        // A JSON object holding a JWK anywhere (a JWK, a JWK Set, a file of keys by name).
        if let Ok(jiter::JsonValue::Object(members)) = jiter::JsonValue::parse(text, false) {
            if members.iter().any(|(k, _)| k == "keys")
                || memchr::memmem::find(text, b"\"kty\"").is_some()
            {
                return true;
            }
        }
    }
    if der_is_key(bytes) {
        return true;
    }
    // Base64 of DER without armour, as identity providers display public keys.
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.len() >= 64 {
        use base64::Engine;
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            if let Ok(der) = engine.decode(&compact) {
                if der_is_key(&der) {
                    return true;
                }
            }
        }
    }
    false
}

/// DER that gets past the structure of a public key or certificate.
fn der_is_key(der: &[u8]) -> bool {
    match public_key_from_der(der) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::Malformed,
    }
}

impl Key {
    /// A key from PEM text (see [`public_key_from_pem`]), with an optional `kid` and an optional
    /// `alg` restricting it to one algorithm.
    pub fn from_pem(pem_text: &[u8], kid: Option<&str>, alg: Option<Alg>) -> Result<Key, Error> {
        Key::new(public_key_from_pem(pem_text)?, kid.map(str::to_owned), alg)
    }
}

impl KeySet {
    /// A key set of the one key in `pem_text` (see [`Key::from_pem`]).
    pub fn from_pem(pem_text: &[u8], kid: Option<&str>, alg: Option<Alg>) -> Result<KeySet, Error> {
        Ok(KeySet::single(Key::from_pem(pem_text, kid, alg)?))
    }
}
