//! `wasmgate run`'s stderr as an operator's log pipeline gets it: with
//! `--log-format json` every line is one JSON object, even when plugins
//! panic or hand the host values it refuses; a plugin's panic message
//! reaches the log with its file and line; a pipe gets no colour codes.

#![cfg(unix)]

use std::net::SocketAddr;
use std::time::Duration;

use wasmgate_testbed::plugins::FIXTURE_HOSTILE;
use wasmgate_testbed::process::GatewayProcess;
use wasmgate_testbed::{Client, TestUpstream};

const BOUND: Duration = Duration::from_secs(20);

/// A colour code's start: ESC.
const ESC: char = '\u{1b}';

/// Routes whose plugin fails, and one that works.
fn config(up: &TestUpstream) -> String {
    let route = |name: &str, config: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\npath = \"/{name}\"\nupstream = \"up\"\npipeline = [{{ plugin = \"hostile\", config = {config} }}]\n"
        )
    };
    [
        format!("[server]\nlisten = [\"127.0.0.1:0\"]\n\n{}", up.section("up")),
        format!("[plugins.hostile]\npath = \"{FIXTURE_HOSTILE}\"\ntimeout_ms = 10000\nmemory_mb = 64\n"),
        // The message carries a colour code of its own, which must not
        // reach the log raw either.
        route("panic", "{ mode = \"panic\", message = \"giving up \\u001b[31min red\" }"),
        route("headers", "{ mode = \"many-request-headers\" }"),
        route("reply", "{ mode = \"many-reply-headers\" }"),
        route("status", "{ mode = \"reply-status\", status = 99 }"),
        route("fanout", "{ mode = \"fanout-path\", path = \"/a\\r\\nb\" }"),
        "[[routes]]\nname = \"healthy\"\npath = \"/healthy\"\nupstream = \"up\"\n".to_owned(),
    ]
    .join("\n")
}

/// Starts `wasmgate run` with logs in `format`.
fn start(config: &str, dir: &std::path::Path, format: &str) -> GatewayProcess {
    let path = dir.join(format!("{format}.toml"));
    std::fs::write(&path, config).unwrap();
    GatewayProcess::start_with(env!("CARGO_BIN_EXE_wasmgate"), &path, format, BOUND)
}

/// Sends every hostile request and a healthy one.
async fn exercise(addr: SocketAddr) {
    let client = Client::new(addr);
    for path in ["/panic", "/headers", "/reply", "/status", "/fanout"] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 500, "{path}: {}", reply.text());
    }
    assert_eq!(client.get("/healthy").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_stay_json_lines_and_carry_a_plugins_panic() {
    let up = TestUpstream::named("up").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(&config(&up), dir.path(), "json");
    exercise(gateway.addr).await;
    let lines = gateway.terminate();

    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}")))
        .collect();
    let all = lines.join("\n");
    assert!(!all.contains(ESC), "no colour codes: {all}");
    let fields: Vec<&serde_json::Value> = events.iter().map(|e| &e["fields"]).collect();

    // The plugin's own line, from the SDK's panic hook: message, file, line.
    let own = fields
        .iter()
        .find(|f| f["message"].as_str().is_some_and(|m| m.starts_with("panicked at ")))
        .unwrap_or_else(|| panic!("the plugin's panic message in the log: {all}"));
    let message = own["message"].as_str().unwrap();
    assert!(message.contains("hostile/src/lib.rs:"), "{message}");
    assert!(message.ends_with("giving up \\u{1b}[31min red"), "spelled out: {message}");
    assert_eq!((own["plugin"].as_str(), own["route"].as_str()), (Some("hostile"), Some("panic")));

    // The gateway's line for each failure: plugin, route, request id,
    // kind and reason; the trap's with the panic message and a backtrace.
    for route in ["panic", "headers", "reply", "status", "fanout"] {
        let failed = fields
            .iter()
            .find(|f| f["route"] == route && f["kind"].is_string())
            .unwrap_or_else(|| panic!("no failure line for {route}: {all}"));
        assert_eq!(failed["plugin"], "hostile", "{failed}");
        assert!(failed["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{failed}");
        assert!(failed["reason"].as_str().is_some_and(|r| !r.is_empty()), "{failed}");
    }
    let trap = fields.iter().find(|f| f["route"] == "panic" && f["kind"] == "trap").unwrap();
    assert!(trap["reason"].as_str().unwrap().contains(message), "{trap}");
    assert!(trap["backtrace"].as_str().is_some_and(|b| b.contains("wasm function")), "{trap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_into_a_pipe_have_no_colour_codes() {
    let up = TestUpstream::named("up").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(&config(&up), dir.path(), "text");
    exercise(gateway.addr).await;
    let lines = gateway.terminate();
    let all = lines.join("\n");
    assert!(all.contains("panicked at "), "the plugin's panic is logged: {all}");
    assert!(all.contains("plugin failed the request"), "{all}");
    assert!(!all.contains(ESC), "no colour codes, the gateway's or a plugin's: {all}");
}
