//! The per-target circuit breaker: a flapping target trips it, requests
//! then fail fast without reaching the target, and half-open probes decide
//! when it closes again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmgate_testbed::eventually;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_target_trips_the_breaker_and_recovers_through_half_open() {
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let flaky = TestUpstream::start(move |_| {
        if flag.load(Ordering::SeqCst) { Answer::new(500, "down") } else { Answer::new(200, "up") }
    })
    .await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.flaky]
targets = ["{}"]
retries = {{ attempts = 1 }}
failure_statuses = [500]
outlier = {{ enabled = false }}
[upstreams.flaky.breaker]
failure_threshold = 3
open_ms = 1000
half_open_probes = 1

[[routes]]
name = "all"
prefix = "/"
upstream = "flaky"
"#,
        flaky.target()
    ))
    .await;

    for _ in 0..3 {
        assert_eq!(gw.client.get("/x").await.status, 500);
    }
    assert_eq!(flaky.count(), 3);

    // Open: fail fast, nothing reaches the target.
    for _ in 0..5 {
        let reply = gw.client.get("/x").await;
        let detail = reply.problem(503);
        assert!(detail.contains("flaky") && detail.contains("circuit breaker"), "{detail}");
        let retry_after: u64 = reply.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=1).contains(&retry_after), "seconds until half-open: {retry_after}");
    }
    assert_eq!(flaky.count(), 3, "the open breaker sent nothing");

    // Half-open: one probe goes through, still failing: open again.
    eventually("a probe reaches the target", || async {
        let status = gw.client.get("/x").await.status;
        assert!(status == 503 || status == 500, "{status}");
        flaky.count() == 4
    })
    .await;
    gw.client.get("/x").await.problem(503);
    assert_eq!(flaky.count(), 4, "the failed probe reopened the breaker");

    // The target recovers: the next probe closes the breaker.
    failing.store(false, Ordering::SeqCst);
    eventually("the breaker closes", || async { gw.client.get("/x").await.status == 200 }).await;
    assert_eq!(flaky.count(), 5, "exactly one more probe");
    for _ in 0..10 {
        assert_eq!(gw.client.get("/x").await.status, 200);
    }
    assert_eq!(flaky.count(), 15, "closed: everything goes through");
}

#[tokio::test]
async fn an_open_breaker_moves_traffic_to_the_other_targets() {
    let bad = TestUpstream::start(|_| Answer::new(502, "bad")).await;
    let good = TestUpstream::named("good").await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.two]
targets = ["{}", "{}"]
failure_statuses = [502]
outlier = {{ enabled = false }}
breaker = {{ failure_threshold = 2, open_ms = 60000 }}

[[routes]]
name = "all"
prefix = "/"
upstream = "two"
"#,
        bad.target(),
        good.target()
    ))
    .await;

    for _ in 0..20 {
        // A 502 is retried on the other target: every request succeeds.
        assert_eq!(gw.client.get("/x").await.status, 200);
    }
    assert_eq!(bad.count(), 2, "open after two failures, then skipped");
    assert_eq!(good.count(), 20);
}

/// Two targets serving `/bad` with `bad_status` and anything else with
/// 200, behind routes `bad` (`/bad`) and `good` (the rest).
async fn two_routes(bad_status: u16, failure_statuses: &str) -> (TestGateway, [TestUpstream; 2]) {
    let target =
        || TestUpstream::start(move |seen| Answer::new(if seen.uri == "/bad" { bad_status } else { 200 }, "x"));
    let (a, b) = (target().await, target().await);
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.two]
targets = ["{}", "{}"]
retries = {{ attempts = 1 }}
failure_statuses = {failure_statuses}
breaker = {{ failure_threshold = 3, open_ms = 60000 }}

[[routes]]
name = "bad"
path = "/bad"
upstream = "two"

[[routes]]
name = "good"
prefix = "/"
upstream = "two"
"#,
        a.target(),
        b.target()
    ))
    .await;
    (gw, [a, b])
}

/// Runs 100 requests to `/bad`, 10 at a time, while one client asks for
/// `/good` after each batch: the statuses `/good` got.
async fn bad_route_under_load(gw: &TestGateway) -> Vec<u16> {
    let mut good = Vec::new();
    for _ in 0..10 {
        let batch: Vec<_> = (0..10)
            .map(|_| {
                let client = gw.client.clone();
                tokio::spawn(async move { client.get("/bad").await.status })
            })
            .collect();
        good.push(gw.client.get("/good").await.status);
        for task in batch {
            task.await.unwrap();
        }
    }
    good
}

fn breakers(status: &serde_json::Value) -> Vec<String> {
    let targets = status["upstreams"]["two"].as_array().expect("two's targets").clone();
    targets.iter().map(|t| t["breaker"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_answering_503_does_not_take_the_upstream_out() {
    let (gw, _targets) = two_routes(503, "[]").await;
    let good = bad_route_under_load(&gw).await;
    assert!(good.iter().all(|s| *s == 200), "{good:?}");
    // An answer is a sign of life: nothing was taken out.
    let status = gw.admin.get("/status").await.json();
    assert_eq!(breakers(&status), ["closed", "closed"], "{status}");
    for t in status["upstreams"]["two"].as_array().unwrap() {
        assert_eq!((t["state"].as_str(), t["health"].as_str()), (Some("up"), Some("unchecked")), "{t}");
        assert!(t["ejected_ms"].is_null(), "{t}");
    }
    assert_eq!(gw.client.get("/good").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_statuses_open_at_most_half_the_breakers() {
    let (gw, _targets) = two_routes(500, "[500]").await;
    let good = bad_route_under_load(&gw).await;
    assert!(good.iter().all(|s| *s == 200), "the good route stays served: {good:?}");
    let status = gw.admin.get("/status").await.json();
    let mut open = breakers(&status);
    open.sort();
    assert_eq!(open, ["closed", "open"], "{status}");
    // The other target is neither ejected nor open: it serves both routes.
    let targets = status["upstreams"]["two"].as_array().unwrap();
    let serving: Vec<_> = targets.iter().filter(|t| t["breaker"] == "closed").collect();
    assert_eq!((serving[0]["state"].as_str(), serving[0]["ejected_ms"].is_null()), (Some("up"), true), "{status}");
    for _ in 0..10 {
        assert_eq!(gw.client.get("/good").await.status, 200);
        assert_eq!(gw.client.get("/bad").await.status, 500, "the application's answer, not a 503");
    }
}
