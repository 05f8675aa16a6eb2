//! The `http-client.fetch-all` import: concurrent calls to named upstreams
//! with per-call timeouts.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::*;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_concurrently_and_fail_independently() {
    // The three services only answer once all three requests have arrived:
    // sequential calls would wait for each other until the call timeout.
    let gate = Arc::new(tokio::sync::Barrier::new(3));
    let a = TestUpstream::start_gated(gate.clone(), |s| Answer::new(200, format!("a:{}", s.uri))).await;
    let b = TestUpstream::start_gated(gate.clone(), |_| Answer::new(201, "b")).await;
    let c = TestUpstream::start_gated(gate, |_| Answer::new(404, "c")).await;
    let slow = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(5))).await;

    let fanout =
        |name: &str, calls: Value| Route::path(name, &format!("/{name}")).stage("fanout", json!({ "calls": calls }));
    let config = GatewayConfig::new()
        .upstream("a", &a)
        .upstream("b", &b)
        .upstream("c", &c)
        .upstream("slow", &slow)
        .upstream_at("down", "127.0.0.1:1")
        .plugin("fanout", FIXTURE_FANOUT)
        .route(fanout(
            "together",
            json!([
                {"upstream": "a", "path": "/one?q=1", "timeout_ms": 3000},
                {"upstream": "b", "path": "/two", "timeout_ms": 3000},
                {"upstream": "c", "path": "/three", "timeout_ms": 3000},
            ]),
        ))
        .route(fanout(
            "failures",
            json!([
                {"upstream": "slow", "path": "/", "timeout_ms": 100},
                {"upstream": "down", "path": "/"},
                {"upstream": "nowhere", "path": "/"},
            ]),
        ));
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.send(Method::GET, "/together", &[("x-request-id", "fan-1")], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!([
            {"status": 200, "body": "a:/one?q=1"},
            {"status": 201, "body": "b"},
            {"status": 404, "body": "c"},
        ])
    );
    assert_eq!(a.seen()[0].header("x-request-id"), Some("fan-1"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let plugin_now: i64 = reply.header("x-now-ms").unwrap().parse().unwrap();
    assert!((now - plugin_now).abs() < 60_000, "the clock import gives wall time");

    let reply = gw.client.get("/failures").await;
    let results = reply.json();
    assert_eq!(results[0]["error"], "timeout", "{results}");
    assert!(results[1]["error"].as_str().unwrap().starts_with("unavailable"), "{results}");
    assert!(results[2]["error"].as_str().unwrap().contains("unknown upstream"), "{results}");
}
