//! What operators see of the traffic: Prometheus metrics, the access log
//! and W3C trace context. Each part is built to be called from the request
//! path at a fixed, small cost (no lock shared between workers, no waiting
//! on I/O); the access-log writer runs off it, behind a bounded queue that
//! drops and counts when full.
//!
//! - [`metrics`]: the registry and the per-route / per-plugin-use /
//!   per-target handles a request records into
//! - [`histogram`]: the lock-free duration histogram those handles use
//! - [`scrape`]: figures read at scrape time (instances, target states,
//!   plugin-defined metrics)
//! - [`process`]: `process_*` figures from `/proc`
//! - [`record`]: one request as telemetry sees it, filled in by the
//!   handler's phases: what the access log writes and the span exporter
//!   reads
//! - [`sinks`]: where a finished record goes, once its response is sent
//! - [`access_log`]: the bounded queue and the writer thread
//! - [`spans`]: a finished record as OTLP spans, and whether it is sampled
//! - [`otlp`]: the span queue and the OTLP/HTTP exporter task
//! - [`trace_context`]: W3C `traceparent` / `tracestate`

pub(crate) mod access_log;
pub(crate) mod histogram;
pub(crate) mod metrics;
pub(crate) mod otlp;
pub(crate) mod process;
pub(crate) mod record;
pub(crate) mod scrape;
pub(crate) mod sinks;
pub(crate) mod spans;
pub(crate) mod trace_context;

pub(crate) use access_log::AccessLog;
pub(crate) use metrics::{
    Metrics, Phase, PluginResult, PluginUseMetrics, RouteMetrics, TargetMetrics, UpstreamMetrics, UpstreamOutcome,
};
pub(crate) use record::{PluginCall, RequestRecord, Tries, Try};
pub(crate) use sinks::Sinks;
pub(crate) use trace_context::TraceContext;
