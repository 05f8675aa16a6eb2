//! Spans exported over OTLP/HTTP to a collector of the test's own, which
//! decodes the protobuf: one trace id from the client's `traceparent`
//! through the upstream's and the response's to the exported spans; a
//! server span, a span per plugin call and a client span per upstream try;
//! sampling by the parent's flag or the configured ratio.

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::collector::{TestCollector, attribute};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::ADD_HEADER;
use wasmgate_testbed::{TestGateway, TestUpstream, eventually};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_client_to_upstream_to_the_collector() {
    let collector = TestCollector::start().await;
    let up = TestUpstream::named("users").await;
    // Ratio 0: only continued traces that are sampled are exported.
    let tracing = json!({ "otlp_endpoint": collector.endpoint, "service_name": "edge", "sample_ratio": 0.0 });
    let config = GatewayConfig::new()
        .section("tracing", tracing)
        .upstream("users", &up)
        .plugin("add-header", ADD_HEADER)
        .route(Route::prefix("users", "/users").upstream("users").stage("add-header", Value::Null));
    let gw = TestGateway::start(&config.to_string()).await;

    // Not exported: a trace the gateway starts (ratio 0), and a continued
    // one its parent did not sample.
    assert_eq!(gw.client.get("/users/1").await.status, 200);
    let unsampled = format!("00-{}-{PARENT}-00", "1".repeat(32));
    assert_eq!(gw.client.send(Method::GET, "/users/2", &[("traceparent", &unsampled)], "").await.status, 200);
    // Exported: a continued, sampled trace.
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let reply = gw.client.send(Method::GET, "/users/3", &[("traceparent", &incoming)], "").await;
    assert_eq!(reply.status, 200);

    // The gateway's span: named on the response, the upstream's parent.
    let answered = reply.header("traceparent").expect("traceparent on the response").to_owned();
    let fields: Vec<&str> = answered.split('-').collect();
    assert_eq!((fields[0], fields[1], fields[3]), ("00", TRACE, "01"), "{answered}");
    let gateway_span = fields[2].to_owned();
    assert_ne!(gateway_span, PARENT);
    let upstream = up.seen().into_iter().find(|s| s.uri == "/users/3").unwrap();
    assert_eq!(upstream.header("traceparent"), Some(answered.as_str()));

    eventually("the sampled request's spans are exported", || async { collector.spans().len() >= 3 }).await;
    let spans = collector.spans();
    assert_eq!(spans.len(), 3, "only the sampled request's spans: {spans:#?}");
    assert!(spans.iter().all(|(service, s)| service == "edge" && hex(&s.trace_id) == TRACE), "{spans:#?}");

    let server = &spans.iter().find(|(_, s)| s.kind == 2).expect("a server span").1;
    assert_eq!((hex(&server.span_id), hex(&server.parent_span_id)), (gateway_span.clone(), PARENT.to_owned()));
    assert_eq!(server.name, "GET users");
    assert_eq!(attribute(&server.attributes, "http.route").as_deref(), Some("users"));
    assert_eq!(attribute(&server.attributes, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(&server.attributes, "url.path").as_deref(), Some("/users/3"));
    assert_eq!(attribute(&server.attributes, "http.response.status_code").as_deref(), Some("200"));
    assert!(server.end_time_unix_nano >= server.start_time_unix_nano);

    let plugin = &spans.iter().find(|(_, s)| s.kind == 1).expect("a plugin span").1;
    assert_eq!((plugin.name.as_str(), hex(&plugin.parent_span_id)), ("plugin add-header", gateway_span.clone()));
    assert_eq!(attribute(&plugin.attributes, "wasmgate.result").as_deref(), Some("continue"));
    assert_eq!(attribute(&plugin.attributes, "wasmgate.phase").as_deref(), Some("request"));

    let client = &spans.iter().find(|(_, s)| s.kind == 3).expect("a client span per upstream try").1;
    assert_eq!(hex(&client.parent_span_id), gateway_span);
    assert_eq!(attribute(&client.attributes, "server.port"), Some(up.addr.port().to_string()));
    assert_eq!(attribute(&client.attributes, "http.response.status_code").as_deref(), Some("200"));
    assert!(client.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(client.end_time_unix_nano <= server.end_time_unix_nano);
}

/// A collector that is not there costs requests nothing: they are served,
/// and the spans are dropped by the exporter, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_hold_requests_up() {
    let (_held, gone) = wasmgate_testbed::closed_port();
    let tracing = json!({ "otlp_endpoint": format!("http://{gone}/v1/traces") });
    let up = TestUpstream::named("users").await;
    let config = GatewayConfig::new()
        .section("tracing", tracing)
        .upstream("users", &up)
        .route(Route::prefix("users", "/").upstream("users"));
    let gw = TestGateway::start(&config.to_string()).await;
    for i in 0..20 {
        assert_eq!(gw.client.get(&format!("/{i}")).await.status, 200);
    }
    assert_eq!(up.count(), 20);
}
