//! The upstream HTTP/1.1 client: one keep-alive pool per origin, bodies streamed both ways.
//!
//! Python awaits `Upstream.request(...)` once per request; hyper on a small tokio runtime does
//! the connection pooling, request writing and response parsing (a Python HTTP client costs
//! ~80 µs a request, this a few). Small response bodies come back inline with the head, so the
//! common case is one await; larger ones are read chunk by chunk with `UpstreamResponse.read()`,
//! and the next chunk is only read from the origin when Python asks for it, which is what keeps
//! memory bounded when the client downloads slower than the origin sends.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::{mpsc, Mutex};

create_exception!(gateway, UpstreamError, PyException, "The origin could not be reached or answered badly (502).");
create_exception!(gateway, UpstreamTimeout, UpstreamError, "The origin did not answer within the route's timeout (504).");
create_exception!(gateway, UpstreamConnectError, UpstreamError, "The origin refused or failed the connection (502).");

type ReqBody = BoxBody<Bytes, io::Error>;

/// A request body fed from Python through a bounded channel: `send` waits while the channel is
/// full, so a slow origin slows the client's upload instead of growing memory.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The writing end of a streamed request body.
#[pyclass(frozen, module = "gateway._core")]
pub struct BodySender {
    tx: std::sync::Mutex<Option<mpsc::Sender<Result<Bytes, io::Error>>>>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Result<Bytes, io::Error>>>>,
}

#[pymethods]
impl BodySender {
    #[new]
    #[pyo3(signature = (capacity=4))]
    fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        BodySender { tx: std::sync::Mutex::new(Some(tx)), rx: std::sync::Mutex::new(Some(rx)) }
    }

    /// Queues a chunk; the awaitable resolves to False when the origin stopped reading.
    fn send<'py>(&self, py: Python<'py>, chunk: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let tx = self.tx.lock().map_err(|_| PyValueError::new_err("sender poisoned"))?.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match tx {
                Some(tx) => Ok(tx.send(Ok(Bytes::from(chunk))).await.is_ok()),
                None => Ok(false),
            }
        })
    }

    /// Ends the body normally.
    fn finish(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }

    /// Ends the body with an error, so the origin sees an aborted request rather than a short one.
    fn abort(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            if let Some(tx) = tx.take() {
                let _ = tx.try_send(Err(io::Error::other("request body aborted by the gateway")));
            }
        }
    }
}

/// An origin's answer: status and headers, the whole body when it was small, else a reader.
#[pyclass(frozen, module = "gateway._core")]
pub struct UpstreamResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    inline: Option<Vec<u8>>,
    body: Arc<Mutex<Option<Incoming>>>,
    idle_timeout: Duration,
}

#[pymethods]
impl UpstreamResponse {
    /// The whole body when it arrived with the head (small responses), else None.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inline.as_ref().map(|b| PyBytes::new(py, b))
    }

    /// The next chunk of a streamed body; b"" at the end. Raises UpstreamError if the origin
    /// breaks off mid-body, UpstreamTimeout if it goes silent past the route's timeout.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let body = self.body.clone();
        let idle = self.idle_timeout;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut guard = body.lock().await;
            let Some(incoming) = guard.as_mut() else { return Ok(Vec::new()) };
            loop {
                let frame = match tokio::time::timeout(idle, incoming.frame()).await {
                    Err(_) => return Err(UpstreamTimeout::new_err("the origin stopped sending the body")),
                    Ok(None) => {
                        guard.take();
                        return Ok(Vec::new());
                    }
                    Ok(Some(Err(e))) => {
                        guard.take();
                        return Err(UpstreamError::new_err(format!("the origin broke off the body: {}", short(&e))));
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(data.to_vec());
                    }
                }
            }
        })
    }
}

fn short(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg.chars().take(200).collect()
}

/// A pool of keep-alive connections to origins.
#[pyclass(frozen, module = "gateway._core")]
pub struct Upstream {
    client: Client<HttpConnector, ReqBody>,
}

#[pymethods]
impl Upstream {
    #[new]
    #[pyo3(signature = (max_idle_per_origin=256, idle_timeout=90.0))]
    fn new(max_idle_per_origin: usize, idle_timeout: f64) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_origin)
            .pool_idle_timeout(Duration::from_secs_f64(idle_timeout.max(0.1)))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Upstream { client }
    }

    /// Sends a request to `url` (http://host:port/path?query) and resolves to an
    /// `UpstreamResponse` once the head arrives. `body` is the whole body, or `stream` a
    /// `BodySender` fed by the caller. Bodies up to `max_inline` bytes come back inline.
    #[pyo3(signature = (method, url, headers, body=None, stream=None, timeout=30.0, max_inline=65536))]
    #[allow(clippy::too_many_arguments)]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        stream: Option<&Bound<'py, BodySender>>,
        timeout: f64,
        max_inline: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let method = hyper::Method::from_bytes(method.as_bytes()).map_err(|_| PyValueError::new_err("invalid method"))?;
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let req_body: ReqBody = match (body, stream) {
            (_, Some(sender)) => {
                let rx = sender
                    .get()
                    .rx
                    .lock()
                    .map_err(|_| PyValueError::new_err("sender poisoned"))?
                    .take()
                    .ok_or_else(|| PyValueError::new_err("a BodySender can feed only one request"))?;
                ChannelBody { rx }.boxed()
            }
            (Some(b), None) => Full::new(Bytes::from(b)).map_err(|never| match never {}).boxed(),
            (None, None) => Full::new(Bytes::new()).map_err(|never| match never {}).boxed(),
        };
        let request = builder.body(req_body).map_err(|e| PyValueError::new_err(format!("invalid request: {e}")))?;
        let client = self.client.clone();
        let timeout = Duration::from_secs_f64(timeout.max(0.001));
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let response = match tokio::time::timeout(timeout, client.request(request)).await {
                Err(_) => return Err(UpstreamTimeout::new_err("the origin did not answer in time")),
                Ok(Err(e)) if e.is_connect() => {
                    return Err(UpstreamConnectError::new_err(format!("cannot connect to the origin: {}", short(&e))))
                }
                Ok(Err(e)) => return Err(UpstreamError::new_err(format!("the origin answered badly: {}", short(&e)))),
                Ok(Ok(r)) => r,
            };
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut incoming = response.into_body();
            let small = incoming.is_end_stream() || incoming.size_hint().exact().is_some_and(|n| n as usize <= max_inline);
            let mut inline = None;
            if small {
                let mut buf = Vec::new();
                loop {
                    match tokio::time::timeout(timeout, incoming.frame()).await {
                        Err(_) => return Err(UpstreamTimeout::new_err("the origin stopped sending the body")),
                        Ok(None) => break,
                        Ok(Some(Err(e))) => {
                            return Err(UpstreamError::new_err(format!("the origin broke off the body: {}", short(&e))))
                        }
                        Ok(Some(Ok(frame))) => {
                            if let Ok(d) = frame.into_data() {
                                buf.extend_from_slice(&d);
                            }
                        }
                    }
                }
                inline = Some(buf);
            }
            Ok(UpstreamResponse {
                status,
                headers,
                inline,
                body: Arc::new(Mutex::new(if small { None } else { Some(incoming) })),
                idle_timeout: timeout,
            })
        })
    }
}

/// Sets up the I/O runtime: `threads` tokio workers (1 is right when each Granian worker has a core).
pub fn init_runtime(threads: usize) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads.max(1)).enable_all().thread_name("gateway-io");
    pyo3_async_runtimes::tokio::init(builder);
}
