//! From the file shape to the checked runtime shape: names resolved,
//! addresses parsed, defaults applied, and every problem collected with its
//! location instead of stopping at the first.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use toml::Spanned;

use super::checker::{Checker, EmbeddedFiles};
use super::error::{ConfigError, Location, SourceMap};
use super::plugins::{PluginDefaults, PluginSpec, unknown_plugin};
use super::schema::{
    AccessLogFile, ConfigFile, DnsFile, PluginBreakerFile, RouteFile, ServerFile, StateFile, TracingFile,
};
use super::upstream::check_upstream;
use crate::normalize::PathParams;
use crate::pipeline::FailPolicy;
use crate::router::{HostPattern, PathPattern, RouteMatcher, Router};
use crate::runtime::{BreakerSpec, EngineLimits, PluginLimits};
use crate::server::{ServerSettings, TlsSettings};
use crate::state::{MemoryBudget, OnUnavailable, RedisSettings, StateSettings};
use crate::upstream::{DnsSettings, UpstreamSpec};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY: u64 = 1 << 20;
const DEFAULT_PLUGIN_TIMEOUT_MS: u64 = 50;
/// Twice aggregate's default `deadline_ms`: a fan-out plugin left at its
/// defaults keeps working.
const DEFAULT_PLUGIN_WALL_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_CONFIGURE_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_RELOAD_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_PLUGIN_MEMORY_MB: u64 = 32;
const DEFAULT_INSTANCES_PER_PLUGIN: u32 = 64;
const MAX_STATE_POOL: u64 = 64;
/// More threads than this is a typo, not a machine.
const MAX_WORKERS: u64 = 1024;
/// A token short enough to guess is no protection; a longer one is a
/// pasted file.
const ADMIN_TOKEN_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// `[tracing]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// The collector's traces URL (`http://…`).
    pub endpoint: http::Uri,
    /// Share of started traces exported, 0 to 1.
    pub sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
}

/// `[access_log]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    pub enabled: bool,
    /// `None`: stdout.
    pub path: Option<PathBuf>,
    /// `None`: as the process logs (JSON with `--log-format json`).
    pub format: Option<AccessLogFormat>,
}

/// How an access-log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object a line.
    Json,
    /// Apache's combined format, then the gateway's own fields.
    Combined,
}

/// A config that passed every check that needs no plugin code.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from: reloads read it again.
    pub source: PathBuf,
    /// Plain-text traffic listeners (`listen`).
    pub listen: Vec<SocketAddr>,
    /// The rest of `[server]`.
    pub server: Arc<ServerSettings>,
    /// The admin API's listener (`[admin] listen`), off when absent.
    pub admin_listen: Option<SocketAddr>,
    /// `[admin] token`: the bearer token admin endpoints require.
    pub admin_token: Option<Arc<str>>,
    /// `[server] workers`: `None` leaves the choice to the runtime (one
    /// per core, or `TOKIO_WORKER_THREADS`).
    pub workers: Option<usize>,
    /// `[access_log]`.
    pub access_log: AccessLogSettings,
    /// `[tracing]`: span export, off when absent.
    pub tracing: Option<TracingSettings>,
    /// `[runtime]`: what the plugin engine is sized for (restart to change).
    pub engine: EngineLimits,
    /// How long a reload may take before it is abandoned.
    pub reload_timeout: Duration,
    /// Where compiled plugins are cached between runs.
    pub cache_dir: Option<PathBuf>,
    /// `[state]`: the backend of the plugins' `state` import.
    pub state: StateSettings,
    /// `[state] max_memory_bytes` and `counter_memory_bytes`.
    pub state_memory: MemoryBudget,
    /// `[dns]`: where upstream targets' names are resolved.
    pub dns: DnsSettings,
    /// `[upstreams.*]`, in file order.
    pub upstreams: Vec<UpstreamSpec>,
    /// Where each upstream's targets were written, in order, by upstream
    /// name: what a name that does not resolve is blamed on.
    pub target_locations: BTreeMap<String, Vec<Location>>,
    /// `plugins_dir`, resolved: watched for plugin files coming and going.
    pub plugins_dir: Option<PathBuf>,
    /// `[plugins.*]` and the plugins found in `plugins_dir`, by name.
    pub plugins: Vec<PluginSpec>,
    /// `[[routes]]`, in file order (which is also their matching priority).
    pub routes: Vec<RouteSpec>,
    /// Files embedded into plugin configs with `{ "$file" = ... }`.
    pub embedded_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: String,
    pub matcher: RouteMatcher,
    pub upstream: Option<String>,
    pub timeout: Option<Duration>,
    pub max_body_bytes: usize,
    pub pipeline: Vec<PluginUseSpec>,
    pub at: Location,
}

