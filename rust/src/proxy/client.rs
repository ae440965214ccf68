//! The upstream HTTP/1.1 client: one keep-alive pool per origin, bodies streamed both ways.
//!
//! hyper on a small tokio runtime does the connection pooling, request writing and response
//! parsing (a Python HTTP client costs ~80 µs a request). Each operation returns a token at once;
//! when it completes, the I/O thread queues the outcome and writes to an eventfd that the caller
//! watches (the Python binding hands it to the worker's asyncio loop with `add_reader`) and takes
//! with [`Client::drain`]. The I/O thread never waits for the caller: handing the GIL to a second
//! thread on every completion cost ~5 ms of p50 latency under load (context switches on the GIL's
//! switch interval), so outcomes stay plain Rust values until the caller's thread converts them.
//!
//! Small response bodies come back with the head, so the common case is one wake-up; larger ones
//! are read chunk by chunk, and the next chunk is only read from the origin when the caller asks
//! for it, which keeps memory bounded when the client downloads slower than the origin sends.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex};

use super::tls::TlsPool;
use crate::error::{Error, ErrorKind};

pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

/// The sending end of a streamed request body.
pub type BodyTx = mpsc::Sender<Result<Bytes, io::Error>>;
/// The receiving end, handed to [`Client::request`] as [`RequestBody::Stream`].
pub type BodyRx = mpsc::Receiver<Result<Bytes, io::Error>>;

/// A channel for a streamed request body holding at most `capacity` chunks: `send` waits while
/// it is full, so a slow origin slows the client's upload instead of growing memory.
pub fn body_channel(capacity: usize) -> (BodyTx, BodyRx) {
    mpsc::channel(capacity.max(1))
}

/// Ends a streamed body with an error, so the origin sees an aborted request rather than a
/// short one (a plain end would look like a complete body).
pub fn abort_body(tx: &BodyTx) {
    let _ = tx.try_send(Err(io::Error::other("request body aborted by the gateway")));
}

/// A request body fed through a bounded channel.
struct ChannelBody {
    rx: BodyRx,
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

/// What a request sends after its head.
pub enum RequestBody {
    Empty,
    Full(Bytes),
    Stream(BodyRx),
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

/// How an operation ended, held until the caller drains it.
pub enum Outcome {
    Response(Box<ResponseHead>),
    /// The next chunk of a streamed response body; empty at its end.
    Chunk(Bytes),
    /// Whether a request-body chunk that had to wait was queued (false: the origin stopped reading).
    Sent(bool),
    Failed(Error),
}

/// A body being streamed from an origin; [`Client::read`] pulls the next chunk.
pub type BodySlot = Arc<Mutex<Option<Incoming>>>;

/// An origin's answer: status and headers, the whole body when it was small.
pub struct ResponseHead {
    pub status: u16,
    pub headers: HeaderMap,
    /// The whole body, when it arrived with the head.
    pub inline: Option<Vec<u8>>,
    /// Otherwise the rest, to read with [`Client::read`].
    pub body: BodySlot,
    /// How long a body read may wait for the origin.
    pub idle_timeout: Duration,
}

/// Completed operations and the eventfd that tells the caller about them.
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

