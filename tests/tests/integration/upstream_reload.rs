//! What is known of upstream targets survives reloads: a dead target stays
//! out of rotation whether the reload changed nothing or changed the
//! upstream's other settings, and health checks go on from where they were.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Method;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream, closed_port, eventually};

/// The state `/status` shows for the upstream's first target.
async fn first_target_state(gw: &TestGateway, upstream: &str) -> String {
    let status = gw.admin.get("/status").await.json();
    status["upstreams"][upstream][0]["state"].as_str().unwrap_or_default().to_owned()
}

async fn reload(gw: &TestGateway) {
    let reply = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_dead_target_stays_out_of_rotation_across_reloads() {
    let (_held, dead) = closed_port();
    let dead = dead.to_string();
    let good = TestUpstream::named("good").await;
    let config = |timeout_ms: u32| {
        format!(
            r#"
[upstreams.two]
targets = ["{dead}", "{}"]
timeout_ms = {timeout_ms}
retries = {{ attempts = 1 }}
outlier = {{ consecutive_failures = 1, base_ejection_ms = 60000 }}

[[routes]]
name = "all"
prefix = "/"
upstream = "two"
"#,
            good.target()
        )
    };
    let gw = TestGateway::start(&config(30_000)).await;
    let path = gw.config_dir().join("gateway.toml");

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(gw.client.get("/").await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 502).count(), 1, "one failure ejects it: {statuses:?}");
    assert_eq!(first_target_state(&gw, "two").await, "ejected");

    let mut errors = 0;
    for i in 0..6 {
        // Every other reload changes the upstream, not its targets.
        if i % 2 == 1 {
            std::fs::write(&path, config(30_000 - i)).unwrap();
        }
        reload(&gw).await;
        assert_eq!(first_target_state(&gw, "two").await, "ejected", "right after reload {i}");
        for _ in 0..40 {
            errors += usize::from(gw.client.get("/").await.status != 200);
        }
    }
    assert_eq!(errors, 0, "requests that reached the dead target after a reload");
    assert_eq!(good.count(), 3 + 6 * 40);
}

#[tokio::test]
async fn health_checks_go_on_from_the_health_a_reload_carried_over() {
    let sick = Arc::new(AtomicBool::new(true));
    let flag = sick.clone();
    let up = TestUpstream::start(move |seen| {
        if seen.uri == "/healthz" && flag.load(Ordering::SeqCst) {
            Answer::new(500, "sick")
        } else {
            Answer::new(200, "ok")
        }
    })
    .await;
    let config = |timeout_ms: u32| {
        format!(
            r#"
[upstreams.one]
targets = ["{}"]
timeout_ms = {timeout_ms}
# A check at start, then none for a minute: the one after the reload
# is the new snapshot's first.
health = {{ interval_ms = 60000, healthy_threshold = 1, unhealthy_threshold = 1 }}

[[routes]]
name = "all"
prefix = "/"
upstream = "one"
"#,
            up.target()
        )
    };
    let gw = TestGateway::start(&config(30_000)).await;
    eventually("the target is unhealthy", || async { first_target_state(&gw, "one").await == "unhealthy" }).await;

    assert_eq!(gw.client.get("/").await.status, 503);

    // Recovered, and a reload that keeps the target: the first check passes,
    // which brings the carried unhealthy target back.
    sick.store(false, Ordering::SeqCst);
    std::fs::write(gw.config_dir().join("gateway.toml"), config(20_000)).unwrap();
    reload(&gw).await;
    eventually("the target is healthy again", || async { gw.client.get("/").await.status == 200 }).await;
}
