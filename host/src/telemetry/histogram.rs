//! A duration histogram a request can record into without a lock.
//!
//! prometheus-client's own `Histogram` takes a mutex on every observation,
//! which two workers finishing requests on the same route would contend
//! on. This one is a fixed array of atomic bucket counters and an atomic
//! sum in nanoseconds: an observation is a short search over the bounds
//! and two relaxed atomic adds. The count is the buckets' total, so a
//! scrape never sees a count that disagrees with its buckets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Whole requests and upstream tries: 0.5 ms to 10 s.
pub(crate) const REQUEST_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Plugin calls, which take microseconds when all is well: 10 µs to 1 s.
pub(crate) const PLUGIN_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// About three days: one absurd observation cannot wrap the sum, which
/// holds 584 years of them.
const MAX_OBSERVATION_NS: u64 = 1 << 48;

/// A handle; clones share the same counts.
#[derive(Clone, Debug)]
pub(crate) struct Histogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, ascending, as exported.
    bounds: &'static [f64],
    /// The same bounds in nanoseconds, compared with observations.
    bounds_ns: Box<[u64]>,
    /// One per bound, and a last one for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        let bounds_ns = bounds.iter().map(|b| (b * 1e9) as u64).collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Inner { bounds, bounds_ns, counts, sum_ns: AtomicU64::new(0) }))
    }

    pub(crate) fn requests() -> Self {
        Self::new(REQUEST_BUCKETS)
    }

    pub(crate) fn plugin_calls() -> Self {
        Self::new(PLUGIN_BUCKETS)
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).min(MAX_OBSERVATION_NS);
        // `le` buckets: the first bound at or above the value.
        let bucket = self.0.bounds_ns.partition_point(|&bound| bound < ns);
        if let Some(count) = self.0.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    #[cfg(test)]
    fn count(&self) -> u64 {
        self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let buckets: Vec<(f64, u64)> =
            self.0.bounds.iter().copied().chain([f64::INFINITY]).zip(counts.iter().copied()).collect();
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(1000)); // exactly on a bound: that bucket
        h.observe(Duration::from_micros(1001));
        h.observe(Duration::from_secs(5)); // past every bound: +Inf
        h.observe(Duration::MAX); // capped instead of wrapping the sum
        let counts: Vec<u64> = h.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [1, 1, 2]);
        assert_eq!(h.count(), 4);
        let sum_ns = h.0.sum_ns.load(Ordering::Relaxed);
        assert_eq!(sum_ns, 1_000_000 + 1_001_000 + 5_000_000_000 + MAX_OBSERVATION_NS);
    }
}
