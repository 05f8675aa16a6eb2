//! The README's demo walkthrough, against configs/demo.toml with the demo
//! services on free ports: keeps the demo config and the docs honest.

use http::Method;
use wasmgate_testbed::TestGateway;
use wasmgate_testbed::demo::{self, Services};

async fn demo_gateway() -> (TestGateway, Services) {
    let services = Services::start_at(["127.0.0.1:0".parse().unwrap(); 3]).await;
    let mut text = std::fs::read_to_string(demo::config_path()).unwrap();
    for (fixed, actual) in
        [(demo::USERS, &services.users), (demo::ORDERS, &services.orders), (demo::PRODUCTS, &services.products)]
    {
        text = text.replace(fixed, &actual.target());
    }
    let config = wasmgate::parse_config(&demo::config_path(), &text).unwrap_or_else(|e| panic!("{e}"));
    (TestGateway::start_config(config).await, services)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_walkthrough_works() {
    let (gw, services) = demo_gateway().await;
    let c = &gw.client;

    let reply = c.get("/users/42").await;
    reply.problem(401);
    assert!(reply.header("www-authenticate").unwrap().starts_with("Bearer"));

    let member = bearer(demo::TOKEN_MEMBER);
    let reply = c.send(Method::GET, "/users/42", &[("authorization", &member)], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let user = reply.json();
    assert_eq!(user["userName"], "user42");
    assert!(user.get("user_name").is_none());
    assert_eq!(user["request_id"], reply.header("x-request-id").unwrap());
    assert_eq!(user["seen_by_service"]["x-user-id"], "42", "jwt-auth forwarded the identity");
    assert_eq!(user["seen_by_service"]["x-gateway"], "wasmgate");
    assert!(user["seen_by_service"].get("x-forwarded-host").is_none());
    assert_eq!(reply.header("x-ratelimit-limit"), Some("5"));

    let reply = c.send(Method::GET, "/users/42", &[("authorization", &member), ("x-client", "mobile")], "").await;
    let keys: Vec<String> = reply.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec!["id", "userName"]);

    // A page on another origin: cors answers its preflight without a token...
    let app = ("origin", "http://localhost:3000");
    let preflight =
        [app, ("access-control-request-method", "GET"), ("access-control-request-headers", "authorization")];
    let reply = c.send(Method::OPTIONS, "/users/42", &preflight, "").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:3000"));
    // ...the request itself still needs one, and the page may read the 401.
    let reply = c.send(Method::GET, "/users/42", &[app], "").await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:3000"));
    reply.problem(401);
    let evil = [("origin", "https://evil.test"), ("access-control-request-method", "GET")];
    c.send(Method::OPTIONS, "/users/42", &evil, "").await.problem(403);

    // Ten at once from one user: the 5/s budget refuses some.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (c, member) = (c.clone(), member.clone());
            tokio::spawn(
                async move { c.send(Method::GET, "/users/42", &[("authorization", &member)], "").await.status },
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    let admin = bearer(demo::TOKEN_ADMIN);
    let reply = c.send(Method::GET, "/users/7/dashboard", &[("authorization", &admin)], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let dash = reply.json();
    assert_eq!(dash["user"]["id"], "7");
    assert_eq!(dash["orders"]["orders"].as_array().unwrap().len(), 2);
    let products: Vec<&str> =
        dash["products"].as_array().unwrap().iter().map(|p| p["product_id"].as_str().unwrap()).collect();
    assert_eq!(products, vec!["p-1", "p-7"]);
    assert!(reply.header("x-wasmgate-partial").is_none());
    assert!(services.orders.seen().iter().any(|s| s.uri == "/orders?user=7"));

    let reply = c.get("/products/p-1").await;
    assert_eq!(reply.header("x-powered-by"), Some("wasmgate"));
    assert_eq!(reply.json()["seen_by_service"]["x-gateway"], "wasmgate");
    assert_eq!(reply.header("x-cache"), Some("MISS"));
    let served = services.products.count();
    let hit = c.get("/products/p-1").await;
    assert_eq!((hit.header("x-cache"), hit.header("x-powered-by")), (Some("HIT"), Some("wasmgate")));
    assert_eq!(hit.json(), reply.json());
    assert_eq!(services.products.count(), served, "answered from the cache");
    let purge = format!("/state/cache?prefix=GET%20{}/products/", gw.addr);
    assert_eq!(gw.admin.send(Method::DELETE, &purge, &[], "").await.json()["deleted"], 1);
    assert_eq!(c.get("/products/p-1").await.header("x-cache"), Some("MISS"));
    assert_eq!(c.get("/orders").await.status, 200);
    c.get("/nowhere").await.problem(404);

    // Every plugin came from the plugins folder; the entries gave settings.
    let status = gw.admin.get("/status").await.json();
    let origin = |name: &str| {
        let plugins = status["plugins"].as_array().unwrap();
        plugins.iter().find(|p| p["name"] == name).map(|p| p["origin"].as_str().unwrap().to_owned())
    };
    assert_eq!(origin("cors").as_deref(), Some("plugins_dir+config"));
    assert_eq!(origin("cache").as_deref(), Some("plugins_dir+config"));
    assert_eq!(origin("transform").as_deref(), Some("plugins_dir"));
}
