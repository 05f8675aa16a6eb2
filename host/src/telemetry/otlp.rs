//! Spans exported to an OpenTelemetry collector over OTLP/HTTP (protobuf):
//! a request hands its finished spans over without waiting, a background
//! task sends them in batches. Nothing here can slow a request down: a full
//! queue drops spans (counted), and an unreachable collector is logged once
//! when it goes away and once when it is back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span, status};
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;
use tokio::sync::mpsc;

/// Spans waiting for the exporter at most; past that they are dropped.
const QUEUE: usize = 8192;
/// Spans in one export request at most.
const BATCH: usize = 512;
/// How long spans may wait for a batch to fill.
const LINGER: Duration = Duration::from_secs(1);
/// One export request's limit, connection included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where spans go: `[tracing]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpSettings {
    /// The collector's traces URL (`…/v1/traces`).
    pub(crate) endpoint: Uri,
    /// `service.name` of the resource.
    pub(crate) service_name: String,
}

/// What a span stands for (OTLP's kinds, those the gateway makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    /// A request the gateway received.
    Server,
    /// A request the gateway sent (an upstream try).
    Client,
    /// Work inside the gateway (a plugin call).
    Internal,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) parent_span_id: Option<[u8; 8]>,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) start_unix_nanos: u64,
    pub(crate) end_unix_nanos: u64,
    pub(crate) attributes: Vec<(&'static str, Value)>,
    /// The operation failed (a 5xx, a trap, a connection error).
    pub(crate) error: bool,
}

/// The handle requests give their spans to.
pub(crate) struct Exporter {
    queue: mpsc::Sender<Span>,
    /// `wasmgate_spans_dropped_total`.
    dropped: Counter,
}

impl Exporter {
    /// Starts the background task (inside a tokio runtime).
    pub(crate) fn start(settings: OtlpSettings, dropped: Counter) -> Arc<Self> {
        let (queue, spans) = mpsc::channel(QUEUE);
        tokio::spawn(run(settings, spans));
        Arc::new(Self { queue, dropped })
    }

    /// Hands spans over without waiting; a full queue drops them.
    pub(crate) fn export(&self, spans: impl IntoIterator<Item = Span>) {
        for span in spans {
            if self.queue.try_send(span).is_err() {
                self.dropped.inc();
            }
        }
    }
}

async fn run(settings: OtlpSettings, mut spans: mpsc::Receiver<Span>) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut down = false;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = spans.recv().await {
        batch.push(first);
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(until, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = encode(&settings.service_name, batch.drain(..));
        match send(&client, &settings.endpoint, body).await {
            Ok(()) if down => {
                down = false;
                tracing::info!(endpoint = %settings.endpoint, "trace collector reachable again");
            }
            Ok(()) => {}
            Err(error) if !down => {
                down = true;
                tracing::warn!(endpoint = %settings.endpoint, %error, "cannot export traces; dropping them until the collector answers");
            }
            Err(_) => {}
        }
    }
}

async fn send(client: &Client<HttpConnector, Full<Bytes>>, endpoint: &Uri, body: Vec<u8>) -> Result<(), String> {
    let req = http::Request::post(endpoint.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(EXPORT_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("no answer within {} s", EXPORT_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("the collector answered {s}")),
    }
}

/// An `ExportTraceServiceRequest` holding `spans`, encoded.
pub(crate) fn encode(service_name: &str, spans: impl Iterator<Item = Span>) -> Vec<u8> {
    let resource = Resource {
        attributes: vec![attribute("service.name", Value::Str(service_name.to_owned()))],
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: "wasmgate".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope),
                spans: spans.map(proto_span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    request.encode_to_vec()
}

fn proto_span(s: Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match s.kind {
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Internal => span::SpanKind::Internal,
    };
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name,
        kind: kind as i32,
        start_time_unix_nano: s.start_unix_nanos,
        end_time_unix_nano: s.end_unix_nanos,
        attributes: s.attributes.into_iter().map(|(k, v)| attribute(k, v)).collect(),
        status: s.error.then(|| Status { code: status::StatusCode::Error as i32, ..Status::default() }),
        ..Default::default()
    }
}

fn attribute(key: &str, value: Value) -> KeyValue {
    let value = match value {
        Value::Str(s) => any_value::Value::StringValue(s),
        Value::Int(i) => any_value::Value::IntValue(i),
    };
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value;
    use wasmgate_testbed::collector::TestCollector;

    use super::*;

    fn span(n: u8, kind: SpanKind, parent: Option<[u8; 8]>) -> Span {
        Span {
            trace_id: [7; 16],
            span_id: [n; 8],
            parent_span_id: parent,
            name: format!("span {n}"),
            kind,
            start_unix_nanos: 1_000,
            end_unix_nanos: 2_000,
            attributes: vec![
                ("http.response.status_code", Value::Int(502)),
                ("wasmgate.route", Value::Str("users".into())),
            ],
            error: n == 2,
        }
    }

    #[tokio::test]
    async fn spans_reach_the_collector_as_otlp_protobuf() {
        let collector = TestCollector::start().await;
        let endpoint = collector.endpoint.parse().unwrap();
        let dropped = Counter::default();
        let exporter = Exporter::start(OtlpSettings { endpoint, service_name: "edge".into() }, dropped.clone());
        exporter.export([span(1, SpanKind::Server, None), span(2, SpanKind::Client, Some([1; 8]))]);
        for _ in 0..1000 {
            if !collector.exports().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let (content_type, request) = collector.exports().pop().expect("the collector received an export");
        assert_eq!(content_type, "application/x-protobuf");
        let resource = &request.resource_spans[0];
        let service = &resource.resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
        assert_eq!(service.value.as_ref().unwrap().value, Some(any_value::Value::StringValue("edge".into())));
        let spans = &resource.scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].trace_id.as_slice(), spans[0].span_id.as_slice()), (&[7; 16][..], &[1; 8][..]));
        assert!(spans[0].parent_span_id.is_empty());
        assert_eq!(spans[1].parent_span_id, vec![1; 8]);
        assert_eq!(spans[0].kind, span::SpanKind::Server as i32);
        assert_eq!(spans[1].kind, span::SpanKind::Client as i32);
        assert_eq!(spans[1].status.as_ref().map(|s| s.code), Some(status::StatusCode::Error as i32));
        assert_eq!(spans[0].status, None);
        let status_code = &spans[0].attributes[0];
        assert_eq!(status_code.key, "http.response.status_code");
        assert_eq!(status_code.value.as_ref().unwrap().value, Some(any_value::Value::IntValue(502)));
        assert_eq!(dropped.get(), 0);
    }

    /// A request never waits: past the queue's room spans are dropped and
    /// counted, whatever the collector does.
    #[tokio::test]
    async fn a_full_queue_drops_spans_and_counts_them() {
        let endpoint: Uri = "http://127.0.0.1:9/v1/traces".parse().unwrap();
        let dropped = Counter::default();
        let exporter = Exporter::start(OtlpSettings { endpoint, service_name: "edge".into() }, dropped.clone());
        // The exporter's task cannot run meanwhile: this test's runtime has
        // one thread, and it is here.
        exporter.export((0..QUEUE + 25).map(|_| span(1, SpanKind::Internal, None)));
        assert_eq!(dropped.get(), 25);
    }
}
