//! The gateway's Prometheus registry, and the handles the request path
//! records into.
//!
//! Every family is registered once, in [`Metrics::new`]. What a request
//! records into is resolved when a snapshot is built
//! ([`Metrics::for_config`]): a [`RouteMetrics`] per route holding its
//! duration histogram, its [`PluginUseMetrics`] per pipeline stage and the
//! [`UpstreamMetrics`] of its upstream. Label sets are built there, or the
//! first time a (method, status) or (phase, result) combination happens,
//! and the handle is kept in a `OnceLock`: after that a request only
//! indexes arrays and adds to atomics. No label hashing, no allocation,
//! and no lock another worker could hold (prometheus-client's
//! `Family::get_or_create` takes a `RwLock`, so it is never called per
//! request once a series exists). Series are kept across reloads: a
//! route that keeps its name keeps counting.
//!
//! What is cheaper to read than to track (plugin instances, target states,
//! plugin-defined metrics, the process) is read at scrape time by the
//! collectors of [`super::scrape`] and [`super::process`].

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::Histogram;
use super::scrape::{PluginDefined, ScrapeSlot, ScrapeSource, Scraped};
use crate::server::OpenConnections;
use crate::services::PluginMetrics;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of requests no route matched: a fixed value, so an
/// attacker's paths never become label values.
pub(crate) const NO_ROUTE: &str = "(none)";

/// Method label values: the standard methods, anything else is `other`.
const METHODS: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"];

