//! The upstream HTTP/1.1 client: one keep-alive pool per origin, bodies streamed both ways.
//!
//! hyper on a one-thread tokio runtime does the connection pooling, request writing and response
//! parsing (a Python HTTP client costs ~80 µs a request). Each operation returns a token at once;
//! when it completes, the I/O thread queues the outcome and writes to an eventfd that the
//! worker's asyncio loop watches (`add_reader`), and the loop thread turns outcomes into Python
//! objects in `drain()`. The I/O thread never takes the GIL: handing the GIL to a second thread
//! on every completion cost ~5 ms of p50 latency under load (context switches on the GIL's
//! switch interval).
//!
//! Small response bodies come back with the head, so the common case is one wake-up; larger ones
//! are read chunk by chunk, and the next chunk is only read from the origin when Python asks for
//! it, which keeps memory bounded when the client downloads slower than the origin sends.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
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
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex};

create_exception!(
    gateway,
    UpstreamError,
    PyException,
    "The origin could not be reached or answered badly (502)."
);
create_exception!(
    gateway,
    UpstreamTimeout,
    UpstreamError,
    "The origin did not answer within the route's timeout (504)."
);
create_exception!(
    gateway,
    UpstreamConnectError,
    UpstreamError,
    "The origin refused or failed the connection (502)."
);

type ReqBody = BoxBody<Bytes, io::Error>;

/// A request body fed from Python through a bounded channel: `send` waits while the channel is
/// full, so a slow origin slows the client's upload instead of growing memory.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
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

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The I/O runtime, built on first use — in the worker process, after Granian forks.
fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("GATEWAY_IO_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .thread_name("gateway-io")
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// How an operation ended, held without the GIL until the loop thread drains it.
enum Outcome {
    Response(Box<ResponseHead>),
    Chunk(Bytes),
    Sent(bool),
    Timeout(String),
    Connect(String),
    Failed(String),
}

struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
    inline: Option<Vec<u8>>,
    body: Option<Incoming>,
    idle_timeout: Duration,
}

/// Completed operations and the eventfd that tells the asyncio loop about them.
struct Completions {
    fd: OwnedFd,
    queue: std::sync::Mutex<Vec<(u64, Outcome)>>,
}

impl Completions {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(Completions {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            queue: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn complete(&self, token: u64, outcome: Outcome) {
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push((token, outcome));
            q.len() == 1
        };
        // A wake-up is already pending when the queue was not empty (drain reads the eventfd
        // before taking the queue, so no completion is ever left without one).
        if was_empty {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
            unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    &one as *const u64 as *const libc::c_void,
                    8,
                )
            };
        }
    }
}

/// A body being streamed from an origin; `Upstream.read(resp)` pulls the next chunk.
type BodySlot = Arc<Mutex<Option<Incoming>>>;

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
    tx: std::sync::Mutex<Option<mpsc::Sender<Result<Bytes, io::Error>>>>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Result<Bytes, io::Error>>>>,
}

#[pymethods]
impl BodySender {
    #[new]
    #[pyo3(signature = (capacity=4))]
    fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        BodySender {
            tx: std::sync::Mutex::new(Some(tx)),
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// Ends the body normally.
    fn finish(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Ends the body with an error, so the origin sees an aborted request rather than a short one.
    fn abort(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.try_send(Err(io::Error::other("request body aborted by the gateway")));
        }
    }
}

/// A pool of keep-alive connections to origins, driven by the I/O thread.
#[pyclass(frozen, module = "gateway._core")]
pub struct Upstream {
    client: Client<HttpConnector, ReqBody>,
    done: Arc<Completions>,
    next_token: std::sync::atomic::AtomicU64,
}

fn err_outcome(e: &hyper_util::client::legacy::Error) -> Outcome {
    if e.is_connect() {
        Outcome::Connect(format!("cannot connect to the origin: {}", short(e)))
    } else {
        Outcome::Failed(format!("the origin answered badly: {}", short(e)))
    }
}

async fn next_chunk(body: &BodySlot, idle: Duration) -> Outcome {
    let mut guard = body.lock().await;
    let Some(incoming) = guard.as_mut() else {
        return Outcome::Chunk(Bytes::new());
    };
    loop {
        match tokio::time::timeout(idle, incoming.frame()).await {
            Err(_) => return Outcome::Timeout("the origin stopped sending the body".into()),
            Ok(None) => {
                guard.take();
                return Outcome::Chunk(Bytes::new());
            }
            Ok(Some(Err(e))) => {
                guard.take();
                return Outcome::Failed(format!("the origin broke off the body: {}", short(&e)));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Outcome::Chunk(data);
                    }
                }
            }
        }
    }
}

