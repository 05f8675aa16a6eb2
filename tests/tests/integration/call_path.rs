//! How plugin calls are entered: directly (a function call, no fiber) when
//! a plugin's imports rarely wait, asynchronously otherwise, and a use whose
//! direct call had to wait (or fetches often) moves to the asynchronous path
//! without failing anything.

use std::time::Duration;

use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{ADD_HEADER, FIXTURE_FANOUT, FIXTURE_SLEEPER, FIXTURE_SPIN, RATE_LIMIT};
use wasmgate_testbed::redis::TestRedis;
use wasmgate_testbed::{Answer, Client, Reply, TestGateway, TestUpstream};

/// The call path `/status` reports for the plugin use on `route`.
async fn call_path(admin: &Client, route: &str) -> String {
    let status = admin.get("/status").await.json();
    let uses = status["plugin_uses"].as_array().expect("plugin_uses").clone();
    let found = uses.into_iter().find(|u| u["route"] == route).expect("the route's plugin use");
    found["calls"].as_str().expect("a call path").to_owned()
}

/// A request that runs while the test goes on.
fn get_in_background(client: &Client, path: &'static str) -> tokio::task::JoinHandle<Reply> {
    let client = client.clone();
    tokio::spawn(async move { client.get(path).await })
}

fn limited(name: &str) -> Route {
    let limit = json!({"key": ["ip"], "limits": [{"limit": 1000, "window": "1h"}]});
    Route::path(name, &format!("/{name}")).upstream("up").stage("rate-limit", limit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_that_never_wait_are_called_directly() {
    let up = TestUpstream::named("up").await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("add-header", ADD_HEADER)
        .plugin("rate-limit", RATE_LIMIT)
        .plugin("fanout", FIXTURE_FANOUT)
        .route(Route::path("header", "/header").upstream("up").stage("add-header", json!({"request": {"x-a": "1"}})))
        .route(limited("limited"))
        .route(Route::path("fanout", "/fanout").stage("fanout", json!({"calls": []})));
    let gw = TestGateway::start(&config.to_string()).await;

    assert_eq!(call_path(&gw.admin, "header").await, "direct");
    assert_eq!(call_path(&gw.admin, "limited").await, "direct", "state kept in this process answers at once");
    assert_eq!(call_path(&gw.admin, "fanout").await, "direct", "a fetch hands its thread over");

    let reply = gw.client.get("/header").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(up.seen()[0].header("x-a"), Some("1"));
    for expected_left in [999, 998] {
        let reply = gw.client.get("/limited").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-ratelimit-remaining"), Some(expected_left.to_string().as_str()));
    }
    assert_eq!(call_path(&gw.admin, "limited").await, "direct", "a call that did not wait stays direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_kept_in_redis_keeps_its_plugins_asynchronous() {
    let redis = TestRedis::start();
    let up = TestUpstream::named("up").await;
    let config = GatewayConfig::new()
        .section("state", json!({"backend": "redis", "url": redis.url()}))
        .upstream("up", &up)
        .plugin("rate-limit", RATE_LIMIT)
        .plugin("add-header", ADD_HEADER)
        .route(limited("limited"))
        .route(Route::path("header", "/header").upstream("up").stage("add-header", json!({"request": {"x-a": "1"}})));
    let gw = TestGateway::start(&config.to_string()).await;

    assert_eq!(call_path(&gw.admin, "limited").await, "async");
    assert_eq!(call_path(&gw.admin, "header").await, "direct", "a plugin without state is not held back");
    let reply = gw.client.get("/limited").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_whose_call_waited_moves_to_the_asynchronous_path() {
    let up = TestUpstream::named("up").await;
    let sleepy = json!({"sleep_ms": 50, "reply_bytes": 5});
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("sleeper", FIXTURE_SLEEPER)
        .route(Route::path("sleepy", "/sleepy").stage("sleeper", sleepy))
        .route(Route::path("calls", "/calls").stage("sleeper", json!({"report_calls": true})));
    let gw = TestGateway::start(&config.to_string()).await;
    assert_eq!(call_path(&gw.admin, "sleepy").await, "direct", "nothing waited yet");

    // The sleep happens on the direct path, then on the asynchronous one:
    // both calls run to their answer.
    for round in 1..=2 {
        let reply = gw.client.get("/sleepy").await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.text());
        assert_eq!(reply.body.len(), 5);
        assert_eq!(call_path(&gw.admin, "sleepy").await, "async", "round {round}");
    }
    assert_eq!(gw.client.get("/calls").await.text(), "2", "each request ran the plugin once");
    assert_eq!(call_path(&gw.admin, "calls").await, "direct", "another use of the plugin is its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_call_that_loops_ends_at_its_budget_and_stays_direct() {
    let up = TestUpstream::named("up").await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin_with("spin", FIXTURE_SPIN, json!({"timeout_ms": 50}))
        .plugin("add-header", ADD_HEADER)
        .route(Route::path("spin", "/spin").upstream("up").stage("spin", Value::Null))
        .route(Route::path("ok", "/ok").upstream("up").stage("add-header", json!({})));
    let gw = TestGateway::start(&config.to_string()).await;
    assert_eq!(call_path(&gw.admin, "spin").await, "direct");

    let spinning = get_in_background(&gw.client, "/spin");
    for _ in 0..5 {
        assert_eq!(gw.client.get("/ok").await.status, 200, "the other worker keeps serving");
    }
    let reply = spinning.await.unwrap();
    assert_eq!(reply.plugin_problem(500, "spin"), "plugin spin exceeded its time limit of 50ms");
    assert_eq!(call_path(&gw.admin, "spin").await, "direct", "a loop is not a wait");
    assert_eq!(up.count(), 5, "only the healthy route reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_waits_while_configuring_is_called_asynchronously() {
    let up = TestUpstream::named("up").await;
    // A configure step never blocks its thread (a reload past its deadline
    // must be able to drop it): the wait makes the instance asynchronous.
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("sleeper", FIXTURE_SLEEPER)
        .route(
            Route::path("slow-start", "/slow-start").upstream("up").stage("sleeper", json!({"configure_sleep_ms": 20})),
        )
        .route(Route::path("calls", "/calls").stage("sleeper", json!({"report_calls": true})));
    let gw = TestGateway::start(&config.to_string()).await;
    assert_eq!(call_path(&gw.admin, "slow-start").await, "async");
    assert_eq!(call_path(&gw.admin, "calls").await, "direct");
    let reply = gw.client.get("/slow-start").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "up GET /slow-start");
    assert_eq!(gw.client.get("/calls").await.text(), "1");
}

fn fanout(name: &str, path: &str, timeout_ms: u32) -> Route {
    let calls = json!([{"upstream": "up", "path": path, "timeout_ms": timeout_ms}]);
    Route::path(name, &format!("/{name}")).stage("fanout", json!({ "calls": calls }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_that_fetches_on_every_call_moves_to_the_asynchronous_path() {
    let up = TestUpstream::start(|s| Answer::new(200, format!("up:{}", s.uri))).await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("fanout", FIXTURE_FANOUT)
        .route(fanout("fan", "/one", 3000))
        .route(fanout("other", "/two", 3000));
    let gw = TestGateway::start(&config.to_string()).await;

    // The first fetch happens on the direct path; the second, soon after,
    // too, and moves the use; the third is asynchronous. All answer.
    for (round, expected) in [(1, "direct"), (2, "async"), (3, "async")] {
        let reply = gw.client.get("/fan").await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.text());
        assert_eq!(reply.json(), json!([{"status": 200, "body": "up:/one"}]), "round {round}");
        assert_eq!(call_path(&gw.admin, "fan").await, expected, "round {round}");
    }
    let reply = gw.client.get("/other").await;
    assert_eq!(reply.json(), json!([{"status": 200, "body": "up:/two"}]));
    assert_eq!(call_path(&gw.admin, "other").await, "direct", "one fetch is not often");
    assert_eq!(up.count(), 4);
}

// One worker: were the fetch to block it, the other route would not be
// served until the fetch ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_direct_fetch_hands_its_thread_over_and_ends_at_the_wall_deadline() {
    let up = TestUpstream::start(|s| match s.uri.as_str() {
        "/slow" => Answer::new(200, "late").delay(Duration::from_secs(30)),
        _ => Answer::new(200, "quick"),
    })
    .await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin_with("fanout", FIXTURE_FANOUT, json!({"wall_timeout_ms": 1500}))
        .plugin("add-header", ADD_HEADER)
        .route(fanout("slow", "/slow", 20_000))
        .route(Route::path("ok", "/ok").upstream("up").stage("add-header", json!({})));
    let gw = TestGateway::start(&config.to_string()).await;
    assert_eq!(call_path(&gw.admin, "slow").await, "direct");

    let waiting = get_in_background(&gw.client, "/slow");
    while up.count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..3 {
        assert_eq!(gw.client.get("/ok").await.text(), "quick");
    }
    assert!(!waiting.is_finished(), "the other route was served while the fetch waited");
    let reply = waiting.await.unwrap();
    assert_eq!(reply.plugin_problem(500, "fanout"), "plugin fanout did not finish within its wall-clock limit of 1.5s");
    assert_eq!(call_path(&gw.admin, "slow").await, "direct", "one fetch is not often");
}

// A single-threaded runtime has no thread to hand a waiting one's tasks to.
#[tokio::test]
async fn on_one_thread_a_plugin_that_can_fetch_is_called_asynchronously() {
    let up = TestUpstream::start(|s| Answer::new(200, format!("up:{}", s.uri))).await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("fanout", FIXTURE_FANOUT)
        .plugin("add-header", ADD_HEADER)
        .route(fanout("fan", "/one", 3000))
        .route(Route::path("header", "/header").upstream("up").stage("add-header", json!({"request": {"x-a": "1"}})));
    let gw = TestGateway::start(&config.to_string()).await;
    assert_eq!(call_path(&gw.admin, "fan").await, "async");
    assert_eq!(call_path(&gw.admin, "header").await, "direct");
    assert_eq!(gw.client.get("/fan").await.json(), json!([{"status": 200, "body": "up:/one"}]));
}