/// Status codes `http` can hold: 100 to 999.
const STATUS_SLOTS: usize = 900;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    method: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResolutionLabels {
    upstream: Arc<str>,
    name: Arc<str>,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamOutcomeLabels {
    upstream: Arc<str>,
    target: Arc<str>,
    outcome: Outcome,
}

/// A status code or an error kind, as one label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Outcome(UpstreamOutcome);

impl prometheus_client::encoding::EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        match self.0 {
            UpstreamOutcome::Status(code) => write!(encoder, "{code}"),
            other => encoder.write_str(other.error_kind()),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: Arc<str>,
    route: Arc<str>,
    phase: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginPhaseLabels {
    plugin: Arc<str>,
    route: Arc<str>,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;

/// The registry and its families. One per process (it lives in the
/// gateway and outlives snapshots).
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<RouteLabels>,
    upstream_requests: Family<UpstreamOutcomeLabels, Counter>,
    upstream_duration: Histograms<UpstreamLabels>,
    upstream_retries: Family<UpstreamLabels, Counter>,
    resolutions: Family<ResolutionLabels, Counter>,
    plugin_calls: Family<PluginCallLabels, Counter>,
    plugin_duration: Histograms<PluginPhaseLabels>,
    reloads: Family<ResultLabels, Counter>,
    generation: Gauge,
    last_reload: Gauge<f64, AtomicU64>,
    access_log_dropped: Counter,
    spans_dropped: Counter,
    scrape: Arc<ScrapeSlot>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    /// A registry of its own, as tests and the benchmarks use.
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl Metrics {
    /// `plugin_defined`: what plugins record through the `metrics` import,
    /// exported at each scrape.
    pub(crate) fn new(plugin_defined: Arc<PluginMetrics>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register("wasmgate_requests", "Requests answered, by route, method and status code", requests.clone());
        let request_duration = Histograms::new_with_constructor(Histogram::requests as fn() -> Histogram);
        registry.register(
            "wasmgate_request_duration_seconds",
            "Time from the request head to the response head, by route",
            request_duration.clone(),
        );
        let upstream_requests = Family::default();
        registry.register(
            "wasmgate_upstream_requests",
            "Tries sent to upstream targets, by outcome: the status code, or connect, timeout, reset, other",
            upstream_requests.clone(),
        );
        let upstream_duration = Histograms::new_with_constructor(Histogram::requests as fn() -> Histogram);
        registry.register(
            "wasmgate_upstream_request_duration_seconds",
            "Time of one try on an upstream target, to its response head or failure",
            upstream_duration.clone(),
        );
        let upstream_retries = Family::default();
        registry.register("wasmgate_upstream_retries", "Tries after the first, by upstream", upstream_retries.clone());
        let resolutions = Family::default();
        registry.register(
            "wasmgate_dns_resolutions",
            "Resolutions of upstream targets' DNS names, by upstream, name and result (ok, not-found, error)",
            resolutions.clone(),
        );
        let plugin_calls = Family::default();
        registry.register(
            "wasmgate_plugin_calls",
            "Plugin calls by plugin use (plugin, route), phase and result",
            plugin_calls.clone(),
        );
        let plugin_duration = Histograms::new_with_constructor(Histogram::plugin_calls as fn() -> Histogram);
        registry.register(
            "wasmgate_plugin_call_duration_seconds",
            "Wall-clock time of plugin calls, waiting for an instance included",
            plugin_duration.clone(),
        );
        let reloads: Family<ResultLabels, Counter> = Family::default();
        registry.register("wasmgate_reloads", "Config reloads by result (success, failure)", reloads.clone());
        for result in ["success", "failure"] {
            reloads.get_or_create_owned(&ResultLabels { result });
        }
        let generation = Gauge::default();
        registry.register(
            "wasmgate_config_generation",
            "Snapshots served so far: 1 after start, one more per successful reload",
            generation.clone(),
        );
        let last_reload = Gauge::default();
        registry.register(
            "wasmgate_last_reload_timestamp_seconds",
            "When the serving config was loaded (start or last successful reload), Unix time",
            last_reload.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "wasmgate_access_log_dropped",
            "Access-log lines dropped because the writer's queue was full",
            access_log_dropped.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "wasmgate_spans_dropped",
            "Trace spans dropped because the exporter's queue was full",
            spans_dropped.clone(),
        );
        let scrape = Arc::new(ScrapeSlot::default());
        registry.register_collector(Box::new(Scraped(scrape.clone())));
        registry.register_collector(Box::new(PluginDefined(plugin_defined)));
        registry.register_collector(Box::new(super::process::Process));
        Self {
            registry,
            requests,
            request_duration,
            upstream_requests,
            upstream_duration,
            upstream_retries,
            resolutions,
            plugin_calls,
            plugin_duration,
            reloads,
            generation,
            last_reload,
            access_log_dropped,
            spans_dropped,
            scrape,
        }
    }

    /// The registry in the Prometheus text format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; the collectors' own errors are
        // those of the writer.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// A route's handles: resolve once, when a snapshot is built.
    pub(crate) fn route(&self, name: Arc<str>) -> RouteMetrics {
        RouteMetrics {
            duration: self.request_duration.get_or_create_owned(&RouteLabels { route: name.clone() }),
            requests: std::array::from_fn(|_| Lazy::new(&self.requests, STATUS_SLOTS)),
            name,
        }
    }

    /// The handles of requests no route matched.
    pub(crate) fn no_route(&self) -> RouteMetrics {
        self.route(NO_ROUTE.into())
    }

    /// One plugin use's handles (a plugin on a route).
    pub(crate) fn plugin_use(&self, plugin: Arc<str>, route: Arc<str>) -> PluginUseMetrics {
        PluginUseMetrics {
            plugin,
            route,
            calls: Lazy::new(&self.plugin_calls, Phase::ALL.len() * PluginResult::ALL.len()),
            durations: Lazy::new(&self.plugin_duration, Phase::ALL.len()),
        }
    }

    /// An upstream's handles; its targets' come from it.
    pub(crate) fn upstream(&self, name: &str) -> UpstreamMetrics {
        let name: Arc<str> = name.into();
        let labels = UpstreamLabels { upstream: name.clone() };
        UpstreamMetrics {
            duration: self.upstream_duration.get_or_create_owned(&labels),
            retries: self.upstream_retries.get_or_create_owned(&labels),
            requests: self.upstream_requests.clone(),
            resolutions: self.resolutions.clone(),
            name,
        }
    }

    /// The outcome of a reload attempt, and the generation now serving.
    pub(crate) fn record_reload(&self, success: bool, generation: u64) {
        let result = if success { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        if success {
            self.record_loaded(generation);
        }
    }

    /// A config is serving: at start, and after each successful reload.
    pub(crate) fn record_loaded(&self, generation: u64) {
        self.generation.set(i64::try_from(generation).unwrap_or(i64::MAX));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        self.last_reload.set(now.as_secs_f64());
    }

    /// What the scrape-time collectors read (plugin instances, target
    /// states): the serving snapshot, set whenever one is swapped in.
    pub(crate) fn set_scrape_source(&self, source: Arc<dyn ScrapeSource>) {
        self.scrape.set(source);
    }

    /// Traffic listeners whose open connections
    /// `wasmgate_open_connections` reports.
    pub(crate) fn count_connections(&self, connections: OpenConnections) {
        self.scrape.add_listeners(connections);
    }

    /// The counter the access-log writer adds a dropped line to.
    pub(crate) fn access_log_dropped(&self) -> Counter {
        self.access_log_dropped.clone()
    }

    /// The counter the span exporter adds a dropped span to.
    pub(crate) fn spans_dropped(&self) -> Counter {
        self.spans_dropped.clone()
    }
}

/// Counters (or histograms) of one family made the first time their index
/// is used, then reached without a lock: an index into a table that is
/// itself allocated on first use, so a route only pays for the methods
/// it sees.
struct Lazy<S, M> {
    family: Family<S, M, fn() -> M>,
    len: usize,
    cells: OnceLock<Box<[OnceLock<M>]>>,
}

impl<S: Clone + std::hash::Hash + Eq, M: Clone> Lazy<S, M> {
    fn new(family: &Family<S, M, fn() -> M>, len: usize) -> Self {
        Self { family: family.clone(), len, cells: OnceLock::new() }
    }

    /// The metric at `index`; `labels` runs only the first time.
    fn get(&self, index: usize, labels: impl FnOnce() -> S) -> Option<&M> {
        let cells = self.cells.get_or_init(|| (0..self.len).map(|_| OnceLock::new()).collect());
        let cell = cells.get(index)?;
        Some(cell.get_or_init(|| self.family.get_or_create_owned(&labels())))
    }
}

/// One route's handles (or the `(none)` route's).
pub(crate) struct RouteMetrics {
    name: Arc<str>,
    requests: [Lazy<RequestLabels, Counter>; METHODS.len()],
    duration: Histogram,
}

impl RouteMetrics {
    /// One answered request: its method, the status sent, and the time
    /// from its head to the response head.
    pub(crate) fn record(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let m = method_index(method);
        let code = status.as_u16();
        if let Some(counter) = self.requests[m].get(usize::from(code).wrapping_sub(100), || RequestLabels {
            route: self.name.clone(),
            method: METHODS[m],
            code,
        }) {
            counter.inc();
        }
        self.duration.observe(elapsed);
    }
}

fn method_index(method: &Method) -> usize {
    METHODS[..METHODS.len() - 1].iter().position(|m| *m == method.as_str()).unwrap_or(METHODS.len() - 1)
}

/// Which export of the plugin was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Response,
}

impl Phase {
    const ALL: [Phase; 2] = [Phase::Request, Phase::Response];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
        }
    }
}

/// How a plugin call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PluginResult {
    /// The request goes on to the next stage.
    Continue,
    /// The plugin answered the request itself.
    Respond,
    Trap,
    /// Its CPU budget (`timeout_ms`) ran out.
    Timeout,
    /// Its wall-clock budget (`wall_timeout_ms`) ran out.
    WallTimeout,
    MemoryLimit,
    /// No free instance within the queue timeout.
    Overloaded,
    /// Its breaker is open: answered by `on_error` without running.
    Quarantined,
    /// The host refused one of the plugin's writes.
    Write,
    /// It failed and `on_error = "fail-open"` let the request pass.
    FailOpen,
    /// The shared state backend was unreachable.
    StateUnavailable,
    /// Any other failure.
    Error,
}

