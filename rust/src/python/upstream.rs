//! `Upstream`, `UpstreamResponse`, `BodySender` and the upstream exceptions: thin wrappers over
//! [`crate::proxy::client`]. Outcomes become Python objects here, on the thread that drains
//! them (the worker's asyncio loop, which holds the GIL already).

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

use super::convert::wire_of;
use super::errors::upstream_exception;
use crate::proxy::client::{self, BodyRx, BodySlot, BodyTx, Client, Outcome, RequestBody};
use crate::proxy::tls::{TlsPool, TlsSettings};

/// An origin's answer: status and headers, the whole body when it was small.
#[pyclass(frozen, module = "gateway._core")]
pub struct UpstreamResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    inline: Option<Vec<u8>>,
    body: BodySlot,
    idle_timeout: Duration,
}

#[pymethods]
impl UpstreamResponse {
    /// The whole body when it arrived with the head (small responses), else None: read the
    /// rest with `Upstream.read(response)`.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inline.as_ref().map(|b| PyBytes::new(py, b))
    }
}

/// The writing end of a streamed request body, fed with `Upstream.send(sender, chunk)`.
#[pyclass(frozen, module = "gateway._core")]
pub struct BodySender {
    tx: Mutex<Option<BodyTx>>,
    rx: Mutex<Option<BodyRx>>,
}

#[pymethods]
impl BodySender {
    #[new]
    #[pyo3(signature = (capacity=4))]
    fn new(capacity: usize) -> Self {
        let (tx, rx) = client::body_channel(capacity);
        BodySender {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Ends the body normally.
    fn finish(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Ends the body with an error, so the origin sees an aborted request rather than a short one.
    fn abort(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            client::abort_body(&tx);
        }
    }
}

/// The TLS settings of one HTTPS origin and its own pool of connections, built once when the
/// config is loaded (so `gateway check` parses the same files, with the same code, as serve).
/// Raises `ValueError(key, message)` when a setting cannot be used: `key` is the config key at
/// fault ("sni", "ca_file", "client_cert", "client_key", "url"), `message` what is wrong (never
/// the file's contents).
#[pyclass(frozen, module = "gateway._core")]
pub struct OriginTls {
    pool: TlsPool,
}

#[pymethods]
impl OriginTls {
    #[new]
    #[pyo3(signature = (host, port, sni, *, ca_pem=None, client_cert_pem=None, client_key_pem=None, verify=true, http2=true, max_idle_per_origin=256, idle_timeout=90.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: &str,
        port: u16,
        sni: &str,
        ca_pem: Option<Vec<u8>>,
        client_cert_pem: Option<Vec<u8>>,
        client_key_pem: Option<Vec<u8>>,
        verify: bool,
        http2: bool,
        max_idle_per_origin: usize,
        idle_timeout: f64,
    ) -> PyResult<Self> {
        let settings = TlsSettings {
            sni,
            ca_pem: ca_pem.as_deref(),
            client_cert_pem: client_cert_pem.as_deref(),
            client_key_pem: client_key_pem.as_deref(),
            verify,
            http2,
        };
        TlsPool::new(&settings, host, port, max_idle_per_origin, idle_timeout)
            .map(|pool| OriginTls { pool })
            .map_err(|e| PyValueError::new_err((e.key, e.message)))
    }

    /// Whether h2 is offered by ALPN (`http2 = "auto"`).
    #[getter]
    fn http2(&self) -> bool {
        self.pool.http2
    }
}

/// A pool of keep-alive connections to origins, driven by the I/O thread.
#[pyclass(frozen, module = "gateway._core")]
pub struct Upstream {
    client: Client,
}

/// Header bytes as latin-1 text: each byte becomes the character with that code point, the way
/// ASGI hands request headers over, so bytes outside ASCII pass through unchanged both ways.
fn wire_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[pymethods]
impl Upstream {
    #[new]
    #[pyo3(signature = (max_idle_per_origin=256, idle_timeout=90.0))]
    fn new(max_idle_per_origin: usize, idle_timeout: f64) -> PyResult<Self> {
        let client = Client::new(max_idle_per_origin, idle_timeout)
            .map_err(|e| PyOSError::new_err(format!("eventfd: {e}")))?;
        Ok(Upstream { client })
    }