impl RouteSpec {
    /// Equal but for where it was written. Plugins are compared by name
    /// (`plugins` and `other_plugins` are each route's config's): their
    /// indices shift whenever a plugin is added before them.
    pub fn same_behaviour(&self, plugins: &[PluginSpec], other: &Self, other_plugins: &[PluginSpec]) -> bool {
        let key = |r: &Self, plugins: &[PluginSpec]| {
            (
                r.name.clone(),
                r.matcher.clone(),
                r.upstream.clone(),
                r.timeout,
                r.max_body_bytes,
                r.pipeline
                    .iter()
                    .map(|u| (plugins.get(u.plugin).map(|p| p.name.clone()), u.config_json.clone(), u.on_error))
                    .collect::<Vec<_>>(),
            )
        };
        key(self, plugins) == key(other, other_plugins)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginUseSpec {
    /// Index into `Config::plugins`.
    pub plugin: usize,
    /// The plugin's default config with the route's merged over it, as JSON.
    pub config_json: String,
    pub on_error: FailPolicy,
    pub at: Location,
}

impl Checker<'_> {
    /// `[*.breaker]`'s keys over `inherited`: whether it is on, and its
    /// settings (kept even when off, for a plugin that turns it on).
    pub(super) fn breaker(
        &mut self,
        file: &Option<PluginBreakerFile>,
        key: &str,
        inherited: (bool, BreakerSpec),
    ) -> (bool, BreakerSpec) {
        let Some(f) = file else {
            return inherited;
        };
        let (enabled, spec) = inherited;
        let spec = BreakerSpec {
            failure_threshold: self.positive(
                &f.failure_threshold,
                &format!("{key}.failure_threshold"),
                spec.failure_threshold,
            ),
            window: self.ms(&f.window_ms, &format!("{key}.window_ms"), spec.window),
            open: self.ms(&f.open_ms, &format!("{key}.open_ms"), spec.open),
        };
        (f.enabled.unwrap_or(enabled), spec)
    }

    /// The wall clock includes the CPU time: a wall limit below the CPU
    /// budget would make the budget a lie. Blames the key that was set.
    pub(super) fn wall_covers_cpu(
        &mut self,
        limits: &PluginLimits,
        wall: &Option<Spanned<u64>>,
        cpu: &Option<Spanned<u64>>,
        prefix: &str,
    ) {
        if limits.wall_timeout >= limits.timeout {
            return;
        }
        let (blame, field) = match (wall, cpu) {
            (Some(wall), _) => (wall, "wall_timeout_ms"),
            (None, Some(cpu)) => (cpu, "timeout_ms"),
            (None, None) => return,
        };
        self.error::<()>(
            blame.span(),
            format!("{prefix}.{field}"),
            format!(
                "wall_timeout_ms ({}) must be at least timeout_ms ({}): wall-clock time includes the CPU time",
                limits.wall_timeout.as_millis(),
                limits.timeout.as_millis()
            ),
        );
    }
}

pub(super) fn check(file: ConfigFile, map: &SourceMap) -> Result<Config, Vec<ConfigError>> {
    let base = map.file().parent().unwrap_or(Path::new(".")).to_owned();
    let mut c = Checker { map, errors: Vec::new(), files: EmbeddedFiles { base: base.clone(), read: Vec::new() } };

    let listen = match &file.server.listen {
        None => vec![DEFAULT_LISTEN.parse().expect("default listen address parses")],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                a.get_ref().parse::<SocketAddr>().ok().or_else(|| {
                    c.error(
                        a.span(),
                        format!("server.listen[{i}]"),
                        format!("{:?} is not an IP:port address", a.get_ref()),
                    )
                })
            })
            .collect(),
    };
    let server = check_server(&mut c, &file.server, &base);
    let admin_listen = file.admin.listen.as_ref().and_then(|a| {
        a.get_ref()
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| c.error(a.span(), "admin.listen", format!("{:?} is not an IP:port address", a.get_ref())))
    });
    let admin_token = file.admin.token.as_ref().and_then(|t| check_token(&mut c, t));
    let workers = file.server.workers.as_ref().and_then(|w| match *w.get_ref() {
        n @ 1..=MAX_WORKERS => Some(n as usize),
        n => c.error(w.span(), "server.workers", format!("must be 1 to {MAX_WORKERS}, got {n}")),
    });
    let access_log = check_access_log(&mut c, &file.access_log, &base);
    let tracing = file.tracing.as_ref().and_then(|t| check_tracing(&mut c, t));
    let max_body = file.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY) as usize;

    let rt = &file.runtime;
    let default_limits = PluginLimits {
        timeout: Duration::from_millis(c.positive(&rt.timeout_ms, "runtime.timeout_ms", DEFAULT_PLUGIN_TIMEOUT_MS)),
        wall_timeout: c.ms(
            &rt.wall_timeout_ms,
            "runtime.wall_timeout_ms",
            Duration::from_millis(DEFAULT_PLUGIN_WALL_TIMEOUT_MS),
        ),
        configure_timeout: c.ms(
            &rt.configure_timeout_ms,
            "runtime.configure_timeout_ms",
            Duration::from_millis(DEFAULT_CONFIGURE_TIMEOUT_MS),
        ),
        memory_bytes: (c.positive(&rt.memory_mb, "runtime.memory_mb", DEFAULT_PLUGIN_MEMORY_MB) << 20) as usize,
        max_instances: c.positive(
            &rt.max_instances_per_plugin,
            "runtime.max_instances_per_plugin",
            DEFAULT_INSTANCES_PER_PLUGIN,
        ),
    };
    c.wall_covers_cpu(&default_limits, &rt.wall_timeout_ms, &rt.timeout_ms, "runtime");
    let default_breaker = c.breaker(&rt.breaker, "runtime.breaker", (true, BreakerSpec::default()));
    let mut engine = EngineLimits::default();
    engine.max_instances = c.positive(&rt.max_instances, "runtime.max_instances", engine.max_instances);
    engine.instance_idle = c.ms(&rt.instance_idle_ms, "runtime.instance_idle_ms", engine.instance_idle);
    let reload_timeout =
        c.ms(&rt.reload_timeout_ms, "runtime.reload_timeout_ms", Duration::from_millis(DEFAULT_RELOAD_TIMEOUT_MS));
    let cache_dir = rt.cache_dir.as_ref().map(|d| base.join(d.get_ref()));
    let state = check_state(&mut c, &file.state).unwrap_or_default();
    let state_memory = check_state_memory(&mut c, &file.state);

    let dns = check_dns(&mut c, &file.dns, &base);
    let (upstreams, target_locations): (Vec<UpstreamSpec>, BTreeMap<String, Vec<Location>>) = file
        .upstreams
        .iter()
        .filter_map(|(name, up)| check_upstream(&mut c, name, up))
        .map(|(spec, written)| {
            let name = spec.name.clone();
            (spec, (name, written))
        })
        .unzip();

    let defaults =
        PluginDefaults { limits: default_limits, breaker: default_breaker, max_memory_bytes: engine.max_memory_bytes };
    let (plugins_dir, plugins) = c.plugins(file.plugins_dir.as_ref(), &file.plugins, &base, &defaults);

    let mut routes = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in file.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        if let Some(prev) = names.insert(r.get_ref().name.get_ref(), i) {
            let name = &r.get_ref().name;
            c.error::<()>(
                name.span(),
                format!("{key}.name"),
                format!("route name {:?} is already used by routes[{prev}]", name.get_ref()),
            );
        }
        if let Some(route) = check_route(&mut c, r, &key, &upstreams, (&plugins, plugins_dir.as_deref()), max_body) {
            routes.push(route);
        }
    }

    if c.errors.is_empty()
        && let Err(conflicts) = Router::build(routes.iter().map(|r| r.matcher.clone()).collect())
    {
        for conflict in conflicts {
            let route = &routes[conflict.route];
            c.errors.push(ConfigError { at: route.at.clone(), message: conflict.to_string() });
        }
    }

    if c.errors.is_empty() {
        Ok(Config {
            source: map.file().to_path_buf(),
            listen,
            server: Arc::new(server),
            admin_listen,
            admin_token,
            workers,
            access_log,
            tracing,
            engine,
            reload_timeout,
            cache_dir,
            state,
            state_memory,
            dns,
            upstreams,
            target_locations,
            plugins_dir,
            plugins,
            routes,
            embedded_files: c.files.read,
        })
    } else {
        Err(c.errors)
    }
}

