//! gRPC through the gateway: a tonic client (h2c prior knowledge, as
//! tonic's default) reaches a tonic server behind an `h2` upstream, unary,
//! server streaming and client streaming, with statuses and trailers
//! intact and streams not held back; the gateway's own errors are gRPC
//! statuses (trailers-only), and `grpc-timeout` bounds the upstream wait.
//!
//! tonic is used without codegen: hand-written prost messages, tonic's
//! codec-level `client::Grpc` and `server::Grpc` on hyper connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;
use wasmgate_testbed::TestGateway;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::KEY_AUTH;

use crate::server_common::BOUND;
use crate::upstream_tls::serve;

#[derive(Clone, PartialEq, prost::Message)]
struct Item {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    n: u32,
}

fn item(name: &str, n: u32) -> Item {
    Item { name: name.into(), n }
}

type Reply<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + Send>>;
type Items = Pin<Box<dyn Stream<Item = Result<Item, Status>> + Send>>;

/// `Get`: the item with `n + 1`; `missing` is NOT_FOUND, `slow` answers
/// after a long while.
struct Get;

impl tower_service::Service<tonic::Request<Item>> for Get {
    type Response = tonic::Response<Item>;
    type Error = Status;
    type Future = Reply<Item>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Item>) -> Self::Future {
        Box::pin(async move {
            let got = req.into_inner();
            match got.name.as_str() {
                "missing" => Err(Status::not_found("no item called missing")),
                "slow" => {
                    tokio::time::sleep(BOUND).await;
                    Ok(tonic::Response::new(got))
                }
                _ => Ok(tonic::Response::new(item(&got.name, got.n + 1))),
            }
        })
    }
}

/// `Countdown`: `n` items, and after the first one nothing until `next`
/// is notified (the test does, once the first one reached it).
struct Countdown {
    next: Arc<Notify>,
}

impl tower_service::Service<tonic::Request<Item>> for Countdown {
    type Response = tonic::Response<Items>;
    type Error = Status;
    type Future = Reply<Items>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Item>) -> Self::Future {
        let next = self.next.clone();
        Box::pin(async move {
            let n = req.into_inner().n;
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                for i in (1..=n).rev() {
                    if tx.send(Ok(item("tick", i))).await.is_err() {
                        return;
                    }
                    if i == n {
                        next.notified().await;
                    }
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
            Ok(tonic::Response::new(stream.boxed()))
        })
    }
}

/// `Sum`: the sum of the items' `n`, their names joined; notifies
/// `first` when the first one arrived.
struct Sum {
    first: Arc<Notify>,
}

impl tower_service::Service<tonic::Request<Streaming<Item>>> for Sum {
    type Response = tonic::Response<Item>;
    type Error = Status;
    type Future = Reply<Item>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Streaming<Item>>) -> Self::Future {
        let first = self.first.clone();
        Box::pin(async move {
            let mut stream = req.into_inner();
            let (mut names, mut total) = (Vec::new(), 0);
            while let Some(got) = stream.message().await? {
                names.push(got.name);
                total += got.n;
                if names.len() == 1 {
                    first.notify_one();
                }
            }
            Ok(tonic::Response::new(item(&names.join(","), total)))
        })
    }
}

/// The tonic service on `127.0.0.1:0` (h2c); `next` paces `Countdown`,
/// `first` tells of `Sum`'s first message.
async fn grpc_server(next: Arc<Notify>, first: Arc<Notify>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let (next, first) = (next.clone(), first.clone());
        async move {
            let codec = ProstCodec::<Item, Item>::default;
            let resp = match req.uri().path() {
                "/test.Items/Get" => tonic::server::Grpc::new(codec()).unary(Get, req).await,
                "/test.Items/Countdown" => {
                    tonic::server::Grpc::new(codec()).server_streaming(Countdown { next }, req).await
                }
                "/test.Items/Sum" => tonic::server::Grpc::new(codec()).client_streaming(Sum { first }, req).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok::<_, Infallible>(resp)
        }
    });
    serve(listener, None, |_| {}, service);
    addr
}

