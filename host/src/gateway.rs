//! The gateway: the current snapshot behind one atomic pointer, and the
//! entry point every request goes through, with or without a socket.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
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
use crate::server::{self, OpenConnections, ServerSettings};
use crate::services::PluginMetrics;
use crate::snapshot::{Shared, Snapshot};
use crate::state::StateStore;
use crate::telemetry::otlp::{Exporter, OtlpSettings};
use crate::telemetry::sinks::Logged;
use crate::telemetry::trace_context::TRACEPARENT;
use crate::telemetry::{AccessLog, Metrics, RequestRecord, Sinks, TraceContext};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is unreadable or has mistakes.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The wasmtime engine could not be built (e.g. the pooling allocator
    /// could not reserve its memory).
    #[error("cannot start the plugin runtime: {0:#}")]
    Runtime(anyhow::Error),
    /// The state backend (e.g. Redis) could not be set up.
    #[error("cannot set up the state backend: {0}")]
    State(String),
}

/// The gateway: the snapshot being served, swapped whole by reloads, and
/// what outlives snapshots (the plugin engine, shared state).
pub struct Gateway {
    current: ArcSwap<Snapshot>,
    shared: Shared,
    /// Held for a whole reload: reloads never overlap.
    reload: Mutex<()>,
    /// The latest finished reload's outcome.
    status: std::sync::Mutex<ReloadStatus>,
    /// Started by [`Gateway::start_access_log`]; none until then.
    access_log: OnceLock<Arc<AccessLog>>,
    /// `[tracing]`'s exporter and sample ratio, started with the gateway.
    spans: Option<(Arc<Exporter>, f64)>,
}

impl Gateway {
    /// Loads, checks and builds a config file into a running gateway.
    pub async fn load(path: &Path) -> Result<Self, StartError> {
        Self::new(config::load(path)?).await
    }

    /// Starts a gateway on an already-read config (tests adjust it first).
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let runtime = Runtime::new(config.engine, config.cache_dir.clone()).map_err(StartError::Runtime)?;
        let metrics = Arc::new(PluginMetrics::default());
        let shared = Shared {
            runtime,
            state: Arc::new(StateStore::new(&config.state, config.state_memory).map_err(StartError::State)?),
            telemetry: Arc::new(Metrics::new(metrics.clone())),
            metrics,
            started: Instant::now(),
        };
        let snapshot = Snapshot::build(config, &shared, None)
            .await
            .map_err(|errors| StartError::Config(ConfigErrors::Invalid(errors)))?;
        let snapshot = Arc::new(snapshot);
        let spans = snapshot.config.tracing.as_ref().map(|t| {
            let settings = OtlpSettings { endpoint: t.endpoint.clone(), service_name: t.service_name.clone() };
            (Exporter::start(settings, shared.telemetry.spans_dropped()), t.sample_ratio)
        });
        let status = ReloadStatus { generation: 1, last_success_ms: Some(clock::now_ms()), ..ReloadStatus::default() };
        shared.telemetry.record_loaded(status.generation);
        shared.telemetry.set_scrape_source(snapshot.clone());
        Ok(Self {
            current: ArcSwap::new(snapshot),
            shared,
            reload: Mutex::new(()),
            status: std::sync::Mutex::new(status),
            access_log: OnceLock::new(),
            spans,
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
                let snapshot = Arc::new(snapshot);
                self.shared.telemetry.set_scrape_source(snapshot.clone());
                self.current.store(snapshot);
                diff
            })
        };
        let outcome = match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result.map_err(ReloadError::from),
            Err(_) => Err(ReloadError::Abandoned { limit }),
        };

        let mut status = self.status.lock().unwrap();
        status.record(attempt_ms, cause, &outcome);
        match &outcome {
            Ok(diff) => {
                self.shared.telemetry.record_reload(true, status.generation);
                tracing::info!(cause, generation = status.generation, changes = %diff, "config reloaded");
            }
            Err(error) => {
                self.shared.telemetry.record_reload(false, status.generation);
                tracing::error!(cause, errors = %error, "reload failed; still serving the previous config");
            }
        }
        outcome
    }

    /// The latest reload's outcome, without waiting for one in progress.
    pub fn reload_status(&self) -> ReloadStatus {
        self.status.lock().unwrap().clone()
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The Prometheus registry (`GET /metrics`).
    pub(crate) fn telemetry(&self) -> &Metrics {
        &self.shared.telemetry
    }

    /// The shared state backend, for its status.
    pub(crate) fn state(&self) -> &StateStore {
        &self.shared.state
    }

    /// The config being served (a copy: it may be replaced by a reload
    /// at any moment).
    pub fn config(&self) -> Config {
        self.current.load().config.clone()
    }

    /// Starts writing the access log as `[access_log]` says (nothing when
    /// it is off); `json`: its format when the config names none. Once:
    /// later calls change nothing.
    pub fn start_access_log(&self, json: bool) -> std::io::Result<()> {
        let settings = self.current.load().config.access_log.clone();
        if !settings.enabled || self.access_log.get().is_some() {
            return Ok(());
        }
        let log = AccessLog::start(&settings, json, self.shared.telemetry.access_log_dropped())?;
        let _ = self.access_log.set(Arc::new(log));
        Ok(())
    }

    /// Reports the open connections of a server's listeners in
    /// `wasmgate_open_connections`.
    pub fn count_connections(&self, connections: OpenConnections) {
        self.shared.telemetry.count_connections(connections);
    }

    /// Reopens the access log's file (after a rotation renamed it).
    pub fn reopen_access_log(&self) {
        if let Some(log) = self.access_log.get() {
            log.reopen();
        }
    }

    /// Handles one request end to end. Never fails: every error becomes a
    /// problem+json response. The response carries the request id and the
    /// gateway's `traceparent`; it is counted in the route's metrics, and
    /// its access-log line is queued once its body is sent.
    pub fn handle(&self, req: Request<Body>, client: SocketAddr) -> impl Future<Output = Response<Body>> + Send + '_ {
        respond(self, req, client)
    }
}

