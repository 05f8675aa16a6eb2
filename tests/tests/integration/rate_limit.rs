//! rate-limit in a real gateway, on the host's shared state: exact under
//! concurrency, separate budgets per key, several limits at once, and keyed
//! on the user jwt-auth authenticated.
//!
//! Windows are long (minutes, hours) so that no budget refills while a test
//! runs: counts are exact however slow the machine.

use std::sync::Arc;

use http::Method;
use jwt_simple::prelude::*;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{JWT_AUTH, RATE_LIMIT};
use wasmgate_testbed::{Answer, Reply, TestGateway, TestUpstream};

/// Upstream `api` and the plugin.
fn gateway(up: &TestUpstream) -> GatewayConfig {
    GatewayConfig::new().upstream("api", up).plugin("rate-limit", RATE_LIMIT)
}

/// A route for every path under `/<name>`, limited by rate-limit with
/// `config`.
fn limited(route: &str, config: Value) -> Route {
    Route::prefix(route, &format!("/{route}")).upstream("api").stage("rate-limit", config)
}

/// A gateway serving one limited route.
async fn start(up: &TestUpstream, route: &str, config: Value) -> TestGateway {
    TestGateway::start(&gateway(up).route(limited(route, config)).to_string()).await
}

fn number(reply: &Reply, name: &str) -> u64 {
    reply.header(name).unwrap_or_else(|| panic!("no {name} in {:?}", reply.headers)).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_limit_passes_when_requests_race() {
    const LIMIT: usize = 5;
    const EXTRA: usize = 20;
    // The allowed requests are held at the upstream until all of them have
    // arrived: they are in flight together. One too many would wait for a
    // second party that never comes and end as a 504, failing the counts.
    let gate = Arc::new(tokio::sync::Barrier::new(LIMIT));
    let up = TestUpstream::start_gated(gate, |_| Answer::new(200, "ok")).await;
    let config = json!({"key": ["header:x-api-key"], "limits": [{"limit": 5, "window": "1h", "burst": 5}]});
    let gw = start(&up, "race", config).await;

    let start = Arc::new(tokio::sync::Barrier::new(LIMIT + EXTRA));
    let tasks: Vec<_> = (0..LIMIT + EXTRA)
        .map(|_| {
            let client = gw.client.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                client.send(Method::GET, "/race", &[("x-api-key", "k1")], "").await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }

    let (passed, refused): (Vec<_>, Vec<_>) = replies.iter().partition(|r| r.status == 200);
    assert_eq!(passed.len(), LIMIT, "statuses: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(refused.len(), EXTRA);
    assert_eq!(up.count(), LIMIT, "only the allowed requests reach the upstream");
    // Every allowed take saw its own remaining count: no two were booked
    // from the same state.
    let mut remaining: Vec<u64> = passed.iter().map(|r| number(r, "x-ratelimit-remaining")).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3, 4]);
    for reply in refused {
        reply.problem(429);
        assert!(number(reply, "retry-after") > 0);
        assert_eq!(number(reply, "x-ratelimit-remaining"), 0);
    }
}

#[tokio::test]
async fn each_key_has_its_own_budget_and_a_missing_key_is_refused() {
    let up = TestUpstream::named("api").await;
    let gw = start(&up, "keyed", json!({"key": ["header:x-api-key"], "limits": [{"limit": 2, "window": "1h"}]})).await;
    let call = |key: &'static str| {
        let client = gw.client.clone();
        async move { client.send(Method::GET, "/keyed", &[("x-api-key", key)], "").await.status }
    };
    assert_eq!([call("a").await, call("a").await, call("a").await], [200, 200, 429]);
    assert_eq!([call("b").await, call("b").await, call("b").await], [200, 200, 429]);
    let detail = gw.client.get("/keyed").await.problem(401);
    assert!(detail.contains("header:x-api-key"), "{detail}");
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn responses_carry_consistent_rate_limit_headers() {
    let up = TestUpstream::named("api").await;
    let config =
        json!({"key": ["ip"], "ietf_headers": true, "limits": [{"limit": 3, "window": "1h", "name": "hourly"}]});
    let gw = start(&up, "h", config).await;
    // One event per 1200 s: the bucket refills in 1200 s per event taken.
    for (remaining, taken) in [(2, 1), (1, 2), (0, 3)] {
        let reply = gw.client.get("/h").await;
        assert_eq!(reply.status, 200);
        assert_eq!(number(&reply, "x-ratelimit-limit"), 3);
        assert_eq!(number(&reply, "x-ratelimit-remaining"), remaining);
        let reset = number(&reply, "x-ratelimit-reset");
        assert!(reset <= taken * 1200 && reset > (taken - 1) * 1200, "reset {reset}");
        assert_eq!(reply.header("ratelimit"), Some(format!("\"hourly\";r={remaining};t={reset}").as_str()));
        assert_eq!(reply.header("ratelimit-policy"), Some(r#""hourly";q=3;w=3600"#));
    }
    let refused = gw.client.get("/h").await;
    assert!(refused.problem(429).contains("hourly"));
    let retry = number(&refused, "retry-after");
    assert!(retry > 0 && retry <= 1200, "retry-after {retry}");
    assert_eq!(number(&refused, "x-ratelimit-remaining"), 0);
    assert!(refused.header("ratelimit").is_some());
}

#[tokio::test]
async fn with_two_limits_both_must_allow_and_the_refusing_one_is_reported() {
    let up = TestUpstream::named("api").await;
    let two_limits = |per_minute: u64, per_hour: u64| {
        json!({"key": ["ip"], "limits": [
            {"limit": per_minute, "window": "1m", "name": "per-minute"},
            {"limit": per_hour, "window": "1h", "name": "per-hour"},
        ]})
    };
    let config = gateway(&up).route(limited("short", two_limits(2, 100))).route(limited("long", two_limits(10, 3)));
    let gw = TestGateway::start(&config.to_string()).await;

    let statuses = |path: &'static str| {
        let client = gw.client.clone();
        async move {
            let mut replies = Vec::new();
            for _ in 0..4 {
                replies.push(client.get(path).await);
            }
            replies
        }
    };
    let short = statuses("/short").await;
    assert_eq!(short.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 429, 429]);
    assert!(short[2].problem(429).contains("per-minute"));
    assert_eq!(number(&short[1], "x-ratelimit-limit"), 2, "the tighter limit is reported");

    let long = statuses("/long").await;
    assert_eq!(long.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 200, 429]);
    assert!(long[3].problem(429).contains("per-hour"));
    assert_eq!(number(&long[0], "x-ratelimit-limit"), 3);
    assert_eq!(up.count(), 5);
}