/// Header values cross between Python and the wire as latin-1 text: one character per byte, the
/// way ASGI hands request headers over, so bytes outside ASCII pass through unchanged in both
/// directions (the Python layer encodes the text it makes itself, e.g. claims, as UTF-8 first).
/// Each byte becomes the character with that code point.
fn wire_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[pymethods]
impl Upstream {
    #[new]
    #[pyo3(signature = (max_idle_per_origin=256, idle_timeout=90.0))]
    fn new(max_idle_per_origin: usize, idle_timeout: f64) -> PyResult<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_origin)
            .pool_idle_timeout(Duration::from_secs_f64(idle_timeout.max(0.1)))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let done = Completions::new().map_err(|e| PyOSError::new_err(format!("eventfd: {e}")))?;
        Ok(Upstream {
            client,
            done: Arc::new(done),
            next_token: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// The eventfd to watch with `loop.add_reader(fileno, ...)`; readable when `drain()` has work.
    fn fileno(&self) -> i32 {
        self.done.fd.as_raw_fd()
    }

    /// Completed operations as `(token, ok, value)`: value is an UpstreamResponse, bytes, a bool
    /// or (when not ok) an exception instance to raise.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<(u64, bool, Bound<'py, PyAny>)>> {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a valid buffer from our non-blocking eventfd.
        unsafe {
            libc::read(
                self.done.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                8,
            )
        };
        let items = std::mem::take(&mut *self.done.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = Vec::with_capacity(items.len());
        for (token, outcome) in items {
            let (ok, value): (bool, Bound<'py, PyAny>) = match outcome {
                Outcome::Response(head) => {
                    let head = *head;
                    let resp = UpstreamResponse {
                        status: head.status,
                        headers: head.headers,
                        inline: head.inline,
                        body: Arc::new(Mutex::new(head.body)),
                        idle_timeout: head.idle_timeout,
                    };
                    (true, Bound::new(py, resp)?.into_any())
                }
                Outcome::Chunk(b) => (true, PyBytes::new(py, &b).into_any()),
                Outcome::Sent(v) => (true, PyBool::new(py, v).to_owned().into_any()),
                Outcome::Timeout(m) => (
                    false,
                    UpstreamTimeout::new_err(m)
                        .into_value(py)
                        .into_bound(py)
                        .into_any(),
                ),
                Outcome::Connect(m) => (
                    false,
                    UpstreamConnectError::new_err(m)
                        .into_value(py)
                        .into_bound(py)
                        .into_any(),
                ),
                Outcome::Failed(m) => (
                    false,
                    UpstreamError::new_err(m)
                        .into_value(py)
                        .into_bound(py)
                        .into_any(),
                ),
            };
            out.push((token, ok, value));
        }
        Ok(out)
    }

    /// Starts a request to `url` (http://host:port/path?query); returns the token its
    /// UpstreamResponse will come back under. `body` is the whole body, or `stream` a BodySender.
    /// Bodies up to `max_inline` bytes come back with the head.
    #[pyo3(signature = (method, url, headers, body=None, stream=None, timeout=30.0, max_inline=65536))]
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
    ) -> PyResult<u64> {
        let method = hyper::Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err("invalid method"))?;
        let mut builder = hyper::Request::builder().method(method).uri(url);
        // Names and values as bytes or latin-1 str: the request's own header bytes go on
        // unchanged, without a bytes -> str -> bytes round trip.
        for (k, v) in &headers {
            let name = crate::py::wire_of(k, "header name")?;
            let value = crate::py::wire_of(v, "header value")?;
            builder = builder.header(&*name, &*value);
        }
        let req_body: ReqBody = match (body, stream) {
            (_, Some(sender)) => {
                let rx = sender
                    .get()
                    .rx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .ok_or_else(|| {
                        PyValueError::new_err("a BodySender can feed only one request")
                    })?;
                ChannelBody { rx }.boxed()
            }
            (Some(b), None) => Full::new(Bytes::from(b))
                .map_err(|never| match never {})
                .boxed(),
            (None, None) => Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed(),
        };
        let request = builder
            .body(req_body)
            .map_err(|e| PyValueError::new_err(format!("invalid request: {e}")))?;
        let client = self.client.clone();
        let timeout = Duration::from_secs_f64(timeout.max(0.001));
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let done = self.done.clone();
        runtime().spawn(async move {
            let outcome = match tokio::time::timeout(timeout, client.request(request)).await {
                Err(_) => Outcome::Timeout("the origin did not answer in time".into()),
                Ok(Err(e)) => err_outcome(&e),
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let headers: Vec<(String, String)> = response
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), wire_text(v.as_bytes())))
                        .collect();
                    let incoming = response.into_body();
                    let small = incoming.is_end_stream()
                        || incoming
                            .size_hint()
                            .exact()
                            .is_some_and(|n| n as usize <= max_inline);
                    if small {
                        let slot: BodySlot = Arc::new(Mutex::new(Some(incoming)));
                        let mut buf = Vec::new();
                        let mut failure = None;
                        loop {
                            match next_chunk(&slot, timeout).await {
                                Outcome::Chunk(b) if b.is_empty() => break,
                                Outcome::Chunk(b) => buf.extend_from_slice(&b),
                                other => {
                                    failure = Some(other);
                                    break;
                                }
                            }
                        }
                        failure.unwrap_or(Outcome::Response(Box::new(ResponseHead {
                            status,
                            headers,
                            inline: Some(buf),
                            body: None,
                            idle_timeout: timeout,
                        })))
                    } else {
                        Outcome::Response(Box::new(ResponseHead {
                            status,
                            headers,
                            inline: None,
                            body: Some(incoming),
                            idle_timeout: timeout,
                        }))
                    }
                }
            };
            done.complete(token, outcome);
        });
        Ok(token)
    }

    /// Starts reading the next chunk of a streamed response; the token resolves to bytes
    /// (b"" at the end) or an UpstreamError/UpstreamTimeout.
    fn read(&self, response: &Bound<'_, UpstreamResponse>) -> u64 {
        let r = response.get();
        let body = r.body.clone();
        let idle = r.idle_timeout;
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let done = self.done.clone();
        runtime().spawn(async move {
            let outcome = next_chunk(&body, idle).await;
            done.complete(token, outcome);
        });
        token
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
        let Some(tx) = tx else {
            let token = self
                .next_token
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.done.complete(token, Outcome::Sent(false));
            return token;
        };
        let chunk = match tx.try_send(Ok(Bytes::from(chunk))) {
            Ok(()) => return 0,
            Err(mpsc::error::TrySendError::Full(c)) => c,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let token = self
                    .next_token
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.done.complete(token, Outcome::Sent(false));
                return token;
            }
        };
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let done = self.done.clone();
        runtime().spawn(async move {
            let ok = tx.send(chunk).await.is_ok();
            done.complete(token, Outcome::Sent(ok));
        });
        token
    }
}

/// An error and its causes on one line, bounded: these end up in logs.
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
