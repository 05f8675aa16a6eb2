//! The live, immutable form of one config: router, routes with their
//! pipelines of configured plugin pools, and upstreams. Requests hold the
//! snapshot they started with, so a reload never changes a request midway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::PluginSpec;
use crate::config::{Config, ConfigError, Location};
use crate::message::bounds::Bounds;
use crate::pipeline::{Pipeline, Stage};
use crate::router::Router;
use crate::runtime::{ContentHash, PluginIdentity, PluginPool, Prepared, Runtime};
use crate::services::HostServices;
use crate::telemetry::scrape::{Instances, ScrapeSource, TargetState};
use crate::telemetry::{Metrics, RouteMetrics};
use crate::upstream::{Unresolved, Upstream, Upstreams};

pub(crate) struct Route {
    pub name: Arc<str>,
    /// Its requests' counters and durations.
    pub metrics: RouteMetrics,
    pub pipeline: Pipeline,
    pub upstream: Option<Arc<Upstream>>,
    pub timeout: Option<Duration>,
    pub max_body_bytes: usize,
}

pub(crate) struct Snapshot {
    pub router: Router,
    pub routes: Vec<Route>,
    pub config: Config,
    /// Content hash of each plugin of `config.plugins`, in order.
    pub plugin_hashes: Vec<ContentHash>,
    pub upstreams: Arc<Upstreams>,
    /// What plugins' writes are held to: the server's limits for clients.
    pub bounds: Bounds,
    /// Where requests no route matched are counted.
    pub no_route: RouteMetrics,
}

/// Parts of the host that outlive snapshots.
#[derive(Clone)]
pub(crate) struct Shared {
    pub runtime: Arc<Runtime>,
    pub state: Arc<crate::state::StateStore>,
    pub metrics: Arc<crate::services::PluginMetrics>,
    /// The Prometheus registry: series outlive snapshots, so a route that
    /// keeps its name keeps counting across reloads.
    pub telemetry: Arc<Metrics>,
    pub started: std::time::Instant,
}

impl Snapshot {
    /// Compiles every plugin (concurrently, off the async workers) and
    /// configures every plugin use; reports every failure with the place in
    /// the config it comes from. On reload, `previous` is the snapshot
    /// being replaced: its upstream targets' state carries over.
    pub(crate) async fn build(
        config: Config,
        shared: &Shared,
        previous: Option<&Snapshot>,
    ) -> Result<Self, Vec<ConfigError>> {
        let runtime = &shared.runtime;
        let compiled = runtime.compile_all(config.plugins.iter().map(|p| p.path.clone())).await;
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

        let previous_upstreams = previous.map(|p| &*p.upstreams);
        let upstreams = Upstreams::build(&config.upstreams, &config.dns, &shared.telemetry, previous_upstreams).await;
        let upstreams = Arc::new(upstreams.unwrap_or_else(|unresolved| {
            errors.extend(unresolved.into_iter().map(|u| unresolved_error(&config, u)));
            Upstreams::default()
        }));
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
            let name: Arc<str> = spec.name.as_str().into();
            let mut stages = Vec::new();
            for (use_, pool) in spec.pipeline.iter().zip(pools.by_ref()) {
                match pool {
                    Some(Ok(pool)) => {
                        let metrics = shared.telemetry.plugin_use(pool.plugin().clone(), name.clone());
                        stages.push(Stage { pool, on_error: use_.on_error, metrics })
                    }
                    Some(Err(error)) => errors.push(error),
                    // The plugin did not compile: already reported.
                    None => {}
                }
            }
            routes.push(Route {
                metrics: shared.telemetry.route(name.clone()),
                name,
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
        let no_route = shared.telemetry.no_route();
        Ok(Self { router, routes, config, plugin_hashes, upstreams, bounds, no_route })
    }

    /// The metrics of the route at `index`, or of no route.
    pub(crate) fn route_metrics(&self, index: Option<usize>) -> &RouteMetrics {
        index.and_then(|i| self.routes.get(i)).map_or(&self.no_route, |r| &r.metrics)
    }

    /// Each plugin's short content hash and settings, by name.
    pub(crate) fn plugin_versions(&self) -> BTreeMap<&str, (String, &PluginSpec)> {
        self.config
            .plugins
            .iter()
            .zip(&self.plugin_hashes)
            .map(|(spec, hash)| (spec.name.as_str(), (hash.short(), spec)))
            .collect()
    }
}

/// A name that did not resolve, blamed on the target that names it.
fn unresolved_error(config: &Config, unresolved: Unresolved) -> ConfigError {
    let at = config.target_locations.get(&unresolved.upstream).and_then(|l| l.get(unresolved.target)).cloned();
    let at = at.unwrap_or_else(|| Location {
        file: config.source.as_path().into(),
        line: 0,
        column: 0,
        key: format!("upstreams.{}.targets", unresolved.upstream),
    });
    ConfigError { at, message: unresolved.reason }
}

/// The serving snapshot, read at scrape time.
impl ScrapeSource for Snapshot {
    fn plugin_instances(&self, visit: &mut dyn FnMut(Instances<'_>)) {
        for route in &self.routes {
            for stage in route.pipeline.stages() {
                visit(Instances {
                    plugin: stage.pool.plugin(),
                    route: &route.name,
                    idle: stage.pool.idle_instances(),
                    busy: stage.pool.busy_instances(),
                });
            }
        }
    }

    fn target_states(&self, visit: &mut dyn FnMut(&str, &str, TargetState)) {
        for (upstream, targets) in self.upstreams.status() {
            for target in &targets {
                // `Upstream::status` does not tell a half-open breaker
                // from a closed one: both take (some) traffic, `up`.
                let state = match target.state {
                    "unhealthy" => TargetState::Unhealthy,
                    "ejected" => TargetState::Ejected,
                    "circuit-open" => TargetState::Open,
                    _ => TargetState::Healthy,
                };
                visit(upstream, &target.addr, state);
            }
        }
    }
}
