//! TLS to HTTPS origins: the rustls client configuration an origin's keys describe, the pool of
//! connections built on it, and what a failed handshake is called.
//!
//! Why rustls (through hyper-rustls): a memory-safe, well-reviewed TLS stack that hyper's own
//! ecosystem uses, with typed certificate errors (so a 502 can say *which* check failed without
//! quoting the certificate). Its crypto provider is aws-lc-rs, the library the core already links
//! for JWS (see rust/src/jose/signature.rs): one crypto library, one C build.
//!
//! One origin = one [`TlsPool`] = one hyper client, built when the config is loaded. Everything
//! that changes a connection (the address, the SNI name, the trusted roots, the client
//! certificate, whether the certificate is verified, which ALPN protocols are offered) is fixed per
//! pool, so two origins that differ in any of them can never share a connection. Within a pool
//! hyper keys connections by the request URI's scheme and authority, which is the Host the origin
//! is sent (see [`FixedAddr`]).
//!
//! The name the certificate is checked against is exactly the SNI name: both come from the one
//! `ServerName` handed to rustls ([`FixedServerNameResolver`]); there is no second name anywhere.

use std::io;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, ErrorKind};

/// What an `[origins.NAME]` table says about TLS, with the files already read (PEM bytes).
pub struct TlsSettings<'a> {
    /// The name sent as SNI and checked against the certificate (`sni`, default the URL's host;
    /// an IP address is checked against the certificate's IP addresses and sends no SNI).
    pub sni: &'a str,
    /// Trusted roots (`ca_file`); `None`: the system's roots.
    pub ca_pem: Option<&'a [u8]>,
    /// The client certificate chain (`client_cert`) and its key (`client_key`), for mTLS.
    pub client_cert_pem: Option<&'a [u8]>,
    pub client_key_pem: Option<&'a [u8]>,
    /// `tls_verify`: false accepts any certificate for any name (the config loader warns).
    pub verify: bool,
    /// `http2 = "auto"`: offer h2 and http/1.1 by ALPN; false (`"never"`): only http/1.1.
    pub http2: bool,
}

