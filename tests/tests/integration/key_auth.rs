//! key-auth in a real gateway: consumers stored as key hashes, keys from
//! headers and the query string taken out before the upstream, and
//! rate-limit keyed on the consumer key-auth found.

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::{KEY_AUTH, RATE_LIMIT};
use wasmgate_testbed::{Seen, TestGateway, TestUpstream};

const ALICE_KEY: &str = "alice-0f1e2d3c4b5a69788796a5b4";
/// `printf %s alice-0f1e2d3c4b5a69788796a5b4 | sha256sum`
const ALICE_HASH: &str = "46ce2f392731bd4b30deaa33d5dc2a1d917e8a9581f25ec4f45eb0c05e38457e";
const BOB_KEY: &str = "bob-secret-key";

/// The hash as an operator gets it, with the command the README gives.
fn sha256sum(key: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// `/api` needs a key (header or `api_key` query parameter), `/open` lets
/// keyless requests through as `guest`, `/limited` rate-limits per consumer.
async fn setup() -> (TestGateway, TestUpstream) {
    let up = TestUpstream::named("api").await;
    let consumers = json!([
        { "name": "alice", "groups": ["admin", "billing"], "keys": [ALICE_HASH] },
        { "name": "bob", "keys": [sha256sum(BOB_KEY)] },
        { "name": "guest" },
    ]);
    let per_consumer = json!({ "key": ["var:consumer"], "limits": [{ "limit": 2, "window": "1h" }] });
    let config = GatewayConfig::new()
        .upstream("api", &up)
        .plugin_with("key-auth", KEY_AUTH, json!({ "config": { "key_query": "api_key", "consumers": consumers } }))
        .plugin("rate-limit", RATE_LIMIT)
        .route(Route::prefix("api", "/api").upstream("api").stage("key-auth", Value::Null))
        .route(Route::prefix("open", "/open").upstream("api").stage("key-auth", json!({ "anonymous": "guest" })))
        .route(
            Route::prefix("limited", "/limited")
                .upstream("api")
                .stage("key-auth", Value::Null)
                .stage("rate-limit", per_consumer),
        );
    (TestGateway::start(&config.to_string()).await, up)
}

/// Asserts that no trace of `key` reached the upstream.
fn assert_no_key(seen: &Seen, key: &str) {
    assert!(!seen.uri.contains(key), "{}", seen.uri);
    for (name, value) in &seen.headers {
        assert!(!value.as_bytes().windows(key.len()).any(|w| w == key.as_bytes()), "{name}: {value:?}");
    }
}

#[tokio::test]
async fn a_key_in_a_header_forwards_the_consumer_not_the_key() {
    let (gw, up) = setup().await;
    let spoofed = [("x-consumer-id", "admin"), ("x-consumer-groups", "root")];
    for header in ["apikey", "x-api-key"] {
        let mut headers = spoofed.to_vec();
        headers.push((header, ALICE_KEY));
        let reply = gw.client.send(Method::GET, "/api/orders", &headers, "").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let reply = gw.client.send(Method::GET, "/api/orders", &[("apikey", BOB_KEY), spoofed[0], spoofed[1]], "").await;
    assert_eq!(reply.status, 200);

    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    for alice in &seen[..2] {
        assert_eq!(alice.header("x-consumer-id"), Some("alice"));
        assert_eq!(alice.headers.get_all("x-consumer-groups").iter().collect::<Vec<_>>(), ["admin,billing"]);
        assert_no_key(alice, ALICE_KEY);
    }
    assert_eq!(seen[2].header("x-consumer-id"), Some("bob"));
    assert_eq!(seen[2].header("x-consumer-groups"), None, "bob has no groups; the spoofed value is gone");
    assert_no_key(&seen[2], BOB_KEY);
}

#[tokio::test]
async fn a_key_in_the_query_never_reaches_the_upstream() {
    let (gw, up) = setup().await;
    let reply = gw.client.get(&format!("/api/items?page=2&api_key={ALICE_KEY}&sort=name&page=3")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = gw.client.get(&format!("/api/items?api%5Fkey={ALICE_KEY}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let seen = up.seen();
    assert_eq!(seen[0].uri, "/api/items?page=2&sort=name&page=3");
    assert_eq!(seen[1].uri, "/api/items");
    for s in &seen {
        assert_eq!(s.header("x-consumer-id"), Some("alice"));
        assert_no_key(s, ALICE_KEY);
    }
}

#[tokio::test]
async fn missing_invalid_and_doubled_keys_are_refused_before_the_upstream() {
    let (gw, up) = setup().await;
    let missing = gw.client.get("/api/x").await;
    assert_eq!(
        missing.problem(401),
        "an API key is required (in header `apikey` or header `x-api-key` or query parameter `api_key`)"
    );
    assert_eq!(missing.header("www-authenticate"), Some(r#"ApiKey realm="wasmgate""#));

    let invalid = gw.client.send(Method::GET, "/api/x", &[("apikey", ALICE_HASH)], "").await;
    assert_eq!(invalid.problem(401), "the API key is not valid");
    assert_eq!(invalid.header("www-authenticate"), Some(r#"ApiKey realm="wasmgate""#));

    let both = gw.client.send(Method::GET, &format!("/api/x?api_key={ALICE_KEY}"), &[("x-api-key", BOB_KEY)], "").await;
    assert_eq!(both.problem(400), "more than one API key in the request: send exactly one");
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn the_anonymous_consumer_covers_a_missing_key_only() {
    let (gw, up) = setup().await;
    let reply = gw.client.send(Method::GET, "/open/news", &[("x-consumer-id", "alice")], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(up.seen()[0].header("x-consumer-id"), Some("guest"));
    let reply = gw.client.send(Method::GET, "/open/news", &[("apikey", "guessed")], "").await;
    reply.problem(401);
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn rate_limit_keys_on_the_consumer_key_auth_found() {
    let (gw, up) = setup().await;
    let call = |key: &'static str| {
        let client = gw.client.clone();
        async move { client.send(Method::GET, "/limited", &[("apikey", key)], "").await }
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(ALICE_KEY).await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Bob's budget is his own, though he calls from the same address.
    let bob = call(BOB_KEY).await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.header("x-ratelimit-remaining"), Some("1"));
    // A bad key is refused by key-auth, and costs nobody's budget.
    call("nobody").await.problem(401);
    assert_eq!(call(BOB_KEY).await.status, 200);
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn a_key_in_clear_in_the_config_is_a_load_error_that_does_not_repeat_it() {
    let consumers = json!([{ "name": "alice", "keys": [ALICE_KEY] }]);
    let route = Route::prefix("api", "/api").stage("key-auth", json!({ "consumers": consumers }));
    let (errors, _) = refused(&GatewayConfig::new().plugin("key-auth", KEY_AUTH).route(route).to_string()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(r#"route "api""#), "{errors:?}");
    assert!(errors[0].contains("consumers[0] (`alice`).keys[0]: not a SHA-256 hash"), "{errors:?}");
    assert!(!errors[0].contains(ALICE_KEY), "{errors:?}");
}
