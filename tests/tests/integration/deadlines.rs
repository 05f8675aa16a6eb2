//! Wall-clock deadlines: a plugin that sleeps (no wasm runs, so its CPU
//! budget never fires) fails its own call at its wall deadline (counted
//! from when the call has its instance), a configure step that never
//! finishes fails the load naming the plugin and route, and no reload can
//! wedge the ones after it.

use std::path::Path;

use serde_json::json;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::files::replace_atomically;
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::{FIXTURE_RESPOND, FIXTURE_SLEEPER};
use wasmgate_testbed::{Client, TestGateway, TestUpstream, eventually};

/// An hour: longer than any test runs, and than any other limit involved.
const HOUR_MS: u64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_call_is_answered_at_its_wall_deadline() {
    let up = TestUpstream::named("up").await;
    let sleeper = |name: &str, on_error: &str| {
        let stage = json!({"config": {"sleep_ms": HOUR_MS}, "on_error": on_error});
        Route::path(name, &format!("/{name}")).upstream("up").stage_with("sleeper", stage)
    };
    let config = GatewayConfig::new()
        // Without a wall deadline the request would end here, as a 504.
        .section("server", json!({"request_timeout_ms": 20000}))
        .upstream("up", &up)
        .plugin_with("sleeper", FIXTURE_SLEEPER, json!({"wall_timeout_ms": 300}))
        .route(sleeper("closed", "fail-closed"))
        .route(sleeper("open", "fail-open"));
    let gw = TestGateway::start(&config.to_string()).await;

    // Twice: the instance cut off at the deadline is dropped, and a fresh
    // one meets the same end.
    for _ in 0..2 {
        let detail = gw.client.get("/closed").await.problem(500);
        assert_eq!(detail, "plugin sleeper did not finish within its wall-clock limit of 300ms");
    }
    assert_eq!(up.count(), 0, "a fail-closed route sends nothing upstream");

    let reply = gw.client.get("/open").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "up GET /open", "fail-open passes the request on");
}

/// The wall deadline starts when the call has its instance: a call that
/// waited for the plugin's only one (its queue has a timeout of its own)
/// still gets the whole of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_waited_for_its_instance_gets_its_whole_wall_time() {
    let up = TestUpstream::named("up").await;
    let stage = json!({"config": {"sleep_ms": 400}});
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin_with("sleeper", FIXTURE_SLEEPER, json!({"wall_timeout_ms": 700, "max_instances": 1}))
        .route(Route::path("slow", "/slow").upstream("up").stage_with("sleeper", stage));
    let gw = TestGateway::start(&config.to_string()).await;

    // One of the two waits about 400 ms for the instance, then sleeps
    // 400 ms: 800 ms after it reached the plugin, 400 ms after it got it.
    let (first, second) = tokio::join!(gw.client.get("/slow"), gw.client.get("/slow"));
    for reply in [first, second] {
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), "up GET /slow");
    }
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn a_configure_step_that_never_finishes_fails_the_load() {
    let (errors, file) = refused(&format!(
        r#"
[plugins.sleeper]
path = "{FIXTURE_SLEEPER}"
configure_timeout_ms = 300
[[routes]]
name = "sleepy"
path = "/"
pipeline = [{{ plugin = "sleeper", config = {{ configure_sleep_ms = {HOUR_MS} }} }}]
"#
    ))
    .await;
    assert_eq!(
        errors,
        vec![format!(
            "{file}:8:13: routes[0].pipeline[0]: route \"sleepy\": plugin sleeper did not finish configuring within 300 ms"
        )]
    );
}

/// A site whose config file the test edits as an operator would.
struct Site {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Site {
    fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Self { config: dir.path().join("gateway.toml"), _dir: dir };
        std::fs::write(&site.config, toml).unwrap();
        site
    }

    fn write(&self, toml: &str) {
        replace_atomically(Path::new(&self.config), toml.as_bytes());
    }
}

/// `/a` answered by the respond fixture with `body`; `extra` appended.
fn config(runtime: &str, body: &str, extra: &str) -> String {
    format!(
        r#"
[runtime]
{runtime}
[plugins.respond]
path = "{FIXTURE_RESPOND}"
[plugins.sleeper]
path = "{FIXTURE_SLEEPER}"
configure_timeout_ms = 300
[[routes]]
name = "a"
path = "/a"
pipeline = [{{ plugin = "respond", config = {{ status = 200, body = "{body}" }} }}]
{extra}
"#
    )
}

/// A route whose plugin never finishes configuring.
const STUCK_ROUTE: &str = r#"
[[routes]]
name = "stuck"
path = "/stuck"
pipeline = [{ plugin = "sleeper", config = { configure_sleep_ms = 3600000 } }]
"#;

async fn reload_status(admin: &Client) -> serde_json::Value {
    admin.get("/status").await.json()["reload"].clone()
}

async fn generation(admin: &Client) -> u64 {
    reload_status(admin).await["generation"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_stuck_in_configure_fails_and_the_next_edit_applies() {
    let site = Site::new(&config("", "one", ""));
    let gw = TestGateway::start_at(&site.config).await;
    assert_eq!(gw.client.get("/a").await.text(), "one");

    site.write(&config("", "two", STUCK_ROUTE));
    eventually("the reload fails", || async { reload_status(&gw.admin).await["failures"] == 1 }).await;
    let status = reload_status(&gw.admin).await;
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("route \"stuck\": plugin sleeper did not finish configuring within 300 ms"), "{error}");
    assert_eq!(status["generation"], 1);
    assert_eq!(gw.client.get("/a").await.text(), "one", "the last good config keeps serving");

    site.write(&config("", "three", ""));
    eventually("the next edit is applied", || async { generation(&gw.admin).await == 2 }).await;
    assert_eq!(gw.client.get("/a").await.text(), "three");
    assert!(reload_status(&gw.admin).await["last_error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_past_its_deadline_is_abandoned_and_the_next_edit_applies() {
    // The configure deadline is an hour here: only the reload's own
    // deadline can end the stuck reload.
    let runtime = "reload_timeout_ms = 1000\nconfigure_timeout_ms = 3600000";
    let site = Site::new(&config(runtime, "one", ""));
    let gw = TestGateway::start_at(&site.config).await;
    let stuck = config(runtime, "two", STUCK_ROUTE).replace("configure_timeout_ms = 300\n", "");

    // Written without the watcher noticing first: the admin call below is
    // what runs it, and it answers by the deadline.
    std::fs::write(&site.config, &stuck).unwrap();
    let reply = gw.admin.send(http::Method::POST, "/reload", &[], "").await;
    let detail = reply.problem(504);
    assert_eq!(
        detail,
        "reload abandoned: not finished within 1000 ms (runtime.reload_timeout_ms); the previous config keeps serving"
    );
    // The watcher may run the same stuck reload again: it is abandoned too.
    let status = reload_status(&gw.admin).await;
    assert_eq!(status["last_error"].as_str(), Some(detail.as_str()));
    assert_eq!(status["generation"], 1);
    assert_eq!(gw.client.get("/a").await.text(), "one", "the last good config keeps serving");

    site.write(&config(runtime, "three", ""));
    eventually("the next edit is applied", || async { generation(&gw.admin).await == 2 }).await;
    assert_eq!(gw.client.get("/a").await.text(), "three");
    assert!(reload_status(&gw.admin).await["last_error"].is_null());
}
