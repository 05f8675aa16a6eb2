//! `GET /metrics` as Prometheus reads it: parsed by a real text-format
//! parser, then looked up by metric name and exact label set.

use prometheus_parse::{Sample, Value};

/// A parsed scrape.
pub struct Scrape {
    pub text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `text`; panics with the text if a parser refuses it.
    pub fn parse(text: &str) -> Self {
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"));
        Self { text: text.to_owned(), samples: parsed.samples }
    }

    /// The sample of `metric` with exactly these labels: a counter's or a
    /// gauge's value, a histogram's count; `None` when there is none.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let sample = self.find(metric, labels)?;
        Some(match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().find(|b| b.less_than == f64::INFINITY)?.count,
            Value::Summary(_) => return None,
        })
    }

    /// A histogram's cumulative buckets (upper bound, count), `+Inf` last;
    /// empty when there is no such histogram.
    pub fn buckets(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        self.find(metric, labels)
            .and_then(|s| match &s.value {
                Value::Histogram(b) => Some(b.iter().map(|b| (b.less_than, b.count)).collect()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn find(&self, metric: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples.iter().find(|s| {
            s.metric == metric
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// As [`Self::value`], 0 when there is no such sample (a counter that
    /// never counted has none).
    pub fn count(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(metric, labels).unwrap_or(0.0)
    }

    /// Every sample of `metric`, as (labels, value) with labels sorted.
    pub fn samples(&self, metric: &str) -> Vec<(Vec<(String, String)>, f64)> {
        let mut out = Vec::new();
        for s in self.samples.iter().filter(|s| s.metric == metric) {
            let mut labels: Vec<(String, String)> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.sort();
            let value = match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(b) => b.iter().find(|b| b.less_than == f64::INFINITY).map_or(0.0, |b| b.count),
                Value::Summary(_) => continue,
            };
            out.push((labels, value));
        }
        out
    }
}