    /// The eventfd to watch with `loop.add_reader(fileno, ...)`; readable when `drain()` has work.
    fn fileno(&self) -> i32 {
        self.client.fd()
    }

    /// Completed operations as `(token, ok, value)`: value is an UpstreamResponse, bytes, a bool
    /// or (when not ok) an exception instance to raise.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<(u64, bool, Bound<'py, PyAny>)>> {
        let items = self.client.drain();
        let mut out = Vec::with_capacity(items.len());
        for (token, outcome) in items {
            let (ok, value): (bool, Bound<'py, PyAny>) = match outcome {
                Outcome::Response(head) => {
                    let head = *head;
                    let resp = UpstreamResponse {
                        status: head.status,
                        headers: head
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str().to_owned(), wire_text(v.as_bytes())))
                            .collect(),
                        inline: head.inline,
                        body: head.body,
                        idle_timeout: head.idle_timeout,
                    };
                    (true, Bound::new(py, resp)?.into_any())
                }
                Outcome::Chunk(b) => (true, PyBytes::new(py, &b).into_any()),
                Outcome::Sent(v) => (true, PyBool::new(py, v).to_owned().into_any()),
                Outcome::Failed(f) => (false, upstream_exception(py, f.kind, f.message)),
            };
            out.push((token, ok, value));
        }
        Ok(out)
    }

    /// Starts a request to `url` (http://host:port/path?query); returns the token its
    /// UpstreamResponse will come back under. Header names and values are bytes or latin-1 str.
    /// `body` is the whole body, or `stream` a BodySender. Bodies up to `max_inline` bytes come
    /// back with the head. With `tls` (an HTTPS origin's OriginTls), `url` is
    /// https://HOST/path?query where HOST is the Host the origin is sent; the connection goes to
    /// the OriginTls's own address.
    #[pyo3(signature = (method, url, headers, body=None, stream=None, timeout=30.0, max_inline=65536, tls=None))]
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
        body: Option<Vec<u8>>,
        stream: Option<&Bound<'_, BodySender>>,
        timeout: f64,
        max_inline: usize,
        tls: Option<&Bound<'_, OriginTls>>,
    ) -> PyResult<u64> {
        // The request's own header bytes go on unchanged, without a bytes -> str -> bytes trip.
        let mut wire = Vec::with_capacity(headers.len());
        for (k, v) in &headers {
            wire.push((wire_of(k, "header name")?, wire_of(v, "header value")?));
        }
        let body = match (body, stream) {
            (_, Some(sender)) => RequestBody::Stream(
                sender
                    .get()
                    .rx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .ok_or_else(|| {
                        PyValueError::new_err("a BodySender can feed only one request")
                    })?,
            ),
            (Some(b), None) => RequestBody::Full(Bytes::from(b)),
            (None, None) => RequestBody::Empty,
        };
        self.client
            .request_via(
                tls.map(|t| &t.get().pool),
                method.as_bytes(),
                url,
                wire.iter().map(|(k, v)| (&**k, &**v)),
                body,
                Duration::from_secs_f64(timeout.max(0.001)),
                max_inline,
            )
            .map_err(|e| PyValueError::new_err(e.0))
    }

    /// Starts reading the next chunk of a streamed response; the token resolves to bytes
    /// (b"" at the end) or an UpstreamError/UpstreamTimeout.
    fn read(&self, response: &Bound<'_, UpstreamResponse>) -> u64 {
        let r = response.get();
        self.client.read(&r.body, r.idle_timeout)
    }

    /// Queues a request-body chunk. Returns 0 when it was queued at once (the common case),
    /// else a token that resolves to True once queued, False if the origin stopped reading.
    fn send(&self, sender: &Bound<'_, BodySender>, chunk: Vec<u8>) -> u64 {
        let tx = sender
            .get()
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.client.send(tx, Bytes::from(chunk))
    }
}
