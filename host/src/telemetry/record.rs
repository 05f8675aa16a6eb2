//! One request as telemetry sees it: made when its head arrives, filled in
//! by the handler's phases (route, plugin calls, upstream tries, the `user`
//! var), finished when the response body is done. The access log writes
//! it; a span exporter would turn the same record into a server span, a
//! span per plugin call and a client span for the upstream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderValue, Method, Version, header};
use http_body_util::BodyExt as _;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::access_log::AccessLog;
use super::metrics::{Phase, PluginResult, UpstreamOutcome};
use super::otlp::Exporter;
use super::spans;
use super::trace_context::TraceContext;
use crate::body::{Body, BodyError};

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

/// Where a finished record goes: the access log, the span exporter (with
/// its sample ratio), or both.
#[derive(Clone, Default)]
pub(crate) struct Sinks {
    pub log: Option<Arc<AccessLog>>,
    pub spans: Option<(Arc<Exporter>, f64)>,
}

impl Sinks {
    /// Nothing wants the record: no body needs wrapping.
    pub(crate) fn is_empty(&self) -> bool {
        self.log.is_none() && self.spans.is_none()
    }
}

/// A response body that counts the bytes it hands out and, when it is
/// dropped (sent, or abandoned by a client that went away), finishes the
/// request's record: its access-log line is queued and its spans handed to
/// the exporter.
pub(crate) struct Logged {
    inner: Body,
    record: Option<Box<RequestRecord>>,
    sinks: Sinks,
}

impl Logged {
    pub(crate) fn wrap(inner: Body, record: Box<RequestRecord>, sinks: Sinks) -> Body {
        Self { inner, record: Some(record), sinks }.boxed()
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(record) = &mut self.record
        {
            record.bytes_out += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = record.start.elapsed();
            if let Some((exporter, ratio)) = &self.sinks.spans
                && spans::sampled(&record.trace, *ratio)
            {
                exporter.export(spans::of(&record));
            }
            if let Some(log) = &self.sinks.log {
                log.submit(record);
            }
        }
    }
}
