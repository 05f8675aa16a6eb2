//! ip-filter in a real gateway. The test client connects from 127.0.0.1;
//! on the routes with `trusted_proxies = 1` it plays the trusted proxy, so
//! the `X-Forwarded-For` it sends ends with the address that proxy would
//! have appended, and anything before that is what a client made up.

use http::Method;
use serde_json::json;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::IP_FILTER;
use wasmgate_testbed::{Reply, TestGateway, TestUpstream};

async fn setup() -> (TestGateway, TestUpstream) {
    let up = TestUpstream::named("api").await;
    let route = |name: &str, filter: serde_json::Value| {
        Route::prefix(name, &format!("/{name}")).upstream("api").stage("ip-filter", filter)
    };
    let config = GatewayConfig::new()
        .upstream("api", &up)
        .plugin("ip-filter", IP_FILTER)
        // Direct clients: the connection's address counts, X-Forwarded-For not.
        .route(route("direct", json!({ "allow": ["127.0.0.0/8", "2001:db8::/32"] })))
        .route(route("blocked", json!({ "deny": ["127.0.0.1"] })))
        // Behind one proxy (here the test client itself, at 127.0.0.1).
        .route(route(
            "proxied",
            json!({
                "allow": ["2001:db8:aa::/48", "198.51.100.0/24"],
                "deny": ["2001:db8:aa:bad::/64"],
                "trusted_proxies": 1,
            }),
        ));
    (TestGateway::start(&config.to_string()).await, up)
}

async fn call(gw: &TestGateway, path: &str, xff: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
    gw.client.send(Method::GET, path, &headers, "").await
}

#[tokio::test]
async fn the_connection_address_is_judged_when_no_proxy_is_trusted() {
    let (gw, up) = setup().await;
    assert_eq!(call(&gw, "/direct/x", None).await.status, 200);
    // Claiming another address changes nothing, either way.
    assert_eq!(call(&gw, "/direct/x", Some("203.0.113.9")).await.status, 200);
    assert_eq!(call(&gw, "/blocked/x", None).await.problem(403), "access from 127.0.0.1 is not allowed");
    assert_eq!(
        call(&gw, "/blocked/x", Some("198.51.100.7")).await.problem(403),
        "access from 127.0.0.1 is not allowed"
    );
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_its_ipv6_entry_is_judged() {
    let (gw, up) = setup().await;
    assert_eq!(call(&gw, "/proxied/x", Some("2001:db8:aa:1::5")).await.status, 200);
    assert_eq!(call(&gw, "/proxied/x", Some("[2001:db8:aa:2::5]:443")).await.status, 200);
    assert_eq!(call(&gw, "/proxied/x", Some("198.51.100.7")).await.status, 200);
    let detail = call(&gw, "/proxied/x", Some("2001:db8:aa:bad::5")).await.problem(403);
    assert_eq!(detail, "access from 2001:db8:aa:bad::5 is not allowed", "deny wins over allow");
    let detail = call(&gw, "/proxied/x", Some("2001:db8:bb::1")).await.problem(403);
    assert_eq!(detail, "access from 2001:db8:bb::1 is not allowed");
    // The header reaches the upstream as the gateway forwards it.
    assert_eq!(up.seen()[0].header("x-forwarded-for"), Some("2001:db8:aa:1::5, 127.0.0.1"));
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_beyond_the_trusted_hops_is_ignored() {
    let (gw, up) = setup().await;
    // The client claims an allowed address; the proxy appends its real one.
    let detail = call(&gw, "/proxied/x", Some("2001:db8:aa:1::5, 2001:db8:bb::1")).await.problem(403);
    assert_eq!(detail, "access from 2001:db8:bb::1 is not allowed");
    let many = format!("{}203.0.113.9", "198.51.100.7, ".repeat(2000));
    assert_eq!(call(&gw, "/proxied/x", Some(&many)).await.problem(403), "access from 203.0.113.9 is not allowed");
    // The other way round: junk on the left does not refuse a good client.
    assert_eq!(call(&gw, "/proxied/x", Some("unknown, 2001:db8:bb::1, 198.51.100.7")).await.status, 200);
    // No proxy entry at all: the connection's address, which is not allowed.
    assert_eq!(call(&gw, "/proxied/x", None).await.problem(403), "access from 127.0.0.1 is not allowed");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn a_bad_cidr_is_a_load_error_naming_the_route_and_the_entry() {
    let route =
        Route::prefix("office", "/office").stage("ip-filter", json!({ "allow": ["10.0.0.0/8", "2001:db8::1/32"] }));
    let (errors, _) = refused(&GatewayConfig::new().plugin("ip-filter", IP_FILTER).route(route).to_string()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(r#"route "office""#), "{errors:?}");
    assert!(errors[0].contains("allow[1]: `2001:db8::1/32` has bits set after the prefix"), "{errors:?}");
}
