//! grpc-transcode in a gateway: JSON clients reach a gRPC service, the
//! descriptor set embedded with `$file`.
//!
//! A tonic server behind an `h2` upstream is the real case
//! (`json_clients_reach_a_tonic_service_over_h2`); the other tests use
//! HTTP/1.1 services answering gRPC messages with chunked trailers, which
//! show each step alone: the contract's trailers (0.2.1) reach the plugin,
//! and the JSON answer goes out without them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::Status;
use tonic_prost::ProstCodec;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{GRPC_TRANSCODE, TRANSFORM};
use wasmgate_testbed::{Answer, Client, TestGateway, TestUpstream};

use crate::upstream_tls::serve;

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
    gateway_for(json!({"targets": [up.target()]}), config, transform).await
}

/// As `gateway_after`, with the upstream's settings given whole.
async fn gateway_for(upstream: Value, config: Value, transform: Value) -> (TestGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.pb.b64"), DESCRIPTOR_SET).unwrap();
    let mut stage = json!({"descriptor_set_base64": {"$file": "catalog.pb.b64"}});
    stage.as_object_mut().unwrap().extend(config.as_object().cloned().unwrap_or_default());
    let mut route = Route::prefix("catalog", "/v1").upstream("catalog");
    if !transform.is_null() {
        route = route.stage("transform", transform);
    }
    let config = GatewayConfig::new()
        .upstream_with("catalog", upstream)
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

/// `catalog.proto`'s messages as the service's own code has them (prost,
/// hand-written: no codegen step), as far as the service reads them.
mod catalog {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetProductRequest {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(int32, tag = "2")]
        pub view: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Product {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(int64, tag = "3")]
        pub price_cents: i64,
        #[prost(string, repeated, tag = "4")]
        pub tags: Vec<String>,
        #[prost(int32, tag = "5")]
        pub view: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateProductRequest {
        #[prost(message, optional, tag = "1")]
        pub product: Option<Product>,
        #[prost(bool, tag = "2")]
        pub validate_only: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListProductsRequest {
        #[prost(string, tag = "1")]
        pub shelf: String,
        #[prost(int32, tag = "2")]
        pub page_size: i32,
    }
}

type Call<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + Send>>;

/// One method of the tonic service, as a closure.
#[derive(Clone)]
struct Method<F>(F);

impl<Req, Resp, F> tower_service::Service<tonic::Request<Req>> for Method<F>
where
    F: Fn(Req) -> Result<Resp, Status>,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    type Response = tonic::Response<Resp>;
    type Error = Status;
    type Future = Call<Resp>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Req>) -> Self::Future {
        let answer = (self.0)(req.into_inner()).map(tonic::Response::new);
        Box::pin(std::future::ready(answer))
    }
}

type Products = futures_util::stream::Iter<std::vec::IntoIter<Result<catalog::Product, Status>>>;

/// `catalog.Products` as a tonic server on `127.0.0.1:0` (h2c): `Get`
/// (`p-404` is NOT_FOUND), `Create` (a nameless product is
/// INVALID_ARGUMENT) and the server-streaming `List` (`page_size` products).
async fn catalog_server() -> SocketAddr {
    use catalog::*;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = hyper::service::service_fn(|req: http::Request<Incoming>| async move {
        let resp = match req.uri().path() {
            "/catalog.Products/Get" => {
                let get = Method(|req: GetProductRequest| match req.id.as_str() {
                    "p-404" => Err(Status::not_found("no product p-404")),
                    id => Ok(Product {
                        id: id.into(),
                        name: "Teapot".into(),
                        price_cents: 2500,
                        view: req.view,
                        ..Default::default()
                    }),
                });
                tonic::server::Grpc::new(ProstCodec::<Product, GetProductRequest>::default()).unary(get, req).await
            }
            "/catalog.Products/Create" => {
                let create = Method(|req: CreateProductRequest| match req.product {
                    Some(product) if !product.name.is_empty() => Ok(Product { id: "p-new".into(), ..product }),
                    _ => Err(Status::invalid_argument("a product needs a name")),
                });
                tonic::server::Grpc::new(ProstCodec::<Product, CreateProductRequest>::default())
                    .unary(create, req)
                    .await
            }
            "/catalog.Products/List" => {
                let list = Method(|req: ListProductsRequest| -> Result<Products, Status> {
                    let products = (1..=req.page_size)
                        .map(|i| Ok(Product { id: format!("{}-{i}", req.shelf), ..Default::default() }))
                        .collect::<Vec<_>>();
                    Ok(futures_util::stream::iter(products))
                });
                tonic::server::Grpc::new(ProstCodec::<Product, ListProductsRequest>::default())
                    .server_streaming(list, req)
                    .await
            }
            _ => Status::unimplemented("no such method").into_http(),
        };
        Ok::<_, Infallible>(resp)
    });
    serve(listener, None, |_| {}, service);
    addr
}

#[tokio::test]
async fn json_clients_reach_a_tonic_service_over_h2() {
    let server = catalog_server().await;
    let upstream = json!({"targets": [server.to_string()], "protocol": "h2"});
    let (gw, _dir) = gateway_for(upstream, json!({}), Value::Null).await;

    let got = gw.client.get("/v1/products/p-1?view=FULL").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.json(), json!({"id": "p-1", "name": "Teapot", "priceCents": "2500", "view": "FULL"}));
    assert!(got.trailers.is_empty());

    let body = json!({"name": "Kettle", "tags": ["tea", "kitchen"]}).to_string();
    let created =
        gw.client.send(http::Method::POST, "/v1/products", &[("content-type", "application/json")], body).await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json(), json!({"id": "p-new", "name": "Kettle", "tags": ["tea", "kitchen"]}));

    let nameless = gw.client.send(http::Method::POST, "/v1/products", &[], json!({"priceCents": 5}).to_string()).await;
    assert_eq!(nameless.problem(400), "a product needs a name");
    assert_eq!(nameless.json()["grpc_code"], "INVALID_ARGUMENT");

    let missing = gw.client.get("/v1/products/p-404").await;
    assert_eq!(missing.problem(404), "no product p-404");
    assert_eq!(missing.json()["grpc_code"], "NOT_FOUND");

    // Over HTTP/2 from the client too; a stream as one JSON array.
    let listed = Client::http2(gw.addr).get("/v1/shelves/s1/products?page_size=3").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json(), json!([{"id": "s1-1"}, {"id": "s1-2"}, {"id": "s1-3"}]));
}
