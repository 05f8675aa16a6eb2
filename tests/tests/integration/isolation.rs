//! A plugin that traps, loops or eats memory fails its own request, within
//! its budget, while the gateway keeps serving everything else.

use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::*;
use wasmgate_testbed::{TestGateway, TestUpstream};

async fn gateway(up: &TestUpstream) -> TestGateway {
    let to_up = |name: &str| Route::path(name, &format!("/{name}")).upstream("up");
    let config = GatewayConfig::new()
        .section("runtime", json!({"timeout_ms": 100, "memory_mb": 16}))
        .upstream("up", up)
        .plugin("trap", FIXTURE_TRAP)
        .plugin("spin", FIXTURE_SPIN)
        .plugin_with("hog", FIXTURE_HOG, json!({"memory_mb": 8}))
        .plugin_with("add-header", ADD_HEADER, json!({"config": {"request": {"x-ok": "1"}}}))
        .route(to_up("trap").stage("trap", Value::Null))
        .route(to_up("spin").stage("spin", Value::Null))
        .route(to_up("hog").stage("hog", Value::Null))
        .route(to_up("trap-open").stage_with("trap", json!({"on_error": "fail-open"})).stage("add-header", Value::Null))
        .route(to_up("healthy").stage("add-header", Value::Null));
    TestGateway::start(&config.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_plugins_fail_only_their_own_requests() {
    let up = TestUpstream::named("up").await;
    let gw = Arc::new(gateway(&up).await);

    // Bad requests and good ones at the same time: every good one succeeds.
    let mut bad = Vec::new();
    for path in ["/trap", "/spin", "/hog", "/trap", "/spin", "/hog"] {
        let client = gw.client.clone();
        bad.push(tokio::spawn(async move { (path, client.get(path).await) }));
    }
    let mut good = Vec::new();
    for _ in 0..40 {
        let client = gw.client.clone();
        good.push(tokio::spawn(async move { client.get("/healthy").await }));
    }
    for g in good {
        assert_eq!(g.await.unwrap().status, 200);
    }
    for b in bad {
        let (path, reply) = b.await.unwrap();
        let (plugin, expected) = match path {
            "/trap" => ("trap", "plugin trap failed"),
            "/spin" => ("spin", "plugin spin exceeded its time limit of 100ms"),
            _ => ("hog", "plugin hog exceeded its memory limit of 8388608 bytes"),
        };
        assert_eq!(reply.plugin_problem(500, plugin), expected, "{path}");
    }
    assert!(up.seen().iter().all(|s| s.uri == "/healthy"), "no failed request reached the upstream");

    // The failed instances were discarded; fresh ones behave the same.
    gw.client.get("/spin").await.plugin_problem(500, "spin");
    assert_eq!(gw.client.get("/healthy").await.status, 200);
}

#[tokio::test]
async fn fail_open_passes_the_request_on() {
    let up = TestUpstream::named("up").await;
    let gw = gateway(&up).await;
    let reply = gw.client.send(Method::GET, "/trap-open", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "up GET /trap-open");
    assert_eq!(up.seen()[0].header("x-ok"), Some("1"), "later plugins still run");
}

#[tokio::test]
async fn plugins_get_no_filesystem_environment_or_network() {
    // A live service the probe will try to reach directly.
    let target = TestUpstream::named("secret").await;
    let route = Route::path("probe", "/probe").stage("probe", Value::Null);
    let gw =
        TestGateway::start(&GatewayConfig::new().plugin("probe", FIXTURE_SANDBOX_PROBE).route(route).to_string()).await;
    let reply = gw.client.get(&format!("/probe?{}", target.target())).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"read_dir": false, "read_file": false, "env": [], "connect": false}));
    assert_eq!(target.count(), 0);
}

#[tokio::test]
async fn instances_grown_by_a_big_request_are_not_kept_warm() {
    let up = TestUpstream::start(|seen| wasmgate_testbed::Answer::new(200, format!("{}", seen.body.len()))).await;
    // What is checked is the pool, not speed: on a loaded 2-core machine
    // upper-casing 6 MB can take longer than the 50 ms default.
    let route =
        Route::path("upper", "/upper").upstream("up").set("max_body_bytes", 16777216).stage("upper", Value::Null);
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin_with("upper", FIXTURE_BODY_UPPER, json!({"timeout_ms": 10000}))
        .route(route);
    let gw = TestGateway::start(&config.to_string()).await;
    let pool = async || wasmgate::status(&gw.gateway).await["plugin_uses"][0]["idle_instances"].as_u64().unwrap();

    assert_eq!(gw.client.send(Method::POST, "/upper", &[], "small").await.text(), "5");
    assert_eq!(pool().await, 1, "a lean instance goes back to the pool");
    let big = "x".repeat(6 << 20);
    assert_eq!(gw.client.send(Method::POST, "/upper", &[], big).await.text(), (6 << 20).to_string());
    assert_eq!(pool().await, 0, "an instance that grew past the retain size is dropped after its call");
    assert_eq!(gw.client.send(Method::POST, "/upper", &[], "again").await.text(), "5");
    assert_eq!(pool().await, 1, "a fresh instance serves the next call");
}