/// `[admin] token`: it travels in a header, so printable ASCII without
/// spaces, and long enough not to be guessed.
fn check_token(c: &mut Checker<'_>, token: &Spanned<String>) -> Option<Arc<str>> {
    let text = token.get_ref();
    if !ADMIN_TOKEN_BYTES.contains(&text.len()) {
        let (min, max) = (ADMIN_TOKEN_BYTES.start(), ADMIN_TOKEN_BYTES.end());
        return c.error(token.span(), "admin.token", format!("must be {min} to {max} characters, got {}", text.len()));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return c.error(token.span(), "admin.token", "only printable ASCII without spaces");
    }
    Some(text.as_str().into())
}

/// `[access_log]`.
fn check_access_log(c: &mut Checker<'_>, file: &AccessLogFile, base: &Path) -> AccessLogSettings {
    let format = file.format.as_ref().and_then(|f| match f.get_ref().as_str() {
        "json" => Some(AccessLogFormat::Json),
        "combined" => Some(AccessLogFormat::Combined),
        other => c.error(f.span(), "access_log.format", format!("{other:?}: expected \"json\" or \"combined\"")),
    });
    let path = file.path.as_ref().and_then(|p| match p.get_ref().as_str() {
        "" => c.error(p.span(), "access_log.path", "empty: leave it out to log to stdout"),
        path => Some(base.join(path)),
    });
    AccessLogSettings { enabled: file.enabled.unwrap_or(true), path, format }
}

