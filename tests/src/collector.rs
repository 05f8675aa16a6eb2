//! An OpenTelemetry collector of the test's own: an OTLP/HTTP endpoint on
//! a loopback port that decodes every export request's protobuf.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// Every export received, with its content type.
pub struct TestCollector {
    /// `http://127.0.0.1:PORT/v1/traces`.
    pub endpoint: String,
    received: Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestCollector {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the collector");
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let kind = req
                                .headers()
                                .get(http::header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let decoded = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                            seen.lock().unwrap().push((kind, decoded));
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { endpoint, received, task }
    }

    /// Every export request so far, with its content type.
    pub fn exports(&self) -> Vec<(String, ExportTraceServiceRequest)> {
        self.received.lock().unwrap().clone()
    }

    /// Every span exported so far, with the `service.name` it came under.
    pub fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for (_, export) in self.exports() {
            for resource in export.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| text(a.value.as_ref()?))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    out.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                }
            }
        }
        out
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A string attribute's value.
fn text(value: &AnyValue) -> Option<String> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The value of attribute `key` of a span, as text (integers too).
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    match &value.value {
        Some(any_value::Value::IntValue(i)) => Some(i.to_string()),
        _ => text(value),
    }
}
