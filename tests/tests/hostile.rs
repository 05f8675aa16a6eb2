//! A plugin that hands the host values HTTP or the server's limits do not
//! allow fails its own request with a 500 problem and nothing else: no
//! panic, no closed connection, no plugin internals in the body.

use wasmgate_testbed::plugins::FIXTURE_HOSTILE;
use wasmgate_testbed::{KeepAlive, TestGateway, TestUpstream};

/// Each case: its route's path and the fixture's config for it.
const CASES: &[(&str, &str)] = &[
    ("/many-request-headers", r#"{ mode = "many-request-headers" }"#),
    ("/many-response-headers", r#"{ mode = "many-response-headers" }"#),
    ("/many-on-response-headers", r#"{ mode = "many-on-response-headers" }"#),
    ("/many-reply-headers", r#"{ mode = "many-reply-headers" }"#),
    ("/reply-status-99", r#"{ mode = "reply-status", status = 99 }"#),
    ("/reply-status-1000", r#"{ mode = "reply-status", status = 1000 }"#),
    ("/reply-status-101", r#"{ mode = "reply-status", status = 101 }"#),
    ("/reply-bad-header-value", r#"{ mode = "reply-bad-header-value" }"#),
    ("/fanout-path-crlf", r#"{ mode = "fanout-path", path = "/a\r\nx-injected: yes" }"#),
    ("/fanout-path-space", r#"{ mode = "fanout-path", path = "/a b" }"#),
    ("/fanout-path-long", r#"{ mode = "fanout-path", path = "/{long}" }"#),
    ("/fanout-method", r#"{ mode = "fanout-method", method = "GE T" }"#),
    ("/fanout-method-empty", r#"{ mode = "fanout-method", method = "" }"#),
    ("/fanout-many", r#"{ mode = "fanout-many" }"#),
    ("/fanout-bodies", r#"{ mode = "fanout-bodies", count = 8, body_bytes = 262144 }"#),
    ("/panic", r#"{ mode = "panic", message = "hostile fixture gives up" }"#),
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
    for (path, plugin_config) in CASES {
        let plugin_config = plugin_config.replace("{long}", &"a".repeat(9000));
        toml.push_str(&format!(
            "\n[[routes]]\nname = \"{}\"\npath = \"{path}\"\nupstream = \"up\"\npipeline = [{{ plugin = \"hostile\", config = {plugin_config} }}]\n",
            &path[1..]
        ));
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_fail_their_own_request_and_nothing_else() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config(&up)).await;
    // Every case runs, and every failure is reported at once.
    let mut failures = Vec::new();
    for (path, _) in CASES {
        if let Err(e) = case(gw.addr, path).await {
            failures.push(format!("{path}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(gw.client.get("/healthy").await.status, 200);
    let reached: Vec<String> = up.seen().into_iter().map(|s| s.uri).filter(|uri| uri != "/healthy").collect();
    assert_eq!(reached, ["/many-on-response-headers"], "only the request whose response was refused went upstream");
}

/// The hostile request gets a plugin problem, and its connection serves the
/// next request.
async fn case(addr: std::net::SocketAddr, path: &str) -> Result<(), String> {
    let mut conn = KeepAlive::connect(addr).await;
    let reply = conn.get(path).await?;
    let detail = std::panic::catch_unwind(|| reply.plugin_problem(500, "hostile"))
        .map_err(|e| e.downcast_ref::<String>().cloned().unwrap_or_default())?;
    let expected = if path.starts_with("/fanout") || path == "/panic" {
        "plugin hostile failed"
    } else {
        "plugin hostile returned an invalid value"
    };
    if detail != expected {
        return Err(format!("detail {detail:?}, expected {expected:?}"));
    }
    let next = conn.get("/healthy").await.map_err(|e| format!("the next request: {e}"))?;
    if next.status != 200 {
        return Err(format!("the next request got {}", next.status));
    }
    Ok(())
}