/// `[tracing]`.
fn check_tracing(c: &mut Checker<'_>, spanned: &Spanned<TracingFile>) -> Option<TracingSettings> {
    let file = spanned.get_ref();
    let endpoint = match file.otlp_endpoint.get_ref().parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => Some(uri),
        _ => c.error(
            file.otlp_endpoint.span(),
            "tracing.otlp_endpoint",
            format!(
                "{:?}: expected an http:// URL such as http://127.0.0.1:4318/v1/traces",
                file.otlp_endpoint.get_ref()
            ),
        ),
    };
    let sample_ratio = match &file.sample_ratio {
        None => Some(1.0),
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => Some(*r.get_ref()),
        Some(r) => c.error(r.span(), "tracing.sample_ratio", format!("{}: expected 0 to 1", r.get_ref())),
    };
    let service_name = match &file.service_name {
        None => Some("wasmgate".to_owned()),
        Some(n) if !n.get_ref().is_empty() && n.get_ref().len() <= 256 => Some(n.get_ref().clone()),
        Some(n) => c.error(n.span(), "tracing.service_name", "1 to 256 bytes"),
    };
    Some(TracingSettings { endpoint: endpoint?, sample_ratio: sample_ratio?, service_name: service_name? })
}

fn check_route(
    c: &mut Checker<'_>,
    spanned: &Spanned<RouteFile>,
    key: &str,
    upstreams: &[UpstreamSpec],
    (plugins, plugins_dir): (&[PluginSpec], Option<&Path>),
    max_body: usize,
) -> Option<RouteSpec> {
    let r = spanned.get_ref();
    let before = c.errors.len();
    let path = match (&r.path, &r.prefix) {
        (Some(p), None) => check_path(c, p, &format!("{key}.path")).map(PathPattern::Exact),
        (None, Some(p)) => check_path(c, p, &format!("{key}.prefix")).map(PathPattern::Prefix),
        (Some(p), Some(_)) => c.error(p.span(), format!("{key}.path"), "give either path or prefix, not both"),
        (None, None) => c.error(r.name.span(), key, "a route needs a path or a prefix"),
    };
    let methods: Vec<Method> = r
        .methods
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let upper = m.get_ref().to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes()).ok().or_else(|| {
                c.error(m.span(), format!("{key}.methods[{i}]"), format!("{:?} is not an HTTP method", m.get_ref()))
            })
        })
        .collect();
    let hosts = r.hosts.iter().map(|h| HostPattern::parse(h.get_ref())).collect();

    let upstream = match &r.upstream {
        Some(u) if upstreams.iter().any(|s| s.name == *u.get_ref()) => Some(u.get_ref().clone()),
        Some(u) => {
            let known: Vec<&str> = upstreams.iter().map(|s| s.name.as_str()).collect();
            c.error(
                u.span(),
                format!("{key}.upstream"),
                format!("unknown upstream {:?} (defined: {})", u.get_ref(), or_none(&known)),
            )
        }
        None if r.pipeline.is_empty() => {
            c.error(r.name.span(), key, "a route without an upstream needs a plugin in its pipeline to answer")
        }
        None => None,
    };

    let mut pipeline = Vec::new();
    for (j, u) in r.pipeline.iter().enumerate() {
        let ukey = format!("{key}.pipeline[{j}]");
        let use_ = u.get_ref();
        let Some(plugin) = plugins.iter().position(|p| p.name == *use_.plugin.get_ref()) else {
            let message = unknown_plugin(use_.plugin.get_ref(), plugins, plugins_dir);
            c.error::<()>(use_.plugin.span(), format!("{ukey}.plugin"), message);
            continue;
        };
        let mut merged = plugins[plugin].config.clone();
        if let Some(overrides) = &use_.config {
            merge(&mut merged, overrides.clone());
        }
        let mut value = toml::Value::Table(merged);
        if let Err(message) = c.files.embed(&mut value) {
            c.error::<()>(u.span(), format!("{ukey}.config"), message);
            continue;
        }
        let config_json = serde_json::to_string(&value).expect("a TOML table serialises to JSON");
        pipeline.push(PluginUseSpec { plugin, config_json, on_error: use_.on_error, at: c.map.locate(u.span(), ukey) });
    }

    if c.errors.len() > before {
        return None;
    }
    Some(RouteSpec {
        name: r.name.get_ref().clone(),
        matcher: RouteMatcher { path: path?, methods, hosts },
        upstream,
        timeout: r.timeout_ms.map(Duration::from_millis),
        max_body_bytes: r.max_body_bytes.map(|b| b as usize).unwrap_or(max_body),
        pipeline,
        at: c.map.locate(r.name.span(), format!("{key}.name")),
    })
}