/// [`Gateway::handle`], for a borrowed gateway or one the future owns (the
/// server's): the same future either way, with nothing around it.
async fn respond<G>(gateway: G, req: Request<Body>, client: SocketAddr) -> Response<Body>
where
    G: std::ops::Deref<Target = Gateway> + Send,
{
    let start = Instant::now();
    let snapshot = gateway.current.load_full();
    let trace = TraceContext::from_headers(req.headers());
    let request_id = proxy_headers::request_id(req.headers(), &trace);
    let sinks = Sinks { log: gateway.access_log.get().cloned(), spans: gateway.spans.clone() };
    let mut record = Box::new(RequestRecord::new(&req, client, request_id.clone(), trace, start, !sinks.is_empty()));
    // Each upstream try becomes a span only when spans are exported.
    record.upstream.keep_each = gateway.spans.is_some();
    let mut resp = crate::handler::handle(&snapshot, req, client, request_id.clone(), &mut record).await;
    let status = resp.status();
    snapshot.route_metrics(record.route_index).record(&record.method, status, start.elapsed());
    record.status = status.as_u16();
    let headers = resp.headers_mut();
    headers.insert(REQUEST_ID, request_id);
    headers.insert(TRACEPARENT.clone(), record.trace.traceparent());
    match sinks.is_empty() {
        true => resp,
        false => resp.map(|body| Logged::wrap(body, record, sinks)),
    }
}

impl server::Site for Gateway {
    fn answer(
        self: Arc<Self>,
        req: Request<Body>,
        client: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        respond(self, req, client)
    }

    fn settings(&self) -> Arc<ServerSettings> {
        self.current.load().config.server.clone()
    }

    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current.load().config.server.tls.as_ref().map(|t| t.config.clone())
    }
}

impl reload::Reloadable for Gateway {
    fn watched_files(&self) -> reload::Watched {
        let mut watched = reload::files_of(&self.current.load().config);
        // After a failed reload the file on disk may name another plugins
        // folder, with a route waiting for its file to appear there.
        watched.plugins_dirs.extend(config::plugins_dir_on_disk(&self.current.load().config.source));
        watched
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
    if old.workers != new.workers {
        tracing::warn!("server.workers changed: takes effect after a restart");
    }
    if old.tracing != new.tracing {
        tracing::warn!("[tracing] changed: takes effect after a restart");
    }
    if old.access_log != new.access_log {
        tracing::warn!("[access_log] changed: takes effect after a restart");
    }
    if old.server.max_connections != new.server.max_connections {
        tracing::warn!("server.max_connections changed: takes effect after a restart");
    }
    if old.state != new.state || old.state_memory != new.state_memory {
        tracing::warn!("[state] changed: takes effect after a restart");
    }
    if old.engine != new.engine || old.cache_dir != new.cache_dir {
        tracing::warn!("runtime.max_instances / instance_idle_ms / cache_dir changed: take effect after a restart");
    }
}
