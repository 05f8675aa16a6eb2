//! The records that cross the plugin contract in host calls: a rate-limit
//! decision and outbound HTTP. Both backends of `host` speak them (the wasm
//! imports, whose bindings map the WIT records onto these types, and the
//! mock host of `testing`), so they live below both; plugins name them
//! through `host::state` and `host::http`.

use crate::{BodyError, Headers};

/// Outcome of one rate-limit `host::state::take`; see `gcra` for the math.
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
