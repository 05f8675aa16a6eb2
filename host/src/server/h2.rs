//! HTTP/2 connections (ALPN `h2` on TLS, prior knowledge on plaintext),
//! served by hyper, with every request through the limits, HTTP/2's own
//! limits set, the client's frames watched (`h2_frames`) and a watchdog
//! that closes a connection whose request head is late (the header read
//! timeout, from the head's first byte; a new connection's first head
//! from the connection's start) or that has been idle for too long (only
//! requests count: pings and other control frames do not keep it open).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::h2_frames::{Flood, FrameWatch};
use super::limits::{self, RequestBody};
use super::{Core, Handler, ServerSettings};
use crate::answer;
use crate::body::{self, Body, BodyError};
use crate::fields::join_cookies;
use crate::proxy_headers::ClientTls;

/// Serves one HTTP/2 connection until it ends, idles out, or shutdown has
/// let its streams finish. `read`: what was already read off `io` (the
/// preface, when the client came with prior knowledge).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<H, I>(
    core: Arc<Core<H>>,
    io: I,
    read: Bytes,
    client: SocketAddr,
    settings: Arc<ServerSettings>,
    mut stop: watch::Receiver<bool>,
    tls: bool,
) where
    H: Handler,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let watch = FrameWatch::new(limits::h2_max_header_list(&settings).into());
    let io = ConnIo { inner: io, read, activity: activity.clone(), watch };
    let state = Arc::new(ConnState { core, client, tls, activity: activity.clone() });
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(state.request(req).await) }
    });
    let watchdog = activity.watchdog(settings.header_read_timeout, settings.idle_timeout);
    tokio::pin!(watchdog);
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .max_header_list_size(limits::h2_max_header_list(&settings))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%client, error = %e, "HTTP/2 connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            reason = &mut watchdog => {
                tracing::debug!(%client, reason, "closing HTTP/2 connection");
                return;
            }
        }
    }
}

/// Streams a client may have open at once (hyper's default is 200): each
/// is a request in the gateway, with its plugin instances.
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams the client resets before the gateway has taken them up; past
/// this the connection ends with GOAWAY (ENHANCE_YOUR_CALM).
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the gateway had to reset for the client's protocol errors
/// (CVE-2025-8671, "MadeYouReset"); past this the connection ends.
const MAX_LOCAL_ERROR_RESETS: usize = 100;

struct ConnState<H> {
    core: Arc<Core<H>>,
    client: SocketAddr,
    tls: bool,
    activity: Arc<Activity>,
}

impl<H: Handler> ConnState<H> {
    async fn request(&self, req: Request<Incoming>) -> Response<GuardedBody> {
        let guard = InFlight::new(self.activity.clone());
        self.checked(req).await.map(|inner| GuardedBody { inner, _guard: guard })
    }

    /// The server's own refusals (a head over the limits, the request
    /// timeout, a body too large) reach a gRPC call as gRPC statuses, like
    /// the handler's answers do.
    async fn checked(&self, req: Request<Incoming>) -> Response<Body> {
        let settings = (self.core.settings)();
        let (mut parts, incoming) = req.into_parts();
        join_cookies(&mut parts.headers);
        let grpc_call = crate::grpc::is_grpc(&parts.headers);
        if let Some(resp) = limits::check_head(&settings, &parts) {
            return answer::in_form(grpc_call, resp);
        }
        if self.tls {
            parts.extensions.insert(ClientTls);
        }
        let (mut body, state) = RequestBody::new(incoming, settings.max_request_body_bytes);
        let handler = &self.core.handler;
        let client = self.client;
        let resp = limits::within(&settings, &state, false, async move {
            if !body.is_end_stream()
                && let Err(resp) = body.read_first().await
            {
                return *resp;
            }
            handler.call(Request::from_parts(parts, body::boxed(body)), client).await
        })
        .await;
        answer::in_form(grpc_call, resp)
    }
}

/// Shared by a connection's I/O, its streams and its watchdog.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last request traffic: a head or
    /// DATA frame in, a response done.
    last_io: AtomicU64,
    /// Since when a request head has been arriving ([`NONE`]: none is).
    head_since: AtomicU64,
    /// Request heads received whole.
    heads: AtomicU64,
    in_flight: AtomicUsize,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            heads: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Resolves, with the reason, once the connection is to be closed: a
    /// request head has taken `head` since its first byte, the connection
    /// has had no complete head within `head` of its start, or it has had
    /// no stream and no request traffic for `idle`.
    async fn watchdog(&self, head: Duration, idle: Duration) -> &'static str {
        let tick = (head.min(idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let (head, idle) = (head.as_millis() as u64, idle.as_millis() as u64);
        loop {
            tokio::time::sleep(tick).await;
            let now = self.now();
            let since = self.head_since.load(Ordering::Relaxed);
            if since != NONE && now.saturating_sub(since) >= head {
                return "a request head did not arrive within the header read timeout";
            }
            if self.heads.load(Ordering::Relaxed) == 0 && now >= head {
                return "no request within the header read timeout";
            }
            if self.in_flight.load(Ordering::Relaxed) == 0
                && now.saturating_sub(self.last_io.load(Ordering::Relaxed)) >= idle
            {
                return "idle";
            }
        }
    }
}

/// Counts a stream in flight until its response body is done.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its stream counted as in flight.
struct GuardedBody {
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

/// The connection's byte stream, its frames watched, its first bytes
/// read again when they were already read.
struct ConnIo<I> {
    inner: I,
    read: Bytes,
    activity: Arc<Activity>,
    watch: FrameWatch,
}

impl<I> ConnIo<I> {
    fn watch(&mut self, bytes: &[u8]) -> Result<(), Flood> {
        let progress = self.watch.read(bytes, self.activity.now())?;
        let a = &self.activity;
        a.head_since.store(progress.head_since.unwrap_or(NONE), Ordering::Relaxed);
        a.heads.store(progress.heads, Ordering::Relaxed);
        if progress.traffic {
            a.touch();
        }
        Ok(())
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ConnIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read.split_to(n));
        } else {
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        }
        match self.watch(&buf.filled()[before..]) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(flood) => {
                tracing::warn!(reason = %flood, "closing HTTP/2 connection");
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, flood)))
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ConnIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
