//! grpc-transcode in a gateway: JSON clients reach a service that speaks
//! gRPC's framing and trailers, the descriptor set embedded with `$file`.
//!
//! These upstreams are HTTP/1.1 services answering gRPC messages with
//! chunked trailers: the contract's trailers (0.2.1) reach the plugin and
//! the JSON answer goes out without them.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{GRPC_TRANSCODE, TRANSFORM};
use wasmgate_testbed::{Answer, Client, TestGateway, TestUpstream};

/// `plugins/grpc-transcode/testdata/catalog.proto` compiled, in base64 (the
/// plugin's tests check it is current).
const DESCRIPTOR_SET: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/grpc-transcode/testdata/catalog.pb.b64"));

fn pool() -> DescriptorPool {
    use base64::Engine as _;
    let set = base64::engine::general_purpose::STANDARD.decode(DESCRIPTOR_SET.trim()).unwrap();
    DescriptorPool::decode(set.as_slice()).unwrap()
}

/// Messages of `type` from their JSON, each framed as gRPC sends it.
fn frames(r#type: &str, messages: &[Value]) -> Vec<u8> {
    let desc = pool().get_message_by_name(r#type).unwrap();
    let mut out = Vec::new();
    for message in messages {
        let encoded = DynamicMessage::deserialize(desc.clone(), message).unwrap().encode_to_vec();
        out.push(0);
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

/// A framed request body as the JSON of its message.
fn message(r#type: &str, framed: &[u8]) -> Value {
    let desc = pool().get_message_by_name(r#type).unwrap();
    let (header, body) = framed.split_at(5);
    assert_eq!(header, [0, 0, 0, 0, body.len() as u8], "one uncompressed message");
    serde_json::to_value(DynamicMessage::decode(desc, body).unwrap()).unwrap()
}

/// A gateway with `/v1` through grpc-transcode (with `config` merged in) to
/// `up`, the descriptor set a file next to the config, in base64.
async fn gateway(up: &TestUpstream, config: Value) -> (TestGateway, tempfile::TempDir) {
    gateway_after(up, config, Value::Null).await
}

/// As `gateway`, with transform (configured with `transform`) before
/// grpc-transcode when not null.
async fn gateway_after(up: &TestUpstream, config: Value, transform: Value) -> (TestGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.pb.b64"), DESCRIPTOR_SET).unwrap();
    let mut stage = json!({"descriptor_set_base64": {"$file": "catalog.pb.b64"}});
    stage.as_object_mut().unwrap().extend(config.as_object().cloned().unwrap_or_default());
    let mut route = Route::prefix("catalog", "/v1").upstream("catalog");
    if !transform.is_null() {
        route = route.stage("transform", transform);
    }
    let config = GatewayConfig::new()
        .upstream("catalog", up)
        .plugin("grpc-transcode", GRPC_TRANSCODE)
        .plugin("transform", TRANSFORM)
        .route(route.stage("grpc-transcode", stage));
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config.to_string()).unwrap();
    (TestGateway::start_at(&path).await, dir)
}

/// A gRPC answer: `body`, then the status in the trailers.
fn grpc(body: Vec<u8>, status: &str, message: &str) -> Answer {
    Answer::new(200, body)
        .header("content-type", "application/grpc")
        .header("trailer", "grpc-status, grpc-message")
        .trailer("grpc-status", status)
        .trailer("grpc-message", message)
}

#[tokio::test]
async fn a_json_get_becomes_a_grpc_call_and_its_reply_json() {
    let up = TestUpstream::start(|seen| {
        let request = message("catalog.GetProductRequest", &seen.body);
        let product = json!({"id": request["id"], "name": "Teapot", "priceCents": "2500", "view": request["view"]});
        grpc(frames("catalog.Product", &[product]), "0", "")
    })
    .await;
    let (gw, _dir) = gateway(&up, json!({})).await;

    let reply = gw.client.get("/v1/products/p-1?view=FULL").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"id": "p-1", "name": "Teapot", "priceCents": "2500", "view": "FULL"}));
    assert!(reply.trailers.is_empty(), "{:?}", reply.trailers);
    assert_eq!(reply.header("grpc-status"), None);

    let seen = &up.seen()[0];
    assert_eq!((seen.method.as_str(), seen.uri.as_str()), ("POST", "/catalog.Products/Get"));
    assert_eq!(seen.header("content-type"), Some("application/grpc"));
    assert_eq!(seen.header("te"), Some("trailers"));
    assert_eq!(message("catalog.GetProductRequest", &seen.body), json!({"id": "p-1", "view": "FULL"}));
}

