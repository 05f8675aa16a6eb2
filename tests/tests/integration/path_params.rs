//! `;` path parameters, the "..;/" class of gateway bypasses: a route
//! guarded on `/admin` in front of an upstream that reads paths as a Java
//! servlet container does (`/admin;x/secret` and `/x/..;/admin/secret`
//! both mean `/admin/secret` to it) must not be reachable by either
//! spelling, whatever `[server] path_params` says.

use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::FIXTURE_RESPOND;
use wasmgate_testbed::{TestGateway, TestUpstream};

/// `/admin` is refused by a plugin; everything else goes to the app.
async fn gateway(mode: &str, up: &TestUpstream) -> TestGateway {
    let config = GatewayConfig::new()
        .section("server", json!({ "path_params": mode }))
        .upstream("app", up)
        .plugin_with("deny", FIXTURE_RESPOND, json!({"config": {"status": 403, "body": "admin only"}}))
        .route(Route::prefix("admin", "/admin").upstream("app").stage("deny", Value::Null))
        .route(Route::prefix("app", "/").upstream("app"));
    TestGateway::start(&config.to_string()).await
}

/// Spellings of `/admin/…` for a servlet container.
const ADMIN_SPELLINGS: [&str; 9] = [
    "/x/..;/admin/secret",
    "/admin;/secret",
    "/admin;x=1/secret",
    "/%2e%2e;/admin",
    "/x/%2E%2e;y=1/admin/secret",
    "/x/.;/../admin/secret",
    "/;x/admin/secret",
    "/admin/secret;jsessionid=1",
    "/admin;jsessionid=1",
];

/// A gateway in `mode` that meets every spelling of `/admin/…` with the
/// guard, the upstream untouched.
async fn guarded(mode: &str) -> (TestUpstream, TestGateway) {
    let up = TestUpstream::named("app").await;
    let gw = gateway(mode, &up).await;
    for path in ADMIN_SPELLINGS {
        assert_eq!(gw.client.get(path).await.status, 403, "{path} must meet the guard ({mode})");
    }
    assert_eq!(up.count(), 0, "nothing reached the upstream past the guard: {:?}", up.seen());
    (up, gw)
}

#[tokio::test]
async fn strip_routes_and_forwards_the_path_without_parameters() {
    let (_up, gw) = guarded("strip").await;
    let reply = gw.client.get("/cart;jsessionid=abc/items;v=2?q=1").await;
    assert_eq!(reply.text(), "app GET /cart/items?q=1", "plugins and upstream see the stripped path");
}

#[tokio::test]
async fn keep_forwards_parameters_but_routes_without_them() {
    let (_up, gw) = guarded("keep").await;
    let reply = gw.client.get("/cart;jsessionid=abc/items;v=2?q=1").await;
    assert_eq!(reply.text(), "app GET /cart;jsessionid=abc/items;v=2?q=1", "the upstream gets them as sent");
    let reply = gw.client.get("/cart/x/..;v=1/items").await;
    assert_eq!(reply.text(), "app GET /cart/items", "a `..;` segment is resolved, its parameters with it");
}

#[tokio::test]
async fn reject_refuses_any_parameter() {
    let up = TestUpstream::named("app").await;
    let gw = gateway("reject", &up).await;
    for path in ADMIN_SPELLINGS.into_iter().chain(["/cart;jsessionid=abc"]) {
        let detail = gw.client.get(path).await.problem(400);
        assert!(detail.contains("`;` parameters"), "{path}: {detail}");
    }
    assert_eq!(up.count(), 0, "{:?}", up.seen());
    assert_eq!(gw.client.get("/admin/secret").await.status, 403);
}

/// `%3B` is no parameter delimiter, to the gateway or to a container
/// (which splits parameters off before decoding): `/admin%3Bx` is one
/// segment named `admin;x`, not `/admin`, in every mode.
#[tokio::test]
async fn an_encoded_semicolon_is_a_literal_in_every_mode() {
    for mode in ["strip", "keep", "reject"] {
        let up = TestUpstream::named("app").await;
        let gw = gateway(mode, &up).await;
        assert_eq!(gw.client.get("/admin%3bx/secret").await.text(), "app GET /admin%3Bx/secret", "{mode}");
        assert_eq!(gw.client.get("/x/..%3B/admin").await.text(), "app GET /x/..%3B/admin", "{mode}");
        assert_eq!(gw.client.get("/x/..%3B;/admin").await.status, if mode == "reject" { 400 } else { 200 });
    }
}
