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