/// A tower service sending on one h2c connection: what tonic's client
/// needs, without tonic's transport.
#[derive(Clone)]
struct H2c(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower_service::Service<http::Request<tonic::body::Body>> for H2c {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

struct Client(tonic::client::Grpc<H2c>);

impl Client {
    /// Connects to the gateway with prior knowledge, as tonic does.
    async fn connect(gateway: SocketAddr) -> Self {
        let tcp = TcpStream::connect(gateway).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        Self(tonic::client::Grpc::with_origin(H2c(sender), format!("http://{gateway}").parse().unwrap()))
    }

    async fn get(&mut self, req: tonic::Request<Item>) -> Result<Item, Status> {
        self.0.ready().await.map_err(|e| Status::unknown(e.to_string()))?;
        let path = PathAndQuery::from_static("/test.Items/Get");
        Ok(self.0.unary(req, path, ProstCodec::default()).await?.into_inner())
    }
}

/// The sha256 of a key no test sends.
const BOB_HASH: &str = "46ce2f392731bd4b30deaa33d5dc2a1d917e8a9581f25ec4f45eb0c05e38457e";

fn config(upstream: Value) -> GatewayConfig {
    GatewayConfig::new()
        .upstream_with("items", upstream)
        .plugin_with(
            "key-auth",
            KEY_AUTH,
            json!({ "config": { "consumers": [{ "name": "bob", "keys": [BOB_HASH] }] } }),
        )
        .route(Route::prefix("locked", "/test.Locked/").upstream("items").stage("key-auth", Value::Null))
        .route(Route::prefix("items", "/test.Items/").upstream("items"))
}

#[tokio::test]
async fn unary_and_streaming_calls_through_the_gateway() {
    let (next, first) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let server = grpc_server(next.clone(), first.clone()).await;
    let gw =
        TestGateway::start(&config(json!({ "targets": [server.to_string()], "protocol": "h2" })).to_string()).await;
    let mut client = Client::connect(gw.addr).await;

    assert_eq!(client.get(tonic::Request::new(item("a", 41))).await.unwrap(), item("a", 42));
    // A status the service sets arrives in the trailers, with its message.
    let status = client.get(tonic::Request::new(item("missing", 0))).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "no item called missing"));

    // Server streaming: the first item gets through while the server holds
    // the rest back, so the gateway does not wait for the whole stream.
    client.0.ready().await.unwrap();
    let path = PathAndQuery::from_static("/test.Items/Countdown");
    let resp =
        client.0.server_streaming(tonic::Request::new(item("", 3)), path, ProstCodec::<Item, Item>::default()).await;
    let mut stream = resp.unwrap().into_inner();
    let one = tokio::time::timeout(BOUND, stream.message()).await.expect("the first item, before the others");
    assert_eq!(one.unwrap(), Some(item("tick", 3)));
    next.notify_one();
    let mut rest = Vec::new();
    while let Some(got) = stream.message().await.unwrap() {
        rest.push(got.n);
    }
    assert_eq!(rest, [2, 1]);
    let trailers = stream.trailers().await.unwrap();
    assert!(trailers.is_some(), "the stream ended with trailers (grpc-status 0)");

    // Client streaming: the second item is only sent once the server has
    // the first, so the gateway does not wait for the whole request.
    let sent = futures_util::stream::unfold(0u32, move |i| {
        let first = first.clone();
        async move {
            match i {
                0 => Some((item("x", 1), 1)),
                1 => {
                    tokio::time::timeout(BOUND, first.notified()).await.ok()?;
                    Some((item("y", 2), 2))
                }
                _ => None,
            }
        }
    });
    client.0.ready().await.unwrap();
    let path = PathAndQuery::from_static("/test.Items/Sum");
    let sum = client.0.client_streaming(tonic::Request::new(sent), path, ProstCodec::<Item, Item>::default()).await;
    assert_eq!(sum.unwrap().into_inner(), item("x,y", 3));
}

#[tokio::test]
async fn gateway_errors_are_grpc_statuses() {
    let (next, first) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let server = grpc_server(next, first).await;
    let gw =
        TestGateway::start(&config(json!({ "targets": [server.to_string()], "protocol": "h2" })).to_string()).await;
    let mut client = Client::connect(gw.addr).await;

    // grpc-timeout bounds the wait for the upstream (30 s by default).
    let mut slow = tonic::Request::new(item("slow", 0));
    slow.set_timeout(Duration::from_millis(200));
    let status = client.get(slow).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("200ms"), "{status:?}");

    // A plugin's 401 reads as UNAUTHENTICATED.
    client.0.ready().await.unwrap();
    let locked = PathAndQuery::from_static("/test.Locked/Get");
    let status = client.0.unary::<Item, Item, _>(tonic::Request::new(item("a", 1)), locked, ProstCodec::default());
    let status = status.await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // No route: NOT_FOUND, trailers-only (HTTP 200), never problem+json.
    let reply =
        gw.client.send(http::Method::POST, "/other.Service/Call", &[("content-type", "application/grpc")], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/grpc"));
    assert_eq!(reply.header("grpc-status"), Some("5"));
    assert_eq!(reply.header("grpc-message"), Some("no route for POST /other.Service/Call"));
    assert!(reply.body.is_empty());

    // The server's own request timeout, which no handler answers: DEADLINE_EXCEEDED too.
    let timed = config(json!({ "targets": [server.to_string()], "protocol": "h2" }))
        .section("server", json!({ "request_timeout_ms": 300 }))
        .to_string();
    let gw = TestGateway::start(&timed).await;
    let status = Client::connect(gw.addr).await.get(tonic::Request::new(item("slow", 0))).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("300 ms"), "{status:?}");

    // A dead upstream: UNAVAILABLE.
    let (_held, dead) = wasmgate_testbed::closed_port();
    let gw = TestGateway::start(&config(json!({ "targets": [dead.to_string()], "protocol": "h2" })).to_string()).await;
    let status = Client::connect(gw.addr).await.get(tonic::Request::new(item("a", 1))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("unavailable"), "{status:?}");
}
