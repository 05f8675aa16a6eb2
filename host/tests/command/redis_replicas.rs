//! Gateway processes sharing their plugins' state through one real
//! redis-server: a limit holds across all of them, a value written through
//! one is read through another, and while Redis is away each
//! `on_unavailable` policy answers as documented.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{FIXTURE_KV, RATE_LIMIT};
use wasmgate_testbed::process::GatewayProcess;
use wasmgate_testbed::redis::TestRedis;
use wasmgate_testbed::{Answer, Client, Reply, TestUpstream, eventually};

const BOUND: Duration = Duration::from_secs(20);
const LIMIT: u64 = 20;

/// A `wasmgate run` process with its own admin listener.
struct Replica {
    process: GatewayProcess,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(redis: &TestRedis, upstream: &TestUpstream, on_unavailable: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        let limits = json!([{ "limit": LIMIT, "window": "1h", "burst": LIMIT }]);
        let config = GatewayConfig::new()
            .section("server", json!({ "listen": ["127.0.0.1:0"] }))
            .section("admin", json!({ "listen": "127.0.0.1:0" }))
            .section(
                "state",
                json!({
                    "backend": "redis",
                    "url": redis.url(),
                    "key_prefix": "replicas:",
                    "timeout_ms": 300,
                    "on_unavailable": on_unavailable,
                }),
            )
            .upstream("api", upstream)
            .plugin("rate-limit", RATE_LIMIT)
            .plugin("kv", FIXTURE_KV)
            .route(
                Route::prefix("limited", "/limited")
                    .upstream("api")
                    .stage("rate-limit", json!({ "key": ["header:x-api-key"], "limits": limits })),
            )
            .route(Route::prefix("kv", "/kv/").stage("kv", Value::Null));
        std::fs::write(&path, config.to_string()).unwrap();
        Self { process: GatewayProcess::start(env!("CARGO_BIN_EXE_wasmgate"), &path, BOUND), _dir: dir }
    }

    /// Every request is bounded: nothing may hang, Redis or not.
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let client = Client::new(self.process.addr);
        tokio::time::timeout(BOUND, client.send(method, path, headers, ""))
            .await
            .unwrap_or_else(|_| panic!("{path} answered within {BOUND:?}"))
    }

    async fn take(&self, api_key: &str) -> Reply {
        self.send(Method::GET, "/limited", &[("x-api-key", api_key)]).await
    }

    fn logged(&self, message: &str) -> usize {
        self.process.logged(message)
    }

    /// `state` of the admin API's `/status`.
    async fn state_status(&self) -> serde_json::Value {
        Client::new(self.process.admin()).get("/status").await.json()["state"].clone()
    }
}

fn remaining(reply: &Reply) -> u64 {
    reply.header("x-ratelimit-remaining").expect("x-ratelimit-remaining").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_limit_and_one_key_value_store() {
    let redis = TestRedis::start();
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let replicas = Arc::new([Replica::start(&redis, &up, "fail-closed"), Replica::start(&redis, &up, "fail-closed")]);

    // Taking turns, the count goes down across both.
    for i in 0..6 {
        let reply = replicas[i % 2].take("shared").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(remaining(&reply), LIMIT - 1 - i as u64);
    }
    // Then many clients at once, on both: exactly the rest passes.
    let clients = (0..6).map(|c| {
        let replicas = replicas.clone();
        tokio::spawn(async move {
            let mut passed = Vec::new();
            for i in 0..10 {
                let reply = replicas[(c + i) % 2].take("shared").await;
                match reply.status {
                    200 => passed.push(remaining(&reply)),
                    429 => assert_eq!(remaining(&reply), 0),
                    other => panic!("unexpected {other}: {}", reply.text()),
                }
            }
            passed
        })
    });
    let mut passed: Vec<u64> = Vec::new();
    for client in clients {
        passed.extend(client.await.unwrap());
    }
    passed.sort_unstable();
    assert_eq!(passed, (0..LIMIT - 6).collect::<Vec<_>>(), "each remaining count seen once, across both");
    assert_eq!(up.count(), LIMIT as usize);
    assert_eq!(replicas[1].take("another").await.status, 200, "keys are limited apart");

    let put = replicas[0].send(Method::PUT, "/kv/greeting", &[("x-value", "hello from one")]).await;
    assert_eq!(put.status, 204, "{}", put.text());
    let got = replicas[1].send(Method::GET, "/kv/greeting", &[]).await;
    assert_eq!((got.status, got.text().as_str()), (200, "hello from one"));
    assert_eq!(replicas[1].send(Method::DELETE, "/kv/greeting", &[]).await.status, 204);
    assert_eq!(replicas[0].send(Method::GET, "/kv/greeting", &[]).await.status, 404);
    assert_eq!(redis.command("KEYS replicas:*"), "*2", "the two cells live in Redis, under the prefix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_answered_by_each_policy_and_shared_limits_resume() {
    let mut redis = TestRedis::start();
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let open = Replica::start(&redis, &up, "fail-open");
    let closed = Replica::start(&redis, &up, "fail-closed");
    let local = Replica::start(&redis, &up, "local");
    let all = [&open, &closed, &local];
    for (i, replica) in all.iter().enumerate() {
        assert_eq!(remaining(&replica.take("before").await), LIMIT - 1 - i as u64, "shared while Redis is up");
    }

    redis.stop();
    let mut local_passed = 0;
    for _ in 0..LIMIT + 5 {
        let reply = open.take("during").await;
        assert_eq!((reply.status, remaining(&reply)), (200, LIMIT - 1), "fail-open: as a fresh bucket");
        let detail = closed.take("during").await.problem(503);
        assert!(detail.contains("shared state, which is unavailable"), "{detail}");
        local_passed += usize::from(local.take("during").await.status == 200);
    }
    assert_eq!(local_passed, LIMIT as usize, "local: this replica's own limit");
    assert_eq!(open.send(Method::GET, "/kv/before", &[]).await.status, 404, "fail-open reads nothing");
    closed.send(Method::GET, "/kv/before", &[]).await.problem(503);
    assert_eq!(local.send(Method::PUT, "/kv/mine", &[("x-value", "kept here")]).await.status, 204);
    assert_eq!(local.send(Method::GET, "/kv/mine", &[]).await.text(), "kept here");
    for replica in all {
        assert_eq!(replica.logged("state backend unavailable"), 1, "once per outage, not per request");
    }
    assert_eq!(closed.logged("plugin failed the request"), 0, "the outage's line says it all");
    let state = closed.state_status().await;
    assert_eq!((&state["backend"], &state["outages"]), (&json!("redis"), &json!(1)), "{state}");
    let answered = state["answered_by_policy"].as_u64().unwrap();
    assert!(answered > LIMIT, "every refused call is counted: {state}");

    redis.restart();
    for replica in all {
        eventually("each replica reaches the restarted Redis", || async {
            replica.send(Method::GET, "/kv/probe", &[]).await;
            replica.logged("state backend available again") == 1
        })
        .await;
    }
    let mut passed = 0;
    for i in 0..LIMIT as usize + 3 {
        let reply = all[i % 3].take("after").await;
        assert!(matches!(reply.status, 200 | 429), "{}", reply.text());
        passed += usize::from(reply.status == 200);
    }
    assert_eq!(passed, LIMIT as usize, "one limit across the replicas again");
    for replica in all {
        assert_eq!(replica.logged("state backend unavailable"), 1);
    }
}
