use serde_json::{Value, json};
use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

use super::*;

fn plugin(config: Value) -> Cache {
    testing::configure(&config.to_string()).unwrap()
}

fn config_error(config: Value) -> String {
    testing::configure::<Cache>(&config.to_string()).unwrap_err()
}

fn get(uri: &str) -> TestRequest {
    TestRequest::new("GET", uri).header("host", "api.test")
}

fn ok(cache_control: &str, body: &str) -> TestResponse {
    TestResponse::new(200)
        .header("content-type", "text/plain")
        .header("content-length", body.len().to_string())
        .header("cache-control", cache_control)
        .body(body)
}

/// What the client gets: the plugin's own answer, or `upstream`'s after
/// the response phase.
#[derive(Debug)]
struct Got {
    x_cache: String,
    age: Option<String>,
    status: u16,
    body: String,
    headers: Headers,
}

fn send(cache: &Cache, req: TestRequest, upstream: TestResponse) -> Got {
    match testing::run_request(cache, &req) {
        Action::Respond(reply) => Got {
            x_cache: lossy(reply.header_value("x-cache")),
            age: reply.header_value("age").map(|v| lossy(Some(v))),
            status: reply.status,
            body: String::from_utf8(reply.body.clone()).unwrap(),
            headers: reply.headers,
        },
        Action::Continue => {
            testing::run_response(cache, &req, &upstream);
            let resp = upstream.as_response();
            Got {
                x_cache: resp.header("x-cache").unwrap_or_default(),
                age: resp.header("age"),
                status: resp.status(),
                body: String::from_utf8(resp.body().unwrap()).unwrap(),
                headers: resp.headers(),
            }
        }
    }
}

fn lossy(value: Option<&[u8]>) -> String {
    String::from_utf8_lossy(value.unwrap_or_default()).into_owned()
}

fn stored() -> u64 {
    testing::counter("cache_stored")
}

#[test]
fn a_hit_after_a_miss_with_age_and_the_stored_headers() {
    let cache = plugin(json!({}));
    let first = send(&cache, get("/a"), ok("max-age=60", "one"));
    assert_eq!((first.x_cache.as_str(), first.body.as_str()), ("MISS", "one"));
    testing::advance_ms(5_400);
    let hit = send(&cache, get("/a"), ok("max-age=60", "two"));
    assert_eq!((hit.x_cache.as_str(), hit.age.as_deref(), hit.body.as_str()), ("HIT", Some("5"), "one"));
    assert_eq!(hit.status, 200);
    let names: Vec<_> = hit.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["content-type", "cache-control", "age", "x-cache"], "no stale length or X-Cache stored");
    assert_eq!((testing::counter("cache_misses"), testing::counter("cache_hits"), stored()), (1, 1, 1));
}

#[test]
fn max_age_expires_and_upstream_age_counts() {
    let cache = plugin(json!({}));
    send(&cache, get("/a"), ok("max-age=60", "one"));
    testing::advance_ms(59_999);
    assert_eq!(send(&cache, get("/a"), ok("", "x")).x_cache, "HIT");
    testing::advance_ms(1);
    assert_eq!(send(&cache, get("/a"), ok("max-age=60", "two")).x_cache, "MISS", "expired");

    let aged = ok("max-age=60", "b").header("age", "50");
    send(&cache, get("/b"), aged);
    testing::advance_ms(9_000);
    assert_eq!(send(&cache, get("/b"), ok("", "x")).age.as_deref(), Some("59"));
    testing::advance_ms(1_000);
    assert_eq!(send(&cache, get("/b"), ok("", "x")).x_cache, "MISS", "60 s old in all");

    send(&cache, get("/c"), ok("max-age=60", "c").header("age", "60"));
    assert_eq!(stored(), 3, "already stale when it arrived: not stored");
}

#[test]
fn s_maxage_and_expires_give_freshness_capped_by_max_ttl() {
    let cache = plugin(json!({ "max_ttl_s": 100 }));
    send(&cache, get("/s"), ok("max-age=1, s-maxage=30", "s"));
    testing::advance_ms(29_000);
    assert_eq!(send(&cache, get("/s"), ok("", "x")).x_cache, "HIT", "s-maxage for a shared cache");

    let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(testing::now_ms()));
    let expires = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(testing::now_ms() + 1_000_000_000),
    );
    let resp = TestResponse::new(200).header("date", &date).header("expires", &expires).body("e");
    send(&cache, get("/e"), resp);
    testing::advance_ms(99_000);
    assert_eq!(send(&cache, get("/e"), ok("", "x")).x_cache, "HIT");
    testing::advance_ms(1_000);
    assert_eq!(send(&cache, get("/e"), ok("", "x")).x_cache, "MISS", "capped at max_ttl_s");

    send(&cache, get("/z"), TestResponse::new(200).header("expires", "0").body("z"));
    send(&cache, get("/n"), TestResponse::new(200).body("no freshness"));
    assert_eq!(stored(), 2, "`Expires: 0` and no freshness at all are not stored");
}