/// `[server]` but `listen` and `max_body_bytes`: TLS (certificates read
/// now, so `wasmgate check` and reloads report bad ones), limits, timeouts.
fn check_server(c: &mut Checker<'_>, f: &ServerFile, base: &Path) -> ServerSettings {
    let d = ServerSettings::default();
    let tls_listen: Vec<SocketAddr> = f
        .tls_listen
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, a)| {
            a.get_ref().parse::<SocketAddr>().ok().or_else(|| {
                c.error(
                    a.span(),
                    format!("server.tls_listen[{i}]"),
                    format!("{:?} is not an IP:port address", a.get_ref()),
                )
            })
        })
        .collect();
    let tls = f.tls.as_ref().and_then(|t| {
        let (cert, key) = (base.join(t.get_ref().cert.get_ref()), base.join(t.get_ref().key.get_ref()));
        match crate::server::tls::load(&cert, &key) {
            Ok(config) => Some(TlsSettings { cert, key, config }),
            Err(message) => c.error(t.span(), "server.tls", message),
        }
    });
    match (&f.tls_listen, &f.tls) {
        (Some(addrs), None) if !addrs.is_empty() => {
            c.error::<()>(addrs[0].span(), "server.tls_listen", "TLS listeners need [server.tls] with cert and key");
        }
        (None, Some(t)) => {
            c.error::<()>(t.span(), "server.tls", "no TLS listener uses it: add server.tls_listen");
        }
        _ => {}
    }
    let ms = |v: u64| std::time::Duration::from_millis(v);
    ServerSettings {
        tls_listen,
        tls,
        h2c: f.h2c.unwrap_or(d.h2c),
        max_request_body_bytes: c.positive(
            &f.max_request_body_bytes,
            "server.max_request_body_bytes",
            d.max_request_body_bytes,
        ),
        max_uri_bytes: c.positive(&f.max_uri_bytes, "server.max_uri_bytes", d.max_uri_bytes as u64) as usize,
        max_header_bytes: c.positive(&f.max_header_bytes, "server.max_header_bytes", d.max_header_bytes as u64)
            as usize,
        max_headers: c.positive(&f.max_headers, "server.max_headers", d.max_headers as u64) as usize,
        max_connections: c.positive(&f.max_connections, "server.max_connections", d.max_connections as u64) as usize,
        request_timeout: match f.request_timeout_ms {
            Some(0) => None,
            Some(v) => Some(ms(v)),
            None => d.request_timeout,
        },
        header_read_timeout: ms(c.positive(
            &f.header_read_timeout_ms,
            "server.header_read_timeout_ms",
            d.header_read_timeout.as_millis() as u64,
        )),
        idle_timeout: ms(c.positive(&f.idle_timeout_ms, "server.idle_timeout_ms", d.idle_timeout.as_millis() as u64)),
        drain_timeout: f.drain_timeout_ms.map_or(d.drain_timeout, ms),
        path_params: match &f.path_params {
            None => d.path_params,
            Some(p) => PathParams::from_name(p.get_ref())
                .or_else(|| {
                    let names = PathParams::NAMES.map(|(n, _)| format!("{n:?}")).join(", ");
                    c.error(p.span(), "server.path_params", format!("{:?} is not one of {names}", p.get_ref()))
                })
                .unwrap_or(d.path_params),
        },
    }
}