#[tokio::test]
async fn users_authenticated_by_jwt_auth_have_their_own_budgets() {
    const SECRET: &str = "integration-secret-of-32-bytes!!";
    let up = TestUpstream::named("api").await;
    let jwt = json!({"config": {"allow_anonymous": true, "keys": [{"secret": SECRET, "algorithms": ["HS256"]}]}});
    let route = Route::prefix("users", "/users").upstream("api").stage("jwt-auth", Value::Null).stage(
        "rate-limit",
        json!({"key": ["user"], "on_missing": "fallback", "fallback": ["ip"], "limits": [{"limit": 2, "window": "1h"}]}),
    );
    let gw = TestGateway::start(&gateway(&up).plugin_with("jwt-auth", JWT_AUTH, jwt).route(route).to_string()).await;
    let token = |sub: &str| {
        let claims = Claims::create(Duration::from_mins(5)).with_subject(sub);
        HS256Key::from_bytes(SECRET.as_bytes()).authenticate(claims).unwrap()
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let call = |token: Option<&str>| {
        let client = gw.client.clone();
        let auth = token.map(|t| format!("Bearer {t}"));
        async move {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            client.send(Method::GET, "/users", &headers, "").await.status
        }
    };
    assert_eq!([call(Some(&alice)).await, call(Some(&alice)).await, call(Some(&alice)).await], [200, 200, 429]);
    assert_eq!([call(Some(&bob)).await, call(Some(&bob)).await, call(Some(&bob)).await], [200, 200, 429]);
    assert_eq!([call(None).await, call(None).await, call(None).await], [200, 200, 429], "anonymous: per IP");
    assert_eq!(up.count(), 6);
}
