//! Accepting connections and handing each request to a [`Site`] (the
//! gateway) or any request handler (the admin API).
//!
//! - `accept`: one task per listener, within its connection limit.
//! - `conn`: the TLS handshake, then HTTP/1.1 or HTTP/2 (ALPN on TLS
//!   listeners, prior knowledge on plaintext ones).
//! - `h1`: HTTP/1.1 on the gateway's own loop (see `http1`), with the
//!   timeouts against slow request heads (slowloris) and idle connections.
//! - `h2`: HTTP/2 through hyper, with `h2_frames` watching the client's
//!   frames for slow heads and floods.
//! - `limits`: head, body and time limits on each request.
//! - [`tls`]: certificates into rustls, re-read on reload.
//! - `shutdown`: the signals; [`Running::shutdown`] drains.
//!
//! Settings come from the site for every connection and request (the
//! gateway's current snapshot), so a reload applies to new connections
//! without rebinding.

mod accept;
mod conn;
mod h1;
mod h2;
mod h2_frames;
mod limits;
mod settings;
mod shutdown;
pub(crate) mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use http::{Request, Response};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::body::Body;
pub(crate) use settings::*;
pub use shutdown::shutdown_signal;

/// A request handler: the gateway, the admin API, a test's.
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(&self, req: Request<Body>, client: SocketAddr) -> impl Future<Output = Response<Body>> + Send + 'static;
}

impl<H, F> Handler for H
where
    H: Fn(Request<Body>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    fn call(&self, req: Request<Body>, client: SocketAddr) -> impl Future<Output = Response<Body>> + Send + 'static {
        self(req, client)
    }
}

type SettingsSource = Box<dyn Fn() -> Arc<ServerSettings> + Send + Sync>;

/// What every connection of one server shares.
pub(crate) struct Core<H> {
    handler: H,
    settings: SettingsSource,
    tls: Option<tls::TlsSource>,
}

/// Bound listeners: plaintext and TLS.
#[derive(Default)]
pub struct Listeners {
    /// Served in plain text (HTTP/1.1 and h2c).
    pub plain: Vec<TcpListener>,
    /// Served over TLS with the `[server.tls]` certificates.
    pub tls: Vec<TcpListener>,
}

impl Listeners {
    /// Binds plaintext and TLS listeners on these addresses.
    pub async fn bind(plain: &[SocketAddr], tls: &[SocketAddr]) -> anyhow::Result<Self> {
        Ok(Self { plain: bind(plain).await?, tls: bind(tls).await? })
    }
}

/// How many connections each listener has open, read when asked: the
/// permits of its connection limit taken, so counting costs a connection
/// nothing.
#[derive(Clone, Debug)]
pub struct OpenConnections {
    listeners: Arc<[(SocketAddr, Arc<Semaphore>)]>,
    max: usize,
}

impl OpenConnections {
    /// Each listener's address and its open connections.
    pub fn each(&self, mut visit: impl FnMut(SocketAddr, usize)) {
        for (addr, limit) in self.listeners.iter() {
            visit(*addr, self.max.saturating_sub(limit.available_permits()));
        }
    }
}

/// A server accepting on its listeners until shut down.
pub struct Running {
    /// Plaintext listeners' addresses.
    pub addrs: Vec<SocketAddr>,
    /// TLS listeners' addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// Open connections per listener.
    pub connections: OpenConnections,
    stop: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Closes the listeners (new connections are refused) and returns once
    /// they are closed; connections already accepted go on.
    pub async fn stop_accepting(&self) {
        let _ = self.stop.send(true);
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain
    /// timeout), then returns.
    pub async fn shutdown(self) {
        self.stop_accepting().await;
        let _ = self.task.await;
    }
}

/// Binds a listener on each address (port 0: any free port).
pub async fn bind(addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?);
    }
    Ok(listeners)
}

/// What a server serves with its current settings: the gateway, whose
/// settings and certificates change on reload. `main.rs` wires the two;
/// the server knows nothing of gateways or configs.
pub trait Site: Send + Sync + 'static {
    /// Answers one request; never fails (errors are answers too). The
    /// future owns the site: the server boxes it as it is, with no async
    /// block around it to copy it into (the pipeline's future is large,
    /// and each layer around it cost a copy of it per request).
    fn answer(
        self: Arc<Self>,
        req: Request<Body>,
        client: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send + 'static;
    /// The settings for the next connection or request.
    fn settings(&self) -> Arc<ServerSettings>;
    /// The TLS config for the next handshake, if TLS is configured.
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>>;
}