/// `[state]`: a Redis backend needs a usable URL, and only it takes one.
/// `None` for an unknown backend.
/// `[dns]`: nameservers as `ip` or `ip:port` (port 53 by default), the
/// hosts file relative to the config's folder.
fn check_dns(c: &mut Checker<'_>, f: &DnsFile, base: &Path) -> DnsSettings {
    let nameservers = f.nameservers.iter().flatten().enumerate().filter_map(|(i, ns)| {
        let text = ns.get_ref();
        let parsed =
            text.parse::<SocketAddr>().ok().or_else(|| Some(SocketAddr::new(text.parse::<IpAddr>().ok()?, 53)));
        parsed.or_else(|| {
            let message = format!("{text:?} is not a nameserver address (ip or ip:port)");
            c.error(ns.span(), format!("dns.nameservers[{i}]"), message)
        })
    });
    DnsSettings {
        nameservers: nameservers.collect(),
        hosts_file: f.hosts_file.as_ref().map(|h| base.join(h.get_ref())),
    }
}

fn check_state(c: &mut Checker<'_>, f: &StateFile) -> Option<StateSettings> {
    let redis = match &f.backend {
        None => false,
        Some(b) if b.get_ref() == "local" => false,
        Some(b) if b.get_ref() == "redis" => true,
        Some(b) => {
            c.error(b.span(), "state.backend", format!("{:?} is not one of \"local\", \"redis\"", b.get_ref()))?
        }
    };
    let on_unavailable = f.on_unavailable.as_ref().map_or(OnUnavailable::default(), |p| {
        OnUnavailable::from_name(p.get_ref()).unwrap_or_else(|| {
            let names = OnUnavailable::NAMES.map(|(n, _)| format!("{n:?}")).join(", ");
            c.error::<()>(p.span(), "state.on_unavailable", format!("{:?} is not one of {names}", p.get_ref()));
            OnUnavailable::default()
        })
    });
    let settings = RedisSettings {
        url: f.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default(),
        key_prefix: f.key_prefix.clone().unwrap_or_else(|| "wasmgate:".into()),
        pool_size: c.positive(&f.pool_size, "state.pool_size", 1) as usize,
        timeout: c.ms(&f.timeout_ms, "state.timeout_ms", Duration::from_millis(100)),
        on_unavailable,
    };
    match (&f.url, redis) {
        (Some(u), true) => {
            if let Err(e) = RedisSettings::check_url(u.get_ref()) {
                c.error::<()>(u.span(), "state.url", e);
            }
        }
        (None, true) => {
            let span = f.backend.as_ref().map(|b| b.span()).unwrap_or_default();
            c.error::<()>(span, "state.backend", "backend = \"redis\" needs a url");
        }
        (Some(u), false) => {
            c.error::<()>(u.span(), "state.url", "only backend = \"redis\" takes a url");
        }
        (None, false) => {}
    }
    if let Some(p) = f.pool_size.as_ref().filter(|p| *p.get_ref() > MAX_STATE_POOL) {
        c.error::<()>(p.span(), "state.pool_size", format!("at most {MAX_STATE_POOL}"));
    }
    Some(if redis { StateSettings::Redis(settings) } else { StateSettings::Local })
}

