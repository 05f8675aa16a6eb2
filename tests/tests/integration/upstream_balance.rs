//! Load balancing across real targets: weights, consistent hashing (and
//! what moves when a target goes away), least request.

use std::collections::HashMap;
use std::time::Duration;

use crate::upstream_common::{named, restart, served_by};
use http::Method;
use serde_json::json;
use wasmgate_testbed::config::proxy_all;
use wasmgate_testbed::eventually;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test]
async fn weighted_targets_get_proportional_shares() {
    let light = TestUpstream::named("light").await;
    let heavy = TestUpstream::named("heavy").await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.w]
targets = ["{}", {{ addr = "{}", weight = 3 }}]
balance = "weighted"

[[routes]]
name = "all"
prefix = "/"
upstream = "w"
"#,
        light.target(),
        heavy.target()
    ))
    .await;

    for _ in 0..400 {
        gw.client.get("/x").await;
    }
    let (l, h) = (light.count(), heavy.count());
    assert_eq!(l + h, 400);
    assert!((80..=120).contains(&l), "1:3 of 400 is 100:300, got {l}:{h}");
}

async fn who_serves(gw: &TestGateway, keys: &[String]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for key in keys {
        let reply = gw.client.send(Method::GET, "/x", &[("x-user-id", key)], "").await;
        map.insert(key.clone(), served_by(&reply));
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hashing_is_sticky_and_moves_only_the_lost_targets_keys() {
    let a = TestUpstream::named("a").await;
    let b = TestUpstream::named("b").await;
    let c = TestUpstream::named("c").await;
    let b_addr = b.addr;
    let ring = json!({
        "targets": [a.target(), b.target(), c.target()],
        "balance": "hash",
        "hash_on": "header:x-user-id",
        "health": {"interval_ms": 50, "healthy_threshold": 1, "unhealthy_threshold": 1},
    });
    let gw = TestGateway::start(&proxy_all("ring", ring).to_string()).await;

    let keys: Vec<String> = (0..90).map(|i| format!("user-{i}")).collect();
    let first = who_serves(&gw, &keys).await;
    assert_eq!(first, who_serves(&gw, &keys).await, "the same key goes to the same target");
    let on_b: Vec<&String> = keys.iter().filter(|k| first[*k] == "b").collect();
    for name in ["a", "b", "c"] {
        let n = first.values().filter(|v| *v == name).count();
        assert!((10..=60).contains(&n), "{name} has {n} of 90 keys: {first:?}");
    }

    drop(b);
    eventually("b is out of the ring", || async {
        let reply = gw.client.send(Method::GET, "/x", &[("x-user-id", on_b[0])], "").await;
        served_by(&reply) != "b"
    })
    .await;
    let without_b = who_serves(&gw, &keys).await;
    for key in &keys {
        if first[key] == "b" {
            assert_ne!(without_b[key], "b");
        } else {
            assert_eq!(without_b[key], first[key], "{key} moved though its target stayed");
        }
    }

    let _b2 = restart(b_addr, named("b")).await;
    eventually("b is back in the ring", || async {
        let reply = gw.client.send(Method::GET, "/x", &[("x-user-id", on_b[0])], "").await;
        served_by(&reply) == "b"
    })
    .await;
    assert_eq!(who_serves(&gw, &keys).await, first, "b's keys came back to it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_prefers_the_idle_target() {
    let slow = TestUpstream::start(|_| Answer::new(200, "slow").delay(Duration::from_secs(1))).await;
    let fast = TestUpstream::start(|_| Answer::new(200, "fast")).await;
    let gw = TestGateway::start(&format!(
        r#"
[upstreams.lr]
targets = ["{}", "{}"]
balance = "least-request"

[[routes]]
name = "all"
prefix = "/"
upstream = "lr"
"#,
        slow.target(),
        fast.target()
    ))
    .await;

    // A request arrives every 10 ms without waiting for the earlier ones.
    // `slow` holds each of its requests for a second, so it stays busier
    // than `fast` and is only chosen when `fast` is at least as busy; round
    // robin would give it half (20).
    let mut requests = Vec::new();
    for _ in 0..40 {
        let client = gw.client.clone();
        requests.push(tokio::spawn(async move { client.get("/x").await.status }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(slow.count() + fast.count(), 40);
    assert!(slow.count() < 10, "slow served {} of 40", slow.count());
}