/// Serves a site's traffic on already bound plaintext listeners.
pub fn serve<S: Site>(site: Arc<S>, listeners: Vec<TcpListener>) -> Running {
    serve_listeners(site, Listeners { plain: listeners, tls: Vec::new() })
        .expect("plaintext listeners need no TLS settings")
}

/// Serves a site's traffic on plaintext and TLS listeners, with the
/// settings and certificates it has at each connection.
pub fn serve_listeners<S: Site>(site: Arc<S>, listeners: Listeners) -> anyhow::Result<Running> {
    let tls = if listeners.tls.is_empty() {
        None
    } else {
        let start = site.tls().context("TLS listeners need [server.tls]")?;
        let for_tls = site.clone();
        Some(tls::TlsSource::new(start, move || for_tls.tls()))
    };
    let for_settings = site.clone();
    let settings: SettingsSource = Box::new(move || for_settings.settings());
    let handler = move |req, client| site.clone().answer(req, client);
    Ok(start(Core { handler, settings, tls }, listeners))
}

/// Serves any request handler (the admin API, a test's) on plaintext
/// listeners with default settings.
pub(crate) fn serve_with<H, F>(listeners: Vec<TcpListener>, handler: H) -> Running
where
    H: Fn(Request<Body>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let defaults = Arc::new(ServerSettings::default());
    let settings: SettingsSource = Box::new(move || defaults.clone());
    start(Core { handler, settings, tls: None }, Listeners { plain: listeners, tls: Vec::new() })
}

fn start<H: Handler>(core: Core<H>, listeners: Listeners) -> Running {
    let addrs = listeners.plain.iter().filter_map(|l| l.local_addr().ok()).collect();
    let tls_addrs = listeners.tls.iter().filter_map(|l| l.local_addr().ok()).collect();
    let max = (core.settings)().max_connections;
    let listeners: Vec<(TcpListener, bool, Arc<Semaphore>)> = (listeners.plain.into_iter().map(|l| (l, false)))
        .chain(listeners.tls.into_iter().map(|l| (l, true)))
        .map(|(listener, tls)| (listener, tls, Arc::new(Semaphore::new(max))))
        .collect();
    let connections = OpenConnections {
        listeners: listeners.iter().filter_map(|(l, _, limit)| Some((l.local_addr().ok()?, limit.clone()))).collect(),
        max,
    };
    let (stop, stopped) = watch::channel(false);
    let (closed_tx, closed) = watch::channel(false);
    let task = tokio::spawn(accept_all(Arc::new(core), listeners, stopped, closed_tx));
    Running { addrs, tls_addrs, connections, stop, closed, task }
}

async fn accept_all<H: Handler>(
    core: Arc<Core<H>>,
    listeners: Vec<(TcpListener, bool, Arc<Semaphore>)>,
    mut stopped: watch::Receiver<bool>,
    closed: watch::Sender<bool>,
) {
    let graceful = GracefulShutdown::new();
    let (conn_tx, mut conn_rx) = mpsc::channel(64);
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|(listener, tls, limit)| accept::spawn(listener, tls, limit, conn_tx.clone()))
        .collect();
    drop(conn_tx);

    let mut connections = tokio::task::JoinSet::new();
    let for_connections = stopped.clone();
    loop {
        tokio::select! {
            accepted = conn_rx.recv() => {
                let Some(accept::Accepted { stream, client, tls, permit }) = accepted else { break };
                connections.spawn(conn::serve(core.clone(), stream, client, tls, graceful.watcher(), for_connections.clone(), permit));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
    }
    for a in &acceptors {
        a.abort();
    }
    for a in acceptors {
        let _ = a.await;
    }
    // Connections accepted but not yet handed over are closed, not served.
    drop(conn_rx);
    let _ = closed.send(true);

    let drain = (core.settings)().drain_timeout;
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(timeout_ms = drain.as_millis() as u64, "drain timeout reached; closing remaining connections");
    }
    connections.abort_all();
}
