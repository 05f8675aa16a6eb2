//! The aggregate plugin in a real gateway: routes without an upstream
//! answered from several upstream services merged into one JSON document.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::*;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

/// The plugin, the given upstreams, and upstream `down` where nothing
/// listens.
fn gateway(upstreams: &[(&str, &TestUpstream)]) -> GatewayConfig {
    let base = GatewayConfig::new().plugin("aggregate", AGGREGATE).upstream_at("down", "127.0.0.1:1");
    upstreams.iter().fold(base, |config, (name, up)| config.upstream(name, up))
}

/// A route the aggregate answers, configured with `config`.
fn aggregate(name: &str, path: &str, config: Value) -> Route {
    Route::path(name, path).stage("aggregate", config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_parts_are_called_concurrently_and_merged() {
    // The three services only answer once all three requests have arrived:
    // calls made one after the other would each wait until their timeout.
    let gate = Arc::new(tokio::sync::Barrier::new(3));
    let product = TestUpstream::start_gated(gate.clone(), |s| {
        Answer::json(&json!({"id": s.uri.rsplit('/').next().unwrap(), "title": "Tea"}))
    })
    .await;
    let reviews = TestUpstream::start_gated(gate.clone(), |_| Answer::json(&json!([{"stars": 5}]))).await;
    let inventory = TestUpstream::start_gated(gate, |_| Answer::json(&json!({"count": 3}))).await;

    let gw = TestGateway::start(&gateway(&[("product", &product), ("reviews", &reviews), ("inventory", &inventory)])
        .route(aggregate(
            "product-details",
            "/products/{id}/details",
            json!({"deadline_ms": 10000, "parts": [
                {"name": "product", "upstream": "product", "path": "/products/{param.id}", "timeout_ms": 5000, "merge": "root"},
                {"name": "reviews", "upstream": "reviews", "path": "/reviews?product={param.id}", "timeout_ms": 5000},
                {"name": "inventory", "upstream": "inventory", "path": "/stock/{param.id}", "timeout_ms": 5000, "merge_as": "availability.stock"},
            ]}),
        ))
        .to_string())
    .await;

    let reply = gw.client.get("/products/p1/details").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-wasmgate-partial"), None);
    assert_eq!(
        reply.json(),
        json!({"id": "p1", "title": "Tea", "reviews": [{"stars": 5}], "availability": {"stock": {"count": 3}}})
    );
    assert_eq!(reviews.seen()[0].uri, "/reviews?product=p1");
}

#[tokio::test]
async fn a_dependent_part_uses_values_from_an_earlier_response() {
    let users = TestUpstream::start(|_| Answer::json(&json!({"id": 7, "cafe_ids": ["c1", "c2"]}))).await;
    let cafes = TestUpstream::start(|_| Answer::json(&json!([{"id": "c1"}, {"id": "c2"}]))).await;
    let gw = TestGateway::start(
        &gateway(&[("users", &users), ("cafes", &cafes)])
            .route(aggregate(
                "my-cafes",
                "/users/{id}/cafes",
                json!({"parts": [
                    {"name": "cafes", "upstream": "cafes", "path": "/cafes?ids={part.user.cafe_ids}"},
                    {"name": "user", "upstream": "users", "path": "/users/{param.id}"},
                ]}),
            ))
            .to_string(),
    )
    .await;

    let reply = gw.client.get("/users/7/cafes").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(users.seen()[0].uri, "/users/7");
    assert_eq!(cafes.seen()[0].uri, "/cafes?ids=c1,c2", "the array became a comma-joined list");
    assert_eq!(
        reply.json(),
        json!({"user": {"id": 7, "cafe_ids": ["c1", "c2"]}, "cafes": [{"id": "c1"}, {"id": "c2"}]})
    );
}

#[tokio::test]
async fn failed_optional_parts_fall_back_and_the_response_says_it_is_partial() {
    let product = TestUpstream::start(|_| Answer::json(&json!({"id": "p1"}))).await;
    let reviews = TestUpstream::start(|_| Answer::new(500, "boom")).await;
    let gw = TestGateway::start(&gateway(&[("product", &product), ("reviews", &reviews)])
        .route(aggregate(
            "details",
            "/details",
            json!({"parts": [
                {"name": "product", "upstream": "product", "path": "/p", "merge": "root"},
                {"name": "reviews", "upstream": "reviews", "path": "/r", "required": false, "fallback": []},
                {"name": "inventory", "upstream": "down", "path": "/i", "required": false, "fallback": {"count": 0, "known": false}},
            ]}),
        ))
        .to_string())
    .await;

    let reply = gw.client.get("/details").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-wasmgate-partial"), Some("reviews,inventory"));
    assert_eq!(reply.json(), json!({"id": "p1", "reviews": [], "inventory": {"count": 0, "known": false}}));
}

#[tokio::test]
async fn a_failed_required_part_is_a_502_naming_it() {
    let product = TestUpstream::start(|_| Answer::new(503, "maintenance")).await;
    let reviews = TestUpstream::start(|_| Answer::json(&json!([]))).await;
    let details = aggregate(
        "details",
        "/details",
        json!({"parts": [
            {"name": "product", "upstream": "product", "path": "/p"},
            {"name": "reviews", "upstream": "reviews", "path": "/r", "required": false},
        ]}),
    );
    let down = aggregate("down", "/down", json!({"parts": [{"name": "stock", "upstream": "down", "path": "/s"}]}));
    let gw = TestGateway::start(
        &gateway(&[("product", &product), ("reviews", &reviews)]).route(details).route(down).to_string(),
    )
    .await;

    let detail = gw.client.get("/details").await.problem(502);
    assert_eq!(detail, "required part `product` failed: upstream product answered 503");
    let detail = gw.client.get("/down").await.problem(502);
    assert!(detail.starts_with("required part `stock` failed: "), "{detail}");
}

#[tokio::test]
async fn a_required_part_timing_out_is_a_504() {
    let slow = TestUpstream::start(|_| Answer::json(&json!({})).delay(Duration::from_secs(5))).await;
    let gw = TestGateway::start(
        &gateway(&[("slow", &slow)])
            .route(aggregate(
                "slow",
                "/slow",
                json!({"parts": [{"name": "profile", "upstream": "slow", "path": "/p", "timeout_ms": 200}]}),
            ))
            .to_string(),
    )
    .await;

    let detail = gw.client.get("/slow").await.problem(504);
    assert_eq!(detail, "required part `profile` timed out: upstream slow did not answer within 200 ms");
}

#[tokio::test]
async fn request_headers_are_forwarded_to_every_call() {
    let users = TestUpstream::start(|_| Answer::json(&json!({"id": 1}))).await;
    let orders = TestUpstream::start(|_| Answer::json(&json!({"orders": []}))).await;
    let gw = TestGateway::start(
        &gateway(&[("users", &users), ("orders", &orders)])
            .route(aggregate(
                "dash",
                "/dash",
                json!({"parts": [
                    {"name": "user", "upstream": "users", "path": "/u"},
                    {"name": "orders", "upstream": "orders", "path": "/o?user={part.user.id}"},
                ]}),
            ))
            .to_string(),
    )
    .await;

    let reply = gw
        .client
        .send(
            Method::GET,
            "/dash",
            &[
                ("x-request-id", "rid-99"),
                ("x-user-id", "u-1"),
                ("authorization", "Bearer t"),
                ("cookie", "session=secret"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for seen in [&users.seen()[0], &orders.seen()[0]] {
        assert_eq!(seen.header("x-request-id"), Some("rid-99"));
        assert_eq!(seen.header("x-user-id"), Some("u-1"));
        assert_eq!(seen.header("authorization"), Some("Bearer t"));
        assert_eq!(seen.header("cookie"), None, "only the listed headers are forwarded");
    }
}

/// The demo's dashboard: a user, their orders, and the product of each
/// order, with services answering like those of `wasmgate_testbed::demo`.
#[tokio::test]
async fn a_dashboard_fans_out_over_a_list_from_an_earlier_part() {
    let users = TestUpstream::start(|s| {
        let id = s.uri.rsplit('/').next().unwrap();
        Answer::json(&json!({"id": id, "user_name": format!("user{id}"), "email": "e", "role": "member"}))
    })
    .await;
    let orders = TestUpstream::start(|_| {
        Answer::json(&json!({"orders": [
            {"order_id": "o-100", "product_id": "p-1", "quantity": 2},
            {"order_id": "o-101", "product_id": "p-7", "quantity": 1},
        ]}))
    })
    .await;
    let products = TestUpstream::start(|s| {
        let id = s.uri.rsplit('/').next().unwrap();
        Answer::json(&json!({"product_id": id, "title": format!("Product {id}"), "price_cents": 1999}))
    })
    .await;
    let dashboard = aggregate(
        "dashboard",
        "/users/{id}/dashboard",
        json!({"deadline_ms": 2000, "parts": [
            {"name": "user", "upstream": "users", "path": "/users/{param.id}"},
            {"name": "orders", "upstream": "orders", "path": "/orders?user={param.id}", "required": false, "fallback": {"orders": []}},
            {"name": "products", "upstream": "products", "path": "/products/{item}", "for_each": "orders.orders.product_id", "required": false, "fallback": []},
        ]}),
    );
    let gw = TestGateway::start(
        &gateway(&[("users", &users), ("orders", &orders), ("products", &products)])
            .route(dashboard.set("methods", vec!["GET"]))
            .to_string(),
    )
    .await;

    let reply = gw.client.get("/users/7/dashboard").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let doc = reply.json();
    assert_eq!(doc["user"]["user_name"], "user7");
    assert_eq!(doc["orders"]["orders"].as_array().unwrap().len(), 2);
    assert_eq!(
        doc["products"],
        json!([
            {"product_id": "p-1", "title": "Product p-1", "price_cents": 1999},
            {"product_id": "p-7", "title": "Product p-7", "price_cents": 1999},
        ])
    );
    let mut asked: Vec<String> = products.seen().into_iter().map(|s| s.uri).collect();
    asked.sort();
    assert_eq!(asked, ["/products/p-1", "/products/p-7"]);
    assert_eq!(orders.seen()[0].uri, "/orders?user=7");
}

/// The aggregate answers in the request phase, so a transform placed
/// before it in the pipeline shapes the merged document on the way out.
#[tokio::test]
async fn a_transform_before_the_aggregate_shapes_its_answer() {
    let users = TestUpstream::start(|_| Answer::json(&json!({"id": 7, "user_name": "u7", "email": "e"}))).await;
    let route = Route::path("me", "/me")
        .stage(
            "transform",
            json!({"response": {"body": {
                "rename": {"user.user_name": "name"},
                "allow": {"header": "x-client", "clients": {"mobile": ["user.name"]}},
            }}}),
        )
        .stage("aggregate", json!({"parts": [{"name": "user", "upstream": "users", "path": "/u"}]}));
    let gw = TestGateway::start(&gateway(&[("users", &users)]).plugin("transform", TRANSFORM).route(route).to_string())
        .await;

    let mobile = gw.client.send(Method::GET, "/me", &[("x-client", "mobile")], "").await;
    assert_eq!(mobile.json(), json!({"user": {"name": "u7"}}));
    assert_eq!(mobile.header("content-length"), Some(mobile.body.len().to_string().as_str()));
    let other = gw.client.get("/me").await;
    assert_eq!(other.json(), json!({"user": {"id": 7, "name": "u7", "email": "e"}}));
}

#[tokio::test]
async fn cycles_and_unknown_parts_stop_the_gateway_with_the_reason() {
    let up = TestUpstream::named("up").await;
    let errors_of = async |route: Route| refused(&gateway(&[("up", &up)]).route(route).to_string()).await.0;
    let errors = errors_of(aggregate(
        "loop",
        "/loop",
        json!({"parts": [
            {"name": "a", "upstream": "up", "path": "/a/{part.b.id}"},
            {"name": "b", "upstream": "up", "path": "/b/{part.a.id}"},
        ]}),
    ))
    .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("route \"loop\": plugin aggregate rejected its config"), "{errors:?}");
    assert!(errors[0].contains("dependency cycle: a → b → a"), "{errors:?}");

    let errors = errors_of(aggregate(
        "typo",
        "/typo",
        json!({"parts": [
            {"name": "user", "upstream": "up", "path": "/u"},
            {"name": "cafes", "upstream": "up", "path": "/c?ids={part.usr.cafe_ids}"},
        ]}),
    ))
    .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("route \"typo\""), "{errors:?}");
    assert!(errors[0].contains("parts[1] (`cafes`)"), "{errors:?}");
    assert!(errors[0].contains("references unknown part `usr`"), "{errors:?}");
}