/// `[state] max_memory_bytes` and `counter_memory_bytes`: a total of at
/// least [`MemoryBudget::MIN_TOTAL`], and each class at least
/// [`MemoryBudget::MIN_CLASS`] of it.
fn check_state_memory(c: &mut Checker<'_>, f: &StateFile) -> MemoryBudget {
    let default = MemoryBudget::default();
    let total = match &f.max_memory_bytes {
        Some(t) if *t.get_ref() < MemoryBudget::MIN_TOTAL as u64 => {
            let min = MemoryBudget::MIN_TOTAL;
            c.error::<()>(t.span(), "state.max_memory_bytes", format!("at least {min} (1 MiB), got {}", t.get_ref()));
            return default;
        }
        Some(t) => usize::try_from(*t.get_ref()).unwrap_or(usize::MAX),
        None => default.total(),
    };
    let counters = f.counter_memory_bytes.as_ref().map(|n| (n, usize::try_from(*n.get_ref()).unwrap_or(usize::MAX)));
    let budget = MemoryBudget::split(total, counters.map(|(_, n)| n));
    if let Some((n, _)) = counters
        && (budget.counters < MemoryBudget::MIN_CLASS || budget.values < MemoryBudget::MIN_CLASS)
    {
        let min = MemoryBudget::MIN_CLASS;
        let message = format!(
            "must leave at least {min} bytes to each of counters and values of max_memory_bytes = {total}, got {}",
            n.get_ref()
        );
        c.error::<()>(n.span(), "state.counter_memory_bytes", message);
        return default;
    }
    budget
}

/// `[upstreams.<name>]`; `None` only without any target (every other
/// mistake is reported and the rest still checked).
fn check_path(c: &mut Checker<'_>, p: &Spanned<String>, key: &str) -> Option<String> {
    let s = p.get_ref();
    if !s.starts_with('/') {
        return c.error(p.span(), key, format!("{s:?} must start with /"));
    }
    if s.contains("{*") {
        return c.error(p.span(), key, format!("{s:?}: use prefix = ... instead of catch-all segments"));
    }
    Some(s.clone())
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// Tables merge key by key, recursively; anything else is replaced.
fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (k, v) in overrides {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
