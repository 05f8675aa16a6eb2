//! What a plugin asks to come with its calls (`Needs::prefetch_*`) reads
//! exactly as what it fetches from the host: the request as the call
//! starts, earlier plugins' writes included, and its own writes once made.

use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::TestGateway;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{FIXTURE_ECHO_CONTEXT, FIXTURE_SET_VAR};

#[tokio::test]
async fn prefetched_values_match_fetched_ones_and_yield_to_writes() {
    let route = |name: &str, echo: Value| {
        Route::path(name, &(format!("/{name}") + "/{id}"))
            .stage("set-var", json!({"name": "seen", "value": "by-first-plugin"}))
            .stage("echo", echo)
    };
    let config = GatewayConfig::new()
        .plugin("set-var", FIXTURE_SET_VAR)
        .plugin("echo", FIXTURE_ECHO_CONTEXT)
        .route(route("fetched", Value::Null))
        .route(route("prefetched", json!({"prefetch": true})));
    let gw = TestGateway::start(&config.to_string()).await;

    let headers = [("x-request-id", "rid-1"), ("x-in", "a"), ("X-In", "b")];
    let mut answers = Vec::new();
    for route in ["fetched", "prefetched"] {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let reply = gw.client.send(Method::GET, &format!("/{route}/7?q=1"), &headers, "").await;
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let mut ctx = reply.json();
        let now = ctx["now_ms"].as_u64().unwrap();
        assert!((before..=after).contains(&now), "{route}: clock {now} outside {before}..={after}");
        assert!(ctx["client_addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{ctx}");
        assert_eq!(ctx["route"], route);
        assert_eq!(ctx["path"], format!("/{route}/7"));
        for varying in ["now_ms", "client_addr", "route", "path"] {
            ctx[varying] = Value::Null;
        }
        answers.push(ctx);
    }
    let [fetched, prefetched] = [&answers[0], &answers[1]];
    assert_eq!(fetched, prefetched, "the two ways of reading disagree");
    assert_eq!(prefetched["request_id"], "rid-1");
    assert_eq!(prefetched["var_seen"], "by-first-plugin", "an earlier plugin's write is in the input");
    assert_eq!(prefetched["var_unset"], Value::Null);
    assert_eq!(prefetched["x_in"], json!(["a", "b"]), "every value, in order");
    assert_eq!(prefetched["x_in_first"], "a", "names match in any case");
    assert_eq!(prefetched["x_absent"], Value::Null);
    assert_eq!(prefetched["x_in_after_write"], json!(["written"]), "a read sees the plugin's own write");
    assert_eq!(prefetched["var_seen_after_write"], "rewritten");
}
