//! What the host offers plugins besides the request itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::pipeline::bounds::Bounds;
use crate::state::StateStore;
use crate::upstream::Upstreams;

/// Shared by every plugin instance of one snapshot. The state store and
/// metrics are shared across snapshots too, so counters survive reloads.
pub struct HostServices {
    pub state: Arc<StateStore>,
    pub upstreams: Arc<Upstreams>,
    pub metrics: Arc<PluginMetrics>,
    pub started: Instant,
    /// The snapshot's server limits, which plugins' writes are held to.
    pub bounds: Bounds,
}

/// Metrics plugins define through the `metrics` import.
#[derive(Default)]
pub struct PluginMetrics {
    counters: Mutex<HashMap<(Arc<str>, String), u64>>,
    histograms: Mutex<HashMap<(Arc<str>, String), Summary>>,
}

/// Count and sum of observations; enough for rates and means.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
}

impl PluginMetrics {
    pub fn counter_add(&self, plugin: &Arc<str>, name: &str, value: u64) {
        *self.counters.lock().unwrap().entry((plugin.clone(), name.to_owned())).or_default() += value;
    }

    pub fn histogram_observe(&self, plugin: &Arc<str>, name: &str, value: f64) {
        let mut map = self.histograms.lock().unwrap();
        let s = map.entry((plugin.clone(), name.to_owned())).or_default();
        s.count += 1;
        s.sum += value;
    }

    pub fn counter(&self, plugin: &str, name: &str) -> Option<u64> {
        self.counters.lock().unwrap().iter().find(|((p, n), _)| &**p == plugin && n == name).map(|(_, v)| *v)
    }

    pub fn histogram(&self, plugin: &str, name: &str) -> Option<Summary> {
        self.histograms.lock().unwrap().iter().find(|((p, n), _)| &**p == plugin && n == name).map(|(_, v)| *v)
    }
}
