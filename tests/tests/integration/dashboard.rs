//! The admin dashboard in a real browser (headless Chromium): after known
//! traffic and a failed reload, the page shows each route's plugin stages,
//! each target's state (and the DNS name of one written as a name) and the
//! reload's error. A screenshot of it is saved
//! as target/dashboard.png.

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::dns::TestDns;
use wasmgate_testbed::plugins::ADD_HEADER;
use wasmgate_testbed::{TestGateway, TestUpstream, browser, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_stages_targets_and_a_failed_reload() {
    let up = TestUpstream::named("users").await;
    // A target nobody listens on: active checks mark it unhealthy.
    let (_held, dead) = wasmgate_testbed::closed_port();
    let health = json!({ "path": "/", "interval_ms": 50, "unhealthy_threshold": 1 });
    // And the dead port by a DNS name, on another loopback address.
    let dns = TestDns::start().await;
    dns.set("spare.wasmgate.test", &["127.0.0.2"]);
    let by_name = format!("spare.wasmgate.test:{}", dead.port());
    let config = GatewayConfig::new()
        .upstream_with("users", json!({ "targets": [up.target(), dead.to_string(), by_name], "health": health }))
        .plugin("add-header", ADD_HEADER)
        .route(Route::prefix("users", "/users").upstream("users").stage("add-header", Value::Null));
    let gw = TestGateway::start(&format!("{config}\n{}", dns.section())).await;
    eventually("the dead target is found unhealthy", || async {
        let status = gw.admin.get("/status").await.json();
        status["upstreams"]["users"].as_array().unwrap().iter().any(|t| t["state"] == "unhealthy")
    })
    .await;
    for _ in 0..5 {
        assert_eq!(gw.client.get("/users/1").await.status, 200);
    }
    let config_file = gw.config_dir().join("gateway.toml");
    let good = std::fs::read_to_string(&config_file).unwrap();
    std::fs::write(&config_file, format!("{good}\n[upstreams.broken]\ntargets = []\n")).unwrap();
    gw.admin.send(Method::POST, "/reload", &[], "").await.problem(422);

    let url = format!("http://{}/", gw.admin_addr);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || browser::rendered_dom(&url)
    })
    .await
    .unwrap();
    assert!(dom.contains(r#"data-ready="true""#), "the page loaded its data: {dom}");
    // Five requests, each through the stage's request phase (without
    // response headers to add, add-header asks for no response phase).
    let stage = element(&dom, r#"class="stage" data-route="users" data-plugin="add-header""#);
    assert!(stage.contains("5 calls · 0 errors · p50 "), "{stage}");
    assert!(!stage.contains("p50 –"), "a latency from the histogram: {stage}");
    let live = element(&dom, &format!(r#"data-target="{}""#, up.target()));
    assert!(live.contains(r#"class="badge up""#), "{live}");
    let down = element(&dom, &format!(r#"data-target="{dead}""#));
    assert!(down.contains(r#"class="badge unhealthy""#), "{down}");
    assert!(!down.contains("wasmgate.test"), "a target written as an address has no name: {down}");
    let named = element(&dom, &format!(r#"data-target="127.0.0.2:{}""#, dead.port()));
    assert!(named.contains("spare.wasmgate.test"), "the name the address came from: {named}");
    assert!(dom.contains(r#"class="badge failed""#), "the failed reload is listed: {dom}");
    assert!(dom.contains("upstreams.broken.targets"), "with its error: {dom}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../dashboard.png");
    tokio::task::spawn_blocking(move || browser::screenshot(&url, &shot, 1280, 1100)).await.unwrap();
}

/// The element that starts with `attrs`, up to its row's or stage's end.
fn element<'a>(dom: &'a str, attrs: &str) -> &'a str {
    let start = dom.find(attrs).unwrap_or_else(|| panic!("no element with {attrs} in {dom}"));
    let rest = &dom[start..];
    let end = [rest.find("</tr>"), rest.find("</div></div>")].into_iter().flatten().min().unwrap_or(rest.len());
    &rest[..end]
}
