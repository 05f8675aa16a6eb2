//! A target's keep-alive connections. A request takes one (the most
//! recently used, so the fewest stay warm), runs its round trip on it in its
//! own task, and puts it back when the response body has been read to the
//! end. Idle connections are closed after the idle timeout, or as soon as
//! they are found closed by the upstream; the whole pool can be thrown away
//! when the target turns out unhealthy or ejected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Authority;
use tokio::net::TcpStream;

use super::failure::ClientError;
use crate::http1::io::WriteBuf;

/// Idle connections kept per target at most.
const MAX_IDLE: usize = 1024;

/// One connection to a target, with its buffers.
pub(crate) struct Conn {
    pub(crate) io: TcpStream,
    /// Bytes read and not yet parsed.
    pub(crate) buf: BytesMut,
    pub(crate) out: WriteBuf,
    /// Has carried a round trip before: a failure before any response byte
    /// may only mean the upstream closed it while it was idle.
    pub(crate) reused: bool,
    generation: u64,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A target's pool; clones share it.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    addr: Authority,
    connect_timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    /// Bumped by [`Pool::reset`]: connections made before are not pooled
    /// again.
    generation: AtomicU64,
}

impl Pool {
    pub(crate) fn new(addr: Authority, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                addr,
                connect_timeout,
                idle_timeout,
                idle: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn addr(&self) -> &Authority {
        &self.inner.addr
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.inner.idle.lock().expect("pool lock")
    }

    /// A pooled connection that still looks open, or a new one. `now` is
    /// the caller's clock reading (idle ages need no precision).
    pub(crate) async fn checkout(&self, now: Instant) -> Result<Conn, ClientError> {
        let generation = self.inner.generation.load(Ordering::Relaxed);
        loop {
            let Some(idle) = self.idle().pop() else { break };
            if idle.conn.generation == generation
                && now - idle.since < self.inner.idle_timeout
                && still_open(&idle.conn)
            {
                return Ok(idle.conn);
            }
        }
        self.connect().await
    }

    /// A connection of its own, never pooled (health checks).
    pub(crate) async fn connect(&self) -> Result<Conn, ClientError> {
        let inner = &self.inner;
        let connect = TcpStream::connect(inner.addr.as_str());
        let io = match tokio::time::timeout(inner.connect_timeout, connect).await {
            Ok(Ok(io)) => io,
            Ok(Err(source)) => {
                return Err(ClientError::Connect { timed_out: source.kind() == std::io::ErrorKind::TimedOut, source });
            }
            Err(_) => {
                return Err(ClientError::Connect { timed_out: true, source: std::io::ErrorKind::TimedOut.into() });
            }
        };
        let _ = io.set_nodelay(true);
        let generation = inner.generation.load(Ordering::Relaxed);
        Ok(Conn { io, buf: BytesMut::new(), out: WriteBuf::default(), reused: false, generation })
    }

    /// Puts a connection back after a round trip that left it clean.
    pub(crate) fn checkin(&self, mut conn: Conn, now: Instant) {
        if !conn.buf.is_empty() || conn.generation != self.inner.generation.load(Ordering::Relaxed) {
            return;
        }
        conn.reused = true;
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }

    /// Closes the idle connections that timed out or were closed by the
    /// upstream.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let timeout = self.inner.idle_timeout;
        let expired: Vec<Idle> = {
            let mut idle = self.idle();
            let (keep, expired) =
                std::mem::take(&mut *idle).into_iter().partition(|i| now - i.since < timeout && still_open(&i.conn));
            *idle = keep;
            expired
        };
        drop(expired);
    }

    /// Closes the idle connections; those in use are not pooled again.
    pub(crate) fn reset(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }
}

/// Whether an idle connection can carry a request: anything readable on it
/// (the upstream's close, or bytes nobody asked for) says it cannot. This
/// asks the runtime's readiness, which costs no system call unless the
/// connection turned readable.
fn still_open(conn: &Conn) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match conn.io.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut byte = [0u8; 1];
            matches!(conn.io.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}
