//! One accepted connection: TLS handshake (bounded by the header read
//! timeout), HTTP/1.1 or HTTP/2 through hyper, every request through the
//! limits, and a watchdog that closes connections whose request head
//! trickles in too slowly (slowloris) or that sit idle too long.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::limits::{self, RequestBody};
use super::smuggling::{Tap, Verdict};
use super::{ClientTls, Core, Handler, ServerSettings};
use crate::body::{self, Body, BodyError};

/// Serves one accepted connection until it ends, is closed by the
/// watchdog, or shutdown interrupts its TLS handshake.
pub(crate) async fn serve<H: Handler>(
    core: Arc<Core<H>>,
    stream: TcpStream,
    client: SocketAddr,
    tls: bool,
    watcher: Watcher,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let settings = (core.settings)();
    let Some(source) = core.tls.as_ref().filter(|_| tls) else {
        return serve_io(core, stream, client, settings, watcher, stop, false).await;
    };
    let handshake = tokio::time::timeout(settings.header_read_timeout, source.acceptor().accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(%client, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%client, "TLS handshake timed out"),
        },
        _ = stop.wait_for(|stop| *stop) => return,
    };
    serve_io(core, stream, client, settings, watcher, stop, true).await
}

async fn serve_io<H, I>(
    core: Arc<Core<H>>,
    io: I,
    client: SocketAddr,
    settings: Arc<ServerSettings>,
    watcher: Watcher,
    mut stop: watch::Receiver<bool>,
    tls: bool,
) where
    H: Handler,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let tap = Arc::new(Mutex::new(Tap::new(limits::hyper_max_headers(&settings))));
    let io = ConnIo { inner: io, activity: activity.clone(), tap: tap.clone() };
    let state = Arc::new(ConnState { core, client, tls, activity: activity.clone(), tap });
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(state.request(req).await) }
    });

    // Held for the connection's life: the server's drain waits for it.
    let _watcher = watcher;
    let watchdog = activity.watchdog(settings.header_read_timeout, settings.idle_timeout);
    tokio::pin!(watchdog);
    let io = TokioIo::new(io);

    // Runs the connection until it ends or the watchdog closes it; on
    // shutdown, asks it to finish in-flight requests and stop.
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            let mut draining = false;
            loop {
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(%client, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.wait_for(|stop| *stop), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    why = &mut watchdog => {
                        tracing::debug!(%client, why, "closing connection");
                        break;
                    }
                }
            }
        }};
    }

    if !tls && !settings.h2c {
        // The auto builder cannot be limited to HTTP/1 with upgrades on.
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .max_buf_size(limits::hyper_max_buf(&settings))
            .max_headers(limits::hyper_max_headers(&settings))
            .header_read_timeout(None);
        drive!(builder.serve_connection(io, service).with_upgrades());
    } else {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(limits::hyper_max_buf(&settings))
            .max_headers(limits::hyper_max_headers(&settings))
            .header_read_timeout(None);
        builder.http2().max_header_list_size(limits::h2_max_header_list(&settings));
        drive!(builder.serve_connection_with_upgrades(io, service));
    }
}

struct ConnState<H> {
    core: Arc<Core<H>>,
    client: SocketAddr,
    tls: bool,
    activity: Arc<Activity>,
    tap: Arc<Mutex<Tap>>,
}

impl<H: Handler> ConnState<H> {
    async fn request(&self, req: Request<Incoming>) -> Response<GuardedBody> {
        let guard = InFlight::new(self.activity.clone());
        let http1 = req.version() < Version::HTTP_2;
        let verdict = if http1 { self.tap.lock().unwrap().next_request() } else { Verdict::Clean };
        let mut resp = if verdict == Verdict::Conflicting {
            tracing::warn!(client = %self.client, "refused a request with both Content-Length and Transfer-Encoding");
            limits::refuse(
                StatusCode::BAD_REQUEST,
                "a request must not carry both Content-Length and Transfer-Encoding",
                true,
            )
        } else {
            self.checked(req, http1).await
        };
        if http1
            && resp.status() != StatusCode::SWITCHING_PROTOCOLS
            && (verdict != Verdict::Clean || self.tap.lock().unwrap().is_off())
        {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp.map(|inner| GuardedBody { inner, _guard: guard })
    }

    async fn checked(&self, req: Request<Incoming>, http1: bool) -> Response<Body> {
        let settings = (self.core.settings)();
        if let Some(resp) = limits::check_head(&settings, &req) {
            return resp;
        }
        let (mut parts, incoming) = req.into_parts();
        if self.tls {
            parts.extensions.insert(ClientTls);
        }
        let (mut body, state) = RequestBody::new(incoming, settings.max_request_body_bytes);
        let expects_continue =
            parts.headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let handler = &self.core.handler;
        let client = self.client;
        limits::within(&settings, &state, http1, async move {
            if !expects_continue
                && !body.is_end_stream()
                && let Err(resp) = body.read_first().await
            {
                return resp;
            }
            handler.call(Request::from_parts(parts, body::boxed(body)), client).await
        })
        .await
    }
}

/// Shared by a connection's I/O, its requests and its watchdog.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte read or written.
    last_io: AtomicU64,
    /// 1 + milliseconds since `epoch` when the pending request head began;
    /// 0 when none is pending.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    http2: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        // The first request head is due from the moment of connection.
        Self {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            http2: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 && !self.http2.load(Ordering::Relaxed) {
            let _ = self.head_since.compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Resolves when the connection should be closed, saying why.
    async fn watchdog(&self, header: Duration, idle: Duration) -> &'static str {
        let tick = (header.min(idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let (header, idle) = (header.as_millis() as u64, idle.as_millis() as u64);
        loop {
            tokio::time::sleep(tick).await;
            let now = self.now();
            let http2 = self.http2.load(Ordering::Relaxed);
            let head = self.head_since.load(Ordering::Relaxed);
            if head != 0 && !http2 {
                if now.saturating_sub(head - 1) >= header {
                    return "the request head did not arrive within the header read timeout";
                }
                continue;
            }
            if self.in_flight.load(Ordering::Relaxed) == 0
                && now.saturating_sub(self.last_io.load(Ordering::Relaxed)) >= idle
            {
                return "idle";
            }
        }
    }
}

/// Counts a request in flight until its response body is done.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_since.store(0, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_io.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight.
pub(crate) struct GuardedBody {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's byte stream, watched: activity for the watchdog, and
/// the bytes read for the smuggling guard.
struct ConnIo<I> {
    inner: I,
    activity: Arc<Activity>,
    tap: Arc<Mutex<Tap>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for ConnIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let mut tap = self.tap.lock().unwrap();
            tap.feed(new);
            if tap.is_http2() {
                self.activity.http2.store(true, Ordering::Relaxed);
            }
            drop(tap);
            self.activity.read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ConnIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.last_io.store(self.activity.now(), Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.last_io.store(self.activity.now(), Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