    fn drain(&self) -> Vec<(u64, Outcome)> {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a valid buffer from our non-blocking eventfd.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                8,
            )
        };
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn connect_or_failed(e: &hyper_util::client::legacy::Error) -> Error {
    // A TLS failure says which check failed (it can come after the connection was made: under
    // TLS 1.3 a refused client certificate arrives as an alert on the first read).
    if let Some(tls) = super::tls::classify(e) {
        return tls;
    }
    if e.is_connect() {
        Error::new(
            ErrorKind::UpstreamConnect,
            format!("cannot connect to the origin: {}", short(e)),
        )
    } else {
        Error::new(
            ErrorKind::UpstreamFailed,
            format!("the origin answered badly: {}", short(e)),
        )
    }
}

async fn next_chunk(body: &BodySlot, idle: Duration) -> Outcome {
    let mut guard = body.lock().await;
    let Some(incoming) = guard.as_mut() else {
        return Outcome::Chunk(Bytes::new());
    };
    loop {
        match tokio::time::timeout(idle, incoming.frame()).await {
            Err(_) => {
                return Outcome::Failed(Error::new(
                    ErrorKind::UpstreamTimeout,
                    "the origin stopped sending the body",
                ))
            }
            Ok(None) => {
                guard.take();
                return Outcome::Chunk(Bytes::new());
            }
            Ok(Some(Err(e))) => {
                guard.take();
                return Outcome::Failed(Error::new(
                    ErrorKind::UpstreamFailed,
                    format!("the origin broke off the body: {}", short(&e)),
                ));
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

/// Why a request could not even be started (a bad method, URL or header): the caller's mistake,
/// reported at once rather than through a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest(pub String);

/// A pool of keep-alive connections to origins, driven by the I/O runtime.
pub struct Client {
    client: HyperClient<HttpConnector, ReqBody>,
    done: Arc<Completions>,
    next_token: AtomicU64,
}

impl Client {
    pub fn new(max_idle_per_origin: usize, idle_timeout: f64) -> io::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_origin)
            .pool_idle_timeout(Duration::from_secs_f64(idle_timeout.max(0.1)))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(Client {
            client,
            done: Arc::new(Completions::new()?),
            next_token: AtomicU64::new(1),
        })
    }

    /// The eventfd that becomes readable when [`Client::drain`] has outcomes.
    pub fn fd(&self) -> RawFd {
        self.done.fd.as_raw_fd()
    }

    /// The outcomes completed since the last drain, as `(token, outcome)`.
    pub fn drain(&self) -> Vec<(u64, Outcome)> {
        self.done.drain()
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts a request to `url` (http://host:port/path?query); returns the token its
    /// [`Outcome::Response`] will come back under. Header names and values are wire bytes, sent
    /// as they are. Bodies up to `max_inline` bytes come back with the head; `timeout` bounds the
    /// wait for the head and each later wait for body bytes.
    pub fn request<'h>(
        &self,
        method: &[u8],
        url: &str,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        body: RequestBody,
        timeout: Duration,
        max_inline: usize,
    ) -> Result<u64, InvalidRequest> {
        self.request_via(None, method, url, headers, body, timeout, max_inline)
    }

    /// [`Client::request`] through `via`, an HTTPS origin's pool, when it is given: `url` is then
    /// `https://HOST/path?query` where HOST is the Host the origin is sent (the pool connects to
    /// its own origin's address whatever HOST is; see [`super::tls::FixedAddr`]).
    #[allow(clippy::too_many_arguments)]
    pub fn request_via<'h>(
        &self,
        via: Option<&TlsPool>,
        method: &[u8],
        url: &str,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        body: RequestBody,
        timeout: Duration,
        max_inline: usize,
    ) -> Result<u64, InvalidRequest> {
        let method = hyper::Method::from_bytes(method)
            .map_err(|_| InvalidRequest("invalid method".into()))?;
        let replay_body = match &body {
            RequestBody::Empty => Some(Bytes::new()),
            RequestBody::Full(b) => Some(b.clone()),
            RequestBody::Stream(_) => None,
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .body(match body {
                RequestBody::Empty => Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
                RequestBody::Full(b) => Full::new(b).map_err(|never| match never {}).boxed(),
                RequestBody::Stream(rx) => ChannelBody { rx }.boxed(),
            })
            .map_err(|e| InvalidRequest(format!("invalid request: {e}")))?;
        let map = request.headers_mut();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name).map_err(|_| {
                InvalidRequest(format!(
                    "invalid header name {:?}",
                    crate::error::bounded(&String::from_utf8_lossy(name), 40)
                ))
            })?;
            let value = HeaderValue::from_bytes(value).map_err(|_| {
                InvalidRequest(format!("header {name}: the value has a CR, LF or NUL"))
            })?;
            map.append(name, value);
        }
        // An h2 origin may refuse a stream, or go away (e.g. nginx after keepalive_requests) with
        // streams in flight that it never processed: those are safe to send again on a new stream
        // (RFC 9113 §8.7), which hyper-util does not do for h2. Only a body that can be sent again
        // is kept for it (not a streamed one); plain-HTTP origins speak HTTP/1.1, where hyper-util
        // already retries a request its connection closed before writing.
        let replay = match via {
            // Boxed: the common case carries one pointer in its task, not the whole head.
            Some(pool) if pool.http2 => replay_body.map(|body| {
                Box::new(Replay {
                    method: request.method().clone(),
                    uri: request.uri().clone(),
                    headers: request.headers().clone(),
                    body,
                    client: pool.client.clone(),
                })
            }),
            _ => None,
        };
        // Both pools' futures are hyper-util's one (boxed) ResponseFuture type.
        let sent = match via {
            None => self.client.request(request),
            Some(pool) => pool.client.request(request),
        };
        let timeout = timeout.max(Duration::from_millis(1));
        let token = self.token();
        let done = self.done.clone();
        runtime().spawn(async move {
            let outcome = match tokio::time::timeout(timeout, send_or_replay(sent, replay)).await {
                Err(_) => Outcome::Failed(Error::new(
                    ErrorKind::UpstreamTimeout,
                    "the origin did not answer in time",
                )),
                Ok(Err(e)) => Outcome::Failed(connect_or_failed(&e)),
                Ok(Ok(response)) => head_of(response, timeout, max_inline).await,
            };
            done.complete(token, outcome);
        });
        Ok(token)
    }

    /// Starts reading the next chunk of a streamed response; the token resolves to
    /// [`Outcome::Chunk`] (empty at the end) or [`Outcome::Failed`].
    pub fn read(&self, body: &BodySlot, idle: Duration) -> u64 {
        let body = body.clone();
        let token = self.token();
        let done = self.done.clone();
        runtime().spawn(async move {
            let outcome = next_chunk(&body, idle).await;
            done.complete(token, outcome);
        });
        token
    }

    /// Queues a request-body chunk. Returns 0 when it was queued at once (the common case),
    /// else a token that resolves to [`Outcome::Sent`]: true once queued, false if the origin
    /// stopped reading. `tx` is `None` once the body was finished or aborted.
    pub fn send(&self, tx: Option<BodyTx>, chunk: Bytes) -> u64 {
        let Some(tx) = tx else {
            let token = self.token();
            self.done.complete(token, Outcome::Sent(false));
            return token;
        };
        let chunk = match tx.try_send(Ok(chunk)) {
            Ok(()) => return 0,
            Err(mpsc::error::TrySendError::Full(c)) => c,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let token = self.token();
                self.done.complete(token, Outcome::Sent(false));
                return token;
            }
        };
        let token = self.token();
        let done = self.done.clone();
        runtime().spawn(async move {
            let ok = tx.send(chunk).await.is_ok();
            done.complete(token, Outcome::Sent(ok));
        });
        token
    }
}

/// What it takes to send a request again on another h2 stream (see [`send_or_replay`]).
struct Replay {
    method: hyper::Method,
    uri: hyper::Uri,
    headers: HeaderMap,
    body: Bytes,
    client: super::tls::TlsHyperClient,
}

/// How many times a request the origin did not process is sent again.
pub(crate) const REPLAYS: usize = 2;

/// `sent`'s outcome; when the origin provably did not process the request (an h2 stream refused
/// or cut by GOAWAY, see [`unprocessed`]) and it can be sent again, the outcome of sending it again.
async fn send_or_replay(
    sent: hyper_util::client::legacy::ResponseFuture,
    replay: Option<Box<Replay>>,
) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
    let mut result = sent.await;
    if let Some(r) = replay {
        for _ in 0..REPLAYS {
            match &result {
                Err(e) if unprocessed(e) => {}
                _ => break,
            }
            let mut again = hyper::Request::new(
                Full::new(r.body.clone())
                    .map_err(|never| match never {})
                    .boxed(),
            );
            *again.method_mut() = r.method.clone();
            *again.uri_mut() = r.uri.clone();
            *again.headers_mut() = r.headers.clone();
            result = r.client.request(again).await;
        }
    }
    result
}