impl PluginResult {
    const ALL: [PluginResult; 12] = [
        PluginResult::Continue,
        PluginResult::Respond,
        PluginResult::Trap,
        PluginResult::Timeout,
        PluginResult::WallTimeout,
        PluginResult::MemoryLimit,
        PluginResult::Overloaded,
        PluginResult::Quarantined,
        PluginResult::Write,
        PluginResult::FailOpen,
        PluginResult::StateUnavailable,
        PluginResult::Error,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PluginResult::Continue => "continue",
            PluginResult::Respond => "respond",
            PluginResult::Trap => "trap",
            PluginResult::Timeout => "timeout",
            PluginResult::WallTimeout => "wall_timeout",
            PluginResult::MemoryLimit => "memory_limit",
            PluginResult::Overloaded => "overloaded",
            PluginResult::Quarantined => "quarantined",
            PluginResult::Write => "write",
            PluginResult::FailOpen => "fail_open",
            PluginResult::StateUnavailable => "state_unavailable",
            PluginResult::Error => "error",
        }
    }
}

/// One plugin on one route.
pub(crate) struct PluginUseMetrics {
    plugin: Arc<str>,
    route: Arc<str>,
    calls: Lazy<PluginCallLabels, Counter>,
    durations: Lazy<PluginPhaseLabels, Histogram>,
}

