//! cache in a real gateway: what is stored and served (the upstream counts
//! the requests that reached it), the admin purge, the state store's
//! memory bound under a flood of distinct URLs, and entries shared by two
//! gateways through Redis.

use http::Method;
use jwt_simple::prelude::*;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{CACHE, CORS, JWT_AUTH};
use wasmgate_testbed::redis::TestRedis;
use wasmgate_testbed::upstream::Answer;
use wasmgate_testbed::{Reply, TestGateway, TestUpstream};

/// Answers `n=<requests so far> <method> <uri>`, with the `Cache-Control`,
/// status and `Vary` the request asks for in `x-cc`, `x-status`, `x-vary`
/// (headers the cache does not key on), so each test says what the
/// upstream answers.
async fn upstream() -> TestUpstream {
    let count = std::sync::atomic::AtomicUsize::new(0);
    TestUpstream::start(move |seen| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let status = seen.header("x-status").and_then(|s| s.parse().ok()).unwrap_or(200);
        let mut answer = Answer::new(status, format!("n={n} {} {}", seen.method, seen.uri));
        for (asked, header) in [("x-cc", "cache-control"), ("x-vary", "vary")] {
            if let Some(value) = seen.header(asked) {
                answer = answer.header(header, value);
            }
        }
        answer
    })
    .await
}

fn config(up: &TestUpstream, cache: Value) -> GatewayConfig {
    GatewayConfig::new()
        .upstream("api", up)
        .plugin("cache", CACHE)
        .route(Route::prefix("api", "/api").upstream("api").stage("cache", cache))
}

async fn setup(cache: Value) -> (TestGateway, TestUpstream) {
    let up = upstream().await;
    (TestGateway::start(&config(&up, cache).to_string()).await, up)
}

async fn get(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    gw.client.send(Method::GET, path, headers, "").await
}

fn x_cache(reply: &Reply) -> &str {
    reply.header("x-cache").unwrap_or("none")
}

const FRESH: (&str, &str) = ("x-cc", "max-age=60");

#[tokio::test]
async fn a_hit_after_a_miss_reaches_the_upstream_once() {
    let (gw, up) = setup(json!({})).await;
    let miss = get(&gw, "/api/a", &[FRESH]).await;
    assert_eq!((miss.status, x_cache(&miss), miss.text().as_str()), (200, "MISS", "n=1 GET /api/a"));
    assert_eq!(miss.header("age"), None);
    let hit = get(&gw, "/api/a", &[FRESH]).await;
    assert_eq!((hit.status, x_cache(&hit), hit.text().as_str()), (200, "HIT", "n=1 GET /api/a"));
    assert_eq!(hit.header("age"), Some("0"));
    assert_eq!(hit.header("cache-control"), Some("max-age=60"));
    assert_eq!(hit.header("content-length"), Some("14"));
    assert_eq!(up.count(), 1);

    let post = gw.client.send(Method::POST, "/api/a", &[FRESH], "x").await;
    assert_eq!((x_cache(&post), up.count()), ("BYPASS", 2), "only GET and HEAD are cached");
}

#[tokio::test]
async fn no_store_and_private_responses_are_never_stored() {
    let (gw, up) = setup(json!({ "default_ttl_s": 60 })).await;
    for control in ["no-store", "private, max-age=60"] {
        for _ in 0..2 {
            let reply = get(&gw, "/api/secret", &[("x-cc", control)]).await;
            assert_eq!(x_cache(&reply), "MISS", "{control}");
        }
    }
    assert_eq!(up.count(), 4);
    let status = gw.admin.get("/status").await.json();
    assert_eq!(status["state"]["memory"]["values"]["entries"], 0, "nothing stored: {status}");
}

