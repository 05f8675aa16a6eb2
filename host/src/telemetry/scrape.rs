//! Figures read when Prometheus scrapes rather than tracked per request:
//! plugin instances idle and busy, upstream target states, and the
//! metrics plugins define through the `metrics` import.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::server::OpenConnections;
use crate::services::{PluginMetrics, Summary};

/// What a target is doing now, as `wasmgate_upstream_target_state`
/// reports it: 1 for the current state, 0 for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetState {
    /// Takes traffic: healthy (or unchecked), not ejected, breaker closed.
    Healthy,
    /// Failed its active health checks.
    Unhealthy,
    /// Ejected by outlier detection.
    Ejected,
    /// Its breaker is open.
    Open,
    /// Its breaker lets probes through.
    HalfOpen,
}

impl TargetState {
    const ALL: [TargetState; 5] =
        [TargetState::Healthy, TargetState::Unhealthy, TargetState::Ejected, TargetState::Open, TargetState::HalfOpen];

    fn as_str(self) -> &'static str {
        match self {
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Ejected => "ejected",
            TargetState::Open => "open",
            TargetState::HalfOpen => "half_open",
        }
    }
}

/// One plugin use's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instances<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) route: &'a str,
    pub(crate) idle: usize,
    pub(crate) busy: usize,
}

/// The serving snapshot as the scrape-time collectors see it.
pub(crate) trait ScrapeSource: Send + Sync {
    fn plugin_instances(&self, visit: &mut dyn FnMut(Instances<'_>));
    /// Each upstream target: upstream name, `host:port`, state.
    fn target_states(&self, visit: &mut dyn FnMut(&str, &str, TargetState));
}

/// What the collectors read: the serving snapshot, and the traffic
/// listeners. Its locks are taken at reloads, at start and at scrapes,
/// never by a request.
#[derive(Default)]
pub(super) struct ScrapeSlot {
    snapshot: RwLock<Option<Arc<dyn ScrapeSource>>>,
    listeners: RwLock<Vec<OpenConnections>>,
}

impl ScrapeSlot {
    pub(super) fn set(&self, source: Arc<dyn ScrapeSource>) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    pub(super) fn add_listeners(&self, connections: OpenConnections) {
        self.listeners.write().unwrap_or_else(|e| e.into_inner()).push(connections);
    }

    fn get(&self) -> Option<Arc<dyn ScrapeSource>> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn connections(&self) -> Vec<(SocketAddr, usize)> {
        let mut open = Vec::new();
        for listeners in self.listeners.read().unwrap_or_else(|e| e.into_inner()).iter() {
            listeners.each(|addr, count| open.push((addr, count)));
        }
        open
    }
}

impl std::fmt::Debug for ScrapeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeSlot")
    }
}

/// `wasmgate_open_connections`, `wasmgate_plugin_instances` and
/// `wasmgate_upstream_target_state`.
#[derive(Debug)]
pub(super) struct Scraped(pub(super) Arc<ScrapeSlot>);

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connections = self.0.connections();
        if !connections.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "wasmgate_open_connections",
                "Client connections open, by listener address",
                None,
                MetricType::Gauge,
            )?;
            for (addr, count) in connections {
                let listener = addr.to_string();
                ConstGauge::new(count as i64).encode(metric.encode_family(&[("listener", listener.as_str())])?)?;
            }
        }
        let Some(source) = self.0.get() else {
            return Ok(());
        };
        let mut instances = Vec::new();
        source.plugin_instances(&mut |i| {
            instances.push(((i.plugin.to_owned(), i.route.to_owned(), "idle"), i.idle));
            instances.push(((i.plugin.to_owned(), i.route.to_owned(), "busy"), i.busy));
        });
        // The same plugin twice on a route: two pools, one series.
        let instances = sum_by_key(instances);
        let mut metric = encoder.encode_descriptor(
            "wasmgate_plugin_instances",
            "Instances of each plugin use (plugin, route), idle or busy with a call",
            None,
            MetricType::Gauge,
        )?;
        for ((plugin, route, state), count) in &instances {
            let labels = [("plugin", plugin.as_str()), ("route", route.as_str()), ("state", state)];
            ConstGauge::new(*count as i64).encode(metric.encode_family(&labels)?)?;
        }

        let mut targets = Vec::new();
        source.target_states(&mut |upstream, target, state| {
            targets.push((upstream.to_owned(), target.to_owned(), state));
        });
        let mut metric = encoder.encode_descriptor(
            "wasmgate_upstream_target_state",
            "Each upstream target's state: 1 for the current one, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for (upstream, target, current) in &targets {
            for state in TargetState::ALL {
                let labels = [("upstream", upstream.as_str()), ("target", target.as_str()), ("state", state.as_str())];
                ConstGauge::new(i64::from(state == *current)).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn sum_by_key<K: Ord>(pairs: Vec<(K, usize)>) -> BTreeMap<K, usize> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        *map.entry(key).or_insert(0) += value;
    }
    map
}

