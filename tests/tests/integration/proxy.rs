//! Routing, plugins in both phases and proxying, through real sockets,
//! real components and real upstream servers.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route, proxy_all};
use wasmgate_testbed::plugins::*;
use wasmgate_testbed::{Answer, Client, TestGateway, TestUpstream};

#[tokio::test]
async fn example_plugin_adds_headers_both_ways() {
    let up = TestUpstream::named("users").await;
    let route = Route::path("users", "/users/{id}")
        .upstream("users")
        .stage("add-header", json!({"request": {"x-route": "users"}, "response": {"x-served-by": "wasmgate"}}));
    let config = GatewayConfig::new()
        .upstream("users", &up)
        .plugin_with("add-header", ADD_HEADER, json!({"config": {"request": {"x-added": "default"}}}))
        .route(route);
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.get("/users/7?x=1").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "users GET /users/7?x=1");
    assert_eq!(reply.header("x-served-by"), Some("wasmgate"));
    let seen = &up.seen()[0];
    assert_eq!(seen.header("x-added"), Some("default"), "plugin default config applies");
    assert_eq!(seen.header("x-route"), Some("users"), "route config is merged over it");
}

#[tokio::test]
async fn a_plugin_reply_short_circuits_the_upstream() {
    let up = TestUpstream::named("users").await;
    let gw = one_plugin(
        &up,
        "users",
        ("respond", FIXTURE_RESPOND),
        json!({"status": 403, "body": "denied", "header": "yes"}),
    )
    .await;

    let reply = gw.client.get("/anything").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "denied");
    assert_eq!(reply.header("x-fixture"), Some("yes"));
    assert_eq!(reply.header("content-length"), Some("6"));
    assert_eq!(up.count(), 0, "the upstream must not be called");
}

#[tokio::test]
async fn on_response_changes_status_headers_and_body() {
    let up = TestUpstream::start(|_| Answer::new(200, "original").header("x-up", "1")).await;
    let gw = one_plugin(&up, "up", ("rewrite", FIXTURE_REWRITE_RESPONSE), json!({"status": 203})).await;

    let reply = gw.client.send(Method::GET, "/x", &[("x-up", "from-client")], "").await;
    assert_eq!(reply.status, 203);
    assert_eq!(reply.header("x-rewritten"), Some("yes"));
    assert_eq!(reply.header("x-request-x-up"), Some("from-client"), "the request's header, prefetched");
    assert_eq!(reply.header("x-response-x-up"), Some("1"), "the response's own, not the request's");
    assert_eq!(reply.header("x-up"), Some("1"));
    assert_eq!(reply.text(), "rewritten:original");
    assert_eq!(reply.header("content-length"), Some("18"));
}

#[tokio::test]
async fn gateway_errors_are_problem_json() {
    let slow = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(3))).await;
    let config = GatewayConfig::new()
        .upstream("slow", &slow)
        .upstream_at("refused", "127.0.0.1:1")
        .route(Route::path("slow", "/slow").upstream("slow").set("timeout_ms", 200))
        .route(Route::path("down", "/down").upstream("refused"))
        .route(Route::path("get-only", "/only-get").set("methods", vec!["GET"]).upstream("slow"));
    let gw = TestGateway::start(&config.to_string()).await;

    let detail = gw.client.get("/nope").await.problem(404);
    assert!(detail.contains("/nope"), "{detail}");
    let detail = gw.client.get("/down").await.problem(502);
    assert!(detail.contains("refused"), "{detail}");
    let detail = gw.client.get("/slow").await.problem(504);
    assert!(detail.contains("slow"), "{detail}");
    let reply = gw.client.send(Method::DELETE, "/only-get", &[], "").await;
    reply.problem(405);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert!(reply.header("x-request-id").is_some(), "errors carry the request id");
}