#[tokio::test]
async fn an_entry_expires_with_its_max_age() {
    let (gw, up) = setup(json!({})).await;
    assert_eq!(x_cache(&get(&gw, "/api/short", &[("x-cc", "max-age=1")]).await), "MISS");
    assert_eq!(x_cache(&get(&gw, "/api/short", &[("x-cc", "max-age=1")]).await), "HIT");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let again = get(&gw, "/api/short", &[("x-cc", "max-age=1")]).await;
    assert_eq!((x_cache(&again), again.text().as_str()), ("MISS", "n=2 GET /api/short"));
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn a_configured_vary_header_keys_the_entry() {
    let (gw, up) = setup(json!({ "vary": ["accept-language"] })).await;
    let asked = |lang| [FRESH, ("x-vary", "Accept-Language"), ("accept-language", lang)];
    assert_eq!(x_cache(&get(&gw, "/api/v", &asked("en")).await), "MISS");
    assert_eq!(x_cache(&get(&gw, "/api/v", &asked("fr")).await), "MISS");
    let en = get(&gw, "/api/v", &asked("en")).await;
    let fr = get(&gw, "/api/v", &asked("fr")).await;
    assert_eq!((x_cache(&en), en.text().as_str()), ("HIT", "n=1 GET /api/v"));
    assert_eq!((x_cache(&fr), fr.text().as_str()), ("HIT", "n=2 GET /api/v"));
    assert_eq!(up.count(), 2);

    let unlisted = [FRESH, ("x-vary", "Accept-Encoding")];
    get(&gw, "/api/w", &unlisted).await;
    assert_eq!(x_cache(&get(&gw, "/api/w", &unlisted).await), "MISS", "varies on a header the key lacks");
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry_without_a_body() {
    let (gw, up) = setup(json!({})).await;
    let head = gw.client.send(Method::HEAD, "/api/h", &[FRESH], "").await;
    assert_eq!((x_cache(&head), up.count()), ("MISS", 1));
    assert_eq!(x_cache(&get(&gw, "/api/h", &[FRESH]).await), "MISS", "a HEAD answer is not stored");
    let head = gw.client.send(Method::HEAD, "/api/h", &[FRESH], "").await;
    assert_eq!((head.status, x_cache(&head)), (200, "HIT"));
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("14"), "the GET body's length");
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn statuses_not_configured_are_not_stored() {
    let (gw, up) = setup(json!({ "statuses": [200] })).await;
    for status in ["500", "404"] {
        for _ in 0..2 {
            let reply = get(&gw, "/api/e", &[FRESH, ("x-status", status)]).await;
            assert_eq!((reply.status.to_string().as_str(), x_cache(&reply)), (status, "MISS"));
        }
    }
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn the_query_string_is_part_of_the_key() {
    let (gw, up) = setup(json!({})).await;
    get(&gw, "/api/q?page=1", &[FRESH]).await;
    let other = get(&gw, "/api/q?page=2", &[FRESH]).await;
    assert_eq!((x_cache(&other), other.text().as_str()), ("MISS", "n=2 GET /api/q?page=2"));
    let first = get(&gw, "/api/q?page=1", &[FRESH]).await;
    assert_eq!((x_cache(&first), first.text().as_str()), ("HIT", "n=1 GET /api/q?page=1"));
    assert_eq!(up.count(), 2);
}

async fn purge(gw: &TestGateway, target: &str) -> Reply {
    gw.admin.send(Method::DELETE, target, &[], "").await
}

#[tokio::test]
async fn a_purge_by_prefix_makes_the_next_request_a_miss() {
    let (gw, up) = setup(json!({})).await;
    for path in ["/api/users/1", "/api/users/2", "/api/orders/1"] {
        get(&gw, path, &[FRESH]).await;
    }
    let prefix = format!("GET {}/api/users/", gw.addr);
    let target = format!("/state/cache?prefix={}", prefix.replace(' ', "%20"));
    let purged = purge(&gw, &target).await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(purged.json(), json!({"plugin": "cache", "prefix": prefix, "deleted": 2, "complete": true}));
    assert_eq!(x_cache(&get(&gw, "/api/users/1", &[FRESH]).await), "MISS");
    assert_eq!(x_cache(&get(&gw, "/api/orders/1", &[FRESH]).await), "HIT", "another prefix");
    assert_eq!(up.count(), 4);

    assert_eq!(purge(&gw, "/state/cache").await.json()["deleted"], 2, "no prefix: every entry");
    assert_eq!(x_cache(&get(&gw, "/api/orders/1", &[FRESH]).await), "MISS");
    assert_eq!(purge(&gw, "/state/nope?prefix=x").await.problem(404), "no plugin named \"nope\" in the loaded config");
    assert_eq!(purge(&gw, "/state/cache?prefx=x").await.problem(400), "unknown parameter \"prefx\": only `prefix` is");
    assert_eq!(gw.admin.get("/state/cache").await.status, 405);
}

/// Placed after jwt-auth, the cache answers only requests jwt-auth let
/// through: a cached answer never skips authentication.
#[tokio::test]
async fn a_hit_still_needs_what_earlier_stages_require() {
    const SECRET: &str = "integration-secret-of-32-bytes!!";
    let up = upstream().await;
    let toml = config(&up, json!({}))
        .plugin_with(
            "jwt-auth",
            JWT_AUTH,
            json!({ "config": { "keys": [{ "secret": SECRET, "algorithms": ["HS256"] }] } }),
        )
        .route(
            Route::prefix("private", "/private")
                .upstream("api")
                .stage("jwt-auth", Value::Null)
                .stage("cache", json!({})),
        )
        .to_string();
    let gw = TestGateway::start(&toml).await;
    let claims = Claims::create(Duration::from_mins(5)).with_subject("alice");
    let token = format!("Bearer {}", HS256Key::from_bytes(SECRET.as_bytes()).authenticate(claims).unwrap());
    let public = ("x-cc", "public, max-age=60");
    let first = get(&gw, "/private/doc", &[public, ("authorization", &token)]).await;
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    let hit = get(&gw, "/private/doc", &[public, ("authorization", &token)]).await;
    assert_eq!((hit.status, x_cache(&hit)), (200, "HIT"));
    let anonymous = get(&gw, "/private/doc", &[public]).await;
    anonymous.problem(401);
    assert_eq!(up.count(), 1);

    let own = [FRESH, ("authorization", token.as_str())];
    get(&gw, "/private/mine", &own).await;
    assert_eq!(x_cache(&get(&gw, "/private/mine", &own).await), "MISS", "authorized, not public: not stored");
}

/// 100,000 distinct URLs of 1 KiB answers each (about 120 MB if all were
/// kept) through a store limited to 4 MiB: the store's count, which
/// `/status` reports, never passes the budget, entries are evicted, and
/// the newest are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_memory_bound_holds_under_100k_distinct_urls() {
    use futures_util::StreamExt as _;
    let body = "x".repeat(1024);
    let up = TestUpstream::start(move |_| Answer::new(200, body.clone()).header("cache-control", "max-age=600")).await;
    let toml = config(&up, json!({}))
        .section("state", json!({ "max_memory_bytes": 4 << 20, "counter_memory_bytes": 1 << 20 }))
        .to_string();
    let gw = TestGateway::start(&toml).await;
    const URLS: usize = 100_000;
    let misses = futures_util::stream::iter(0..URLS)
        .map(|i| {
            let client = gw.client.clone();
            async move { client.get(&format!("/api/flood/{i}")).await }
        })
        .buffer_unordered(16)
        .filter(|reply| std::future::ready(reply.status == 200 && x_cache(reply) == "MISS"))
        .count()
        .await;
    assert_eq!((misses, up.count()), (URLS, URLS));
    let status = gw.admin.get("/status").await.json();
    let values = &status["state"]["memory"]["values"];
    let (bytes, budget) = (values["bytes"].as_u64().unwrap(), values["budget"].as_u64().unwrap());
    assert_eq!(budget, 3 << 20, "{values}");
    assert!(bytes <= budget && bytes > budget / 2, "{values}");
    let entries = values["entries"].as_u64().unwrap();
    assert!(entries > 1_000 && entries < 3_000, "about 1.3 KiB each: {values}");
    assert_eq!(values["evicted"].as_u64().unwrap() + entries, URLS as u64, "{values}");
    let last = get(&gw, &format!("/api/flood/{}", URLS - 1), &[]).await;
    assert_eq!(x_cache(&last), "HIT");
}

/// Two gateways on one Redis: what one stored the other serves, and a
/// purge through either reaches both.
#[tokio::test]
async fn gateways_sharing_redis_share_entries_and_purges() {
    let redis = TestRedis::start();
    let up = upstream().await;
    let toml = config(&up, json!({})).section("state", json!({ "backend": "redis", "url": redis.url() })).to_string();
    let (one, two) = (TestGateway::start(&toml).await, TestGateway::start(&toml).await);
    // Both are asked for the same host, as behind one load balancer.
    let host = [FRESH, ("host", "api.example.test")];
    let miss = get(&one, "/api/shared", &host).await;
    let hit = get(&two, "/api/shared", &host).await;
    assert_eq!((x_cache(&miss), x_cache(&hit), hit.text().as_str()), ("MISS", "HIT", "n=1 GET /api/shared"));
    assert_eq!(up.count(), 1);

    let purged = purge(&two, "/state/cache?prefix=GET%20api.example.test/api/").await;
    assert_eq!(purged.json()["deleted"], 1, "{}", purged.text());
    assert_eq!(x_cache(&get(&one, "/api/shared", &host).await), "MISS");
    assert_eq!(up.count(), 2);
    let ttl: i64 = redis.command("PTTL \"wasmgate:v:cache:GET api.example.test/api/shared\"")[1..].parse().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "entries carry their freshness as a Redis TTL ({ttl} ms)");
}

/// cors before a cache keyed on `Origin`: the stored answer already varies
/// on it (cors added it on the miss); served from the cache, cors's `Vary: Origin`
/// again does not list it twice. A field the upstream's `Vary` already
/// names (in any case, among others) is not added either.
#[tokio::test]
async fn a_hit_behind_cors_varies_on_origin_once() {
    let up = upstream().await;
    let cors = json!({ "allow_origins": ["https://app.example.com"] });
    let config = GatewayConfig::new().upstream("api", &up).plugin("cors", CORS).plugin("cache", CACHE).route(
        Route::prefix("api", "/api").upstream("api").stage("cors", cors).stage("cache", json!({ "vary": ["origin"] })),
    );
    let gw = TestGateway::start(&config.to_string()).await;
    let origin = ("origin", "https://app.example.com");
    let varies = |reply: &Reply| {
        reply.headers.get_all("vary").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>()
    };

    let miss = get(&gw, "/api/v", &[FRESH, origin]).await;
    assert_eq!((miss.status, x_cache(&miss)), (200, "MISS"));
    assert_eq!(varies(&miss), ["Origin"]);
    let hit = get(&gw, "/api/v", &[FRESH, origin]).await;
    assert_eq!((hit.status, x_cache(&hit)), (200, "HIT"));
    assert_eq!(varies(&hit), ["Origin"], "served from the cache, Origin is listed once");

    let named = get(&gw, "/api/w", &[FRESH, origin, ("x-vary", "Accept-Encoding, origin")]).await;
    assert_eq!(varies(&named), ["Accept-Encoding, origin"], "the upstream already varies on it");
    assert_eq!(up.count(), 2);
}