/// Plugin-defined metrics as `wasmgate_plugin_<name>{plugin,route}`: counters as
/// counters, histograms (count and sum only) as histograms with just the
/// `+Inf` bucket. Names are reduced to `[a-zA-Z0-9_]`; names that would
/// collide with the gateway's own `wasmgate_plugin_*` families, or with a
/// family of the other kind, are left out rather than break the scrape.
pub(super) struct PluginDefined(pub(super) Arc<PluginMetrics>);

impl std::fmt::Debug for PluginDefined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginDefined")
    }
}

/// The names of the gateway's own families under `wasmgate_plugin_`, as
/// the text format declares them (a counter's with `_total`).
const RESERVED: [&str; 3] = ["calls_total", "call_duration_seconds", "instances"];

/// A family's series: (plugin, route) → value.
type Series<T> = BTreeMap<(Arc<str>, Arc<str>), T>;

impl Collector for PluginDefined {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counters: BTreeMap<String, Series<u64>> = BTreeMap::new();
        let mut histograms: BTreeMap<String, Series<Summary>> = BTreeMap::new();
        self.0.visit(
            |(plugin, route, name), value| {
                let family = counters.entry(sanitise(name)).or_default();
                let series = family.entry((plugin.clone(), route.clone())).or_default();
                *series = series.saturating_add(value);
            },
            |(plugin, route, name), summary| {
                let family = histograms.entry(sanitise(name)).or_default();
                let series = family.entry((plugin.clone(), route.clone())).or_default();
                series.count = series.count.saturating_add(summary.count);
                series.sum += summary.sum;
            },
        );
        // Every family's declared name: a counter `x` is `x_total`, a
        // histogram `x` is `x` (with samples `x_bucket`, `x_sum`, `x_count`,
        // which no `_total` name can equal).
        let counter_families: Vec<String> = counters.keys().map(|n| format!("{n}_total")).collect();
        for (name, series) in &counters {
            if !RESERVED.contains(&format!("{name}_total").as_str()) {
                defined_family(&mut encoder, name, MetricType::Counter, series, |value, metric| {
                    ConstCounter::new(*value).encode(metric)
                })?;
            }
        }
        for (name, series) in &histograms {
            if !RESERVED.contains(&name.as_str()) && !counter_families.contains(name) {
                defined_family(&mut encoder, name, MetricType::Histogram, series, |summary, mut metric| {
                    let buckets = [(f64::INFINITY, summary.count)];
                    metric.encode_histogram::<NoLabelSet>(summary.sum, summary.count, &buckets, None)
                })?;
            }
        }
        Ok(())
    }
}

/// One plugin-defined family, a series per plugin use.
fn defined_family<T>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    kind: MetricType,
    series: &Series<T>,
    mut encode: impl FnMut(&T, MetricEncoder) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let family = format!("wasmgate_plugin_{name}");
    let mut metric = encoder.encode_descriptor(&family, "Defined by a plugin (metrics import)", None, kind)?;
    for ((plugin, route), value) in series {
        let labels = [("plugin", &**plugin), ("route", &**route)];
        encode(value, metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A metric name as Prometheus allows it after our prefix.
fn sanitise(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}
