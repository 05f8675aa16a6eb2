//! The transform plugin in a real gateway: headers, path, query, method and
//! JSON bodies, both ways.

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::*;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

/// Upstream `up`, and the plugins the tests use.
fn gateway(up: &TestUpstream) -> GatewayConfig {
    GatewayConfig::new().upstream("up", up).plugin("transform", TRANSFORM).plugin("set-var", FIXTURE_SET_VAR)
}

/// A route to `up` through the transform, configured with `config`.
fn transformed(route: Route, config: Value) -> Route {
    route.upstream("up").stage("transform", config)
}

#[tokio::test]
async fn header_ops_leave_bodies_streaming() {
    let big = "x".repeat(64 * 1024);
    let up = TestUpstream::start(|seen| Answer::new(200, seen.body.clone()).header("server", "up/1.0")).await;
    let route = transformed(
        // Far below the body size: buffering either body would fail the request.
        Route::path("upload", "/upload").set("max_body_bytes", 16),
        json!({
            "request": {"headers": {
                "set": {"x-tenant": "acme"},
                "add": {"via": "wasmgate"},
                "remove": ["x-debug"],
                "rename": {"x-old": "x-new"},
            }},
            "response": {"headers": {"set": {"x-served-by": "{route}"}, "remove": ["server"]}},
        }),
    );
    let gw = TestGateway::start(&gateway(&up).route(route).to_string()).await;

    let reply = gw
        .client
        .send(
            Method::POST,
            "/upload",
            &[("x-tenant", "spoofed"), ("x-debug", "1"), ("x-old", "v"), ("via", "1.1 edge")],
            big.clone(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body.len(), big.len(), "the response body streamed back whole");
    assert_eq!(reply.header("x-served-by"), Some("upload"));
    assert_eq!(reply.header("server"), None);

    let seen = &up.seen()[0];
    assert_eq!(seen.body.len(), big.len(), "the request body streamed through whole");
    assert_eq!(seen.header("x-tenant"), Some("acme"));
    let via: Vec<_> = seen.headers.get_all("via").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(via, ["1.1 edge", "wasmgate"]);
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!(seen.header("x-old"), None);
    assert_eq!(seen.header("x-new"), Some("v"));
}

#[tokio::test]
async fn path_query_and_method_are_rewritten() {
    let up = TestUpstream::named("up").await;
    let profile = transformed(
        Route::path("profile", "/users/{id}"),
        json!({"request": {
            "method": "POST",
            "path": {"template": "/internal/users/{id}/profile"},
            "query": {"add": {"source": "gateway", "rid": "{request_id}"}, "remove": ["debug"]},
        }}),
    );
    let api = transformed(Route::prefix("api", "/api"), json!({"request": {"path": {"strip_prefix": "/api"}}}));
    let legacy = transformed(
        Route::prefix("legacy", "/v1"),
        json!({"request": {"path": {"replace_prefix": {"from": "/v1", "to": "/v2/compat"}}}}),
    );
    let gw = TestGateway::start(&gateway(&up).route(profile).route(api).route(legacy).to_string()).await;

    let reply = gw.client.send(Method::GET, "/users/42?debug=1&keep=yes", &[("x-request-id", "rid-7")], "").await;
    assert_eq!(reply.text(), "up POST /internal/users/42/profile?keep=yes&rid=rid-7&source=gateway");

    assert_eq!(gw.client.get("/api/orders/1?x=2").await.text(), "up GET /orders/1?x=2");
    assert_eq!(gw.client.get("/api").await.text(), "up GET /");
    assert_eq!(gw.client.get("/v1/items").await.text(), "up GET /v2/compat/items");
}

#[tokio::test]
async fn request_json_is_rewritten_with_templates() {
    let up = TestUpstream::start(|seen| Answer::new(200, seen.body.clone())).await;
    let route = transformed(
        Route::path("orders", "/users/{id}/orders").stage("set-var", json!({"name": "user", "value": "alice"})),
        json!({"request": {"body": {
            "rename": {"user_name": "userName"},
            "move": {"meta.created": "created"},
            "remove": ["password"],
            "add": {
                "request_id": "{request_id}",
                "audit.by": "{var.user}",
                "audit.tenant": "{header.x-tenant}",
                "audit.owner": "{param.id}",
            },
        }}}),
    );
    let gw = TestGateway::start(&gateway(&up).route(route).to_string()).await;

    let reply = gw
        .client
        .send(
            Method::POST,
            "/users/7/orders",
            &[("x-request-id", "rid-42"), ("x-tenant", "acme"), ("content-type", "application/json")],
            r#"{"user_name": "al", "password": "hunter2", "meta": {"created": "2024-01-01", "v": 1}}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "userName": "al",
            "created": "2024-01-01",
            "meta": {"v": 1},
            "request_id": "rid-42",
            "audit": {"by": "alice", "tenant": "acme", "owner": "7"},
        })
    );
    let seen = &up.seen()[0];
    assert_eq!(
        seen.header("content-length"),
        Some(seen.body.len().to_string().as_str()),
        "the host set content-length for the new body"
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn malformed_or_non_json_request_bodies_are_refused_with_400() {
    let up = TestUpstream::named("up").await;
    let route = transformed(Route::path("strict", "/items"), json!({"request": {"body": {"remove": ["id"]}}}));
    let gw = TestGateway::start(&gateway(&up).route(route).to_string()).await;

    let detail = gw
        .client
        .send(Method::POST, "/items", &[("content-type", "application/json")], r#"{"id": 1,"#)
        .await
        .problem(400);
    assert!(detail.starts_with("the request body is not valid JSON: EOF while parsing"), "{detail}");
    let detail = gw.client.send(Method::POST, "/items", &[("content-type", "text/plain")], "id=1").await.problem(400);
    assert_eq!(detail, "the request body must be JSON, not text/plain");
    assert_eq!(up.count(), 0, "refused bodies never reach the upstream");

    let reply = gw.client.send(Method::POST, "/items", &[], r#"{"id": 1, "n": 2}"#).await;
    assert_eq!(reply.status, 200);
    assert_eq!(up.seen()[0].body, r#"{"n":2}"#);
}

fn user_service() -> impl Fn(&wasmgate_testbed::Seen) -> Answer + Send + Sync + 'static {
    |_| {
        Answer::json(&json!({
            "id": "7", "user_name": "u7", "email": "u7@example.com", "role": "member",
            "meta": {"created": "2024-01-01", "etag": "abc"},
        }))
    }
}

#[tokio::test]
async fn mobile_clients_get_a_lighter_response_than_web_clients() {
    let up = TestUpstream::start(user_service()).await;
    let route = transformed(
        Route::path("user", "/users/{id}"),
        json!({"response": {"body": {
            "rename": {"user_name": "userName"},
            "move": {"meta.created": "createdAt"},
            "allow": {
                "header": "x-client",
                "default": "web",
                "clients": {"mobile": ["id", "userName"], "web": ["id", "userName", "email", "role", "createdAt"]},
            },
        }}}),
    );
    let gw = TestGateway::start(&gateway(&up).route(route).to_string()).await;

    let mobile = gw.client.send(Method::GET, "/users/7", &[("x-client", "mobile")], "").await;
    assert_eq!(mobile.status, 200, "{}", mobile.text());
    assert_eq!(mobile.json(), json!({"id": "7", "userName": "u7"}));
    assert_eq!(mobile.header("content-length"), Some(mobile.body.len().to_string().as_str()));
    assert_eq!(mobile.header("content-type"), Some("application/json"));
    assert_eq!(mobile.header("vary"), Some("x-client"));

    let web =
        json!({"id": "7", "userName": "u7", "email": "u7@example.com", "role": "member", "createdAt": "2024-01-01"});
    let reply = gw.client.send(Method::GET, "/users/7", &[("x-client", "web")], "").await;
    assert_eq!(reply.json(), web);
    assert_eq!(gw.client.get("/users/7").await.json(), web, "no client type: the default");
    let reply = gw.client.send(Method::GET, "/users/7", &[("x-client", "smart-tv")], "").await;
    assert_eq!(reply.json(), web, "an unknown client type: the default");
    assert!(mobile.body.len() < reply.body.len());
}

#[tokio::test]
async fn list_responses_are_transformed_element_by_element() {
    let up = TestUpstream::start(|_| {
        Answer::json(&json!([
            {"order_id": "o-1", "internal_cost": 3, "lines": [{"sku": "a", "cost": 1}]},
            {"order_id": "o-2", "internal_cost": 4, "lines": []},
        ]))
    })
    .await;
    let route = transformed(
        Route::path("orders", "/orders"),
        json!({"response": {"body": {"rename": {"order_id": "id"}, "remove": ["internal_cost", "lines.cost"]}}}),
    );
    let gw = TestGateway::start(&gateway(&up).route(route).to_string()).await;

    assert_eq!(
        gw.client.get("/orders").await.json(),
        json!([{"id": "o-1", "lines": [{"sku": "a"}]}, {"id": "o-2", "lines": []}])
    );
}

#[tokio::test]
async fn malformed_response_json_passes_or_becomes_502_as_configured() {
    let up =
        TestUpstream::start(|_| Answer::new(200, "<html>not json</html>").header("content-type", "application/json"))
            .await;
    let on_invalid_json = |name: &str, policy: &str| {
        transformed(
            Route::path(name, &format!("/{name}")),
            json!({"response": {"on_invalid_json": policy, "body": {"remove": ["x"]}}}),
        )
    };
    let config = gateway(&up).route(on_invalid_json("lenient", "pass")).route(on_invalid_json("strict", "error"));
    let gw = TestGateway::start(&config.to_string()).await;

    let reply = gw.client.get("/lenient").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "<html>not json</html>");
    let detail = gw.client.get("/strict").await.problem(502);
    assert!(detail.starts_with("the upstream's response body is not valid JSON"), "{detail}");
}

#[tokio::test]
async fn a_bad_transform_config_stops_the_gateway_with_the_reason() {
    let up = TestUpstream::named("up").await;
    let route =
        transformed(Route::path("bad", "/users/{id}"), json!({"request": {"path": {"template": "/u/{header.x-id}"}}}));
    let (errors, _) = refused(&gateway(&up).route(route).to_string()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("route \"bad\": plugin transform rejected its config"), "{errors:?}");
    assert!(errors[0].contains("request.path.template"), "{errors:?}");
    assert!(errors[0].contains("only route parameters"), "{errors:?}");
}