impl PluginUseMetrics {
    /// One call: the phase, how it ended, and its wall-clock time.
    pub(crate) fn record(&self, phase: Phase, result: PluginResult, elapsed: Duration) {
        let index = phase as usize * PluginResult::ALL.len() + result as usize;
        let labels = || PluginCallLabels {
            plugin: self.plugin.clone(),
            route: self.route.clone(),
            phase: phase.as_str(),
            result: result.as_str(),
        };
        if let Some(counter) = self.calls.get(index, labels) {
            counter.inc();
        }
        let labels =
            || PluginPhaseLabels { plugin: self.plugin.clone(), route: self.route.clone(), phase: phase.as_str() };
        if let Some(histogram) = self.durations.get(phase as usize, labels) {
            histogram.observe(elapsed);
        }
    }
}

/// How one try on an upstream target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UpstreamOutcome {
    /// A response head with this status.
    Status(u16),
    Connect,
    Timeout,
    /// The connection was lost before the response head.
    Reset,
    Other,
}

const ERROR_KINDS: [UpstreamOutcome; 4] =
    [UpstreamOutcome::Connect, UpstreamOutcome::Timeout, UpstreamOutcome::Reset, UpstreamOutcome::Other];

impl UpstreamOutcome {
    pub(crate) fn error_kind(self) -> &'static str {
        match self {
            UpstreamOutcome::Status(_) => "status",
            UpstreamOutcome::Connect => "connect",
            UpstreamOutcome::Timeout => "timeout",
            UpstreamOutcome::Reset => "reset",
            UpstreamOutcome::Other => "other",
        }
    }

    fn slot(self) -> usize {
        match self {
            UpstreamOutcome::Status(code) => usize::from(code).wrapping_sub(100),
            kind => STATUS_SLOTS + ERROR_KINDS.iter().position(|k| *k == kind).unwrap_or(ERROR_KINDS.len() - 1),
        }
    }
}

/// An upstream's handles. Targets come and go with DNS answers, so their
/// handles are made here, when they are.
pub(crate) struct UpstreamMetrics {
    name: Arc<str>,
    duration: Histogram,
    retries: Counter,
    requests: Family<UpstreamOutcomeLabels, Counter>,
    resolutions: Family<ResolutionLabels, Counter>,
}

impl UpstreamMetrics {
    /// The handles of the target at `addr` (`host:port`).
    pub(crate) fn target(&self, addr: &str) -> TargetMetrics {
        TargetMetrics {
            upstream: self.name.clone(),
            target: addr.into(),
            outcomes: Lazy::new(&self.requests, STATUS_SLOTS + ERROR_KINDS.len()),
        }
    }

    /// One resolution of a target's DNS name (rare: no handle is kept).
    pub(crate) fn record_resolution(&self, name: &str, result: &'static str) {
        let labels = ResolutionLabels { upstream: self.name.clone(), name: name.into(), result };
        self.resolutions.get_or_create(&labels).inc();
    }

    /// One try on `target`: how it ended and how long it took.
    pub(crate) fn record_try(&self, target: &TargetMetrics, outcome: UpstreamOutcome, elapsed: Duration) {
        target.record(outcome);
        self.duration.observe(elapsed);
    }

    /// A try after the first.
    pub(crate) fn record_retry(&self) {
        self.retries.inc();
    }
}

pub(crate) struct TargetMetrics {
    upstream: Arc<str>,
    target: Arc<str>,
    outcomes: Lazy<UpstreamOutcomeLabels, Counter>,
}

