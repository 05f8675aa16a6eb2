//! A plugin's writes reach the host in one batch per call: reads in between
//! see them, they land in order, and a write the host refuses fails the
//! call as a single setter would.

use http::Method;
use wasmgate_testbed::plugins::FIXTURE_EDITS;
use wasmgate_testbed::{TestGateway, TestUpstream, logs};

fn config(up: &TestUpstream, plugin_config: &str) -> String {
    format!(
        r#"
{}
[plugins.edits]
path = "{FIXTURE_EDITS}"

[[routes]]
name = "all"
prefix = "/"
upstream = "up"
pipeline = [{{ plugin = "edits", config = {plugin_config} }}]
"#,
        up.section("up")
    )
}

#[tokio::test]
async fn writes_are_read_back_and_land_in_order() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config(&up, r#"{ header = "X-Set", value = "v1" }"#)).await;
    let reply = gw.client.send(Method::GET, "/", &[("x-drop", "gone"), ("x-set", "client")], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-seen-step"), Some("two"), "a response header set in the request phase");
    let seen = &up.seen()[0];
    assert_eq!(seen.header("x-read-back"), Some("var=two header=v1 dropped=true many=a,b"));
    assert_eq!(seen.header("x-set"), Some("v1"), "set replaces the client's value");
    assert_eq!(seen.header("x-drop"), None);
    let many: Vec<_> = seen.headers.get_all("x-many").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(many, ["a", "b"]);
}

/// The request to `/` fails with a plugin problem; its log line says why.
async fn refused(gw: &TestGateway, logs: &logs::Logs) -> String {
    let reply = gw.client.get("/").await;
    assert_eq!(reply.plugin_problem(500, "edits"), "plugin edits returned an invalid value");
    let id = reply.header("x-request-id").unwrap();
    let line = logs.find(&[("plugin", "edits"), ("request_id", id), ("kind", "write")]).expect("a log line");
    line["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refused_write_fails_the_call() {
    let logs = logs::capture();
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config(&up, r#"{ header = "bad name", value = "v" }"#)).await;
    assert_eq!(refused(&gw, &logs).await, "invalid header name \"bad name\"");
    let gw = TestGateway::start(&config(&up, "{ header = \"x-ok\", value = \"line\\nbreak\" }")).await;
    assert_eq!(refused(&gw, &logs).await, "invalid value for header x-ok");
    assert_eq!(up.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn the_request_stays_read_only_in_the_response_phase() {
    let logs = logs::capture();
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config(&up, r#"{ header = "x-late", value = "v", in_response = true }"#)).await;
    assert_eq!(refused(&gw, &logs).await, "the request cannot be changed in the response phase");
    assert_eq!(up.count(), 1, "the request had gone upstream");
}
