use serde_json::{Value, json};
use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

use super::*;

fn plugin(config: Value) -> RateLimit {
    testing::configure(&config.to_string()).unwrap()
}

fn config_error(config: Value) -> String {
    testing::configure::<RateLimit>(&config.to_string()).unwrap_err()
}

fn from(ip: &str) -> TestRequest {
    TestRequest::new("GET", "/").client_addr(&format!("{ip}:5000"))
}

/// What the client gets: the plugin's own reply, or the upstream's 200
/// with the headers the request phase set for it.
struct Outcome {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Outcome {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`.
    fn x_headers(&self) -> [u64; 3] {
        ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
            .map(|name| self.header(name).unwrap_or_else(|| panic!("no {name}")).parse().unwrap())
    }
}

fn send(plugin: &RateLimit, req: &TestRequest) -> Outcome {
    let text = |headers: Vec<(String, Vec<u8>)>| {
        headers.into_iter().map(|(n, v)| (n, String::from_utf8(v).unwrap())).collect()
    };
    match testing::run_request(plugin, req) {
        Action::Respond(reply) => {
            Outcome { status: reply.status, headers: text(reply.headers), body: String::from_utf8(reply.body).unwrap() }
        }
        Action::Continue => {
            let resp = TestResponse::new(200).body("upstream");
            testing::run_response(plugin, req, &resp);
            let resp = resp.as_response();
            Outcome {
                status: resp.status(),
                headers: text(resp.headers()),
                body: String::from_utf8(resp.body().unwrap()).unwrap(),
            }
        }
    }
}

fn per_ip(limit: u64, window: &str) -> RateLimit {
    plugin(json!({"key": ["ip"], "limits": [{"limit": limit, "window": window}]}))
}

#[test]
fn allows_the_burst_then_refuses_with_retry_after_until_replenished() {
    let plugin = per_ip(3, "1s");
    // 3 per second: one event per 333.334 ms, so three take 1000.002 ms to
    // replenish, which rounds up to 2 s.
    for (remaining, reset) in [(2, 1), (1, 1), (0, 2)] {
        let ok = send(&plugin, &from("10.0.0.1"));
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, "upstream");
        assert_eq!(ok.x_headers(), [3, remaining, reset]);
    }
    let refused = send(&plugin, &from("10.0.0.1"));
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.x_headers(), [3, 0, 2]);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["detail"], "rate limit 3-per-1s exceeded; retry in 1 s");
    assert_eq!(testing::counter("rate_limit_refused"), 1);

    testing::advance_ms(333);
    assert_eq!(send(&plugin, &from("10.0.0.1")).status, 429, "a refusal costs nothing");
    testing::advance_ms(1);
    assert_eq!(send(&plugin, &from("10.0.0.1")).status, 200);
}

#[test]
fn a_long_window_reports_its_reset_and_retry_in_whole_seconds() {
    let plugin = plugin(json!({"key": ["ip"], "limits": [{"limit": 5, "window": "1m", "burst": 2}]}));
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers(), [5, 1, 12]);
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers(), [5, 0, 24]);
    let refused = send(&plugin, &from("10.0.0.1"));
    assert_eq!(refused.header("retry-after"), Some("12"));
}

#[test]
fn each_key_has_its_own_budget() {
    let plugin = per_ip(1, "1m");
    assert_eq!(send(&plugin, &from("10.0.0.1")).status, 200);
    assert_eq!(send(&plugin, &from("10.0.0.1")).status, 429);
    assert_eq!(send(&plugin, &from("10.0.0.2")).status, 200);

    let plugin = self::plugin(json!({"key": ["route", "header:X-Api-Key"], "limits": [{"limit": 1, "window": "1m"}]}));
    let call = |route: &str, key: &str| {
        send(&plugin, &TestRequest::new("GET", "/").route(route).header("x-api-key", key)).status
    };
    assert_eq!(call("orders", "k1"), 200);
    assert_eq!(call("orders", "k1"), 429);
    assert_eq!(call("orders", "k2"), 200);
    assert_eq!(call("users", "k1"), 200);
}

#[test]
fn key_values_cannot_be_crafted_to_share_a_bucket() {
    let plugin = plugin(json!({"key": ["header:a", "header:b"], "limits": [{"limit": 1, "window": "1m"}]}));
    let call = |a: &str, b: &str| send(&plugin, &TestRequest::new("GET", "/").header("a", a).header("b", b)).status;
    assert_eq!(call("x\",\"y", "z"), 200);
    assert_eq!(call("x", "y\",\"z"), 200);
}

#[test]
fn the_user_var_set_by_jwt_auth_is_a_key() {
    let plugin = plugin(json!({"key": ["user"], "limits": [{"limit": 1, "window": "1m"}]}));
    let as_user = |user: &str| send(&plugin, &from("10.0.0.1").var("user", user)).status;
    assert_eq!(as_user("alice"), 200);
    assert_eq!(as_user("alice"), 429);
    assert_eq!(as_user("bob"), 200);
}

#[test]
fn a_missing_key_is_refused_skipped_or_replaced_as_configured() {
    let limits = json!([{"limit": 1, "window": "1m"}]);
    let anonymous = || from("10.0.0.1");

    let reject = plugin(json!({"key": ["user"], "limits": limits}));
    let refused = send(&reject, &anonymous());
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("(user)"), "{}", refused.body);
    let reject = plugin(json!({"key": ["header:x-api-key"], "limits": limits, "reject_status": 400}));
    assert_eq!(send(&reject, &anonymous()).status, 400);
    assert_eq!(send(&reject, &anonymous().header("x-api-key", "")).status, 400);

    let skip = plugin(json!({"key": ["user"], "limits": limits, "on_missing": "skip"}));
    for _ in 0..3 {
        let passed = send(&skip, &anonymous());
        assert_eq!(passed.status, 200);
        assert_eq!(passed.header("x-ratelimit-limit"), None);
    }

    let fallback = plugin(json!({"key": ["user"], "limits": limits, "on_missing": "fallback", "fallback": ["ip"]}));
    assert_eq!(send(&fallback, &anonymous()).status, 200);
    assert_eq!(send(&fallback, &anonymous()).status, 429);
    assert_eq!(send(&fallback, &from("10.0.0.2")).status, 200);
    assert_eq!(send(&fallback, &anonymous().var("user", "alice")).status, 200, "a user's budget is not the fallback's");
}

#[test]
fn every_limit_must_allow_and_the_refusing_one_is_reported() {
    let plugin = plugin(json!({"key": ["ip"], "limits": [
        {"limit": 3, "window": "1m", "name": "per-minute"},
        {"limit": 2, "window": "1s", "name": "per-second"},
    ]}));
    // Both allow: the tighter one is reported.
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers(), [2, 1, 1]);
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers(), [2, 0, 1]);
    let refused = send(&plugin, &from("10.0.0.1"));
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("per-second"), "{}", refused.body);

    // That refusal did not charge the minute: one event is left there.
    testing::advance_ms(1_000);
    let last = send(&plugin, &from("10.0.0.1"));
    assert_eq!(last.status, 200);
    assert_eq!(last.x_headers()[..2], [3, 0]);
    testing::advance_ms(1_000);
    let refused = send(&plugin, &from("10.0.0.1"));
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("per-minute"), "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("18"));
}

#[test]
fn ietf_fields_are_added_on_request() {
    let plugin = plugin(json!({"key": ["ip"], "ietf_headers": true, "limits": [
        {"limit": 10, "window": "1s"},
        {"limit": 1000, "window": "1h", "name": "hourly"},
    ]}));
    let ok = send(&plugin, &from("10.0.0.1"));
    assert_eq!(ok.header("ratelimit"), Some(r#""10-per-1s";r=9;t=1"#));
    assert_eq!(ok.header("ratelimit-policy"), Some(r#""10-per-1s";q=10;w=1, "hourly";q=1000;w=3600"#));
    assert_eq!(send(&per_ip(1, "1s"), &from("10.0.0.1")).header("ratelimit"), None);
}

#[test]
fn a_cost_takes_several_events() {
    let plugin = plugin(json!({"key": ["ip"], "cost": 2, "limits": [{"limit": 5, "window": "1m"}]}));
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers()[1], 3);
    assert_eq!(send(&plugin, &from("10.0.0.1")).x_headers()[1], 1);
    assert_eq!(send(&plugin, &from("10.0.0.1")).status, 429);
}

#[test]
fn two_stages_report_the_limit_the_client_is_closest_to() {
    let per_user = plugin(json!({"key": ["user"], "limits": [{"limit": 2, "window": "1m"}]}));
    let per_ip = per_ip(100, "1m");
    let req = from("10.0.0.1").var("user", "alice");
    for stage in [&per_user, &per_ip] {
        assert_eq!(testing::run_request(stage, &req), Action::Continue);
    }
    let resp = TestResponse::new(200);
    assert!(!testing::run_response(&per_user, &req, &resp), "the headers need no response phase");
    let resp = resp.as_response();
    assert_eq!(resp.header("x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(resp.header("x-ratelimit-remaining").as_deref(), Some("1"));
}

#[test]
fn a_state_failure_fails_open_by_default_or_closed_on_request() {
    testing::fail_state(Some("redis: connection refused"));
    let open = per_ip(1, "1m");
    for _ in 0..2 {
        let passed = send(&open, &from("10.0.0.1"));
        assert_eq!(passed.status, 200);
        assert_eq!(passed.header("x-ratelimit-limit"), None);
    }
    let (level, message) = &testing::logs()[0];
    assert_eq!(*level, LogLevel::Warn);
    assert!(message.contains("redis: connection refused"), "{message}");
    assert_eq!(testing::counter("rate_limit_state_errors"), 2);

    let closed = plugin(json!({"key": ["ip"], "fail_open": false, "limits": [{"limit": 1, "window": "1m"}]}));
    assert_eq!(send(&closed, &from("10.0.0.1")).status, 503);
}

#[test]
fn config_errors_name_the_field() {
    let limits = json!([{"limit": 1, "window": "1s"}]);
    let cases = [
        (json!({"key": ["ip"], "limits": limits, "burts": 1}), "unknown field `burts`"),
        (
            json!({"key": ["ip"], "limits": [{"limit": 1, "window": "1s", "brust": 2}]}),
            "limits[0].brust: unknown field `brust`",
        ),
        (json!({"key": ["ip", "cookie:sid"], "limits": limits}), "key[1]: `cookie:sid` is not a key part"),
        (json!({"key": ["header:x y"], "limits": limits}), "key[0]: `header:x y` is not a key part"),
        (json!({"key": [], "limits": limits}), "`key` must list at least one key part"),
        (json!({"key": ["ip"], "limits": []}), "`limits` must list at least one limit"),
        (json!({"key": ["ip"], "limits": [{"limit": 1, "window": "1x"}]}), "limits[0].window: `1x` is not a duration"),
        (json!({"key": ["ip"], "limits": [{"limit": 0, "window": "1s"}]}), "limits[0].limit: must be at least 1"),
        (
            json!({"key": ["ip"], "cost": 3, "limits": [{"limit": 2, "window": "1s"}]}),
            "limits[0].burst: a cost of 3 exceeds the burst of 2",
        ),
        (json!({"key": ["ip"], "limits": [{"limit": 2, "window": "1s", "name": "a b"}]}), "limits[0].name: `a b`"),
        (json!({"key": ["user"], "limits": limits, "on_missing": "fallback"}), "needs a `fallback` key"),
        (json!({"key": ["user"], "limits": limits, "fallback": ["ip"]}), "`fallback` is only used with"),
        (json!({"key": ["user"], "limits": limits, "on_missing": "ignore"}), "on_missing: unknown variant `ignore`"),
        (json!({"key": ["user"], "limits": limits, "reject_status": 500}), "reject_status: 500 is not one of"),
    ];
    for (config, expected) in cases {
        let err = config_error(config.clone());
        assert!(err.contains(expected), "{config}: {err}");
    }
}

#[test]
fn the_key_and_earlier_reports_come_with_each_call() {
    let limits = json!([{ "limit": 10, "window": "1s" }]);
    let needs = plugin(json!({ "key": ["route", "user", "header:X-Api-Key"], "limits": limits })).needs();
    assert_eq!(needs.prefetch_vars, [REPORT_VAR, "user"]);
    assert_eq!(needs.prefetch_headers, ["x-api-key"]);
    assert!(!needs.prefetch_client_addr && !needs.response, "{needs:?}");
    let needs = plugin(json!({ "key": ["ip"], "limits": limits })).needs();
    assert!(needs.prefetch_client_addr);
    // A fallback is read only when the key lacks a part: fetched then.
    let needs = plugin(json!({
        "key": ["user"], "on_missing": "fallback", "fallback": ["ip"], "limits": limits,
    }))
    .needs();
    assert!(!needs.prefetch_client_addr);
}