/// A TLS setting that cannot be used: `key` is the config key at fault (`sni`, `ca_file`,
/// `client_cert`, `client_key`), `message` what is wrong with it (never the file's contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> TlsConfigError {
    TlsConfigError {
        key,
        message: message.into(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The system's roots, read once per process (reading and parsing them costs milliseconds).
/// rustls-native-certs rather than webpki-roots: "the system's roots" is the operating system's
/// trust store — which carries the private CAs an operator installed and follows the distribution's
/// updates and `SSL_CERT_FILE` / `SSL_CERT_DIR` — not a snapshot compiled into the binary.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({})", crate::error::bounded(&e.to_string(), 120)))
                    .unwrap_or_default();
                return Err(format!(
                    "no system root certificates could be loaded{why}; install ca-certificates, \
                     or set ca_file"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// Every CERTIFICATE block of a PEM file, or what is wrong with it.
fn pem_certs(
    key: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => {
                return Err(bad(
                    key,
                    format!(
                        "is not valid PEM ({})",
                        crate::error::bounded(&e.to_string(), 80)
                    ),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(bad(key, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn roots_from(pem: &[u8]) -> Result<Arc<RootCertStore>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in pem_certs("ca_file", pem)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            bad(
                "ca_file",
                format!(
                    "certificate {} is not a usable X.509 CA certificate ({})",
                    i + 1,
                    crate::error::bounded(&e.to_string(), 80)
                ),
            )
        })?;
    }
    Ok(Arc::new(roots))
}

/// The rustls configuration for `s`, and the name to send and check.
pub fn client_config(
    s: &TlsSettings,
) -> Result<(ClientConfig, ServerName<'static>), TlsConfigError> {
    let sni = ServerName::try_from(s.sni.to_owned())
        .map_err(|_| bad("sni", "is not a DNS name or an IP address"))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("sni", format!("no TLS version available: {e}")))?;
    let builder = if s.verify {
        let roots = match s.ca_pem {
            Some(pem) => roots_from(pem)?,
            None => system_roots().map_err(|m| bad("ca_file", m))?,
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    };
    let mut config = match (s.client_cert_pem, s.client_key_pem) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(bad("client_key", "is missing (client_cert needs its key)")),
        (None, Some(_)) => {
            return Err(bad(
                "client_cert",
                "is missing (client_key needs its certificate)",
            ))
        }
        (Some(cert), Some(key)) => {
            let chain = pem_certs("client_cert", cert)?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|_| bad("client_key", "holds no PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => bad(
                        "client_key",
                        "does not match the certificate in client_cert",
                    ),
                    rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidMessage(_) => bad(
                        "client_cert",
                        "its first certificate is not a valid X.509 certificate",
                    ),
                    other => bad(
                        "client_key",
                        format!(
                            "is not a usable private key ({})",
                            crate::error::bounded(&other.to_string(), 80)
                        ),
                    ),
                })?
        }
    };
    // "auto" offers h2 first (hyper then speaks h2 when the origin picks it); "never" offers
    // http/1.1 alone, so an origin that prefers h2 cannot pick it.
    config.alpn_protocols = if s.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((config, sni))
}

/// `tls_verify = false`: the handshake's signatures are still checked (the peer holds the key of
/// the certificate it sent), but not who the certificate belongs to nor who signed it.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects every request of a pool to the origin's own address, whatever the request URI's
/// authority says. The URI's authority is the Host the origin is sent (as `Host` on HTTP/1.1, as
/// `:authority` on h2, where a different `Host` next to it would be malformed, RFC 9113 §8.3.1),
/// so it cannot also be where to connect when `host_header` is "client" or a literal name.
#[derive(Clone)]
pub struct FixedAddr {
    inner: HttpConnector,
    target: Uri,
}

impl tower_service::Service<Uri> for FixedAddr {
    type Response = <HttpConnector as tower_service::Service<Uri>>::Response;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = <HttpConnector as tower_service::Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _dst: Uri) -> Self::Future {
        self.inner.call(self.target.clone())
    }
}

pub(crate) type TlsHyperClient = HyperClient<HttpsConnector<FixedAddr>, super::client::ReqBody>;

/// The keep-alive connections to one HTTPS origin, all made with the same TLS settings.
pub struct TlsPool {
    pub(crate) client: TlsHyperClient,
    /// Whether h2 is offered by ALPN (`http2 = "auto"`).
    pub http2: bool,
}

impl TlsPool {
    /// A pool of connections to `host:port` (`host` as in a URL: an IPv6 address in brackets).
    /// Fails with the config key at fault when a file or a name cannot be used. Nothing connects
    /// (and no thread starts) until the first request.
    pub fn new(
        settings: &TlsSettings,
        host: &str,
        port: u16,
        max_idle_per_origin: usize,
        idle_timeout: f64,
    ) -> Result<Self, TlsConfigError> {
        let (config, sni) = client_config(settings)?;
        let target: Uri = format!("http://{host}:{port}")
            .parse()
            .map_err(|_| bad("url", "its host is not a valid host name"))?;
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        inner.set_keepalive(Some(Duration::from_secs(60)));
        // HTTPS only (never a plain connection), the one SNI name, ALPN as client_config set it.
        let connector = HttpsConnector::new(
            FixedAddr { inner, target },
            config,
            true,
            Arc::new(FixedServerNameResolver::new(sni)),
        );
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_origin)
            .pool_idle_timeout(Duration::from_secs_f64(idle_timeout.max(0.1)))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(TlsPool {
            client,
            http2: settings.http2,
        })
    }
}

/// The TLS failure somewhere in `e`'s chain of causes, as one of the four TLS kinds and a fixed
/// sentence (never the certificate's names or other contents, which rustls's own messages quote).
/// `None` when the failure was not TLS's (a refused connection, a timeout, a bad answer).
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let tls = find_rustls_error(e)?;
    let (kind, message) = match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            // A bad signature from a trusted CA's name is a certificate that CA did not sign: to
            // the operator the same fault as an issuer the roots do not hold.
            CertificateError::UnknownIssuer | CertificateError::BadSignature => (
                ErrorKind::TlsUnknownIssuer,
                "unknown issuer: the origin's certificate is not signed by a trusted CA".to_owned(),
            ),
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => (
                ErrorKind::TlsExpired,
                "expired: the origin's certificate has expired or is not yet valid".to_owned(),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    ErrorKind::TlsNameMismatch,
                    "name mismatch: the origin's certificate is not valid for the SNI name"
                        .to_owned(),
                )
            }
            other => (
                ErrorKind::TlsHandshake,
                format!(
                    "handshake: the origin's certificate was refused ({})",
                    certificate_problem(other)
                ),
            ),
        },
        rustls::Error::AlertReceived(alert) => (
            ErrorKind::TlsHandshake,
            match alert {
                rustls::AlertDescription::CertificateRequired => {
                    "handshake: the origin requires a client certificate (client_cert)".to_owned()
                }
                other => format!("handshake: the origin refused the handshake (alert {other:?})"),
            },
        ),
        rustls::Error::InvalidMessage(_) => (
            ErrorKind::TlsHandshake,
            "handshake: the origin did not answer with TLS".to_owned(),
        ),
        rustls::Error::NoApplicationProtocol => (
            ErrorKind::TlsHandshake,
            "handshake: no ALPN protocol in common with the origin".to_owned(),
        ),
        other => (
            ErrorKind::TlsHandshake,
            format!(
                "handshake: {}",
                crate::error::bounded(&other.to_string(), 120)
            ),
        ),
    };
    Some(Error::new(kind, message))
}

