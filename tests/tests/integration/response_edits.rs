//! Response headers set from the request phase (`set-response-header`):
//! rate-limit and a header-only transform run one call per request and still
//! put their headers on every answer the request gets.

use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{FIXTURE_RESPOND, RATE_LIMIT, TRANSFORM};
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

/// The three plugins, configured once for every use.
fn plugins() -> GatewayConfig {
    let transform = json!({"response": {"headers": {
        "set": {"x-gateway": "wasmgate", "x-rid": "{request_id}"},
        "add": {"vary": "x-client"},
    }}});
    GatewayConfig::new()
        .plugin_with(
            "rate-limit",
            RATE_LIMIT,
            json!({"config": {"key": ["ip"], "limits": [{"limit": 100, "window": "1h"}]}}),
        )
        .plugin_with("transform", TRANSFORM, json!({ "config": transform }))
        .plugin_with("respond", FIXTURE_RESPOND, json!({"config": {"status": 418, "body": "teapot"}}))
}

/// A route for every path under `/<name>` through rate-limit, transform
/// and `more` plugins.
fn limited(name: &str, more: &[&str]) -> Route {
    let route =
        Route::prefix(name, &format!("/{name}")).stage("rate-limit", Value::Null).stage("transform", Value::Null);
    more.iter().fold(route, |route, plugin| route.stage(plugin, Value::Null))
}

#[tokio::test]
async fn request_phase_headers_replace_the_upstreams_and_add_to_lists() {
    let up = TestUpstream::start(|_| {
        Answer::new(200, "ok").header("x-gateway", "upstream").header("x-ratelimit-limit", "7").header("vary", "accept")
    })
    .await;
    let config = plugins().upstream("api", &up).route(limited("api", &[]).upstream("api"));
    let gw = TestGateway::start(&config.to_string()).await;

    let first = gw.client.send(http::Method::GET, "/api/x", &[("x-request-id", "rid-1")], "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "ok");
    let all =
        |name: &str| first.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(all("x-gateway"), ["wasmgate"], "set replaces the upstream's value");
    assert_eq!(all("x-ratelimit-limit"), ["100"]);
    assert_eq!(all("x-ratelimit-remaining"), ["99"]);
    assert_eq!(all("x-rid"), ["rid-1"]);
    assert_eq!(all("vary"), ["accept", "x-client"], "add keeps the upstream's value");

    let second = gw.client.get("/api/x").await;
    assert_eq!(second.header("x-ratelimit-remaining"), Some("98"), "each request gets its own");
}

#[tokio::test]
async fn they_reach_a_later_plugins_reply_and_the_gateways_own_errors() {
    let config = plugins()
        .upstream_at("down", "127.0.0.1:1")
        .route(limited("reply", &["respond"]))
        .route(limited("down", &[]).upstream("down"));
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.get("/reply").await;
    assert_eq!((reply.status, reply.text().as_str()), (418, "teapot"));
    assert_eq!(reply.header("x-ratelimit-limit"), Some("100"));
    assert_eq!(reply.header("x-gateway"), Some("wasmgate"));

    let down = gw.client.get("/down").await;
    down.problem(502);
    assert_eq!(down.header("x-ratelimit-remaining"), Some("98"), "keyed on the ip alone: one budget for both routes");
    assert_eq!(down.header("x-gateway"), Some("wasmgate"));
}
