//! The live, immutable form of one config: router, routes with their
//! pipelines of configured plugin pools, and upstreams. Requests hold the
//! snapshot they started with, so a reload never changes a request midway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::PluginSpec;
use crate::config::{Config, ConfigError};
use crate::message::bounds::Bounds;
use crate::pipeline::{Pipeline, Stage};
use crate::router::Router;
use crate::runtime::{ContentHash, PluginIdentity, PluginPool, Prepared, Runtime};
use crate::services::HostServices;
use crate::upstream::{Upstream, Upstreams};

pub struct Route {
    pub name: Arc<str>,
    pub pipeline: Pipeline,
    pub upstream: Option<Arc<Upstream>>,
    pub timeout: Option<Duration>,
    pub max_body_bytes: usize,
}

pub struct Snapshot {
    pub router: Router,
    pub routes: Vec<Route>,
    pub config: Config,
    /// Content hash of each plugin of `config.plugins`, in order.
    pub plugin_hashes: Vec<ContentHash>,
    pub upstreams: Arc<Upstreams>,
    /// What plugins' writes are held to: the server's limits for clients.
    pub bounds: Bounds,
}

/// Parts of the host that outlive snapshots.
#[derive(Clone)]
pub struct Shared {
    pub runtime: Arc<Runtime>,
    pub state: Arc<crate::state::StateStore>,
    pub metrics: Arc<crate::services::PluginMetrics>,
    pub started: std::time::Instant,
}

impl Snapshot {
    /// Compiles every plugin (concurrently, off the async workers) and
    /// configures every plugin use; reports every failure with the place in
    /// the config it comes from. On reload, `previous` is the snapshot
    /// being replaced: its upstream targets' state carries over.
    pub async fn build(config: Config, shared: &Shared, previous: Option<&Snapshot>) -> Result<Self, Vec<ConfigError>> {
        let runtime = &shared.runtime;
        let compiled =
            futures_util::future::join_all(config.plugins.iter().map(|p| runtime.compile(p.path.clone()))).await;
        let mut errors = Vec::new();
        let prepared: Vec<Option<Prepared>> = compiled
            .into_iter()
            .zip(&config.plugins)
            .map(|(result, spec)| {
                let prepared = result
                    .map_err(|e| e.to_string())
                    .and_then(|c| runtime.prepare(c).map_err(|e| format!("{}: {e:#}", spec.path.display())));
                prepared.map_err(|message| errors.push(ConfigError { at: spec.at.clone(), message })).ok()
            })
            .collect();

        let upstreams = Arc::new(Upstreams::new(&config.upstreams, previous.map(|p| &*p.upstreams)));
        let bounds = Bounds::from(&*config.server);
        let services = Arc::new(HostServices {
            state: shared.state.clone(),
            upstreams: upstreams.clone(),
            metrics: shared.metrics.clone(),
            started: shared.started,
            bounds,
        });

        // Every plugin use is configured at once, so a slow configure step
        // costs a load its own deadline, not the sum of all of them.
        let uses = config.routes.iter().flat_map(|spec| spec.pipeline.iter().map(move |use_| (spec, use_)));
        let pools =
            futures_util::future::join_all(uses.map(|(spec, use_)| {
                let plugin = &config.plugins[use_.plugin];
                let prepared = prepared[use_.plugin].clone();
                let identity =
                    Arc::new(PluginIdentity { plugin: plugin.name.as_str().into(), route: spec.name.as_str().into() });
                let services = services.clone();
                async move {
                    let pool = PluginPool::new(
                        runtime,
                        prepared?,
                        identity,
                        services,
                        use_.config_json.clone(),
                        plugin.limits,
                        plugin.breaker,
                    )
                    .await;
                    Some(pool.map_err(|e| ConfigError {
                        at: use_.at.clone(),
                        message: format!("route {:?}: {e}", spec.name),
                    }))
                }
            }))
            .await;

        let mut pools = pools.into_iter();
        let mut routes = Vec::new();
        for spec in &config.routes {
            let mut stages = Vec::new();
            for (use_, pool) in spec.pipeline.iter().zip(pools.by_ref()) {
                match pool {
                    Some(Ok(pool)) => stages.push(Stage { pool, on_error: use_.on_error }),
                    Some(Err(error)) => errors.push(error),
                    // The plugin did not compile: already reported.
                    None => {}
                }
            }
            routes.push(Route {
                name: spec.name.as_str().into(),
                pipeline: Pipeline::new(stages),
                upstream: spec.upstream.as_ref().and_then(|u| upstreams.get(u).cloned()),
                timeout: spec.timeout,
                max_body_bytes: spec.max_body_bytes,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let router = Router::build(config.routes.iter().map(|r| r.matcher.clone()).collect())
            .expect("route conflicts are found while checking the config");
        let plugin_hashes = prepared
            .iter()
            .map(|p| p.as_ref().expect("every plugin prepared when there are no errors").compiled().hash)
            .collect();
        Ok(Self { router, routes, config, plugin_hashes, upstreams, bounds })
    }

    /// Each plugin's short content hash and settings, by name.
    pub fn plugin_versions(&self) -> BTreeMap<&str, (String, &PluginSpec)> {
        self.config
            .plugins
            .iter()
            .zip(&self.plugin_hashes)
            .map(|(spec, hash)| (spec.name.as_str(), (hash.short(), spec)))
            .collect()
    }
}
