//! Retries: which failures and methods are tried again, on which target,
//! within which budget, and the timeouts that end it all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::upstream_common::{Blackhole, served_by};
use http::Method;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

fn route(upstream: &str) -> String {
    format!("[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"{upstream}\"\n")
}

#[tokio::test]
async fn a_target_that_fails_once_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let once = TestUpstream::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 { Answer::new(503, "busy") } else { Answer::new(200, "ok") }
    })
    .await;
    let gw =
        TestGateway::start(&format!("[upstreams.once]\ntargets = [\"{}\"]\n{}", once.target(), route("once"))).await;

    let reply = gw.client.get("/x").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "ok");
    assert_eq!(once.count(), 2);
}

#[tokio::test]
async fn post_is_not_retried_after_the_upstream_saw_it() {
    let busy = TestUpstream::start(|_| Answer::new(503, "busy")).await;
    let gw = TestGateway::start(&format!(
        "[upstreams.busy]\ntargets = [\"{}\"]\noutlier = {{ enabled = false }}\n{}",
        busy.target(),
        route("busy")
    ))
    .await;

    let reply = gw.client.send(Method::POST, "/orders", &[], "new order").await;
    assert_eq!(reply.status, 503, "the upstream's own answer");
    assert_eq!(reply.text(), "busy");
    assert_eq!(busy.count(), 1, "POST is not idempotent");

    assert_eq!(gw.client.get("/orders").await.status, 503);
    assert_eq!(busy.count(), 3, "GET is retried once");
}

#[tokio::test]
async fn any_method_is_retried_elsewhere_when_the_connection_failed() {
    let live = TestUpstream::named("live").await;
    let gw = TestGateway::start(&format!(
        // Every other request starts on the closed port.
        "[upstreams.half]\ntargets = [\"127.0.0.1:1\", \"{}\"]\noutlier = {{ enabled = false }}\nretries = {{ budget_percent = 100 }}\n{}",
        live.target(),
        route("half")
    ))
    .await;

    for i in 0..4 {
        let body = format!("order {i}");
        let reply = gw.client.send(Method::POST, "/orders", &[], body.clone()).await;
        assert_eq!(served_by(&reply), "live");
        assert_eq!(live.seen()[i].body, body.as_bytes(), "the streamed body arrives whole");
    }
    assert_eq!(live.count(), 4);
}

#[tokio::test]
async fn a_retry_goes_to_another_target() {
    let bad = TestUpstream::start(|_| Answer::new(503, "bad")).await;
    let good = TestUpstream::named("good").await;
    let gw = TestGateway::start(&format!(
        "[upstreams.two]\ntargets = [\"{}\", \"{}\"]\noutlier = {{ enabled = false }}\nretries = {{ budget_percent = 100 }}\n{}",
        bad.target(),
        good.target(),
        route("two")
    ))
    .await;

    for _ in 0..10 {
        assert_eq!(served_by(&gw.client.get("/x").await), "good");
    }
    assert_eq!(good.count(), 10);
    assert_eq!(bad.count(), 5, "round robin starts every other request on `bad`; its retry goes to `good`");
}

#[tokio::test]
async fn the_budget_caps_retries_in_a_full_outage() {
    let down = TestUpstream::start(|_| Answer::new(503, "down")).await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.down]
targets = ["{}"]
outlier = {{ enabled = false }}
retries = {{ attempts = 3, backoff_ms = 1, max_backoff_ms = 2, budget_percent = 20, min_per_second = 3 }}
{}"#,
        down.target(),
        route("down")
    ))
    .await;

    const N: usize = 50;
    let start = Instant::now();
    for _ in 0..N {
        assert_eq!(gw.client.get("/x").await.status, 503);
    }
    let seconds = start.elapsed().as_secs_f64().ceil() as usize;
    let hits = down.count();
    // Without a budget: 3 tries each, 150. With it: 20% of the requests,
    // plus the reserve of 3 per second (a bucket of one second's worth).
    assert!(hits <= N + N * 20 / 100 + 3 * (1 + seconds), "{hits} hits for {N} requests in ≤{seconds}s");
    assert!(hits > N, "some retries were allowed: {hits}");
}

#[tokio::test]
async fn per_try_timeouts_are_retried_then_504() {
    let slow_a = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(3))).await;
    let slow_b = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(3))).await;
    let gw = TestGateway::start(&format!(
        "[upstreams.slow]\ntargets = [\"{}\", \"{}\"]\ntry_timeout_ms = 100\ntimeout_ms = 2000\n{}",
        slow_a.target(),
        slow_b.target(),
        route("slow")
    ))
    .await;

    let detail = gw.client.get("/x").await.problem(504);
    assert!(detail.contains("slow") && detail.contains("100ms"), "{detail}");
    assert_eq!((slow_a.count(), slow_b.count()), (1, 1), "one try on each");
}

#[tokio::test]
async fn a_per_try_timeout_fails_over_to_a_fast_target() {
    let slow = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(3))).await;
    let fast = TestUpstream::named("fast").await;
    let gw = TestGateway::start(&format!(
        "[upstreams.mixed]\ntargets = [\"{}\", \"{}\"]\ntry_timeout_ms = 150\n{}",
        slow.target(),
        fast.target(),
        route("mixed")
    ))
    .await;

    // Round robin starts on `slow`.
    assert_eq!(served_by(&gw.client.get("/x").await), "fast");
    assert_eq!((slow.count(), fast.count()), (1, 1));
}

#[tokio::test]
async fn connect_timeouts_are_retried_then_504() {
    let hole = Blackhole::new().await;
    let live = TestUpstream::named("live").await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.hole]
targets = ["{hole}"]
connect_timeout_ms = 100

[upstreams.mixed]
targets = ["{hole}", "{live}"]
connect_timeout_ms = 100
outlier = {{ enabled = false }}

[[routes]]
name = "hole"
prefix = "/hole"
upstream = "hole"

[[routes]]
name = "mixed"
prefix = "/mixed"
upstream = "mixed"
"#,
        hole = hole.addr,
        live = live.target()
    ))
    .await;

    let detail = gw.client.get("/hole").await.problem(504);
    assert!(detail.contains("hole") && detail.contains("100ms"), "{detail}");
    // Round robin starts on the black hole; the retry reaches `live`, POST too
    // (the upstream never saw it).
    let reply = gw.client.send(Method::POST, "/mixed", &[], "body").await;
    assert_eq!(served_by(&reply), "live");
    assert_eq!(live.count(), 1);
}

#[tokio::test]
async fn the_request_deadline_bounds_all_tries() {
    let slow = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(3))).await;
    let gw = TestGateway::start(&format!(
        "[upstreams.slow]\ntargets = [\"{}\"]\ntimeout_ms = 200\nretries = {{ attempts = 5 }}\n{}",
        slow.target(),
        route("slow")
    ))
    .await;

    let detail = gw.client.get("/x").await.problem(504);
    assert!(detail.contains("200ms"), "{detail}");
    assert_eq!(slow.count(), 1, "no time was left for another try");
}
