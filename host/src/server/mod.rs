//! Accepting connections (HTTP/1.1 and HTTP/2, prior-knowledge h2c) and
//! handing each request to the gateway; graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{self, Body};
use crate::gateway::Gateway;
use http::{Request, Response};

/// How long in-flight requests may take to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A server accepting on its listeners until shut down.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, waits for in-flight requests (up to the drain
    /// timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub async fn bind(addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?);
    }
    Ok(listeners)
}

/// Serves the gateway's traffic on already bound listeners.
pub fn serve(gateway: Arc<Gateway>, listeners: Vec<TcpListener>) -> Running {
    serve_with(listeners, move |req, client| {
        let gateway = gateway.clone();
        async move { gateway.handle(req, client).await }
    })
}

/// Serves any request handler (the gateway, the admin API) on listeners.
pub fn serve_with<H, F>(listeners: Vec<TcpListener>, handler: H) -> Running
where
    H: Fn(Request<Body>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let addrs = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_all(Arc::new(handler), listeners, stopped));
    Running { addrs, stop, task }
}

async fn accept_all<H, F>(handler: Arc<H>, listeners: Vec<TcpListener>, mut stopped: watch::Receiver<bool>)
where
    H: Fn(Request<Body>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel(64);
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let tx = conn_tx.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok(conn) => {
                            if tx.send(conn).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();
    drop(conn_tx);

    loop {
        tokio::select! {
            conn = conn_rx.recv() => {
                let Some((stream, client)) = conn else { break };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let response = handler(req.map(body::boxed), client);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%client, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stopped.changed() => break,
        }
    }
    for a in acceptors {
        a.abort();
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
