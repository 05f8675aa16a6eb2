//! cors in a real gateway, in front of jwt-auth: preflights are answered
//! without a token, actual requests still need one, and every answer an
//! allowed origin gets (the upstream's, jwt-auth's 401) is readable by it.

use http::Method;
use jwt_simple::prelude::*;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{CORS, JWT_AUTH};
use wasmgate_testbed::{Reply, TestGateway, TestUpstream};

const SECRET: &str = "integration-secret-of-32-bytes!!";
const APP: &str = "https://app.example.com";

async fn setup() -> (TestGateway, TestUpstream) {
    let up = TestUpstream::named("api").await;
    let cors = json!({
        "allow_origins": [APP, "https://*.partner.test"],
        "allow_methods": ["GET", "POST", "DELETE"],
        "allow_headers": ["authorization", "content-type"],
        "expose_headers": ["x-request-id"],
        "allow_credentials": true,
        "max_age": 900,
    });
    let config = GatewayConfig::new()
        .upstream("api", &up)
        .plugin("cors", CORS)
        .plugin_with(
            "jwt-auth",
            JWT_AUTH,
            json!({ "config": { "keys": [{ "secret": SECRET, "algorithms": ["HS256"] }] } }),
        )
        .route(Route::prefix("api", "/api").upstream("api").stage("cors", cors).stage("jwt-auth", Value::Null));
    (TestGateway::start(&config.to_string()).await, up)
}

fn token() -> String {
    let claims = Claims::create(Duration::from_mins(5)).with_subject("alice");
    HS256Key::from_bytes(SECRET.as_bytes()).authenticate(claims).unwrap()
}

async fn preflight(gw: &TestGateway, origin: &str, method: &str, headers: &str) -> Reply {
    let request =
        [("origin", origin), ("access-control-request-method", method), ("access-control-request-headers", headers)];
    gw.client.send(Method::OPTIONS, "/api/orders", &request, "").await
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply.headers.keys().map(|n| n.as_str().to_owned()).filter(|n| n.starts_with("access-control-")).collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_passes_without_a_token() {
    let (gw, up) = setup().await;
    let reply = preflight(&gw, APP, "DELETE", "Authorization, Content-Type").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("access-control-allow-methods"), Some("GET, POST, DELETE"));
    assert_eq!(reply.header("access-control-allow-headers"), Some("authorization, content-type"));
    assert_eq!(reply.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(reply.header("access-control-max-age"), Some("900"));
    assert_eq!(reply.header("vary"), Some("Origin"));
    assert!(reply.header("www-authenticate").is_none(), "jwt-auth never saw it");

    let reply = preflight(&gw, "https://eu.partner.test", "GET", "authorization").await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://eu.partner.test"));
    assert_eq!(up.count(), 0, "preflights are answered by the gateway");
}

#[tokio::test]
async fn a_preflight_from_a_refused_origin_or_asking_too_much_gets_403() {
    let (gw, up) = setup().await;
    let reply = preflight(&gw, "https://evil.test", "GET", "authorization").await;
    assert_eq!(reply.problem(403), "origin `https://evil.test` is not allowed");
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);

    let reply = preflight(&gw, "https://partner.test", "GET", "").await;
    reply.problem(403);
    let reply = preflight(&gw, APP, "PUT", "").await;
    assert_eq!(reply.problem(403), "method `PUT` is not allowed (allowed: GET, POST, DELETE)");
    let reply = preflight(&gw, APP, "GET", "authorization, x-debug").await;
    assert_eq!(reply.problem(403), "header `x-debug` is not allowed (allowed: authorization, content-type)");
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn the_actual_request_still_needs_a_token_and_its_401_is_readable() {
    let (gw, up) = setup().await;
    let reply = gw.client.send(Method::GET, "/api/orders", &[("origin", APP)], "").await;
    reply.problem(401);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP), "the browser may read the 401");
    assert_eq!(reply.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(up.count(), 0);

    let auth = format!("Bearer {}", token());
    let reply = gw.client.send(Method::GET, "/api/orders", &[("origin", APP), ("authorization", &auth)], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("access-control-expose-headers"), Some("x-request-id"));
    assert_eq!(reply.headers.get_all("vary").iter().collect::<Vec<_>>(), ["Origin"]);
    assert_eq!(up.seen()[0].header("x-user-id"), Some("alice"));
}

#[tokio::test]
async fn other_origins_and_same_origin_requests_get_no_cors_headers() {
    let (gw, up) = setup().await;
    let auth = format!("Bearer {}", token());
    let reply = gw
        .client
        .send(Method::GET, "/api/orders", &[("origin", "https://evil.test"), ("authorization", &auth)], "")
        .await;
    assert_eq!(reply.status, 200, "the request goes through: the browser enforces");
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);
    assert_eq!(reply.header("vary"), Some("Origin"));

    let reply = gw.client.send(Method::GET, "/api/orders", &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, 200);
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);
    assert_eq!(reply.header("vary"), None, "no Origin: untouched");
    assert_eq!(up.count(), 2);
}
