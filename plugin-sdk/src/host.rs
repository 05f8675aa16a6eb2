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

/// State shared by every instance of the plugin (and, with Redis, every
/// gateway): instances are pooled and short-lived, so anything kept in a
/// plugin's own memory is per instance and lost at random.
///
/// Keys are namespaced per plugin by the host. An unreachable Redis is
/// answered by the gateway's `[state] on_unavailable` policy (answers from
/// the replica's memory, fail-open answers, or a failed call: 503), so the
/// errors a plugin sees are calls the host or the backend refused (a key
/// too long, an impossible limit); what to do then is the plugin's call.
pub mod state {
    use super::imp;

    /// Outcome of one rate-limit [`take`]; see [`crate::gcra`] for the math.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Decision {
        pub allowed: bool,
        /// The limit that was applied (events per window), for
        /// `x-ratelimit-limit`.
        pub limit: u64,
        /// Events still allowed right now, for `x-ratelimit-remaining`.
        pub remaining: u64,
        /// Milliseconds until the limit is fully replenished, for
        /// `x-ratelimit-reset`.
        pub reset_ms: u64,
        /// When refused: milliseconds until `cost` events would be allowed,
        /// for `retry-after`. Zero when allowed.
        pub retry_after_ms: u64,
    }

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
    use crate::{BodyError, Headers};

    /// One call to make. Built with [`OutboundRequest::get`] and friends.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OutboundRequest {
        /// Name of an upstream from the gateway config: plugins cannot reach
        /// arbitrary hosts, and the upstream's load balancing applies.
        pub upstream: String,
        pub method: String,
        /// Path and query, e.g. `/users/42?fields=name`.
        pub path: String,
        pub headers: Headers,
        pub body: Option<Vec<u8>>,
        /// The upstream's own timeout applies when `None`.
        pub timeout_ms: Option<u32>,
    }

    impl OutboundRequest {
        pub fn new(method: &str, upstream: &str, path: &str) -> Self {
            Self {
                upstream: upstream.to_owned(),
                method: method.to_owned(),
                path: path.to_owned(),
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            }
        }

        pub fn get(upstream: &str, path: &str) -> Self {
            Self::new("GET", upstream, path)
        }

        pub fn post(upstream: &str, path: &str) -> Self {
            Self::new("POST", upstream, path)
        }

        /// Appends a header.
        pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }

        pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = Some(body.into());
            self
        }

        pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
            self.timeout_ms = Some(timeout_ms);
            self
        }
    }

    /// A complete upstream answer: any status, including 5xx, is a response
    /// and not a [`FetchError`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OutboundResponse {
        pub status: u16,
        pub headers: Headers,
        pub body: Vec<u8>,
    }

    impl OutboundResponse {
        /// Handy for scripting fetches in tests.
        pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
            Self { status, headers: Vec::new(), body: body.into() }
        }

        /// First value of a header (case-insensitive), decoded lossily.
        pub fn header(&self, name: &str) -> Option<String> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        }

        /// The body decoded lossily, for text answers and error messages.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, BodyError> {
            Ok(serde_json::from_slice(&self.body)?)
        }
    }

    /// Why a call produced no response. The `Display` text (`timeout`,
    /// `unavailable: …`, `invalid: …`) is meant to be shown as is.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum FetchError {
        /// The call did not finish within its timeout.
        #[error("timeout")]
        Timeout,
        /// No connection could be made, or it broke before a response.
        #[error("unavailable: {0}")]
        Unavailable(String),
        /// Refused before sending: unknown upstream, bad method, header or
        /// path. A bug in the plugin or its config, not a transient failure.
        #[error("invalid: {0}")]
        Invalid(String),
    }

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

/// Exported with the gateway's own metrics under `wasmgate_plugin_*`.
pub mod metrics {
    use super::imp;

    pub fn counter_add(name: &str, value: u64) {
        imp::counter_add(name, value);
    }

    pub fn histogram_observe(name: &str, value: f64) {
        imp::histogram_observe(name, value);
    }
}
