//! Targets that stop, fail and come back: active health checks, passive
//! outlier ejection, and the 503 when no target is left.

use crate::upstream_common::{named, restart, served_by, traffic};
use serde_json::json;
use wasmgate_testbed::config::proxy_all;
use wasmgate_testbed::eventually;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_leaves_a_stopped_target_and_returns_when_it_is_back() {
    let a = TestUpstream::named("a").await;
    let b = TestUpstream::named("b").await;
    let a_addr = a.addr;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.pair]
targets = ["{}", "{}"]
[upstreams.pair.health]
path = "/healthz"
interval_ms = 50
timeout_ms = 500
healthy_threshold = 2
unhealthy_threshold = 2

[[routes]]
name = "all"
prefix = "/"
upstream = "pair"
"#,
        a.target(),
        b.target()
    ))
    .await;

    let mut by = std::collections::HashMap::<String, usize>::new();
    for _ in 0..20 {
        *by.entry(served_by(&gw.client.get("/x").await)).or_default() += 1;
    }
    assert_eq!((by["a"], by["b"]), (10, 10), "round robin while both are up");

    drop(a);
    // Until the checker notices, a request to `a` fails over to `b` (connect
    // failures are retried): every request succeeds meanwhile.
    eventually("a is out of rotation", || async {
        let mut all_b = true;
        for _ in 0..10 {
            all_b &= served_by(&gw.client.get("/x").await) == "b";
        }
        all_b
    })
    .await;
    let before = traffic(&b);
    for _ in 0..20 {
        assert_eq!(served_by(&gw.client.get("/x").await), "b");
    }
    assert_eq!(traffic(&b), before + 20, "each request reached b once");

    let a2 = restart(a_addr, named("a2")).await;
    eventually("a is back in rotation", || async { served_by(&gw.client.get("/x").await) == "a2" }).await;
    let (a2_before, b_before) = (traffic(&a2), traffic(&b));
    for _ in 0..20 {
        gw.client.get("/x").await;
    }
    assert_eq!(traffic(&a2) - a2_before, 10, "a has its share again");
    assert_eq!(traffic(&b) - b_before, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_target_is_a_fast_503_with_retry_after() {
    let sick =
        TestUpstream::start(
            |seen| {
                if seen.uri == "/healthz" { Answer::new(500, "sick") } else { Answer::new(200, "served") }
            },
        )
        .await;
    let sick_upstream = json!({
        "targets": [sick.target()],
        "health": {"interval_ms": 50, "unhealthy_threshold": 1, "healthy_threshold": 1},
    });
    let gw = TestGateway::start(&proxy_all("sick", sick_upstream).to_string()).await;

    eventually("the only target is unhealthy", || async { gw.client.get("/x").await.status == 503 }).await;
    let served = traffic(&sick);
    for _ in 0..5 {
        let reply = gw.client.get("/x").await;
        let detail = reply.problem(503);
        assert!(detail.contains("sick"), "names the upstream: {detail}");
        let retry_after: u64 = reply.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!(retry_after >= 1);
    }
    assert_eq!(traffic(&sick), served, "nothing was sent to the unhealthy target");
    let status = gw.admin.get("/status").await.json();
    assert_eq!(status["upstreams"]["sick"][0]["state"], "unhealthy", "{status}");
    assert_eq!(status["upstreams"]["sick"][0]["addr"], sick.target());
}

#[tokio::test]
async fn consecutive_failures_eject_a_target() {
    let bad = TestUpstream::start(|_| Answer::new(500, "bad")).await;
    let good = TestUpstream::named("good").await;
    let gw = ejecting(&[&bad, &good], 3).await;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(gw.client.get("/x").await.status);
    }
    assert_eq!(bad.count(), 3, "ejected after its third failure in a row");
    assert_eq!(good.count(), 17);
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3, "{statuses:?}");
}

#[tokio::test]
async fn ejection_never_takes_more_than_its_share() {
    // Both targets fail, but at most 50% of them (one) may be ejected.
    let a = TestUpstream::start(|_| Answer::new(500, "a")).await;
    let b = TestUpstream::start(|_| Answer::new(500, "b")).await;
    let gw = ejecting(&[&a, &b], 2).await;

    for _ in 0..20 {
        assert_eq!(gw.client.get("/x").await.status, 500, "the upstream's answer, not a 503");
    }
    assert_eq!(a.count().min(b.count()), 2, "one was ejected after two failures");
    assert_eq!(a.count() + b.count(), 20);
}

/// Every path to an upstream of `targets`, without retries, that ejects a
/// target after `failures` failures (500 answers) in a row for a minute.
async fn ejecting(targets: &[&TestUpstream], failures: u32) -> TestGateway {
    let targets: Vec<String> = targets.iter().map(|t| t.target()).collect();
    let upstream = json!({
        "targets": targets,
        "retries": {"attempts": 1},
        "failure_statuses": [500],
        "outlier": {"consecutive_failures": failures, "base_ejection_ms": 60000},
    });
    TestGateway::start(&proxy_all("up", upstream).to_string()).await
}