/// Whether the origin never processed the request, so sending it again cannot do anything twice
/// (RFC 9113 §8.7): an h2 stream the origin refused (REFUSED_STREAM), or one above the last
/// stream id of its GOAWAY, or one opened after it (h2 reports both as the remote's GOAWAY; a
/// stream the origin did take and then lost to the closing connection is a broken pipe instead).
fn unprocessed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    let mut depth = 0;
    while let Some(err) = cur {
        depth += 1;
        if depth > 16 {
            return false;
        }
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        cur = err.source();
    }
    false
}

/// The head of `response`, with the whole body when it is small.
async fn head_of(
    response: hyper::Response<Incoming>,
    timeout: Duration,
    max_inline: usize,
) -> Outcome {
    let (parts, incoming) = response.into_parts();
    let status = parts.status.as_u16();
    let small = incoming.is_end_stream()
        || incoming
            .size_hint()
            .exact()
            .is_some_and(|n| n as usize <= max_inline);
    let slot: BodySlot = Arc::new(Mutex::new(Some(incoming)));
    if !small {
        return Outcome::Response(Box::new(ResponseHead {
            status,
            headers: parts.headers,
            inline: None,
            body: slot,
            idle_timeout: timeout,
        }));
    }
    let mut buf = Vec::new();
    loop {
        match next_chunk(&slot, timeout).await {
            Outcome::Chunk(b) if b.is_empty() => break,
            Outcome::Chunk(b) => buf.extend_from_slice(&b),
            other => return other,
        }
    }
    Outcome::Response(Box::new(ResponseHead {
        status,
        headers: parts.headers,
        inline: Some(buf),
        body: Arc::new(Mutex::new(None)),
        idle_timeout: timeout,
    }))
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

#[cfg(test)]
mod tests {
    //! Against real local TCP servers (a tokio listener on its own runtime), no Python.

    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection origin: reads the request head (and `body_len` bytes after it), hands
    /// them back through the returned receiver, then writes `answer` (unless it is None: then it
    /// holds the connection open without answering).
    fn origin(
        answer: Option<Vec<u8>>,
        body_len: usize,
    ) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>, Runtime) {
        // Its own worker thread: the origin must run while the test thread waits on the client.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    if got.len() >= end + 4 + body_len {
                        break;
                    }
                }
            }
            tx.send(got).unwrap();
            match answer {
                Some(a) => {
                    sock.write_all(&a).await.unwrap();
                    sock.shutdown().await.ok();
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        (port, rx, rt)
    }

    /// Waits for the outcome of `token`, driving nothing itself (the client's runtime does).
    fn wait(client: &Client, token: u64) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pending: Vec<(u64, Outcome)> = Vec::new();
        loop {
            let mut pfd = libc::pollfd {
                fd: client.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            pending.extend(client.drain());
            if let Some(i) = pending.iter().position(|(t, _)| *t == token) {
                return pending.swap_remove(i).1;
            }
            assert!(Instant::now() < deadline, "no outcome for token {token}");
        }
    }

    fn head(outcome: Outcome) -> ResponseHead {
        match outcome {
            Outcome::Response(h) => *h,
            Outcome::Failed(f) => panic!("failed: {f:?}"),
            _ => panic!("not a response"),
        }
    }

    fn failure(outcome: Outcome) -> Error {
        match outcome {
            Outcome::Failed(f) => f,
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn status_headers_and_body_round_trip() {
        let (port, seen, _rt) = origin(
            Some(
                b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\nx-raw: \xe9\r\n\r\nhello"
                    .to_vec(),
            ),
            4,
        );
        let client = Client::new(8, 30.0).unwrap();
        let token = client
            .request(
                b"POST",
                &format!("http://127.0.0.1:{port}/p?q=1"),
                [
                    (&b"x-bytes"[..], &b"caf\xc3\xa9 \xff"[..]),
                    (b"content-length", b"4"),
                ],
                RequestBody::Full(Bytes::from_static(b"body")),
                Duration::from_secs(5),
                65536,
            )
            .unwrap();
        let h = head(wait(&client, token));
        assert_eq!(h.status, 201);
        let xa: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(h.headers.get("x-raw").unwrap().as_bytes(), b"\xe9");
        assert_eq!(h.inline.as_deref(), Some(&b"hello"[..]));
        let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(req.starts_with(b"POST /p?q=1 HTTP/1.1\r\n"), "{req:?}");
        let line = b"\r\nx-bytes: caf\xc3\xa9 \xff\r\n";
        assert!(
            req.windows(line.len()).any(|w| w == line),
            "bytes sent as given"
        );
        assert!(req.ends_with(b"\r\n\r\nbody"));
    }

    #[test]
    fn large_bodies_stream_chunk_by_chunk() {
        let body = vec![b'x'; 200_000];
        let mut answer =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(&body);
        let (port, _seen, _rt) = origin(Some(answer), 0);
        let client = Client::new(8, 30.0).unwrap();
        let url = format!("http://127.0.0.1:{port}/big");
        let token = client
            .request(
                b"GET",
                &url,
                [],
                RequestBody::Empty,
                Duration::from_secs(5),
                1024,
            )
            .unwrap();
        let h = head(wait(&client, token));
        assert!(h.inline.is_none(), "over max_inline: streamed");
        let mut got = Vec::new();
        loop {
            match wait(&client, client.read(&h.body, h.idle_timeout)) {
                Outcome::Chunk(c) if c.is_empty() => break,
                Outcome::Chunk(c) => got.extend_from_slice(&c),
                _ => panic!("read failed"),
            }
        }
        assert_eq!(got, body);
    }

    #[test]
    fn streamed_request_body_arrives_whole() {
        let (port, seen, _rt) = origin(
            Some(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            // "3\r\nabc\r\n" "3\r\ndef\r\n" "0\r\n\r\n"
            8 + 8 + 5,
        );
        let client = Client::new(8, 30.0).unwrap();
        let (tx, rx) = body_channel(1);
        let token = client
            .request(
                b"PUT",
                &format!("http://127.0.0.1:{port}/u"),
                [(&b"transfer-encoding"[..], &b"chunked"[..])],
                RequestBody::Stream(rx),
                Duration::from_secs(5),
                65536,
            )
            .unwrap();
        for part in [&b"abc"[..], b"def"] {
            let t = client.send(Some(tx.clone()), Bytes::from_static(part));
            if t != 0 {
                assert!(matches!(wait(&client, t), Outcome::Sent(true)));
            }
        }
        drop(tx);
        assert_eq!(head(wait(&client, token)).status, 204);
        let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            req.ends_with(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
            "{req:?}"
        );
        // A finished body takes no more chunks.
        assert!(matches!(
            wait(&client, client.send(None, Bytes::from_static(b"x"))),
            Outcome::Sent(false)
        ));
    }

    #[test]
    fn an_origin_that_never_answers_times_out() {
        let (port, _seen, _rt) = origin(None, 0);
        let client = Client::new(8, 30.0).unwrap();
        let started = Instant::now();
        let token = client
            .request(
                b"GET",
                &format!("http://127.0.0.1:{port}/slow"),
                [],
                RequestBody::Empty,
                Duration::from_millis(300),
                65536,
            )
            .unwrap();
        let f = failure(wait(&client, token));
        assert_eq!(f.kind, ErrorKind::UpstreamTimeout);
        assert_eq!(f.kind.http_status(), 504);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn a_refused_connection_is_a_connect_error() {
        // A port that was just free: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(8, 30.0).unwrap();
        let token = client
            .request(
                b"GET",
                &format!("http://127.0.0.1:{port}/"),
                [],
                RequestBody::Empty,
                Duration::from_secs(5),
                65536,
            )
            .unwrap();
        let f = failure(wait(&client, token));
        assert_eq!(f.kind, ErrorKind::UpstreamConnect);
        assert_eq!(f.kind.http_status(), 502);
        assert!(
            f.message.starts_with("cannot connect to the origin"),
            "{f:?}"
        );
    }

    #[test]
    fn a_garbled_answer_is_a_failure() {
        let (port, _seen, _rt) = origin(Some(b"NOT HTTP AT ALL\r\n\r\n".to_vec()), 0);
        let client = Client::new(8, 30.0).unwrap();
        let token = client
            .request(
                b"GET",
                &format!("http://127.0.0.1:{port}/"),
                [],
                RequestBody::Empty,
                Duration::from_secs(5),
                65536,
            )
            .unwrap();
        assert_eq!(
            failure(wait(&client, token)).kind,
            ErrorKind::UpstreamFailed
        );
    }

    #[test]
    fn requests_that_cannot_be_sent_are_refused_at_once() {
        let client = Client::new(8, 30.0).unwrap();
        let url = "http://127.0.0.1:9/";
        let d = Duration::from_secs(1);
        assert!(client
            .request(b"G T", url, [], RequestBody::Empty, d, 0)
            .is_err());
        assert!(client
            .request(
                b"GET",
                url,
                [(&b"a b"[..], &b"x"[..])],
                RequestBody::Empty,
                d,
                0
            )
            .is_err());
        assert!(client
            .request(
                b"GET",
                url,
                [(&b"x"[..], &b"a\r\nb"[..])],
                RequestBody::Empty,
                d,
                0
            )
            .is_err());
    }
}
