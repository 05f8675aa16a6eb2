//! A plugin that hands the host values HTTP or the server's limits do not
//! allow fails its own request with a 500 problem and nothing else: no
//! panic, no closed connection, no plugin internals in the body.

use serde_json::json;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::FIXTURE_HOSTILE;
use wasmgate_testbed::{Answer, KeepAlive, TestGateway, TestUpstream, logs};

/// Each case: its route's path, the fixture's config for it, and what
/// the log line of its failure says.
const CASES: &[(&str, &str, &str)] = &[
    // 100,000 headers do not fit one batch of edits; 150 do, and are too many.
    ("/many-request-headers", r#"{ mode = "many-request-headers" }"#, "a batch of edits of 2288890 bytes"),
    ("/many-response-headers", r#"{ mode = "many-response-headers" }"#, "a batch of edits of 2288890 bytes"),
    ("/many-on-response-headers", r#"{ mode = "many-on-response-headers" }"#, "a batch of edits of 2288890 bytes"),
    ("/request-headers-150", r#"{ mode = "many-request-headers", count = 150 }"#, "more than 100 header fields"),
    ("/response-headers-150", r#"{ mode = "many-response-headers", count = 150 }"#, "more than 100 header fields"),
    (
        "/on-response-headers-150",
        r#"{ mode = "many-on-response-headers", count = 150 }"#,
        "more than 100 header fields",
    ),
    ("/many-reply-headers", r#"{ mode = "many-reply-headers" }"#, "its reply: more than 100 header fields"),
    ("/many-vars", r#"{ mode = "many-vars", count = 100 }"#, "more than 64 vars on one request"),
    ("/response-status-1000", r#"{ mode = "response-status", status = 1000 }"#, "invalid status 1000"),
    ("/response-status-101", r#"{ mode = "response-status", status = 101 }"#, "invalid status 101"),
    ("/reply-status-99", r#"{ mode = "reply-status", status = 99 }"#, "its reply: invalid status 99"),
    ("/reply-status-1000", r#"{ mode = "reply-status", status = 1000 }"#, "its reply: invalid status 1000"),
    ("/reply-status-101", r#"{ mode = "reply-status", status = 101 }"#, "its reply: invalid status 101"),
    ("/reply-bad-header-value", r#"{ mode = "reply-bad-header-value" }"#, "invalid value for header x-split"),
    (
        "/fanout-path-crlf",
        r#"{ mode = "fanout-path", path = "/a\r\nx-injected: yes" }"#,
        r#"the first: invalid path or query "/a\r\nx-injected: yes""#,
    ),
    ("/fanout-path-space", r#"{ mode = "fanout-path", path = "/a b" }"#, r#"invalid path or query "/a b""#),
    ("/fanout-path-long", r#"{ mode = "fanout-path", path = "/{long}" }"#, "over the server's max_uri_bytes of 8192"),
    ("/fanout-method", r#"{ mode = "fanout-method", method = "GE T" }"#, r#"invalid method "GE T""#),
    ("/fanout-method-empty", r#"{ mode = "fanout-method", method = "" }"#, r#"invalid method """#),
    ("/fanout-many", r#"{ mode = "fanout-many" }"#, "a fetch-all takes at most 256 calls; this one has 100000"),
    (
        "/fanout-bodies",
        r#"{ mode = "fanout-bodies", count = 8, body_bytes = 262144 }"#,
        "take 2097152 bytes together, over the server's max_request_body_bytes of 1048576",
    ),
    (
        "/state-sizes",
        r#"{ mode = "state-sizes" }"#,
        "state refused: a state key takes at most 1024 bytes; this one has 2048; \
         a state value takes at most 1048576 bytes; this one has 2097152",
    ),
    ("/panic", r#"{ mode = "panic", message = "hostile fixture gives up" }"#, "src/lib.rs:"),
];

fn config(up: &TestUpstream) -> String {
    let mut toml = format!(
        r#"
[server]
max_request_body_bytes = 1048576

{}
[plugins.hostile]
path = "{FIXTURE_HOSTILE}"
# What is checked is what the host refuses, not speed: building 100,000
# headers can take longer than the default budget on a loaded machine.
timeout_ms = 10000
memory_mb = 64

[[routes]]
name = "healthy"
path = "/healthy"
upstream = "up"
"#,
        up.section("up")
    );
    for (path, plugin_config, _) in CASES {
        let plugin_config = plugin_config.replace("{long}", &"a".repeat(9000));
        toml.push_str(&format!(
            "\n[[routes]]\nname = \"{}\"\npath = \"{path}\"\nupstream = \"up\"\npipeline = [{{ plugin = \"hostile\", config = {plugin_config} }}]\n",
            &path[1..]
        ));
    }
    toml
}

// A current-thread runtime: the gateway's tasks run on the test's thread,
// where its log events are captured.
#[tokio::test]
async fn hostile_values_fail_their_own_request_and_nothing_else() {
    let logs = logs::capture();
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config(&up)).await;
    // Every case runs, and every failure is reported at once.
    let mut failures = Vec::new();
    for (path, _, logged) in CASES {
        if let Err(e) = case(gw.addr, path, logged, &logs).await {
            failures.push(format!("{path}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(gw.client.get("/healthy").await.status, 200);
    let reached: Vec<String> = up.seen().into_iter().map(|s| s.uri).filter(|uri| uri != "/healthy").collect();
    assert_eq!(
        reached,
        ["/many-on-response-headers", "/on-response-headers-150", "/response-status-1000", "/response-status-101"],
        "only the requests whose responses were refused went upstream"
    );

    let panic =
        logs.find(&[("plugin", "hostile"), ("route", "panic"), ("kind", "trap")]).expect("the panic's log line");
    let reason = panic["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("wasm trap: wasm `unreachable` instruction executed, after the plugin logged: panicked at "),
        "{reason}"
    );
    assert!(reason.ends_with("hostile fixture gives up"), "{reason}");
    assert!(panic["backtrace"].as_str().is_some_and(|b| b.contains("wasm function")), "{panic}");
    let own = logs.fields().into_iter().find(|f| {
        let message = f["message"].as_str().unwrap_or_default();
        f["plugin"] == "hostile" && message.starts_with("panicked at ") && message.ends_with("hostile fixture gives up")
    });
    let own = own.expect("the plugin's own log line of its panic");
    assert_eq!(
        (own["route"].as_str(), own["request_id"].as_str()),
        (panic["route"].as_str(), panic["request_id"].as_str())
    );
}

/// The hostile request gets a plugin problem and a log line saying why,
/// and its connection serves the next request.
async fn case(addr: std::net::SocketAddr, path: &str, logged: &str, logs: &logs::Logs) -> Result<(), String> {
    let mut conn = KeepAlive::connect(addr).await;
    let reply = conn.get(path).await?;
    let detail = std::panic::catch_unwind(|| reply.plugin_problem(500, "hostile"))
        .map_err(|e| e.downcast_ref::<String>().cloned().unwrap_or_default())?;
    let expected = if path.starts_with("/fanout") || path == "/state-sizes" || path == "/panic" {
        "plugin hostile failed"
    } else {
        "plugin hostile returned an invalid value"
    };
    if detail != expected {
        return Err(format!("detail {detail:?}, expected {expected:?}"));
    }
    let id = reply.header("x-request-id").unwrap_or_default();
    // The gateway's line, not the plugin's own (which has no kind).
    let line = logs
        .fields()
        .into_iter()
        .find(|f| f["plugin"] == "hostile" && f["route"] == path[1..] && f["request_id"] == id && f["kind"].is_string())
        .ok_or("no log line with the plugin, route, request id and kind")?;
    let reason = line["reason"].as_str().unwrap_or_default();
    if !reason.contains(logged) {
        return Err(format!("the log's reason {reason:?} does not say {logged:?}"));
    }
    let next = conn.get("/healthy").await.map_err(|e| format!("the next request: {e}"))?;
    if next.status != 200 {
        return Err(format!("the next request got {}", next.status));
    }
    Ok(())
}

/// A batch of fan-out calls whose responses together outgrow what the
/// host buffers for one request: the calls past the budget come back
/// `unavailable`, the ones before it whole, and the host never holds
/// more than the budget.
#[tokio::test]
async fn a_fan_out_cannot_make_the_host_buffer_unbounded_responses() {
    const LARGE: usize = 6 << 20;
    let up = TestUpstream::start(|seen| {
        let size = if seen.uri == "/large" { LARGE } else { 2 };
        Answer::new(200, vec![b'x'; size])
    })
    .await;
    let gw = TestGateway::start(&format!(
        r#"
{}
[plugins.hostile]
path = "{FIXTURE_HOSTILE}"
timeout_ms = 10000
memory_mb = 128

[[routes]]
name = "large"
path = "/large-responses"
upstream = "up"
pipeline = [{{ plugin = "hostile", config = {{ mode = "fanout-large-responses", count = 8 }} }}]
"#,
        up.section("up")
    ))
    .await;
    let reply = gw.client.get("/large-responses").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let (whole, rest) = text.split_once(" whole, ").expect(&text);
    let (refused, reason) = rest.split_once(" refused: ").expect(&text);
    let (whole, refused): (usize, usize) = (whole.parse().unwrap(), refused.parse().unwrap());
    assert_eq!(whole + refused, 8, "{text}");
    assert!(whole * LARGE <= 32 << 20, "more than the batch budget came back whole: {text}");
    assert!(refused >= 3, "{text}");
    assert!(reason.ends_with("this fetch-all's responses are larger than 33554432 bytes together"), "{text}");
}

/// A reply the server could not send is the plugin's failure like a trap:
/// a fail-open stage passes the request on, a fail-closed one answers 500.
#[tokio::test]
async fn an_unsendable_reply_is_passed_over_by_a_fail_open_stage() {
    let up = TestUpstream::named("up").await;
    let route = |name: &str, on_error: &str| {
        let stage = json!({ "config": { "mode": "reply-status", "status": 99 }, "on_error": on_error });
        Route::path(name, &format!("/{name}")).upstream("up").stage_with("hostile", stage)
    };
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("hostile", FIXTURE_HOSTILE)
        .route(route("open", "fail-open"))
        .route(route("closed", "fail-closed"));
    let gw = TestGateway::start(&config.to_string()).await;
    let open = gw.client.get("/open").await;
    assert_eq!((open.status, open.text().as_str()), (200, "up GET /open"), "passed on to the upstream");
    let detail = gw.client.get("/closed").await.problem(500);
    assert!(detail.contains("hostile"), "{detail}");
    assert_eq!(up.count(), 1, "only the fail-open request went upstream");
}
