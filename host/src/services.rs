//! What the host offers plugins besides the request itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// (plugin and route) and name; `GET /metrics` exports them. A series is
/// made under a lock once; an instance keeps its handle ([`SeriesHandles`])
/// and records into it with an atomic add after that, so workers recording
/// the same series never wait on each other.
#[derive(Default)]
pub(crate) struct PluginMetrics {
    counters: Mutex<HashMap<SeriesKey, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<SeriesKey, Arc<SummaryCell>>>,
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

/// A histogram series: its count, and its sum as `f64` bits.
#[derive(Debug, Default)]
pub(crate) struct SummaryCell {
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl SummaryCell {
    fn observe(&self, value: f64) {
        let _ = self.count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(1)));
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
    }

    fn get(&self) -> Summary {
        Summary {
            count: self.count.load(Ordering::Relaxed),
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        }
    }
}

fn add_saturating(counter: &AtomicU64, value: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(value)));
}

/// Series (a plugin and a metric name) kept of each kind, and the longest
/// name: a plugin that names metrics per request (a user id in the name)
/// must not grow the host's memory without end. Past either, the value is
/// dropped.
pub(crate) const MAX_SERIES: usize = 1024;
pub(crate) const MAX_METRIC_NAME_BYTES: usize = 128;

impl PluginMetrics {
    /// Adds to a counter; false when the value was dropped (see
    /// [`MAX_SERIES`]). `handles`: the recording instance's own.
    pub(crate) fn counter_add(&self, handles: &mut SeriesHandles, by: PluginUse<'_>, name: &str, value: u64) -> bool {
        let found = match handles.counters.get(name) {
            Some(counter) => Some(counter.clone()),
            None => {
                let made = series(&mut self.counters.lock().unwrap(), by, name, Arc::default);
                if let Some(counter) = &made {
                    handles.counters.insert(name.to_owned(), counter.clone());
                }
                made
            }
        };
        found.map(|counter| add_saturating(&counter, value)).is_some()
    }

    pub(crate) fn histogram_observe(
        &self,
        handles: &mut SeriesHandles,
        by: PluginUse<'_>,
        name: &str,
        value: f64,
    ) -> bool {
        let found = match handles.histograms.get(name) {
            Some(cell) => Some(cell.clone()),
            None => {
                let made = series(&mut self.histograms.lock().unwrap(), by, name, Arc::default);
                if let Some(cell) = &made {
                    handles.histograms.insert(name.to_owned(), cell.clone());
                }
                made
            }
        };
        found.map(|cell| cell.observe(value)).is_some()
    }

    /// A counter's value, summed over routes.
    #[cfg(test)]
    fn counter(&self, plugin: &str, name: &str) -> Option<u64> {
        let counters = self.counters.lock().unwrap();
        let found = counters.iter().find(|((p, _, n), _)| &**p == plugin && n == name);
        found.map(|(_, v)| v.load(Ordering::Relaxed))
    }

    /// Every series, for an export: counters, then histograms. The values
    /// are copied out first, so a scrape holds each lock only that long.
    pub(crate) fn visit(
        &self,
        mut counter: impl FnMut(&SeriesKey, u64),
        mut histogram: impl FnMut(&SeriesKey, Summary),
    ) {
        let counters: Vec<_> =
            self.counters.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed))).collect();
        for (key, value) in &counters {
            counter(key, *value);
        }
        let histograms: Vec<_> = self.histograms.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.get())).collect();
        for (key, value) in &histograms {
            histogram(key, *value);
        }
    }
}

/// The series one plugin instance has recorded into, by name: its plugin
/// use is fixed, so a name is the whole key. Bounded like the series.
#[derive(Default)]
pub(crate) struct SeriesHandles {
    counters: HashMap<String, Arc<AtomicU64>>,
    histograms: HashMap<String, Arc<SummaryCell>>,
}

/// The series of `plugin` and `name`, made if there is room for it.
fn series<T: Clone>(
    map: &mut HashMap<SeriesKey, T>,
    by: PluginUse<'_>,
    name: &str,
    make: impl FnOnce() -> T,
) -> Option<T> {
    if name.len() > MAX_METRIC_NAME_BYTES {
        return None;
    }
    let key = (by.0.clone(), by.1.clone(), name.to_owned());
    if map.len() >= MAX_SERIES && !map.contains_key(&key) {
        return None;
    }
    Some(map.entry(key).or_insert_with(make).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_bounded_in_number_and_name_length() {
        let metrics = PluginMetrics::default();
        let (p, r): (Arc<str>, Arc<str>) = ("p".into(), "r".into());
        let plugin = (&p, &r);
        let (mut one, mut other) = (SeriesHandles::default(), SeriesHandles::default());
        for i in 0..MAX_SERIES {
            assert!(metrics.counter_add(&mut one, plugin, &format!("c{i}"), 1));
        }
        assert!(!metrics.counter_add(&mut other, plugin, "one-more", 1), "no room for a new series");
        assert!(metrics.counter_add(&mut other, plugin, "c0", 1), "another instance finds the series");
        assert_eq!(metrics.counter("p", "c0"), Some(2), "both instances' adds land in it");
        assert!(metrics.counter_add(&mut one, plugin, "c0", u64::MAX), "an existing one still counts");
        assert_eq!(metrics.counter("p", "c0"), Some(u64::MAX), "and saturates");
        assert!(!metrics.histogram_observe(&mut one, plugin, &"h".repeat(MAX_METRIC_NAME_BYTES + 1), 1.0));
        assert!(metrics.histogram_observe(&mut one, plugin, &"h".repeat(MAX_METRIC_NAME_BYTES), 1.5));
        assert!(metrics.histogram_observe(&mut other, plugin, &"h".repeat(MAX_METRIC_NAME_BYTES), 2.0));
        let mut seen = Vec::new();
        metrics.visit(|_, _| {}, |_, summary| seen.push(summary));
        assert_eq!(seen, [Summary { count: 2, sum: 3.5 }]);
    }
}
