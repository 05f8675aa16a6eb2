//! A finished request record as OpenTelemetry spans: the gateway's server
//! span (the one `traceparent` names upstream and on the response), a span
//! per plugin call and a client span per upstream try, each with the HTTP
//! semantic-convention attributes that apply.

use std::time::{Duration, Instant, UNIX_EPOCH};

use super::metrics::{PluginResult, UpstreamOutcome};
use super::otlp::{Span, SpanKind, Value};
use super::record::RequestRecord;
use super::trace_context::{SAMPLED, TraceContext, new_span_id};

/// Whether a request's spans are exported: a continued trace follows its
/// parent's sampled flag; a trace the gateway started is kept for a
/// `ratio` share of trace ids (the same decision for the same id, as
/// OpenTelemetry's trace-id-ratio sampler makes it).
pub(crate) fn sampled(trace: &TraceContext, ratio: f64) -> bool {
    if trace.parent_id.is_some() {
        return trace.flags & SAMPLED != 0;
    }
    let low = u64::from_be_bytes(trace.trace_id[8..].try_into().expect("8 bytes"));
    let share = (low >> 11) as f64 / (1u64 << 53) as f64;
    share < ratio
}

/// The spans of one finished request.
pub(crate) fn of(record: &RequestRecord) -> Vec<Span> {
    let at = |instant: Instant| -> u64 {
        let since_start = instant.saturating_duration_since(record.start);
        nanos(record.time.duration_since(UNIX_EPOCH).unwrap_or_default() + since_start)
    };
    let start = at(record.start);
    let route = record.route.as_deref().unwrap_or("(none)");
    let server = record.trace.span_id;
    let mut attributes = vec![
        ("http.request.method", Value::Str(record.method.to_string())),
        ("url.path", Value::Str(record.path.clone())),
        ("http.route", Value::Str(route.to_owned())),
        ("http.response.status_code", Value::Int(i64::from(record.status))),
        ("client.address", Value::Str(record.client.ip().to_string())),
        ("network.protocol.version", Value::Str(protocol(record.version).to_owned())),
        ("wasmgate.request_id", Value::Str(String::from_utf8_lossy(record.request_id.as_bytes()).into_owned())),
    ];
    if let Some(host) = record.host.as_ref().and_then(|h| h.to_str().ok()) {
        attributes.push(("server.address", Value::Str(host.to_owned())));
    }
    if let Some(agent) = record.user_agent.as_ref().and_then(|a| a.to_str().ok()) {
        attributes.push(("user_agent.original", Value::Str(agent.to_owned())));
    }
    let mut spans = Vec::with_capacity(1 + record.plugins.len() + record.upstream.each.len());
    spans.push(Span {
        trace_id: record.trace.trace_id,
        span_id: server,
        parent_span_id: record.trace.parent_id,
        name: format!("{} {route}", record.method),
        kind: SpanKind::Server,
        start_unix_nanos: start,
        end_unix_nanos: start + nanos(record.duration),
        attributes,
        error: record.status >= 500,
    });
    for call in &record.plugins {
        let begun = at(call.started);
        spans.push(Span {
            trace_id: record.trace.trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(server),
            name: format!("plugin {}", call.plugin),
            kind: SpanKind::Internal,
            start_unix_nanos: begun,
            end_unix_nanos: begun + nanos(call.elapsed),
            attributes: vec![
                ("wasmgate.plugin", Value::Str(call.plugin.to_string())),
                ("wasmgate.route", Value::Str(route.to_owned())),
                ("wasmgate.phase", Value::Str(call.phase.as_str().to_owned())),
                ("wasmgate.result", Value::Str(call.result.as_str().to_owned())),
            ],
            error: !matches!(call.result, PluginResult::Continue | PluginResult::Respond),
        });
    }
    for (i, one) in record.upstream.each.iter().enumerate() {
        let begun = at(one.started);
        let mut attributes = vec![
            ("http.request.method", Value::Str(record.method.to_string())),
            ("server.address", Value::Str(one.target.host().to_owned())),
            ("http.request.resend_count", Value::Int(i as i64)),
        ];
        if let Some(port) = one.target.port_u16() {
            attributes.push(("server.port", Value::Int(i64::from(port))));
        }
        let error = match one.outcome {
            UpstreamOutcome::Status(code) => {
                attributes.push(("http.response.status_code", Value::Int(i64::from(code))));
                code >= 500
            }
            other => {
                attributes.push(("error.type", Value::Str(other.error_kind().to_owned())));
                true
            }
        };
        spans.push(Span {
            trace_id: record.trace.trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(server),
            name: record.method.to_string(),
            kind: SpanKind::Client,
            start_unix_nanos: begun,
            end_unix_nanos: begun + nanos(one.elapsed),
            attributes,
            error,
        });
    }
    spans
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        _ => "1.1",
    }
}
