//! The plugin through the SDK's test host, against a descriptor set
//! compiled from `testdata/catalog.proto` by protox.

use std::sync::OnceLock;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

/// The checked-in descriptor set (`testdata/catalog.pb.b64`, which the
/// gateway's tests and benchmarks embed too), decoded.
fn descriptor_set() -> &'static [u8] {
    static SET: OnceLock<Vec<u8>> = OnceLock::new();
    SET.get_or_init(|| {
        let text = std::fs::read_to_string(format!("{TESTDATA}/catalog.pb.b64")).unwrap();
        base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap()
    })
}

/// `testdata/catalog.pb.b64` is `catalog.proto` compiled (with its
/// imports) by protox; `GRPC_TRANSCODE_REGENERATE=1 cargo test -p
/// grpc-transcode checked_in` rewrites it after a change to the protos.
#[test]
fn the_checked_in_descriptor_set_is_catalog_proto_compiled() {
    // Encoded by protox itself: `prost_types` would drop the options'
    // extensions, `google.api.http` among them.
    let mut compiler = protox::Compiler::new([TESTDATA]).unwrap();
    compiler.include_imports(true).open_file("catalog.proto").expect("catalog.proto compiles");
    let compiled = base64::engine::general_purpose::STANDARD.encode(compiler.encode_file_descriptor_set());
    let path = format!("{TESTDATA}/catalog.pb.b64");
    if std::env::var_os("GRPC_TRANSCODE_REGENERATE").is_some() {
        std::fs::write(&path, format!("{compiled}\n")).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap();
    assert!(checked_in.trim() == compiled, "{path} is stale: regenerate it (see this test's doc)");
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(descriptor_set()).unwrap()
}

fn config(extra: Value) -> String {
    let mut config = json!({
        "descriptor_set_base64": base64::engine::general_purpose::STANDARD.encode(descriptor_set()),
    });
    if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    config.to_string()
}

fn plugin(extra: Value) -> GrpcTranscode {
    testing::configure(&config(extra)).unwrap()
}

fn config_error(extra: Value) -> String {
    testing::configure::<GrpcTranscode>(&config(extra)).unwrap_err()
}

/// The request message the plugin built, as JSON (`type` is its full name).
fn sent(req: &TestRequest, r#type: &str) -> Value {
    let body = req.as_request().body().unwrap();
    let (header, message) = body.split_at(5);
    assert_eq!(header[0], 0, "uncompressed");
    assert_eq!(u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize, message.len());
    let desc = pool().get_message_by_name(r#type).unwrap();
    serde_json::to_value(DynamicMessage::decode(desc, message).unwrap()).unwrap()
}

/// Reply messages of `type`, from their JSON, framed.
fn frames(r#type: &str, messages: &[Value]) -> Vec<u8> {
    let desc = pool().get_message_by_name(r#type).unwrap();
    messages
        .iter()
        .flat_map(|m| frame::encode(&DynamicMessage::deserialize(desc.clone(), m).unwrap().encode_to_vec()).unwrap())
        .collect()
}

/// Runs the request phase, expecting the request to go on as a gRPC call.
fn transcoded(plugin: &GrpcTranscode, req: TestRequest) -> TestRequest {
    match testing::run_request(plugin, &req) {
        Action::Continue => req,
        Action::Respond(reply) => panic!("answered {}: {}", reply.status, String::from_utf8_lossy(&reply.body)),
    }
}

/// Runs the request phase, expecting an answer.
fn refused(plugin: &GrpcTranscode, req: TestRequest) -> (u16, Value) {
    match testing::run_request(plugin, &req) {
        Action::Respond(reply) => {
            assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
            (reply.status, serde_json::from_slice(&reply.body).unwrap())
        }
        Action::Continue => panic!("the request went on"),
    }
}

fn get(uri: &str) -> TestRequest {
    TestRequest::new("GET", uri)
}

fn post(uri: &str, body: Value) -> TestRequest {
    TestRequest::new("POST", uri).header("content-type", "application/json").body(body.to_string())
}

#[test]
fn a_get_becomes_a_grpc_call_from_the_path_and_the_query() {
    let plugin = plugin(json!({}));
    let req = transcoded(&plugin, get("/v1/products/p-1?view=FULL").header("content-length", "0"));
    let view = req.as_request();
    assert_eq!(view.method(), "POST");
    assert_eq!(view.path(), "/catalog.Products/Get");
    assert_eq!(view.query(), None);
    assert_eq!(view.header("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(view.header("te").as_deref(), Some("trailers"));
    assert_eq!(view.header("content-length"), None);
    assert_eq!(sent(&req, "catalog.GetProductRequest"), json!({"id": "p-1", "view": "FULL"}));
    // Enums by number too, and percent-decoded values.
    let req = transcoded(&plugin, get("/v1/products/tea%20pot?view=1"));
    assert_eq!(sent(&req, "catalog.GetProductRequest"), json!({"id": "tea pot", "view": "BASIC"}));
}

#[test]
fn a_body_field_takes_the_json_body_and_the_query_the_rest() {
    let plugin = plugin(json!({}));
    let body = json!({
        "name": "Teapot",
        "priceCents": "2500",
        "tags": ["kitchen", "tea"],
        "createdAt": "2024-05-01T10:00:00Z",
        "dimensions": {"width": 10.5},
        "thumbnail": "aGk=",
        "in_stock": true,
    });
    let req = transcoded(&plugin, post("/v1/products?validate_only=true", body));
    assert_eq!(
        sent(&req, "catalog.CreateProductRequest"),
        json!({
            "product": {
                "name": "Teapot", "priceCents": "2500", "tags": ["kitchen", "tea"],
                "createdAt": "2024-05-01T10:00:00Z", "dimensions": {"width": 10.5},
                "thumbnail": "aGk=", "inStock": true,
            },
            "validateOnly": true,
        })
    );
}

#[test]
fn nested_path_fields_win_over_the_body() {
    let plugin = plugin(json!({}));
    // PATCH: body = "product", the path sets product.id inside it.
    let req = TestRequest::new("PATCH", "/v1/products/p-9?updateMask=name,tags")
        .body(json!({"id": "ignored", "name": "Kettle"}).to_string());
    let req = transcoded(&plugin, req);
    assert_eq!(req.as_request().path(), "/catalog.Products/Update");
    assert_eq!(
        sent(&req, "catalog.UpdateProductRequest"),
        json!({"product": {"id": "p-9", "name": "Kettle"}, "updateMask": "name,tags"})
    );
    // PUT, the additional binding: body = "*", so the query is not read.
    let req = TestRequest::new("PUT", "/v1/products/p-9?updateMask=x")
        .body(json!({"product": {"name": "Kettle"}, "updateMask": "name"}).to_string());
    let req = transcoded(&plugin, req);
    assert_eq!(
        sent(&req, "catalog.UpdateProductRequest"),
        json!({"product": {"id": "p-9", "name": "Kettle"}, "updateMask": "name"})
    );
}

#[test]
fn repeated_nested_and_wrapper_query_parameters() {
    let plugin = plugin(json!({}));
    let req = get("/v1/shelves/s1/products?tags=a&tags=b+c&page_size=5&minPrice=100&dimensions.height=2.5");
    let req = transcoded(&plugin, req);
    assert_eq!(req.as_request().path(), "/catalog.Products/List");
    assert_eq!(
        sent(&req, "catalog.ListProductsRequest"),
        json!({
            "shelf": "s1", "pageSize": 5, "tags": ["a", "b c"], "minPrice": "100",
            "dimensions": {"height": 2.5},
        })
    );
}

#[test]
fn unknown_or_invalid_fields_are_400_naming_them() {
    let plugin = plugin(json!({}));
    let (status, problem) = refused(&plugin, post("/v1/products", json!({"name": "x", "colour": "red"})));
    assert_eq!(status, 400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("product") && detail.contains("'colour'"), "{detail}");

    let (status, problem) = refused(&plugin, post("/v1/products:search", json!({"query": "x", "limit": 3})));
    assert_eq!(status, 400);
    assert!(problem["detail"].as_str().unwrap().contains("'limit'"), "{problem}");

    let (_, problem) = refused(&plugin, get("/v1/products/p-1?colour=red"));
    assert_eq!(problem["detail"], "query parameter colour: catalog.GetProductRequest has no field \"colour\"");
    let (_, problem) = refused(&plugin, get("/v1/products/p-1?view=HUGE"));
    assert!(problem["detail"].as_str().unwrap().contains("HUGE"), "{problem}");
    let (_, problem) = refused(&plugin, get("/v1/shelves/s/products?page_size=many"));
    assert!(problem["detail"].as_str().unwrap().contains("page_size"), "{problem}");
    let (_, problem) = refused(&plugin, get("/v1/shelves/s/products?dimensions=1"));
    assert!(problem["detail"].as_str().unwrap().contains("is a message field"), "{problem}");
    let (_, problem) = refused(&plugin, post("/v1/products", json!([1, 2])));
    assert!(problem["detail"].as_str().unwrap().starts_with("invalid JSON body"), "{problem}");
    let (_, problem) = refused(&plugin, post("/v1/products:search", json!({})).body("{\"query\": \"x\"} trailing"));
    assert!(problem["detail"].as_str().unwrap().contains("trailing"), "{problem}");
    let (_, problem) = refused(&plugin, get("/v1/products/p-1").body("{}"));
    assert_eq!(problem["detail"], "/catalog.Products/Get takes no request body");

    // Unknown query parameters can be let through instead.
    let lenient = super::tests::plugin(json!({"ignore_unknown_query_parameters": true}));
    let req = transcoded(&lenient, get("/v1/products/p-1?utm_source=mail"));
    assert_eq!(sent(&req, "catalog.GetProductRequest"), json!({"id": "p-1"}));
}

#[test]
fn requests_that_match_no_binding() {
    let plugin = plugin(json!({}));
    let (status, problem) = refused(&plugin, get("/v2/products/p-1"));
    assert_eq!(status, 404);
    assert_eq!(problem["detail"], "no gRPC method is bound to GET /v2/products/p-1");

    let Action::Respond(reply) = testing::run_request(&plugin, &TestRequest::new("DELETE", "/v1/products/p-1")) else {
        panic!("expected a 405");
    };
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header_value("allow"), Some(&b"GET, PATCH, PUT"[..]));

    // The client-streaming method has no binding.
    assert_eq!(refused(&plugin, post("/v1/products:import", json!({}))).0, 404);

    let passing = super::tests::plugin(json!({"on_unmatched": "pass"}));
    let req = get("/v2/products/p-1?x=1");
    assert_eq!(testing::run_request(&passing, &req), Action::Continue);
    assert_eq!((req.as_request().path(), req.as_request().query()), ("/v2/products/p-1".into(), Some("x=1".into())));
    assert_eq!(req.as_request().var(ROUTE_VAR), None);
}

#[test]
fn bodies_are_bounded_in_depth_and_size() {
    let plugin = plugin(json!({"max_json_depth": 4}));
    let shallow = json!({"name": "a", "child": {"child": {"name": "c"}}});
    let req = transcoded(&plugin, post("/v1/tree", shallow.clone()));
    assert_eq!(sent(&req, "catalog.Node"), shallow);
    let deep = json!({"child": {"child": {"child": {"child": {}}}}});
    let (status, problem) = refused(&plugin, post("/v1/tree", deep));
    assert_eq!(status, 400);
    assert_eq!(problem["detail"], "the JSON body nests deeper than max_json_depth (4)");
    // Far deeper than serde_json's own limit: refused before parsing.
    let hostile = "[".repeat(100_000);
    assert_eq!(refused(&plugin, post("/v1/tree", json!(null)).body(hostile)).0, 400);

    let small = super::tests::plugin(json!({"max_request_message_bytes": 16}));
    let (status, problem) = refused(&small, post("/v1/products:search", json!({"query": "x".repeat(20)})));
    assert_eq!(status, 413);
    assert_eq!(problem["detail"], "a request message of 22 bytes, over max_request_message_bytes (16)");
}

#[test]
fn explicit_routes_come_first_and_annotations_can_be_left_out() {
    let routes = json!([
        {"get": "/catalog/{id}", "method": "catalog.Products/Get"},
        {"post": "/catalog", "method": "catalog.Products/Create", "body": "*"},
        {"get": "/v1/products/{query}", "method": "catalog.Products/Search"},
    ]);
    let plugin = plugin(json!({"routes": routes.clone()}));
    let req = transcoded(&plugin, get("/catalog/p-2"));
    assert_eq!(sent(&req, "catalog.GetProductRequest"), json!({"id": "p-2"}));
    let req = transcoded(&plugin, post("/catalog", json!({"product": {"name": "n"}, "validateOnly": true})));
    assert_eq!(sent(&req, "catalog.CreateProductRequest"), json!({"product": {"name": "n"}, "validateOnly": true}));
    let routes_only = super::tests::plugin(json!({"routes": routes, "use_annotations": false}));
    assert_eq!(refused(&routes_only, get("/v1/shelves/s/products")).0, 404);
    // The config's binding of the path wins over the annotation's.
    let req = transcoded(&plugin, get("/v1/products/p-1"));
    assert_eq!(req.as_request().path(), "/catalog.Products/Search");
    assert_eq!(sent(&req, "catalog.SearchRequest"), json!({"query": "p-1"}));
}

#[test]
fn config_errors_say_what_is_wrong() {
    assert!(config_error(json!({"descriptor_set_base64": "!!"})).starts_with("descriptor_set_base64: not base64"));
    assert!(
        config_error(json!({"descriptor_set_base64": "AAAA"}))
            .starts_with("descriptor_set_base64: not a FileDescriptorSet")
    );
    let route = |r: Value| config_error(json!({"routes": [r]}));
    assert_eq!(
        route(json!({"get": "/x", "post": "/x", "method": "catalog.Products/Get"})),
        "routes[0]: give exactly one of get, put, post, delete, patch"
    );
    assert_eq!(
        route(json!({"get": "/x", "method": "catalog.Products/Nope"})),
        "routes[0]: method \"catalog.Products/Nope\": not in the descriptor set"
    );
    assert_eq!(
        route(json!({"get": "/x", "method": "Get"})),
        "routes[0]: method \"Get\": write it as package.Service/Method"
    );
    assert_eq!(
        route(json!({"post": "/x", "method": "catalog.Products/Import"})),
        "routes[0]: method \"catalog.Products/Import\": client-streaming methods cannot be transcoded"
    );
    assert_eq!(
        route(json!({"get": "/x/{sku}", "method": "catalog.Products/Get"})),
        "routes[0]: catalog.GetProductRequest has no field \"sku\""
    );
    assert_eq!(
        route(json!({"get": "/x/{product}", "method": "catalog.Products/Update"})),
        "routes[0]: catalog.UpdateProductRequest.product is a message field (catalog.Product), not a value"
    );
    assert_eq!(
        route(json!({"get": "/x/{id", "method": "catalog.Products/Get"})),
        "routes[0]: path \"/x/{id\": unclosed `{` in a path template"
    );
    assert_eq!(
        route(json!({"post": "/x", "method": "catalog.Products/Get", "body": "sku"})),
        "routes[0]: body: catalog.GetProductRequest has no field \"sku\""
    );
    assert_eq!(
        route(json!({"post": "/x", "method": "catalog.Products/Get", "response_body": "sku"})),
        "routes[0]: response_body: catalog.Product has no field \"sku\""
    );
    assert!(route(json!({"get": "/x", "method": "catalog.Products/Get", "verb": 1})).contains("unknown field `verb`"));
    assert!(config_error(json!({"use_annotations": false})).starts_with("no routes"));
    assert_eq!(
        config_error(json!({"services": ["catalog.Nope"]})),
        "services: the descriptor set has no service \"catalog.Nope\""
    );
    assert_eq!(config_error(json!({"max_response_messages": 0})), "max_response_messages must be at least 1");
    assert!(config_error(json!({"streaming": "csv"})).contains("unknown variant `csv`"));
    assert!(config_error(json!({"descriptor": "x"})).contains("unknown field `descriptor`"));
}

#[test]
fn the_descriptor_set_may_be_wrapped_base64() {
    let wrapped: String = base64::engine::general_purpose::STANDARD
        .encode(descriptor_set())
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    let plugin: GrpcTranscode = testing::configure(&json!({"descriptor_set_base64": wrapped}).to_string()).unwrap();
    transcoded(&plugin, get("/v1/products/p-1"));
}

/// A request transcoded by `plugin`, then its reply through the response phase.
fn reply_to(plugin: &GrpcTranscode, req: TestRequest, resp: TestResponse) -> TestResponse {
    let req = transcoded(plugin, req);
    assert!(testing::run_response(plugin, &req, &resp));
    resp
}

fn grpc_ok(body: Vec<u8>) -> TestResponse {
    TestResponse::new(200)
        .header("content-type", "application/grpc")
        .header("grpc-encoding", "identity")
        .header("x-served-by", "catalog-1")
        .body(body)
        .trailer("grpc-status", "0")
}

fn json_of(resp: &TestResponse) -> Value {
    serde_json::from_slice(&resp.as_response().body().unwrap()).unwrap()
}

#[test]
fn a_unary_reply_becomes_json_with_its_status_from_the_trailers() {
    let plugin = plugin(json!({}));
    let product = json!({"id": "p-1", "name": "Teapot", "priceCents": "2500", "createdAt": "2024-05-01T10:00:00Z"});
    let resp =
        reply_to(&plugin, get("/v1/products/p-1"), grpc_ok(frames("catalog.Product", std::slice::from_ref(&product))));
    let view = resp.as_response();
    assert_eq!(view.status(), 200);
    assert_eq!(view.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(view.header("grpc-encoding"), None);
    assert_eq!(view.header("x-served-by").as_deref(), Some("catalog-1"), "other headers stay");
    assert_eq!(view.trailers(), Vec::new(), "a JSON answer has no trailers");
    assert_eq!(json_of(&resp), product);
}

#[test]
fn errors_map_to_http_statuses_from_trailers_or_headers() {
    let plugin = plugin(json!({}));
    // Trailers-only: the status in the headers, no body.
    let resp = TestResponse::new(200)
        .header("content-type", "application/grpc")
        .header("grpc-status", "5")
        .header("grpc-message", "product%20p-404%20not%20found");
    let resp = reply_to(&plugin, get("/v1/products/p-404"), resp);
    assert_eq!(resp.as_response().status(), 404);
    assert_eq!(resp.as_response().header("content-type").as_deref(), Some("application/problem+json"));
    assert_eq!(resp.as_response().header("grpc-status"), None);
    assert_eq!(
        json_of(&resp),
        json!({"type": "about:blank", "title": "Not Found", "status": 404,
               "detail": "product p-404 not found", "grpc_status": 5, "grpc_code": "NOT_FOUND"})
    );
    // In the trailers, after a body: the trailers' status wins.
    for (code, status) in [(3, 400), (6, 409), (7, 403), (16, 401), (8, 429), (12, 501), (14, 503), (4, 504), (13, 500)]
    {
        let resp = TestResponse::new(200)
            .header("grpc-status", "0")
            .body(frames("catalog.Product", &[json!({})]))
            .trailer("grpc-status", code.to_string());
        let resp = reply_to(&plugin, get("/v1/products/p-1"), resp);
        assert_eq!(resp.as_response().status(), status, "grpc-status {code}");
        let problem = json_of(&resp);
        assert_eq!(problem["grpc_status"], code);
        assert_eq!(problem["detail"], problem["grpc_code"], "no grpc-message: the code's name");
    }
    let resp = reply_to(&plugin, get("/v1/products/p-1"), TestResponse::new(200).trailer("grpc-status", "x"));
    assert_eq!(resp.as_response().status(), 500, "an unreadable code is UNKNOWN");
}

#[test]
fn the_status_comes_from_a_trailers_source_or_the_headers() {
    let none = |_: &str| None;
    let trailers = |name: &str| match name {
        "grpc-status" => Some("7".to_owned()),
        "grpc-message" => Some("no%3A access".to_owned()),
        _ => None,
    };
    let headers = |name: &str| (name == "grpc-status").then(|| "5".to_owned());
    assert_eq!(
        response::grpc_status(trailers, headers),
        Some(response::GrpcStatus { code: 7, message: "no: access".into() })
    );
    assert_eq!(response::grpc_status(none, headers), Some(response::GrpcStatus { code: 5, message: String::new() }));
    assert_eq!(response::grpc_status(none, none), None);
}

#[test]
fn replies_that_are_not_readable_grpc_are_502() {
    let plugin = plugin(json!({"max_response_message_bytes": 64, "max_response_messages": 3}));
    let detail = |body: Vec<u8>| {
        let resp = reply_to(
            &plugin,
            get("/v1/shelves/s/products"),
            TestResponse::new(200).body(body).trailer("grpc-status", "0"),
        );
        assert_eq!(resp.as_response().status(), 502);
        json_of(&resp)["detail"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        detail(frames("catalog.Product", &vec![json!({}); 4])),
        "more than max_response_messages (3) gRPC messages"
    );
    let big = frames("catalog.Product", &[json!({"name": "x".repeat(100)})]);
    assert_eq!(detail(big), "a gRPC message of 102 bytes, over max_response_message_bytes (64)");
    assert_eq!(
        detail(vec![1, 0, 0, 0, 0]),
        "the reply holds a compressed gRPC message (grpc-encoding is not supported)"
    );
    assert_eq!(detail(vec![0, 0, 0, 0, 9, 1]), "the reply body ends inside a gRPC message");
    assert!(detail(frame::encode(&[0xff, 0xff]).unwrap()).starts_with("the reply is not a valid catalog.Product"));

    let unary = |body: Vec<u8>| {
        let resp =
            reply_to(&plugin, get("/v1/products/p"), TestResponse::new(200).body(body).trailer("grpc-status", "0"));
        (resp.as_response().status(), json_of(&resp)["detail"].clone())
    };
    assert_eq!(unary(frames("catalog.Product", &[json!({}), json!({})])), (502, json!("a unary reply of 2 messages")));
    assert_eq!(unary(Vec::new()), (502, json!("a unary reply of 0 messages")));

    // No grpc-status anywhere: not a gRPC reply (an HTTP/1.1 upstream, a proxy's error page).
    let resp = reply_to(&plugin, get("/v1/products/p"), TestResponse::new(503).body("busy"));
    assert_eq!(resp.as_response().status(), 502);
    assert_eq!(json_of(&resp)["detail"], "the upstream answered 503 without a grpc-status: not a gRPC reply");
}

#[test]
fn server_streaming_replies_become_an_array_or_ndjson() {
    let products = [json!({"id": "a"}), json!({"id": "b", "tags": ["x"]}), json!({})];
    let body = frames("catalog.Product", &products);
    let resp = reply_to(&plugin(json!({})), get("/v1/shelves/s/products"), grpc_ok(body.clone()));
    assert_eq!(resp.as_response().header("content-type").as_deref(), Some("application/json"));
    assert_eq!(json_of(&resp), json!(products));
    let resp = reply_to(&plugin(json!({})), get("/v1/shelves/s/products"), grpc_ok(Vec::new()));
    assert_eq!(json_of(&resp), json!([]));

    let ndjson = plugin(json!({"streaming": "ndjson"}));
    let resp = reply_to(&ndjson, get("/v1/shelves/s/products"), grpc_ok(body));
    assert_eq!(resp.as_response().header("content-type").as_deref(), Some("application/x-ndjson"));
    assert_eq!(resp.as_response().body().unwrap(), b"{\"id\":\"a\"}\n{\"id\":\"b\",\"tags\":[\"x\"]}\n{}\n");
}

#[test]
fn response_body_field_and_json_options() {
    let reply = frames("catalog.SearchReply", &[json!({"products": [{"id": "a", "priceCents": "5"}], "total": 1})]);
    let search = || post("/v1/products:search", json!({"query": "tea"}));
    let resp = reply_to(&plugin(json!({})), search(), grpc_ok(reply.clone()));
    assert_eq!(json_of(&resp), json!([{"id": "a", "priceCents": "5"}]));
    let empty = frames("catalog.SearchReply", &[json!({})]);
    let resp = reply_to(&plugin(json!({})), search(), grpc_ok(empty));
    assert_eq!(json_of(&resp), json!([]), "an empty repeated field is still the answer");

    let options = plugin(json!({"emit_defaults": true, "original_field_names": true}));
    let resp =
        reply_to(&options, get("/v1/products/p"), grpc_ok(frames("catalog.Product", &[json!({"priceCents": "5"})])));
    let body = json_of(&resp);
    assert_eq!(body["price_cents"], "5");
    assert_eq!(body["in_stock"], false);
    assert_eq!(body["tags"], json!([]));
    let resp = reply_to(&options, search(), grpc_ok(reply));
    assert_eq!(json_of(&resp)[0]["price_cents"], "5");
}

#[test]
fn responses_to_requests_it_did_not_transcode_are_left_alone() {
    let plugin = plugin(json!({"on_unmatched": "pass"}));
    let req = get("/healthz");
    assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
    let resp = TestResponse::new(200).header("content-type", "text/plain").body("ok").trailer("x-t", "1");
    assert!(testing::run_response(&plugin, &req, &resp));
    assert_eq!(resp.as_response().body().unwrap(), b"ok");
    assert_eq!(resp.as_response().header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(resp.as_response().trailer("x-t").as_deref(), Some("1"));
}

#[test]
fn it_asks_for_both_bodies_and_the_response_phase() {
    let needs = plugin(json!({})).needs();
    assert!(needs.request_body && needs.response && needs.response_body);
}
