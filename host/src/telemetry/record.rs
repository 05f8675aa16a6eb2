//! One request as telemetry sees it: made when its head arrives, filled in
//! by the handler's phases (route, plugin calls, upstream tries, the `user`
//! var), finished when the response body is done. The access log writes
//! it; a span exporter would turn the same record into a server span, a
//! span per plugin call and a client span for the upstream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::uri::Authority;
use http::{HeaderValue, Method, Version, header};

use super::metrics::{Phase, PluginResult, UpstreamOutcome};
use super::trace_context::TraceContext;

/// What the tries of one request on its upstream came to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tries {
    /// Tries sent (0: none was, e.g. no target took the request).
    pub attempts: u32,
    /// The last try's target.
    pub target: Option<Authority>,
    /// The last try's response status, when it got one.
    pub status: Option<u16>,
    /// From the first try to the last try's response head or failure.
    pub elapsed: Duration,
    /// Keep every try in `each` (when spans are exported).
    pub keep_each: bool,
    /// Every try, when `keep_each`.
    pub each: Vec<Try>,
}

/// One try on a target.
#[derive(Debug, Clone)]
pub(crate) struct Try {
    pub target: Authority,
    pub started: Instant,
    pub elapsed: Duration,
    pub outcome: UpstreamOutcome,
}

/// One plugin call of a request.
#[derive(Debug, Clone)]
pub(crate) struct PluginCall {
    pub plugin: Arc<str>,
    pub started: Instant,
    pub phase: Phase,
    pub result: PluginResult,
    pub elapsed: Duration,
}

/// Everything the access log (and later a span exporter) says about one
/// request.
#[derive(Debug)]
pub(crate) struct RequestRecord {
    /// When the head arrived: the start of every duration.
    pub start: Instant,
    pub time: SystemTime,
    pub request_id: HeaderValue,
    pub trace: TraceContext,
    pub client: SocketAddr,
    pub method: Method,
    pub host: Option<HeaderValue>,
    /// The path as routed (normalised), without the query: set by the
    /// handler once normalised.
    pub path: String,
    pub version: Version,
    pub user_agent: Option<HeaderValue>,
    /// The index of the route in the config, when one matched.
    pub route_index: Option<usize>,
    pub route: Option<Arc<str>>,
    pub status: u16,
    /// The request body's length: as buffered, else its `Content-Length`.
    pub bytes_in: u64,
    /// Response body bytes handed to the server.
    pub bytes_out: u64,
    pub upstream: Tries,
    pub plugins: Vec<PluginCall>,
    /// The `user` var, when a plugin set it.
    pub user: Option<String>,
    /// From the head to the end of the response body.
    pub duration: Duration,
    /// Whether anything reads more than the route, method and status (an
    /// access log or a span exporter): only then are the request's other
    /// fields copied and its plugin calls listed. Metrics need none of it,
    /// and a gateway without a log should not pay for one.
    pub detail: bool,
}

impl RequestRecord {
    /// The record of a request whose head just arrived; with `detail`, see
    /// [`RequestRecord::detail`].
    pub(crate) fn new<B>(
        head: &http::Request<B>,
        client: SocketAddr,
        request_id: HeaderValue,
        trace: TraceContext,
        start: Instant,
        detail: bool,
    ) -> Self {
        let headers = head.headers();
        let (time, host, user_agent, bytes_in) = match detail {
            true => (
                SystemTime::now(),
                headers
                    .get(header::HOST)
                    .cloned()
                    .or_else(|| head.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())),
                headers.get(header::USER_AGENT).cloned(),
                crate::fields::content_length(headers).unwrap_or(0),
            ),
            false => (SystemTime::UNIX_EPOCH, None, None, 0),
        };
        Self {
            start,
            time,
            request_id,
            trace,
            client,
            method: head.method().clone(),
            host,
            path: String::new(),
            version: head.version(),
            user_agent,
            route_index: None,
            route: None,
            status: 0,
            bytes_in,
            bytes_out: 0,
            upstream: Tries::default(),
            plugins: Vec::new(),
            user: None,
            duration: Duration::ZERO,
            detail,
        }
    }

    /// Where the plugin calls are listed: nowhere without `detail`.
    pub(crate) fn calls(&mut self) -> Option<&mut Vec<PluginCall>> {
        self.detail.then_some(&mut self.plugins)
    }

    /// Time spent in plugin calls.
    pub(crate) fn plugins_time(&self) -> Duration {
        self.plugins.iter().map(|c| c.elapsed).sum()
    }
}
