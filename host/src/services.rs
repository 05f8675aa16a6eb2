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

/// Metrics plugins define through the `metrics` import.
#[derive(Default)]
pub(crate) struct PluginMetrics {
    counters: Mutex<HashMap<(Arc<str>, String), u64>>,
    histograms: Mutex<HashMap<(Arc<str>, String), Summary>>,
}

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
    pub(crate) fn counter_add(&self, plugin: &Arc<str>, name: &str, value: u64) -> bool {
        let mut map = self.counters.lock().unwrap();
        match series(&mut map, plugin, name) {
            Some(count) => {
                *count = count.saturating_add(value);
                true
            }
            None => false,
        }
    }

    pub(crate) fn histogram_observe(&self, plugin: &Arc<str>, name: &str, value: f64) -> bool {
        let mut map = self.histograms.lock().unwrap();
        match series(&mut map, plugin, name) {
            Some(s) => {
                s.count = s.count.saturating_add(1);
                s.sum += value;
                true
            }
            None => false,
        }
    }

    /// A counter's value. Recorded only until the exporter is built, so
    /// read by tests alone.
    #[cfg(test)]
    fn counter(&self, plugin: &str, name: &str) -> Option<u64> {
        self.counters.lock().unwrap().iter().find(|((p, n), _)| &**p == plugin && n == name).map(|(_, v)| *v)
    }
}

/// The series of `plugin` and `name`, made if there is room for it.
fn series<'m, T: Default>(
    map: &'m mut HashMap<(Arc<str>, String), T>,
    plugin: &Arc<str>,
    name: &str,
) -> Option<&'m mut T> {
    if name.len() > MAX_METRIC_NAME_BYTES {
        return None;
    }
    let key = (plugin.clone(), name.to_owned());
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
        let plugin: Arc<str> = "p".into();
        for i in 0..MAX_SERIES {
            assert!(metrics.counter_add(&plugin, &format!("c{i}"), 1));
        }
        assert!(!metrics.counter_add(&plugin, "one-more", 1), "no room for a new series");
        assert!(metrics.counter_add(&plugin, "c0", u64::MAX), "an existing one still counts");
        assert_eq!(metrics.counter("p", "c0"), Some(u64::MAX), "and saturates");
        assert!(!metrics.histogram_observe(&plugin, &"h".repeat(MAX_METRIC_NAME_BYTES + 1), 1.0));
        assert!(metrics.histogram_observe(&plugin, &"h".repeat(MAX_METRIC_NAME_BYTES), 1.0));
    }
}
