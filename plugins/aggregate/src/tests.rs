use std::cell::RefCell;
use std::rc::Rc;

use serde_json::json;
use wasmgate_sdk::testing::{self, TestRequest};

use super::*;

fn plugin(config: Value) -> Aggregate {
    testing::configure(&config.to_string()).unwrap()
}

fn config_error(config: Value) -> String {
    testing::configure::<Aggregate>(&config.to_string()).unwrap_err()
}

fn reply(plugin: &Aggregate, req: &TestRequest) -> Reply {
    match testing::run_request(plugin, req) {
        Action::Respond(reply) => reply,
        Action::Continue => panic!("the aggregate plugin always answers"),
    }
}

fn body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap()
}

fn detail(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
    body(reply)["detail"].as_str().unwrap().to_owned()
}

fn ok(value: Value) -> Result<OutboundResponse, FetchError> {
    Ok(OutboundResponse::new(200, value.to_string()))
}

fn product_page() -> Aggregate {
    plugin(json!({"parts": [
        {"name": "product", "upstream": "catalog", "path": "/products/{param.id}", "merge": "root"},
        {"name": "reviews", "upstream": "reviews", "path": "/reviews?product={param.id}", "required": false, "fallback": []},
        {"name": "inventory", "upstream": "stock", "path": "/stock/{param.id}", "required": false, "merge_as": "availability.stock"},
    ]}))
}

fn product_upstreams(req: &OutboundRequest) -> Result<OutboundResponse, FetchError> {
    match req.upstream.as_str() {
        "catalog" => ok(json!({"id": "p1", "title": "Tea"})),
        "reviews" => ok(json!([{"stars": 5}])),
        "stock" => ok(json!({"count": 3})),
        other => panic!("unexpected upstream {other}"),
    }
}

#[test]
fn independent_parts_go_out_in_one_batch_and_merge() {
    let batch_sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = batch_sizes.clone();
    testing::on_fetch(move |req| {
        // The mock records a whole batch before answering its first call.
        seen.borrow_mut().push(testing::fetches().len());
        product_upstreams(req)
    });
    let reply = reply(&product_page(), &TestRequest::new("GET", "/p/p1").param("id", "p1"));

    assert_eq!(*batch_sizes.borrow(), [3, 3, 3], "one batch of three calls");
    let paths: Vec<String> = testing::fetches().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/products/p1", "/reviews?product=p1", "/stock/p1"]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header_value("content-type"), Some(&b"application/json"[..]));
    assert_eq!(reply.header_value(PARTIAL_HEADER), None);
    assert_eq!(
        body(&reply),
        json!({"id": "p1", "title": "Tea", "reviews": [{"stars": 5}], "availability": {"stock": {"count": 3}}})
    );
}

