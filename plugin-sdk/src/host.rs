//! What the gateway offers a plugin: logging, clocks, shared state,
//! outbound HTTP and metrics.
//!
//! The API is the same on wasm (where it calls the host) and natively (where
//! it calls the mock host of [`crate::testing`]), so plugin code needs no
//! `cfg` and its unit tests exercise the real calls.

#[cfg(target_arch = "wasm32")]
use crate::guest::imports as imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::imports as imp;

/// Lines go into the gateway's structured logs, already tagged with the
/// plugin, route and request id: there is no need to repeat them.
pub mod log {
    use super::imp;
    use crate::LogLevel;

    pub fn log(level: LogLevel, message: impl AsRef<str>) {
        imp::log(level, message.as_ref());
    }

    pub fn trace(message: impl AsRef<str>) {
        log(LogLevel::Trace, message);
    }

    pub fn debug(message: impl AsRef<str>) {
        log(LogLevel::Debug, message);
    }

    pub fn info(message: impl AsRef<str>) {
        log(LogLevel::Info, message);
    }

    pub fn warn(message: impl AsRef<str>) {
        log(LogLevel::Warn, message);
    }

    pub fn error(message: impl AsRef<str>) {
        log(LogLevel::Error, message);
    }
}

/// Time comes from the host because plugins get no WASI clocks, and so that
/// tests can set it.
pub mod clock {
    use super::imp;

    /// Wall clock, milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        imp::now_ms()
    }

    /// For measuring durations: unaffected by wall-clock adjustments.
    pub fn monotonic_ns() -> u64 {
        imp::monotonic_ns()
    }
}

/// State shared by every instance of the plugin in the gateway (and, with
/// `[state] backend = "redis"`, by every gateway on the same Redis):
/// instances are pooled and short-lived, so anything kept in a plugin's own
/// memory is per instance and lost at random.
///
/// Keys are namespaced per plugin by the host. An unreachable Redis is
/// answered by the gateway's `[state] on_unavailable` policy (answers from
/// the replica's memory, fail-open answers, or a failed call: 503), so the
/// errors a plugin sees are calls the host or the backend refused (a key
/// too long, an impossible limit); what to do then is the plugin's call.
pub mod state {
    use super::imp;

    pub use crate::records::Decision;

    /// Takes `cost` events from the bucket `key` allowing `limit` events per
    /// `window_ms` with bursts of up to `burst`. Atomic per key across all
    /// instances, so plugins never write compare-and-swap loops.
    pub fn take(key: &str, limit: u64, window_ms: u64, burst: u64, cost: u64) -> Result<Decision, String> {
        imp::take(key, limit, window_ms, burst, cost)
    }

    /// Adds `delta` to a counter and returns the new value; the counter
    /// expires `ttl_ms` after its first increment (fixed windows, quotas).
    pub fn increment(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        imp::increment(key, delta, ttl_ms)
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        imp::get(key)
    }

    /// Stores a value, expiring after `ttl_ms` when given.
    pub fn set(key: &str, value: impl AsRef<[u8]>, ttl_ms: Option<u64>) -> Result<(), String> {
        imp::set(key, value.as_ref(), ttl_ms)
    }

    pub fn delete(key: &str) -> Result<(), String> {
        imp::delete(key)
    }
}

/// Outbound HTTP to the upstreams named in the gateway config.
///
/// Calls are made in batches ([`fetch_all`](crate::host::http::fetch_all)) rather than one by one, so an
/// aggregating plugin waits for the slowest call, not for the sum of them.
pub mod http {
    use super::imp;

    pub use crate::records::{FetchError, OutboundRequest, OutboundResponse};

    /// Sends all requests concurrently; results come back in the same order
    /// once every call has finished or timed out.
    pub fn fetch_all(requests: &[OutboundRequest]) -> Vec<Result<OutboundResponse, FetchError>> {
        imp::fetch_all(requests)
    }

    /// A batch of one.
    pub fn fetch(request: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        fetch_all(std::slice::from_ref(&request))
            .pop()
            .unwrap_or_else(|| Err(FetchError::Unavailable("the host returned no result".into())))
    }
}

/// Recorded by the gateway per plugin; not exported yet (an exporter is
/// planned).
pub mod metrics {
    use super::imp;

    pub fn counter_add(name: &str, value: u64) {
        imp::counter_add(name, value);
    }

    pub fn histogram_observe(name: &str, value: f64) {
        imp::histogram_observe(name, value);
    }
}