impl TargetMetrics {
    fn record(&self, outcome: UpstreamOutcome) {
        let labels = || UpstreamOutcomeLabels {
            upstream: self.upstream.clone(),
            target: self.target.clone(),
            outcome: Outcome(outcome),
        };
        // A status outside 100..=999 (which `http` cannot hold) has no slot.
        if let Some(counter) = self.outcomes.get(outcome.slot(), labels) {
            counter.inc();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use wasmgate_testbed::scrape::Scrape;

    use super::*;
    use crate::services::SeriesHandles;

    /// Parses a scrape with a real Prometheus text parser.
    fn parse(text: &str) -> Scrape {
        Scrape::parse(text)
    }

    /// The value of the sample of `metric` with exactly these labels.
    fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        scrape.value(metric, labels)
    }

    fn setup() -> (Metrics, RouteMetrics, RouteMetrics) {
        let metrics = Metrics::default();
        let users = metrics.route("users".into());
        let none = metrics.no_route();
        (metrics, users, none)
    }

    #[test]
    fn requests_count_by_route_method_and_code_with_bounded_labels() {
        let (metrics, users, none) = setup();
        let ms = Duration::from_millis;
        users.record(&Method::GET, StatusCode::OK, ms(3));
        users.record(&Method::GET, StatusCode::OK, ms(30));
        users.record(&Method::from_bytes(b"PROPFIND").unwrap(), StatusCode::METHOD_NOT_ALLOWED, ms(1));
        none.record(&Method::GET, StatusCode::NOT_FOUND, ms(1));
        none.record(&Method::POST, StatusCode::NOT_FOUND, ms(1));

        let s = parse(&metrics.render());
        let requests = |route, method, code| {
            value(&s, "wasmgate_requests_total", &[("route", route), ("method", method), ("code", code)])
        };
        assert_eq!(requests("users", "GET", "200"), Some(2.0));
        assert_eq!(requests("users", "other", "405"), Some(1.0), "an unknown method is `other`");
        assert_eq!(requests("(none)", "GET", "404"), Some(1.0));
        assert_eq!(requests("(none)", "POST", "404"), Some(1.0));
        assert_eq!(value(&s, "wasmgate_request_duration_seconds", &[("route", "users")]), Some(3.0));
        let sum = value(&s, "wasmgate_request_duration_seconds_sum", &[("route", "users")]).unwrap();
        assert!((sum - 0.034).abs() < 1e-9, "{sum}");
        // 1 ms, 3 ms and 30 ms.
        let buckets = s.buckets("wasmgate_request_duration_seconds", &[("route", "users")]);
        let at = |le: f64| buckets.iter().find(|(bound, _)| (bound - le).abs() < 1e-12).unwrap().1;
        assert_eq!((at(0.0025), at(0.005), at(0.025), at(0.05)), (1.0, 2.0, 2.0, 3.0));
    }

    #[test]
    fn plugin_calls_and_upstream_tries_have_their_own_series() {
        let metrics = Metrics::default();
        let auth = metrics.plugin_use("auth".into(), "users".into());
        auth.record(Phase::Request, PluginResult::Continue, Duration::from_micros(20));
        auth.record(Phase::Request, PluginResult::Trap, Duration::from_micros(40));
        auth.record(Phase::Response, PluginResult::FailOpen, Duration::from_micros(40));
        let upstream = metrics.upstream("users");
        upstream.record_try(&upstream.target("127.0.0.1:9102"), UpstreamOutcome::Connect, Duration::from_millis(1));
        upstream.record_retry();
        upstream.record_try(&upstream.target("127.0.0.1:9101"), UpstreamOutcome::Status(503), Duration::from_millis(2));
        upstream.record_resolution("users.internal", "ok");
        upstream.record_resolution("users.internal", "ok");
        upstream.record_resolution("users.internal", "error");

        let s = parse(&metrics.render());
        let calls = |phase, result| {
            value(
                &s,
                "wasmgate_plugin_calls_total",
                &[("plugin", "auth"), ("route", "users"), ("phase", phase), ("result", result)],
            )
        };
        assert_eq!(calls("request", "continue"), Some(1.0));
        assert_eq!(calls("request", "trap"), Some(1.0));
        assert_eq!(calls("response", "fail_open"), Some(1.0));
        assert_eq!(calls("request", "timeout"), None, "no series before the first such call");
        let duration = |phase| {
            value(
                &s,
                "wasmgate_plugin_call_duration_seconds",
                &[("plugin", "auth"), ("route", "users"), ("phase", phase)],
            )
        };
        assert_eq!((duration("request"), duration("response")), (Some(2.0), Some(1.0)));

        let tries = |target, outcome| {
            value(
                &s,
                "wasmgate_upstream_requests_total",
                &[("upstream", "users"), ("target", target), ("outcome", outcome)],
            )
        };
        assert_eq!(tries("127.0.0.1:9102", "connect"), Some(1.0));
        assert_eq!(tries("127.0.0.1:9101", "503"), Some(1.0));
        assert_eq!(value(&s, "wasmgate_upstream_retries_total", &[("upstream", "users")]), Some(1.0));
        assert_eq!(value(&s, "wasmgate_upstream_request_duration_seconds", &[("upstream", "users")]), Some(2.0));
        let resolutions = |result| {
            value(
                &s,
                "wasmgate_dns_resolutions_total",
                &[("upstream", "users"), ("name", "users.internal"), ("result", result)],
            )
        };
        assert_eq!((resolutions("ok"), resolutions("error")), (Some(2.0), Some(1.0)));
    }

    #[test]
    fn series_survive_a_new_snapshot_of_the_same_config() {
        let (metrics, first, _) = setup();
        first.record(&Method::GET, StatusCode::OK, Duration::ZERO);
        let second = metrics.route("users".into());
        second.record(&Method::GET, StatusCode::OK, Duration::ZERO);
        let s = parse(&metrics.render());
        let labels = [("route", "users"), ("method", "GET"), ("code", "200")];
        assert_eq!(value(&s, "wasmgate_requests_total", &labels), Some(2.0));
    }

    #[test]
    fn reloads_generation_and_drops() {
        let metrics = Metrics::default();
        metrics.record_loaded(1);
        metrics.record_reload(false, 1);
        metrics.record_reload(true, 2);
        metrics.access_log_dropped().inc_by(3);

        let s = parse(&metrics.render());
        assert_eq!(value(&s, "wasmgate_reloads_total", &[("result", "success")]), Some(1.0));
        assert_eq!(value(&s, "wasmgate_reloads_total", &[("result", "failure")]), Some(1.0));
        assert_eq!(value(&s, "wasmgate_config_generation", &[]), Some(2.0));
        assert!(value(&s, "wasmgate_last_reload_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9));
        assert_eq!(value(&s, "wasmgate_access_log_dropped_total", &[]), Some(3.0));
    }

    #[test]
    fn plugin_defined_metrics_are_exported_per_plugin_with_safe_names() {
        let defined = Arc::new(PluginMetrics::default());
        let metrics = Metrics::new(defined.clone());
        let (a, b, r): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "r".into());
        let (a, b) = ((&a, &r), (&b, &r));
        defined.counter_add(&mut SeriesHandles::default(), a, "cache.hits", 3);
        defined.counter_add(&mut SeriesHandles::default(), b, "cache.hits", 4);
        defined.counter_add(&mut SeriesHandles::default(), a, "cache-hits", 1); // the same name once reduced: summed
        defined.histogram_observe(&mut SeriesHandles::default(), a, "lookup_seconds", 0.5);
        defined.histogram_observe(&mut SeriesHandles::default(), a, "lookup_seconds", 0.25);
        // Would redeclare the gateway's own families: left out.
        defined.counter_add(&mut SeriesHandles::default(), a, "calls", 1);
        defined.histogram_observe(&mut SeriesHandles::default(), a, "instances", 1.0);
        // The gateway's own family has a series, so it is declared.
        metrics.plugin_use("a".into(), "r".into()).record(Phase::Request, PluginResult::Continue, Duration::ZERO);

        let text = metrics.render();
        let s = parse(&text);
        assert_eq!(value(&s, "wasmgate_plugin_cache_hits_total", &[("plugin", "a"), ("route", "r")]), Some(4.0));
        assert_eq!(value(&s, "wasmgate_plugin_cache_hits_total", &[("plugin", "b"), ("route", "r")]), Some(4.0));
        assert_eq!(value(&s, "wasmgate_plugin_lookup_seconds", &[("plugin", "a"), ("route", "r")]), Some(2.0));
        assert_eq!(value(&s, "wasmgate_plugin_lookup_seconds_sum", &[("plugin", "a"), ("route", "r")]), Some(0.75));
        assert_eq!(value(&s, "wasmgate_plugin_calls_total", &[("plugin", "a"), ("route", "r")]), None);
        let calls = [("plugin", "a"), ("route", "r"), ("phase", "request"), ("result", "continue")];
        assert_eq!(value(&s, "wasmgate_plugin_calls_total", &calls), Some(1.0));
        assert_eq!(text.matches("# TYPE wasmgate_plugin_calls_total ").count(), 1, "{text}");
        assert_eq!(text.matches("# TYPE wasmgate_plugin_instances ").count(), 0, "no snapshot source yet: {text}");
    }

    #[test]
    fn process_metrics_are_exported() {
        let metrics = Metrics::default();
        let s = parse(&metrics.render());
        assert!(value(&s, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));
        assert!(value(&s, "process_cpu_seconds_total", &[]).is_some());
        assert!(value(&s, "process_open_fds", &[]).is_some_and(|v| v >= 3.0));
        assert!(value(&s, "process_start_time_seconds", &[]).is_some_and(|v| v > 1.7e9));
    }
}