#[tokio::test]
async fn a_post_body_and_grpc_errors_from_trailers_or_headers() {
    let up = TestUpstream::start(|seen| match seen.uri.as_str() {
        "/catalog.Products/Create" => {
            let request = message("catalog.CreateProductRequest", &seen.body);
            match request["product"]["name"].as_str() {
                Some("Teapot") => grpc(frames("catalog.Product", &[json!({"id": "p-2", "name": "Teapot"})]), "0", ""),
                _ => grpc(Vec::new(), "6", "a product with that name exists"),
            }
        }
        // Trailers-only, as gRPC servers answer most errors.
        _ => Answer::new(200, "")
            .header("content-type", "application/grpc")
            .header("grpc-status", "5")
            .header("grpc-message", "no%20product%20p-404"),
    })
    .await;
    let (gw, _dir) = gateway(&up, json!({})).await;
    let post = |body: Value| {
        let client = gw.client.clone();
        async move { client.send(http::Method::POST, "/v1/products", &[], body.to_string()).await }
    };

    let created = post(json!({"name": "Teapot", "tags": ["tea"]})).await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json(), json!({"id": "p-2", "name": "Teapot"}));
    assert_eq!(
        message("catalog.CreateProductRequest", &up.seen()[0].body),
        json!({"product": {"name": "Teapot", "tags": ["tea"]}})
    );

    let conflict = post(json!({"name": "Kettle"})).await;
    assert_eq!(conflict.problem(409), "a product with that name exists");
    assert_eq!(conflict.json()["grpc_code"], "ALREADY_EXISTS");

    let missing = gw.client.get("/v1/products/p-404").await;
    assert_eq!(missing.problem(404), "no product p-404");
    assert_eq!(missing.json()["grpc_status"], 5);

    // Refused by the plugin: the service never sees these.
    let before = up.count();
    assert!(post(json!({"colour": "red"})).await.problem(400).contains("'colour'"));
    assert!(gw.client.get("/v1/nothing/here").await.problem(404).contains("no gRPC method is bound"));
    assert_eq!(up.count(), before);
}

#[tokio::test]
async fn a_server_stream_becomes_a_json_array() {
    let up = TestUpstream::start(|seen| {
        let request = message("catalog.ListProductsRequest", &seen.body);
        let products: Vec<Value> =
            (1..=3).map(|i| json!({"id": format!("{}-{i}", request["shelf"].as_str().unwrap())})).collect();
        grpc(frames("catalog.Product", &products), "0", "")
    })
    .await;
    let (gw, _dir) = gateway(&up, json!({})).await;
    let reply = gw.client.get("/v1/shelves/s1/products?page_size=3").await;
    assert_eq!(reply.json(), json!([{"id": "s1-1"}, {"id": "s1-2"}, {"id": "s1-3"}]));
}

/// A response a plugin buffers keeps the upstream's trailers on the way to
/// the client (here grpc-transcode passes a request it has no binding for,
/// after transform asked the HTTP/1.1 upstream for trailers).
#[tokio::test]
async fn trailers_of_a_buffered_body_reach_the_client() {
    let up = TestUpstream::start(|_| {
        Answer::new(200, "streamed").header("trailer", "x-checksum").trailer("x-checksum", "abc")
    })
    .await;
    let te = json!({"request": {"headers": {"set": {"te": "trailers"}}}});
    let (gw, _dir) = gateway_after(&up, json!({"on_unmatched": "pass"}), te).await;
    for client in [gw.client.clone(), Client::http2(gw.addr)] {
        let reply = client.get("/v1/files/a").await;
        assert_eq!(reply.text(), "streamed");
        assert_eq!(reply.trailers.get("x-checksum").map(|v| v.to_str().unwrap()), Some("abc"));
    }
}
