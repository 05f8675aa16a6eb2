//! The gateway: the current snapshot behind one atomic pointer, and the
//! entry point every request goes through, with or without a socket.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Request, Response};
use tokio::sync::Mutex;

use crate::body::Body;
use crate::clock;
use crate::config::{self, Config, ConfigErrors};
use crate::proxy_headers::{self, REQUEST_ID};
use crate::reload::{self, Diff, ReloadError, ReloadStatus};
use crate::runtime::Runtime;
use crate::server::{self, ServerSettings};
use crate::services::PluginMetrics;
use crate::snapshot::{Shared, Snapshot};
use crate::state::StateStore;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error("cannot start the plugin runtime: {0:#}")]
    Runtime(anyhow::Error),
    #[error("cannot set up the state backend: {0}")]
    State(String),
}

pub struct Gateway {
    current: ArcSwap<Snapshot>,
    shared: Shared,
    /// Held for a whole reload: reloads never overlap.
    reload: Mutex<()>,
    /// The latest finished reload's outcome.
    status: std::sync::Mutex<ReloadStatus>,
}

impl Gateway {
    /// Loads, checks and builds a config file into a running gateway.
    pub async fn load(path: &Path) -> Result<Self, StartError> {
        Self::new(config::load(path)?).await
    }

    pub async fn new(config: Config) -> Result<Self, StartError> {
        let runtime = Runtime::new(config.engine, config.cache_dir.clone()).map_err(StartError::Runtime)?;
        let shared = Shared {
            runtime,
            state: Arc::new(StateStore::new(&config.state).map_err(StartError::State)?),
            metrics: Arc::new(PluginMetrics::default()),
            started: Instant::now(),
        };
        let snapshot = Snapshot::build(config, &shared, None)
            .await
            .map_err(|errors| StartError::Config(ConfigErrors::Invalid(errors)))?;
        let status = ReloadStatus { generation: 1, last_success_ms: Some(clock::now_ms()), ..ReloadStatus::default() };
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            shared,
            reload: Mutex::new(()),
            status: std::sync::Mutex::new(status),
        })
    }

    /// Re-reads the config file and every plugin, and swaps the new
    /// snapshot in if all of it loads. Requests in flight finish on the
    /// snapshot they started with. On failure nothing changes but the
    /// status, which keeps the reason.
    ///
    /// Bounded by the running config's `reload_timeout_ms`, waiting for a
    /// reload in progress included: one that runs past it is abandoned, so
    /// nothing can wedge the reloads that follow.
    pub async fn reload(&self, cause: &str) -> Result<Diff, ReloadError> {
        let limit = self.current.load().config.reload_timeout;
        let attempt_ms = clock::now_ms();
        let attempt = async {
            let _turn = self.reload.lock().await;
            let current = self.current.load_full();
            let result = match config::load(&current.config.source) {
                Ok(config) => {
                    Snapshot::build(config, &self.shared, Some(&current)).await.map_err(ConfigErrors::Invalid)
                }
                Err(e) => Err(e),
            };
            result.map(|snapshot| {
                let diff = Diff::between(&current, &snapshot);
                warn_restart_only(&current.config, &snapshot.config);
                self.current.store(Arc::new(snapshot));
                diff
            })
        };
        let outcome = match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result.map_err(ReloadError::from),
            Err(_) => Err(ReloadError::Abandoned { limit }),
        };

        let mut status = self.status.lock().unwrap();
        status.last_attempt_ms = Some(attempt_ms);
        status.last_cause = Some(cause.to_owned());
        match &outcome {
            Ok(diff) => {
                status.generation += 1;
                status.last_success_ms = Some(attempt_ms);
                status.last_error = None;
                tracing::info!(cause, generation = status.generation, changes = %diff, "config reloaded");
            }
            Err(error) => {
                status.failures += 1;
                status.last_error = Some(error.to_string());
                tracing::error!(cause, errors = %error, "reload failed; still serving the previous config");
            }
        }
        outcome
    }

    /// The latest reload's outcome, without waiting for one in progress.
    pub fn reload_status(&self) -> ReloadStatus {
        self.status.lock().unwrap().clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Handles one request end to end. Never fails: every error becomes a
    /// problem+json response. The response carries the request id.
    pub async fn handle(&self, req: Request<Body>, client: SocketAddr) -> Response<Body> {
        let snapshot = self.current.load_full();
        let request_id = proxy_headers::request_id(req.headers());
        let mut resp = crate::handler::handle(&snapshot, req, client, request_id.clone()).await;
        resp.headers_mut().insert(REQUEST_ID, request_id);
        resp
    }
}

impl server::Site for Gateway {
    fn answer(&self, req: Request<Body>, client: SocketAddr) -> impl Future<Output = Response<Body>> + Send + '_ {
        self.handle(req, client)
    }

    fn settings(&self) -> Arc<ServerSettings> {
        self.current.load().config.server.clone()
    }

    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current.load().config.server.tls.as_ref().map(|t| t.config.clone())
    }
}

impl reload::Reloadable for Gateway {
    fn watched_files(&self) -> Vec<PathBuf> {
        reload::files_of(&self.current.load().config)
    }

    async fn reload_files(&self) {
        let _ = self.reload("file change").await;
    }
}

/// Settings read only at start: say so instead of silently ignoring them.
fn warn_restart_only(old: &Config, new: &Config) {
    if old.listen != new.listen || old.server.tls_listen != new.server.tls_listen {
        tracing::warn!("server.listen / tls_listen changed: takes effect after a restart");
    }
    if old.server.max_connections != new.server.max_connections {
        tracing::warn!("server.max_connections changed: takes effect after a restart");
    }
    if old.state != new.state {
        tracing::warn!("[state] changed: takes effect after a restart");
    }
    if old.engine != new.engine || old.cache_dir != new.cache_dir {
        tracing::warn!("runtime.max_instances / instance_idle_ms / cache_dir changed: take effect after a restart");
    }
}