#[test]
fn failed_optional_parts_use_their_fallback_and_are_named() {
    testing::on_fetch(|req| match req.upstream.as_str() {
        "reviews" => Ok(OutboundResponse::new(503, "down")),
        "stock" => Ok(OutboundResponse::new(200, "<html>")),
        _ => product_upstreams(req),
    });
    let reply = reply(&product_page(), &TestRequest::new("GET", "/").param("id", "p1"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header_value(PARTIAL_HEADER), Some(&b"reviews,inventory"[..]));
    assert_eq!(body(&reply), json!({"id": "p1", "title": "Tea", "reviews": [], "availability": {"stock": null}}));
    let warnings: Vec<String> = testing::logs().into_iter().map(|(_, line)| line).collect();
    assert_eq!(
        warnings,
        [
            "part reviews: upstream reviews answered 503",
            "part inventory: the response is not valid JSON: expected value at line 1 column 1",
        ]
    );
}

#[test]
fn a_failed_required_part_is_a_502_naming_it() {
    testing::on_fetch(|req| match req.upstream.as_str() {
        "catalog" => Err(FetchError::Unavailable("connection refused".into())),
        _ => product_upstreams(req),
    });
    let reply = reply(&product_page(), &TestRequest::new("GET", "/").param("id", "p1"));
    assert_eq!(detail(&reply, 502), "required part `product` failed: connection refused");
}

#[test]
fn a_required_part_timing_out_is_a_504() {
    testing::on_fetch(|req| match req.upstream.as_str() {
        "catalog" => Err(FetchError::Timeout),
        _ => product_upstreams(req),
    });
    let reply = reply(&product_page(), &TestRequest::new("GET", "/").param("id", "p1"));
    assert_eq!(
        detail(&reply, 504),
        "required part `product` timed out: upstream catalog did not answer within 5000 ms"
    );
}

#[test]
fn a_root_part_that_is_not_an_object_fails() {
    testing::on_fetch(|req| match req.upstream.as_str() {
        "catalog" => ok(json!([1, 2])),
        _ => product_upstreams(req),
    });
    let reply = reply(&product_page(), &TestRequest::new("GET", "/").param("id", "p1"));
    assert!(detail(&reply, 502).contains("not a JSON object"));
}

fn user_cafes(required_user: bool) -> Aggregate {
    let mut user = json!({"name": "user", "upstream": "users", "path": "/users/{param.id}"});
    if !required_user {
        user["required"] = json!(false);
    }
    plugin(json!({"parts": [
        // Listed first on purpose: the plan, not the list, orders the calls.
        {"name": "cafes", "upstream": "cafes", "path": "/cafes?ids={part.user.cafe_ids}", "required": false, "fallback": []},
        user,
    ]}))
}

#[test]
fn dependent_parts_wait_for_the_values_they_use() {
    testing::on_fetch(|req| match req.upstream.as_str() {
        "users" => ok(json!({"id": 7, "cafe_ids": ["c1", "c 2"]})),
        "cafes" => ok(json!([{"id": "c1"}, {"id": "c 2"}])),
        other => panic!("unexpected upstream {other}"),
    });
    let reply = reply(&user_cafes(true), &TestRequest::new("GET", "/").param("id", "7"));
    let paths: Vec<String> = testing::fetches().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/users/7", "/cafes?ids=c1,c%202"]);
    assert_eq!(
        body(&reply),
        json!({"user": {"id": 7, "cafe_ids": ["c1", "c 2"]}, "cafes": [{"id": "c1"}, {"id": "c 2"}]})
    );
}

#[test]
fn a_part_whose_dependency_failed_is_not_called() {
    testing::on_fetch(|_| Ok(OutboundResponse::new(404, "")));
    let reply = reply(&user_cafes(false), &TestRequest::new("GET", "/").param("id", "7"));
    assert_eq!(testing::fetches().len(), 1, "only the user was called");
    assert_eq!(reply.header_value(PARTIAL_HEADER), Some(&b"cafes,user"[..]));
    assert_eq!(body(&reply), json!({"cafes": [], "user": null}));
    assert!(
        testing::logs().iter().any(|(_, line)| line == "part cafes: not called: it needs part `user`, which failed")
    );
}

#[test]
fn a_template_without_a_value_fails_its_part() {
    testing::on_fetch(|_| ok(json!({"id": 7})));
    let reply = reply(&user_cafes(true), &TestRequest::new("GET", "/").param("id", "7"));
    assert_eq!(reply.header_value(PARTIAL_HEADER), Some(&b"cafes"[..]));
    assert!(
        testing::logs()
            .iter()
            .any(|(_, line)| line == "part cafes: not called: the path's {part.user.cafe_ids} has no value")
    );
}

#[test]
fn timeouts_are_capped_by_the_deadline_and_late_waves_time_out() {
    let plugin = plugin(json!({
        "deadline_ms": 500,
        "parts": [
            {"name": "user", "upstream": "users", "path": "/u", "timeout_ms": 2000},
            {"name": "fast", "upstream": "users", "path": "/f", "timeout_ms": 100},
            {"name": "cafes", "upstream": "cafes", "path": "/c/{part.user.id}"},
        ],
    }));
    testing::on_fetch(|req| {
        if req.path == "/u" {
            testing::advance_ms(300);
        }
        ok(json!({"id": 1}))
    });
    let req = TestRequest::new("GET", "/");
    assert_eq!(reply(&plugin, &req).status, 200);
    let timeouts: Vec<Option<u32>> = testing::fetches().iter().map(|r| r.timeout_ms).collect();
    assert_eq!(
        timeouts,
        [Some(500), Some(100), Some(200)],
        "capped at the deadline; the second wave gets what is left"
    );

    testing::reset();
    testing::on_fetch(|_| {
        testing::advance_ms(500);
        ok(json!({"id": 1}))
    });
    let reply = reply(&plugin, &req);
    assert_eq!(testing::fetches().len(), 2, "the dependent wave was never sent");
    assert_eq!(detail(&reply, 504), "required part `cafes` was not started: the deadline of 500 ms had passed");
}

#[test]
fn request_headers_are_forwarded_to_every_call() {
    testing::on_fetch(product_upstreams);
    let req = TestRequest::new("GET", "/")
        .param("id", "p1")
        .header("x-request-id", "rid-1")
        .header("authorization", "Bearer t")
        .header("x-user-id", "u1")
        .header("cookie", "private");
    reply(&product_page(), &req);
    for call in testing::fetches() {
        assert_eq!(
            call.headers,
            [
                ("x-request-id".to_owned(), b"rid-1".to_vec()),
                ("authorization".to_owned(), b"Bearer t".to_vec()),
                ("x-user-id".to_owned(), b"u1".to_vec()),
            ]
        );
    }

    testing::reset();
    testing::on_fetch(|_| ok(json!({})));
    let only = plugin(json!({"forward_headers": ["Cookie"], "parts": [{"name": "a", "upstream": "a", "path": "/"}]}));
    reply(&only, &req);
    assert_eq!(testing::fetches()[0].headers, [("cookie".to_owned(), b"private".to_vec())]);
}

#[test]
fn for_each_calls_once_per_element() {
    let plugin = plugin(json!({"parts": [
        {"name": "orders", "upstream": "orders", "path": "/orders?user={param.id}"},
        {"name": "products", "upstream": "products", "path": "/products/{item.product_id}",
         "for_each": "orders.orders", "method": "GET"},
    ]}));
    testing::on_fetch(|req| match req.upstream.as_str() {
        "orders" => ok(json!({"orders": [{"product_id": "p-1"}, {"product_id": "p-7"}]})),
        _ => ok(json!({"product_id": req.path.rsplit('/').next().unwrap()})),
    });
    let reply = reply(&plugin, &TestRequest::new("GET", "/").param("id", "1"));
    let paths: Vec<String> = testing::fetches().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/orders?user=1", "/products/p-1", "/products/p-7"]);
    assert_eq!(body(&reply)["products"], json!([{"product_id": "p-1"}, {"product_id": "p-7"}]));
}

#[test]
fn for_each_over_nothing_calls_nothing_and_too_many_fails() {
    let plugin = plugin(json!({"parts": [
        {"name": "ids", "upstream": "a", "path": "/ids"},
        {"name": "each", "upstream": "b", "path": "/x/{item}", "for_each": "ids.list",
         "required": false, "fallback": "skipped"},
    ]}));
    testing::on_fetch(|_| ok(json!({"list": []})));
    let empty = reply(&plugin, &TestRequest::new("GET", "/"));
    assert_eq!(body(&empty)["each"], json!([]));
    assert_eq!(testing::fetches().len(), 1);

    testing::reset();
    testing::on_fetch(|_| ok(json!({"list": (0..=MAX_ITEMS).collect::<Vec<_>>()})));
    let many = reply(&plugin, &TestRequest::new("GET", "/"));
    assert_eq!(body(&many)["each"], "skipped");
    assert_eq!(testing::fetches().len(), 1);
}

#[test]
fn a_cycle_is_a_config_error_naming_it() {
    let err = config_error(json!({"parts": [
        {"name": "a", "upstream": "u", "path": "/a/{part.b.id}"},
        {"name": "b", "upstream": "u", "path": "/b/{part.a.id}"},
    ]}));
    assert!(err.contains("dependency cycle: a → b → a"), "{err}");
}

#[test]
fn an_unknown_part_is_a_config_error_naming_it() {
    let err = config_error(json!({"parts": [
        {"name": "cafes", "upstream": "u", "path": "/c?ids={part.usr.cafe_ids}"},
    ]}));
    assert!(err.starts_with("parts[0] (`cafes`): path: ") && err.contains("references unknown part `usr`"), "{err}");
    let err = config_error(json!({"parts": [
        {"name": "x", "upstream": "u", "path": "/{item}", "for_each": "nobody.list"},
    ]}));
    assert!(err.contains("for_each") && err.contains("unknown part `nobody`"), "{err}");
}

#[test]
fn other_config_mistakes_are_named() {
    let part = |extra: Value| {
        let mut part = json!({"name": "a", "upstream": "u", "path": "/a"});
        part.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        config_error(json!({"parts": [part]}))
    };
    assert!(part(json!({"fallback": {}})).contains("set `required = false`"));
    assert!(part(json!({"merge": "root", "merge_as": "x"})).contains("one or the other"));
    assert!(part(json!({"merge": "root", "required": false, "fallback": 1})).contains("needs an object"));
    assert!(part(json!({"merge": "inline"})).contains("unknown variant `inline`"));
    assert!(part(json!({"method": "G T"})).contains("method"));
    assert!(part(json!({"timeout_ms": 0})).contains("timeout_ms"));
    assert!(part(json!({"path": "a"})).contains("must start with `/`"));
    assert!(part(json!({"name": "a b"})).contains("parts[0].name"));
    assert!(part(json!({"merge_as": "a..b"})).contains("merge_as"));
    assert!(part(json!({"urls": []})).contains("unknown field `urls`"));

    assert!(config_error(json!({"parts": []})).contains("at least one part"));
    assert!(
        config_error(json!({"deadline_ms": 0, "parts": [{"name": "a", "upstream": "u", "path": "/"}]}))
            .contains("deadline_ms")
    );
    let err = config_error(json!({"parts": [
        {"name": "a", "upstream": "u", "path": "/"},
        {"name": "a", "upstream": "u", "path": "/"},
    ]}));
    assert!(err.contains("`a` is used by two parts"), "{err}");
    let err = config_error(json!({"parts": [
        {"name": "a", "upstream": "u", "path": "/", "merge_as": "x"},
        {"name": "b", "upstream": "u", "path": "/", "merge_as": "x"},
    ]}));
    assert!(err.contains("two parts merge under `x`"), "{err}");
    let err = config_error(json!({"forward_headers": ["x y"], "parts": [{"name": "a", "upstream": "u", "path": "/"}]}));
    assert!(err.contains("forward_headers[0]"), "{err}");
}