#[test]
fn default_ttl_covers_responses_that_say_nothing() {
    let cache = plugin(json!({ "default_ttl_s": 10 }));
    send(&cache, get("/n"), TestResponse::new(200).body("n"));
    testing::advance_ms(9_999);
    assert_eq!(send(&cache, get("/n"), ok("", "x")).x_cache, "HIT");
    testing::advance_ms(1);
    assert_eq!(send(&cache, get("/n"), ok("", "x")).x_cache, "MISS");
}

#[test]
fn no_store_private_and_no_cache_responses_are_never_stored() {
    let cache = plugin(json!({ "default_ttl_s": 60 }));
    for (i, control) in
        ["no-store", "private, max-age=60", "no-cache", "no-cache=\"set-cookie\", max-age=60"].into_iter().enumerate()
    {
        let uri = format!("/{i}");
        send(&cache, get(&uri), ok(control, "x"));
        assert_eq!(send(&cache, get(&uri), ok(control, "x")).x_cache, "MISS", "{control}");
    }
    assert_eq!(stored(), 0);
}

#[test]
fn only_get_and_head_and_configured_statuses() {
    let cache = plugin(json!({ "statuses": [200, 404] }));
    let post = send(&cache, TestRequest::new("POST", "/a").header("host", "api.test"), ok("max-age=60", "p"));
    assert_eq!(post.x_cache, "BYPASS");
    let not_found = TestResponse::new(404).header("cache-control", "max-age=60").body("nf");
    send(&cache, get("/missing"), not_found);
    assert_eq!(send(&cache, get("/missing"), ok("", "x")).status, 404);
    let error = TestResponse::new(500).header("cache-control", "max-age=60").body("e");
    send(&cache, get("/error"), error);
    assert_eq!(send(&cache, get("/error"), ok("", "x")).x_cache, "MISS");
    let moved = TestResponse::new(301).header("cache-control", "max-age=60");
    send(&cache, get("/moved"), moved);
    assert_eq!(stored(), 1, "301 is not among the configured statuses");
}

#[test]
fn head_is_answered_from_the_get_entry_but_never_stores_one() {
    let cache = plugin(json!({}));
    let head = || TestRequest::new("HEAD", "/a").header("host", "api.test");
    assert_eq!(send(&cache, head(), ok("max-age=60", "")).x_cache, "MISS");
    assert_eq!(stored(), 0, "a HEAD answer has no body to store");
    send(&cache, get("/a"), ok("max-age=60", "body"));
    let hit = send(&cache, head(), ok("", ""));
    assert_eq!((hit.x_cache.as_str(), hit.body.as_str()), ("HIT", "body"), "the server drops the body of HEAD");
}

#[test]
fn the_query_and_the_host_are_part_of_the_key() {
    let cache = plugin(json!({}));
    send(&cache, get("/a?page=1"), ok("max-age=60", "one"));
    assert_eq!(send(&cache, get("/a?page=2"), ok("max-age=60", "two")).body, "two");
    assert_eq!(send(&cache, get("/a?page=1"), ok("", "x")).body, "one");
    let other_host = TestRequest::new("GET", "/a?page=1").header("host", "other.test");
    assert_eq!(send(&cache, other_host, ok("", "x")).x_cache, "MISS");
}

#[test]
fn configured_vary_headers_key_the_entry_and_others_prevent_storing() {
    let cache = plugin(json!({ "vary": ["Accept-Encoding"] }));
    let gzip = || get("/v").header("accept-encoding", "gzip");
    send(&cache, gzip(), ok("max-age=60", "gz").header("vary", "Accept-Encoding"));
    assert_eq!(send(&cache, gzip(), ok("", "x")).body, "gz");
    assert_eq!(send(&cache, get("/v").header("accept-encoding", "br"), ok("max-age=60", "br")).x_cache, "MISS");
    assert_eq!(send(&cache, get("/v"), ok("", "x")).x_cache, "MISS", "absent is a value of its own");

    send(&cache, get("/o"), ok("max-age=60", "o").header("vary", "Accept-Encoding, Origin"));
    send(&cache, get("/star"), ok("max-age=60", "s").header("vary", "*"));
    assert_eq!(stored(), 2, "varying on an unlisted header (or `*`) is not stored");
}

#[test]
fn the_request_can_skip_the_lookup_or_the_store() {
    let cache = plugin(json!({}));
    send(&cache, get("/a"), ok("max-age=60", "old"));
    let refresh = send(&cache, get("/a").header("cache-control", "no-cache"), ok("max-age=60", "new"));
    assert_eq!((refresh.x_cache.as_str(), refresh.body.as_str()), ("BYPASS", "new"));
    assert_eq!(send(&cache, get("/a"), ok("", "x")).body, "new", "the fresh answer replaced the entry");
    let pragma = send(&cache, get("/a").header("pragma", "no-cache"), ok("max-age=60", "newer"));
    assert_eq!(pragma.x_cache, "BYPASS");
    let ignored = get("/a").header("pragma", "no-cache").header("cache-control", "max-stale");
    assert_eq!(send(&cache, ignored, ok("", "x")).x_cache, "HIT", "Pragma only without Cache-Control");

    let no_store = send(&cache, get("/b").header("cache-control", "no-store"), ok("max-age=60", "b"));
    assert_eq!(no_store.x_cache, "BYPASS");
    assert_eq!(send(&cache, get("/b"), ok("max-age=60", "b")).x_cache, "MISS", "not stored either");
}

