//! The plugin breaker: a plugin use that keeps failing is quarantined, its
//! calls answered by the route's failure policy without running, until a
//! probe call after the cool-down shows it behaves again.

use http::Method;
use wasmgate_testbed::plugins::FIXTURE_SLEEPER;
use wasmgate_testbed::{Client, Reply, TestGateway, TestUpstream, eventually};

/// The sleeper loops (and hits its 20 ms CPU budget) on requests marked
/// with `x-misbehave`, and passes the others; `/calls` answers how many
/// on-request calls of the sleeper actually ran.
async fn gateway(up: &TestUpstream) -> TestGateway {
    TestGateway::start(&format!(
        r#"
[upstreams.up]
targets = ["{}"]
[plugins.sleeper]
path = "{FIXTURE_SLEEPER}"
timeout_ms = 20
breaker = {{ failure_threshold = 3, window_ms = 60000, open_ms = 1000 }}
[[routes]]
name = "guarded"
path = "/guarded"
upstream = "up"
pipeline = [{{ plugin = "sleeper", config = {{ spin = true, only_with_header = "x-misbehave" }} }}]
[[routes]]
name = "enriched"
path = "/enriched"
upstream = "up"
pipeline = [{{ plugin = "sleeper", config = {{ spin = true, only_with_header = "x-misbehave" }}, on_error = "fail-open" }}]
[[routes]]
name = "calls"
path = "/calls"
pipeline = [{{ plugin = "sleeper", config = {{ report_calls = true }} }}]
"#,
        up.target()
    ))
    .await
}

async fn misbehave(client: &Client, path: &str) -> Reply {
    client.send(Method::GET, path, &[("x-misbehave", "1")], "").await
}

async fn calls(client: &Client) -> u64 {
    client.get("/calls").await.text().parse().expect("a count")
}

/// The breaker of the plugin use on `route`, from `/status`.
async fn breaker(admin: &Client, route: &str) -> serde_json::Value {
    let status = admin.get("/status").await.json();
    let uses = status["plugin_uses"].as_array().expect("plugin_uses").clone();
    uses.into_iter().find(|u| u["route"] == route).expect("the route's plugin use")["breaker"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_is_quarantined_then_probed_back() {
    let up = TestUpstream::named("up").await;
    let gw = gateway(&up).await;
    let quarantined = "plugin sleeper is quarantined after repeated failures";

    for _ in 0..3 {
        let detail = misbehave(&gw.client, "/guarded").await.problem(500);
        assert_eq!(detail, "plugin sleeper exceeded its time limit of 20ms");
    }
    assert_eq!(calls(&gw.client).await, 3);
    let b = breaker(&gw.admin, "guarded").await;
    assert_eq!((b["state"].as_str(), b["opened"].as_u64()), (Some("open"), Some(1)), "{b}");

    // Quarantined: even a request the plugin would pass is answered at once,
    // without running it.
    let reply = gw.client.get("/guarded").await;
    assert_eq!(reply.problem(503), quarantined);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(calls(&gw.client).await, 3, "the plugin did not run");
    assert_eq!(up.count(), 0);
    assert_eq!(breaker(&gw.admin, "guarded").await["short_circuited"], 1);

    // After the cool-down, a probe that fails opens it again for a full one.
    eventually("the cool-down ends", || async { breaker(&gw.admin, "guarded").await["state"] == "half-open" }).await;
    misbehave(&gw.client, "/guarded").await.problem(500);
    let b = breaker(&gw.admin, "guarded").await;
    assert_eq!((b["state"].as_str(), b["opened"].as_u64()), (Some("open"), Some(2)), "{b}");
    assert_eq!(gw.client.get("/guarded").await.problem(503), quarantined);
    assert_eq!(calls(&gw.client).await, 4, "only the probe ran");

    // Once the plugin behaves, the probe closes it.
    eventually("the cool-down ends", || async { breaker(&gw.admin, "guarded").await["state"] == "half-open" }).await;
    let reply = gw.client.get("/guarded").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "up GET /guarded");
    assert_eq!(
        breaker(&gw.admin, "guarded").await,
        serde_json::json!({"state": "closed", "opened": 2, "short_circuited": 2})
    );
    assert_eq!(gw.client.get("/guarded").await.status, 200);
    assert_eq!(calls(&gw.client).await, 6);

    // Each route's use has its own breaker.
    assert_eq!(breaker(&gw.admin, "enriched").await["state"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_fail_open_plugin_is_skipped() {
    let up = TestUpstream::named("up").await;
    let gw = gateway(&up).await;
    for _ in 0..3 {
        let reply = misbehave(&gw.client, "/enriched").await;
        assert_eq!((reply.status, reply.text()), (200, "up GET /enriched".to_owned()));
    }
    assert_eq!(breaker(&gw.admin, "enriched").await["state"], "open");

    let reply = misbehave(&gw.client, "/enriched").await;
    assert_eq!((reply.status, reply.text()), (200, "up GET /enriched".to_owned()));
    assert_eq!(calls(&gw.client).await, 3, "passed on without running the plugin");
    assert_eq!(up.count(), 4);
    assert_eq!(breaker(&gw.admin, "enriched").await["short_circuited"], 1);
}
