//! `metrics`: counters and histograms a plugin records, by its name.

use crate::message::bounds;
use crate::runtime::bindings::metrics;
use crate::runtime::instance::InstanceState;

impl metrics::Host for InstanceState {
    fn counter_add(&mut self, name: String, value: u64) -> wasmtime::Result<()> {
        let by = (&self.identity.plugin, &self.identity.route);
        if !self.services.metrics.counter_add(&mut self.series, by, &name, value) {
            self.metric_dropped(&name);
        }
        Ok(())
    }

    fn histogram_observe(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        let by = (&self.identity.plugin, &self.identity.route);
        if !self.services.metrics.histogram_observe(&mut self.series, by, &name, value) {
            self.metric_dropped(&name);
        }
        Ok(())
    }
}

impl InstanceState {
    fn metric_dropped(&self, name: &str) {
        tracing::debug!(
            plugin = %self.identity.plugin,
            metric = %bounds::shown(name),
            "metric dropped: its name is too long or there are too many series"
        );
    }
}
