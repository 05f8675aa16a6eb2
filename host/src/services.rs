//! What the host offers plugins besides the request itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::message::bounds::Bounds;
use crate::state::StateStore;
use crate::upstream::Upstreams;

/// Shared by every plugin instance of one snapshot. The state store and
/// metrics are shared across snapshots too, so counters survive reloads.
pub(crate) struct HostServices {
    pub state: Arc<StateStore>,
    pub upstreams: Arc<Upstreams>,
    pub metrics: Arc<PluginMetrics>,
    pub started: Instant,
    /// The snapshot's server limits, which plugins' writes are held to.
    pub bounds: Bounds,
}

/// Metrics plugins define through the `metrics` import, by plugin use
/// (plugin and route) and name; `GET /metrics` exports them.
#[derive(Default)]
pub(crate) struct PluginMetrics {
    counters: Mutex<HashMap<SeriesKey, u64>>,
    histograms: Mutex<HashMap<SeriesKey, Summary>>,
}

/// Plugin, route, metric name.
pub(crate) type SeriesKey = (Arc<str>, Arc<str>, String);

/// Which plugin use records: plugin and route.
pub(crate) type PluginUse<'a> = (&'a Arc<str>, &'a Arc<str>);

/// Count and sum of observations; enough for rates and means.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub count: u64,
    pub sum: f64,
}

/// Series (a plugin and a metric name) kept of each kind, and the longest
/// name: a plugin that names metrics per request (a user id in the name)
/// must not grow the host's memory without end. Past either, the value is
/// dropped.
pub(crate) const MAX_SERIES: usize = 1024;
pub(crate) const MAX_METRIC_NAME_BYTES: usize = 128;

impl PluginMetrics {
    /// Adds to a counter; false when the value was dropped (see
    /// [`MAX_SERIES`]).
    pub(crate) fn counter_add(&self, by: PluginUse<'_>, name: &str, value: u64) -> bool {
        let mut map = self.counters.lock().unwrap();
        match series(&mut map, by, name) {
            Some(count) => {
                *count = count.saturating_add(value);
                true
            }
            None => false,
        }
    }

    pub(crate) fn histogram_observe(&self, by: PluginUse<'_>, name: &str, value: f64) -> bool {
        let mut map = self.histograms.lock().unwrap();
        match series(&mut map, by, name) {
            Some(s) => {
                s.count = s.count.saturating_add(1);
                s.sum += value;
                true
            }
            None => false,
        }
    }

    /// A counter's value, summed over routes.
    #[cfg(test)]
    fn counter(&self, plugin: &str, name: &str) -> Option<u64> {
        self.counters.lock().unwrap().iter().find(|((p, _, n), _)| &**p == plugin && n == name).map(|(_, v)| *v)
    }

    /// Every series, for an export: counters, then histograms. The values
    /// are copied out first, so a scrape holds each lock only that long
    /// and plugins recording meanwhile wait no longer.
    pub(crate) fn visit(
        &self,
        mut counter: impl FnMut(&SeriesKey, u64),
        mut histogram: impl FnMut(&SeriesKey, Summary),
    ) {
        let counters: Vec<_> = self.counters.lock().unwrap().iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (key, value) in &counters {
            counter(key, *value);
        }
        let histograms: Vec<_> = self.histograms.lock().unwrap().iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (key, value) in &histograms {
            histogram(key, *value);
        }
    }
}

/// The series of `plugin` and `name`, made if there is room for it.
fn series<'m, T: Default>(map: &'m mut HashMap<SeriesKey, T>, by: PluginUse<'_>, name: &str) -> Option<&'m mut T> {
    if name.len() > MAX_METRIC_NAME_BYTES {
        return None;
    }
    let key = (by.0.clone(), by.1.clone(), name.to_owned());
    if map.len() >= MAX_SERIES && !map.contains_key(&key) {
        return None;
    }
    Some(map.entry(key).or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_bounded_in_number_and_name_length() {
        let metrics = PluginMetrics::default();
        let (p, r): (Arc<str>, Arc<str>) = ("p".into(), "r".into());
        let plugin = (&p, &r);
        for i in 0..MAX_SERIES {
            assert!(metrics.counter_add(plugin, &format!("c{i}"), 1));
        }
        assert!(!metrics.counter_add(plugin, "one-more", 1), "no room for a new series");
        assert!(metrics.counter_add(plugin, "c0", u64::MAX), "an existing one still counts");
        assert_eq!(metrics.counter("p", "c0"), Some(u64::MAX), "and saturates");
        assert!(!metrics.histogram_observe(plugin, &"h".repeat(MAX_METRIC_NAME_BYTES + 1), 1.0));
        assert!(metrics.histogram_observe(plugin, &"h".repeat(MAX_METRIC_NAME_BYTES), 1.0));
    }
}
