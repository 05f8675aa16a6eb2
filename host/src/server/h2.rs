//! HTTP/2 connections (ALPN `h2` on TLS, prior knowledge on plaintext),
//! served by hyper, with every request through the limits and a watchdog
//! that closes connections idle for too long.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::limits::{self, RequestBody};
use super::{Core, Handler, ServerSettings};
use crate::body::{self, Body, BodyError};
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
    let io = ConnIo { inner: io, read, activity: activity.clone() };
    let state = Arc::new(ConnState { core, client, tls, activity: activity.clone() });
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(state.request(req).await) }
    });
    let watchdog = activity.idle(settings.idle_timeout);
    tokio::pin!(watchdog);
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_header_list_size(limits::h2_max_header_list(&settings));
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
            () = &mut watchdog => {
                tracing::debug!(%client, "closing idle HTTP/2 connection");
                return;
            }
        }
    }
}

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

    async fn checked(&self, req: Request<Incoming>) -> Response<Body> {
        let settings = (self.core.settings)();
        let (mut parts, incoming) = req.into_parts();
        if let Some(resp) = limits::check_head(&settings, &parts) {
            return resp;
        }
        if self.tls {
            parts.extensions.insert(ClientTls);
        }
        let (mut body, state) = RequestBody::new(incoming, settings.max_request_body_bytes);
        let handler = &self.core.handler;
        let client = self.client;
        limits::within(&settings, &state, false, async move {
            if !body.is_end_stream()
                && let Err(resp) = body.read_first().await
            {
                return *resp;
            }
            handler.call(Request::from_parts(parts, body::boxed(body)), client).await
        })
        .await
    }
}

/// Shared by a connection's I/O, its streams and its watchdog.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte read or written.
    last_io: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { epoch: Instant::now(), last_io: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Resolves once the connection has had no stream and no traffic for
    /// `idle`.
    async fn idle(&self, idle: Duration) {
        let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let idle = idle.as_millis() as u64;
        loop {
            tokio::time::sleep(tick).await;
            if self.in_flight.load(Ordering::Relaxed) == 0
                && self.now().saturating_sub(self.last_io.load(Ordering::Relaxed)) >= idle
            {
                return;
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

/// The connection's byte stream, watched for activity, its first bytes
/// read again when they were already read.
struct ConnIo<I> {
    inner: I,
    read: Bytes,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for ConnIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ConnIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
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
            self.activity.touch();
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
