//! The benchmarks' upstream: fixed JSON answers, as fast as hyper allows.
//! Used in-process by the criterion benches and as the `bench-upstream`
//! binary by the load scripts.
//!
//! ```text
//! GET /orders...      an order list (for aggregation)
//! GET /products/...   a product (for aggregation)
//! GET .../bytes/{n}  a JSON object of about n bytes (built once per n)
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
                let body = bodies.answer(req.uri().path());
                async move {
                    // Drain what the client sent, so the connection stays reusable.
                    let _ = req.into_body().collect().await;
                    let resp =
                        hyper::Response::builder().header("content-type", "application/json").body(Full::new(body));
                    Ok::<_, Infallible>(resp.expect("a fixed response is valid"))
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
