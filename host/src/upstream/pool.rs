//! A target's keep-alive connections. A request takes one (the most
//! recently used, so the fewest stay warm), runs its round trip on it in its
//! own task, and puts it back when the response body has been read to the
//! end. Idle connections are closed after the idle timeout, or as soon as
//! they are found closed by the upstream; the whole pool can be thrown away
//! when the target turns out unhealthy or ejected.
//!
//! An HTTP/2 upstream uses the pool's one shared connection instead
//! (`h2`): requests are streams on it. It is let go once no request has
//! taken it for the idle timeout: streams still running on it finish, then
//! the connection closes, and the next request makes a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Authority;
use hyper::client::conn::http2::SendRequest;

use super::connect::{Connector, Stream};
use super::failure::ClientError;
use super::spec::Protocol;
use crate::body::Body;
use crate::http1::io::WriteBuf;

/// Idle connections kept per target at most.
const MAX_IDLE: usize = 1024;

/// One connection to a target, with its buffers.
pub(crate) struct Conn {
    pub(crate) io: Stream,
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
    connector: Connector,
    protocol: Protocol,
    /// The HTTP/2 connection, for `Protocol::H2`.
    shared: Shared,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    /// Bumped by [`Pool::reset`]: connections made before are not pooled
    /// again.
    generation: AtomicU64,
}

impl Pool {
    pub(crate) fn new(connector: Connector, protocol: Protocol, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                protocol,
                shared: Shared::default(),
                idle_timeout,
                idle: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn addr(&self) -> &Authority {
        self.inner.connector.addr()
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.inner.connector
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.inner.idle.lock().expect("pool lock")
    }

    /// A pooled connection that still looks open, or a new one. `now` is
    /// the caller's clock reading (idle ages need no precision).
    pub(crate) async fn checkout(&self, now: Instant) -> Result<Conn, ClientError> {
        let generation = self.inner.generation.load(Ordering::Relaxed);
        loop {
            let Some(mut idle) = self.idle().pop() else { break };
            if idle.conn.generation == generation
                && now - idle.since < self.inner.idle_timeout
                && idle.conn.io.still_open()
            {
                return Ok(idle.conn);
            }
        }
        // Boxed: a connection is made rarely, and its future (a TLS
        // handshake's) would otherwise make every round trip's future, and
        // each request's around it, that much larger to move.
        Box::pin(self.connect()).await
    }

    /// A connection of its own, never pooled (health checks).
    pub(crate) async fn connect(&self) -> Result<Conn, ClientError> {
        let io = self.inner.connector.connect().await?;
        let generation = self.generation();
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
        self.inner.shared.let_go_if_unused(now, timeout);
        let expired: Vec<Idle> = {
            let mut idle = self.idle();
            let mut expired = Vec::new();
            for mut i in std::mem::take(&mut *idle) {
                if now - i.since < timeout && i.conn.io.still_open() {
                    idle.push(i);
                } else {
                    expired.push(i);
                }
            }
            expired
        };
        drop(expired);
    }

    /// Closes the idle connections; those in use are not pooled again.
    pub(crate) fn reset(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
        self.inner.shared.clear();
    }
}

/// A target's HTTP/2 connection, once made.
#[derive(Default)]
pub(crate) struct Shared {
    sender: Mutex<Option<SharedSender>>,
    /// One connection is made at a time: requests that find none wait for
    /// it instead of each opening their own.
    pub(crate) connecting: tokio::sync::Mutex<()>,
}

struct SharedSender {
    sender: SendRequest<Body>,
    /// The pool generation it was made in.
    generation: u64,
    /// When a request last took it.
    used: Instant,
}

impl Shared {
    pub(crate) fn current(&self, generation: u64) -> Option<SendRequest<Body>> {
        match &mut *self.sender.lock().expect("h2 sender lock") {
            Some(shared) if shared.generation == generation && !shared.sender.is_closed() => {
                shared.used = Instant::now();
                Some(shared.sender.clone())
            }
            _ => None,
        }
    }

    pub(crate) fn set(&self, generation: u64, sender: SendRequest<Body>) {
        *self.sender.lock().expect("h2 sender lock") = Some(SharedSender { sender, generation, used: Instant::now() });
    }

    /// Drops the sender when no request took it for `timeout`. The
    /// connection's task ends once the last stream on it has (hyper closes
    /// a client connection whose senders are all gone), so a long response
    /// still streaming is not cut.
    fn let_go_if_unused(&self, now: Instant, timeout: Duration) {
        let mut sender = self.sender.lock().expect("h2 sender lock");
        if sender.as_ref().is_some_and(|shared| now.saturating_duration_since(shared.used) >= timeout) {
            sender.take();
        }
    }

    /// Drops the connection (requests on it carry on; new ones get a new one).
    pub(crate) fn clear(&self) {
        self.sender.lock().expect("h2 sender lock").take();
    }
}