/// A certificate failure other than the three named ones, by its kind alone.
fn certificate_problem(e: &CertificateError) -> &'static str {
    match e {
        CertificateError::BadEncoding => "bad encoding",
        CertificateError::Revoked => "revoked",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "not valid for server authentication"
        }
        CertificateError::UnhandledCriticalExtension => "unhandled critical extension",
        _ => "invalid certificate",
    }
}

/// rustls's typed error, wherever it sits in the chain. io::Error hides a custom error from
/// `source()` (it returns the inner error's source), so it is unwrapped with `get_ref` instead.
fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(err) = cur {
        depth += 1;
        if depth > 16 {
            return None;
        }
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                cur = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    //! A real TLS origin (tokio-rustls on its own runtime) with certificates made here (rcgen).

    use super::*;
    use crate::proxy::client::{Client, Outcome, RequestBody};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn make_ca() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `names` signed by `ca` (PEM chain, PEM key); `expired` puts it in 2001.
    fn leaf(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A TLS origin answering one HTTP/1.1 request per connection with 200 "ok"; each accepted
    /// connection's negotiated ALPN goes to the receiver (None: the handshake failed).
    fn tls_origin(
        chain_pem: &str,
        key_pem: &str,
        alpn: &[&[u8]],
        client_ca: Option<&Ca>,
    ) -> (
        u16,
        std::sync::mpsc::Receiver<Option<Vec<u8>>>,
        tokio::runtime::Runtime,
    ) {
        let chain: Vec<_> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.cert.der().clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        let _ = tx.send(None);
                        return;
                    };
                    let _ = tx.send(Some(
                        tls.get_ref().1.alpn_protocol().unwrap_or(b"").to_vec(),
                    ));
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (port, rx, rt)
    }

    fn wait(client: &Client, token: u64) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pfd = libc::pollfd {
                fd: client.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            if let Some((_, o)) = client.drain().into_iter().find(|(t, _)| *t == token) {
                return o;
            }
            assert!(Instant::now() < deadline, "no outcome");
        }
    }

    fn settings<'a>(sni: &'a str, ca: Option<&'a [u8]>) -> TlsSettings<'a> {
        TlsSettings {
            sni,
            ca_pem: ca,
            client_cert_pem: None,
            client_key_pem: None,
            verify: true,
            http2: false,
        }
    }

    /// One GET through `pool`; Ok(status) or Err(the error).
    fn get(pool: &TlsPool, port: u16) -> Result<u16, Error> {
        let client = Client::new(8, 30.0).unwrap();
        let token = client
            .request_via(
                Some(pool),
                b"GET",
                // The authority is the Host sent; the pool connects to 127.0.0.1:port anyway.
                "https://origin.test/x",
                [],
                RequestBody::Empty,
                Duration::from_secs(5),
                65536,
            )
            .unwrap();
        let _ = port;
        match wait(&client, token) {
            Outcome::Response(h) => Ok(h.status),
            Outcome::Failed(e) => Err(e),
            _ => panic!("not a response"),
        }
    }

    #[test]
    fn verified_with_ca_file_and_the_sni_name() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let (port, seen, _rt) = tls_origin(&chain, &key, &[b"http/1.1"], None);
        let ca_pem = ca.cert.pem();
        let pool = TlsPool::new(
            &settings("origin.test", Some(ca_pem.as_bytes())),
            "127.0.0.1",
            port,
            8,
            30.0,
        )
        .unwrap();
        assert_eq!(get(&pool, port).unwrap(), 200);
        assert_eq!(seen.recv().unwrap().as_deref(), Some(&b"http/1.1"[..]));
    }

    #[test]
    fn each_certificate_failure_is_named_by_kind_without_its_contents() {
        let ca = make_ca();
        let other = make_ca();
        let (good, good_key) = leaf(&ca, &["origin.test"], false);
        let (old, old_key) = leaf(&ca, &["origin.test"], true);
        let ca_pem = ca.cert.pem();
        let other_pem = other.cert.pem();
        let cases: [(&str, &str, &str, &str, ErrorKind); 3] = [
            (
                &good,
                &good_key,
                "origin.test",
                &other_pem,
                ErrorKind::TlsUnknownIssuer,
            ),
            (
                &old,
                &old_key,
                "origin.test",
                &ca_pem,
                ErrorKind::TlsExpired,
            ),
            (
                &good,
                &good_key,
                "elsewhere.test",
                &ca_pem,
                ErrorKind::TlsNameMismatch,
            ),
        ];
        for (chain, key, sni, roots, want) in cases {
            let (port, _seen, _rt) = tls_origin(chain, key, &[b"http/1.1"], None);
            let pool = TlsPool::new(
                &settings(sni, Some(roots.as_bytes())),
                "127.0.0.1",
                port,
                8,
                30.0,
            )
            .unwrap();
            let e = get(&pool, port).unwrap_err();
            assert_eq!(e.kind, want, "{e:?}");
            assert_eq!(e.kind.http_status(), 502);
            assert!(
                !e.message.contains("origin.test"),
                "no certificate names: {e:?}"
            );
        }
    }

    #[test]
    fn tls_verify_false_accepts_an_unknown_issuer() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let (port, _seen, _rt) = tls_origin(&chain, &key, &[], None);
        let mut s = settings("other.test", None);
        s.verify = false;
        let pool = TlsPool::new(&s, "127.0.0.1", port, 8, 30.0).unwrap();
        assert_eq!(get(&pool, port).unwrap(), 200);
    }

    #[test]
    fn mtls_with_and_without_the_client_certificate() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let (client_chain, client_key) = leaf(&ca, &["gateway.test"], false);
        let (port, _seen, _rt) = tls_origin(&chain, &key, &[], Some(&ca));
        let ca_pem = ca.cert.pem();
        let without = TlsPool::new(
            &settings("origin.test", Some(ca_pem.as_bytes())),
            "127.0.0.1",
            port,
            8,
            30.0,
        )
        .unwrap();
        let e = get(&without, port).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TlsHandshake, "{e:?}");
        assert!(e.message.contains("client certificate"), "{e:?}");
        let mut s = settings("origin.test", Some(ca_pem.as_bytes()));
        s.client_cert_pem = Some(client_chain.as_bytes());
        s.client_key_pem = Some(client_key.as_bytes());
        let with = TlsPool::new(&s, "127.0.0.1", port, 8, 30.0).unwrap();
        assert_eq!(get(&with, port).unwrap(), 200);
    }

    #[test]
    fn h2_is_offered_only_when_http2_is_auto() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let ca_pem = ca.cert.pem();
        for (http2, want) in [(true, &b"h2"[..]), (false, &b"http/1.1"[..])] {
            let (port, seen, _rt) = tls_origin(&chain, &key, &[b"h2", b"http/1.1"], None);
            let mut s = settings("origin.test", Some(ca_pem.as_bytes()));
            s.http2 = http2;
            let pool = TlsPool::new(&s, "127.0.0.1", port, 8, 30.0).unwrap();
            // The test origin only speaks HTTP/1.1, so the h2 request itself fails; the ALPN
            // the handshake agreed on is what this checks.
            let _ = get(&pool, port);
            assert_eq!(seen.recv().unwrap().as_deref(), Some(want));
        }
    }

    /// An h2 origin that refuses the first `refuse` streams with REFUSED_STREAM and answers the
    /// rest 200 with the request body's length; returns how many streams it saw.
    fn h2_origin(
        chain_pem: &str,
        key_pem: &str,
        refuse: usize,
    ) -> (
        u16,
        Arc<std::sync::atomic::AtomicUsize>,
        tokio::runtime::Runtime,
    ) {
        let chain: Vec<_> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let streams = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = streams.clone();
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let Ok(mut conn) = h2::server::handshake(tls).await else {
                        return;
                    };
                    while let Some(Ok((request, mut respond))) = conn.accept().await {
                        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if n < refuse {
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                            continue;
                        }
                        tokio::spawn(async move {
                            let mut body = request.into_body();
                            let mut len = 0;
                            while let Some(Ok(chunk)) = body.data().await {
                                len += chunk.len();
                                let _ = body.flow_control().release_capacity(chunk.len());
                            }
                            let text = len.to_string();
                            let head = hyper::Response::builder()
                                .status(200)
                                .header("content-length", text.len())
                                .body(())
                                .unwrap();
                            if let Ok(mut send) = respond.send_response(head, false) {
                                let _ = send.send_data(bytes::Bytes::from(text), true);
                            }
                        });
                    }
                });
            }
        });
        (port, streams, rt)
    }

    #[test]
    fn a_stream_the_h2_origin_refused_is_sent_again_with_its_body() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let ca_pem = ca.cert.pem();
        let mut s = settings("origin.test", Some(ca_pem.as_bytes()));
        s.http2 = true;
        for (refuse, want) in [(1, Some("5")), (REFUSES_GIVEN_UP, None)] {
            let (port, streams, _rt) = h2_origin(&chain, &key, refuse);
            let pool = TlsPool::new(&s, "127.0.0.1", port, 8, 30.0).unwrap();
            let client = Client::new(8, 30.0).unwrap();
            let token = client
                .request_via(
                    Some(&pool),
                    b"POST",
                    "https://origin.test/x",
                    [(&b"content-length"[..], &b"5"[..])],
                    RequestBody::Full(bytes::Bytes::from_static(b"hello")),
                    Duration::from_secs(5),
                    65536,
                )
                .unwrap();
            match (wait(&client, token), want) {
                (Outcome::Response(h), Some(body)) => {
                    assert_eq!(h.status, 200);
                    assert_eq!(h.inline.as_deref(), Some(body.as_bytes()));
                    assert_eq!(
                        streams.load(std::sync::atomic::Ordering::SeqCst),
                        refuse + 1
                    );
                }
                // Refused every time: a 502 after the bounded number of tries, never a loop.
                (Outcome::Failed(e), None) => {
                    assert_eq!(e.kind, ErrorKind::UpstreamFailed, "{e:?}");
                    assert_eq!(
                        streams.load(std::sync::atomic::Ordering::SeqCst),
                        REFUSES_GIVEN_UP
                    );
                }
                _ => panic!("unexpected outcome for refuse = {refuse}"),
            }
        }
    }

    /// One try and every replay refused.
    const REFUSES_GIVEN_UP: usize = 1 + crate::proxy::client::REPLAYS;

    #[test]
    fn unusable_files_are_named_by_key() {
        let ca = make_ca();
        let (chain, key) = leaf(&ca, &["origin.test"], false);
        let (_, other_key) = leaf(&ca, &["origin.test"], false);
        let err = |s: TlsSettings| TlsPool::new(&s, "127.0.0.1", 443, 8, 30.0).err().unwrap();
        assert_eq!(
            err(settings("origin.test", Some(b"not pem"))).key,
            "ca_file"
        );
        assert_eq!(err(settings("bad name!", None)).key, "sni");
        let mut s = settings("origin.test", None);
        s.client_cert_pem = Some(chain.as_bytes());
        s.client_key_pem = Some(other_key.as_bytes());
        let e = err(s);
        assert_eq!(
            (e.key, e.message.contains("does not match")),
            ("client_key", true),
            "{e:?}"
        );
        let mut s = settings("origin.test", None);
        s.client_cert_pem = Some(key.as_bytes());
        s.client_key_pem = Some(key.as_bytes());
        assert_eq!(err(s).key, "client_cert");
        let mut s = settings("origin.test", None);
        s.client_cert_pem = Some(chain.as_bytes());
        s.client_key_pem = Some(chain.as_bytes());
        assert_eq!(err(s).key, "client_key");
    }
}