#[test]
fn authorized_requests_are_stored_only_when_the_response_allows_it() {
    let cache = plugin(json!({}));
    let authorized = |uri: &str| get(uri).header("authorization", "Bearer t");
    send(&cache, authorized("/mine"), ok("max-age=60", "mine"));
    assert_eq!(send(&cache, get("/mine"), ok("max-age=60", "x")).x_cache, "MISS");
    send(&cache, get("/consumer").var("consumer", "acme"), ok("max-age=60", "acme's"));
    assert_eq!(send(&cache, get("/consumer"), ok("max-age=60", "x")).x_cache, "MISS", "key-auth's caller");
    send(&cache, get("/user").var("user", "alice"), ok("max-age=60", "alice's"));
    assert_eq!(send(&cache, get("/user"), ok("max-age=60", "x")).x_cache, "MISS", "jwt-auth's caller");
    for (uri, control) in [("/p", "public, max-age=60"), ("/s", "s-maxage=60"), ("/m", "must-revalidate, max-age=60")] {
        send(&cache, authorized(uri), ok(control, "shared"));
        assert_eq!(send(&cache, authorized(uri), ok("", "x")).x_cache, "HIT", "{control}");
    }
}

#[test]
fn set_cookie_responses_are_stored_only_when_configured() {
    let cache = plugin(json!({}));
    send(&cache, get("/c"), ok("max-age=60", "c").header("set-cookie", "session=1"));
    assert_eq!(stored(), 0);
    let cache = plugin(json!({ "store_set_cookie": true }));
    send(&cache, get("/c"), ok("max-age=60", "c").header("set-cookie", "session=1"));
    let hit = send(&cache, get("/c"), ok("", "x"));
    assert!(hit.headers.iter().any(|(n, v)| n == "set-cookie" && v == b"session=1"), "{hit:?}");
}

#[test]
fn entries_over_the_size_limit_are_not_stored() {
    let cache = plugin(json!({ "max_entry_bytes": 1024 }));
    send(&cache, get("/big"), ok("max-age=60", &"x".repeat(1024)));
    send(&cache, get("/small"), ok("max-age=60", &"x".repeat(900)));
    assert_eq!(stored(), 1);
    assert_eq!(send(&cache, get("/big"), ok("", "x")).x_cache, "MISS");
}

#[test]
fn a_failing_store_is_a_miss_and_a_warning() {
    let cache = plugin(json!({}));
    send(&cache, get("/a"), ok("max-age=60", "one"));
    testing::fail_state(Some("backend down"));
    let got = send(&cache, get("/a"), ok("max-age=60", "two"));
    assert_eq!((got.x_cache.as_str(), got.body.as_str()), ("MISS", "two"));
    assert_eq!(testing::counter("cache_errors"), 2, "the read and the write");
    assert!(testing::logs().iter().any(|(level, line)| *level == LogLevel::Warn && line.contains("backend down")));
}

#[test]
fn a_foreign_value_under_the_key_is_a_miss() {
    let cache = plugin(json!({}));
    state::set("GET api.test/a", b"not an entry", None).unwrap();
    assert_eq!(send(&cache, get("/a"), ok("max-age=60", "one")).x_cache, "MISS");
    assert_eq!(send(&cache, get("/a"), ok("", "x")).body, "one");
}

#[test]
fn bad_configs_say_what_is_wrong() {
    assert_eq!(config_error(json!({ "statuses": [] })), "`statuses` must list at least one status");
    assert_eq!(
        config_error(json!({ "statuses": [200, 206] })),
        "statuses[1]: 206 cannot be cached (200 to 599, not 206)"
    );
    assert_eq!(config_error(json!({ "vary": ["ok", "bad name"] })), "vary[1]: `bad name` is not a header name");
    assert_eq!(
        config_error(json!({ "max_entry_bytes": 2_000_000 })),
        "`max_entry_bytes` must be 1 to 1048576, got 2000000"
    );
    assert_eq!(
        config_error(json!({ "default_ttl_s": 10, "max_ttl_s": 5 })),
        "`default_ttl_s` (10) is above `max_ttl_s` (5)"
    );
    assert!(config_error(json!({ "ttl": 5 })).contains("unknown field `ttl`"));
}

#[test]
fn needs_the_response_body_and_prefetches_what_every_request_reads() {
    let needs = plugin(json!({ "vary": ["Origin"] })).needs();
    assert!(needs.response && needs.response_body && !needs.request_body);
    assert_eq!(needs.prefetch_headers, ["host", "cache-control", "pragma", "authorization", "origin"]);
    assert_eq!(needs.prefetch_vars, [KEY_VAR, AUTH_VAR, "user", "consumer"]);
}