#[tokio::test]
async fn proxy_headers_reach_the_upstream() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&to_up(&up)).await;

    let reply = gw
        .client
        .send(
            Method::GET,
            "/a",
            &[
                ("host", "api.example.test"),
                ("x-forwarded-for", "203.0.113.5"),
                ("connection", "x-hop"),
                ("x-hop", "secret"),
                ("keep-alive", "timeout=5"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = &up.seen()[0];
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.5, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("api.example.test"));
    assert_eq!(seen.header("host"), Some("api.example.test"));
    assert_eq!(seen.header("x-hop"), None, "headers named by Connection are hop-by-hop");
    assert_eq!(seen.header("keep-alive"), None);
    assert_eq!(seen.header("proxy-authorization"), None);
    // The trace is continued: same trace id and flags, the gateway's own
    // span as the upstream's parent.
    let traceparent = seen.header("traceparent").expect("traceparent");
    assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
    assert!(traceparent.ends_with("-01") && !traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
    let generated = seen.header("x-request-id").expect("a request id is generated");
    assert_eq!(generated.len(), 32);
    assert_eq!(reply.header("x-request-id"), Some(generated), "and returned to the client");

    gw.client.send(Method::GET, "/b", &[("x-request-id", "client-id-1")], "").await;
    assert_eq!(up.seen()[1].header("x-request-id"), Some("client-id-1"), "a client's id is kept");
}

#[tokio::test]
async fn buffered_bodies_are_limited_and_rewritten() {
    let up = TestUpstream::start(|seen| Answer::new(200, seen.body.clone())).await;
    let limited = |name: &str| Route::path(name, &format!("/{name}")).upstream("up").set("max_body_bytes", 16);
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("upper", FIXTURE_BODY_UPPER)
        .route(limited("upper").stage("upper", Value::Null))
        .route(limited("stream"));
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.send(Method::POST, "/upper", &[], "hello").await;
    assert_eq!(reply.text(), "HELLO");
    assert_eq!(up.seen()[0].header("content-length"), Some("5"));

    let detail = gw.client.send(Method::POST, "/upper", &[], "x".repeat(17)).await.problem(413);
    assert!(detail.contains("16 bytes"), "{detail}");
    assert_eq!(up.count(), 1, "an oversized body is not forwarded");

    let big = "y".repeat(64 * 1024);
    let reply = gw.client.send(Method::POST, "/stream", &[], big.clone()).await;
    assert_eq!(reply.status, 200, "without a plugin asking for it, the body streams unbuffered");
    assert_eq!(reply.body.len(), big.len());
}

#[tokio::test]
async fn plugins_see_route_params_context_and_shared_vars() {
    let route = Route::path("items", "/shops/{shop}/items/{item}")
        .stage("set-var", json!({"name": "seen", "value": "by-first-plugin"}))
        .stage("echo", Value::Null);
    let config =
        GatewayConfig::new().plugin("set-var", FIXTURE_SET_VAR).plugin("echo", FIXTURE_ECHO_CONTEXT).route(route);
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.send(Method::GET, "/shops/s1/items/42?color=red", &[("x-request-id", "rid-9")], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let ctx = reply.json();
    assert_eq!(ctx["route"], "items");
    assert_eq!(ctx["params"], json!({"shop": "s1", "item": "42"}));
    assert_eq!(ctx["path"], "/shops/s1/items/42");
    assert_eq!(ctx["query"], "color=red");
    assert_eq!(ctx["method"], "GET");
    assert_eq!(ctx["request_id"], "rid-9");
    assert!(ctx["client_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(ctx["var_seen"], "by-first-plugin");
}

#[tokio::test]
async fn http2_clients_are_served() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&to_up(&up)).await;
    let reply = Client::http2(gw.addr).get("/h2").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "up GET /h2");
    let seen = &up.seen()[0];
    let authority = gw.addr.to_string();
    assert_eq!(seen.header("host"), Some(authority.as_str()), "the :authority becomes Host upstream");
    assert_eq!(seen.header("x-forwarded-host"), Some(authority.as_str()));
}

/// Every path proxied to `up`.
fn to_up(up: &TestUpstream) -> String {
    proxy_all("up", json!({ "targets": [up.target()] })).to_string()
}

/// Every path through one plugin, configured with `config`, to `up` as
/// upstream `name`.
async fn one_plugin(up: &TestUpstream, name: &str, (plugin, path): (&str, &str), config: Value) -> TestGateway {
    let route = Route::prefix("r", "/").upstream(name).stage(plugin, config);
    TestGateway::start(&GatewayConfig::new().upstream(name, up).plugin(plugin, path).route(route).to_string()).await
}
