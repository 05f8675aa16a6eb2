//! The benchmarks' upstream: fixed JSON answers, as fast as hyper allows.
//! Used in-process by the criterion benches and as the `bench-upstream`
//! binary by the load scripts.
//!
//! ```text
//! GET /orders...      an order list (for aggregation)
//! GET /products/...   a product (for aggregation)
//! GET .../bytes/{n}  a JSON object of about n bytes (built once per n)
//! POST /catalog.Products/...  a gRPC reply: one `catalog.Product` message
//!                     (grpc-transcode's test service), `grpc-status: 0`
//! anything else       a small user JSON document (~110 bytes)
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const USER: &str =
    r#"{"id":"42","user_name":"user42","email":"user42@example.com","role":"member","created":"2024-01-01T00:00:00Z"}"#;
pub const ORDERS: &str = r#"{"orders":[{"order_id":"o-100","product_id":"p-1","quantity":2},{"order_id":"o-101","product_id":"p-7","quantity":1}]}"#;
pub const PRODUCT: &str = r#"{"product_id":"p-1","title":"Product p-1","price_cents":1999}"#;
/// `catalog.Product { id: "p-1", name: "Teapot", price_cents: 2500 }`,
/// framed as gRPC sends it.
pub const GRPC_PRODUCT: &[u8] = &[
    0, 0, 0, 0, 16, // uncompressed, 16 bytes
    0x0a, 3, b'p', b'-', b'1', // id
    0x12, 6, b'T', b'e', b'a', b'p', b'o', b't', // name
    0x18, 0xc4, 0x13, // price_cents = 2500
];

#[derive(Default)]
struct Bodies {
    sized: Mutex<HashMap<usize, Bytes>>,
}

impl Bodies {
    fn sized(&self, n: usize) -> Bytes {
        let n = n.min(64 << 20);
        self.sized.lock().unwrap().entry(n).or_insert_with(|| Bytes::from(crate::json_of_size(n))).clone()
    }

    fn answer(&self, path: &str) -> Bytes {
        if path.starts_with("/orders") {
            Bytes::from_static(ORDERS.as_bytes())
        } else if path.starts_with("/products/") {
            Bytes::from_static(PRODUCT.as_bytes())
        } else if let Some(n) = path.split_once("/bytes/").and_then(|(_, n)| n.parse().ok()) {
            self.sized(n)
        } else {
            Bytes::from_static(USER.as_bytes())
        }
    }
}

/// Serves HTTP/1.1 on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let bodies = Arc::new(Bodies::default());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let bodies = bodies.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let grpc = req.uri().path().starts_with("/catalog.Products/");
                let body = if grpc { Bytes::from_static(GRPC_PRODUCT) } else { bodies.answer(req.uri().path()) };
                async move {
                    // Drain what the client sent, so the connection stays reusable.
                    let _ = req.into_body().collect().await;
                    let resp = match grpc {
                        // The status in the headers: HTTP/1.1 trailers would
                        // need a chunked body, and the plugin reads either.
                        true => hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "0"),
                        false => hyper::Response::builder().header("content-type", "application/json"),
                    };
                    Ok::<_, Infallible>(resp.body(Full::new(body)).expect("a fixed response is valid"))
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Starts the upstream on a free loopback port, on the current runtime.
pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the bench upstream");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}
