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
//!
//! [`Mode`] picks the protocol: plaintext HTTP/1.1, HTTP/1.1 over TLS, or
//! gRPC-shaped h2c (every POST echoes its body, a gRPC frame, with
//! `grpc-status: 0` in the trailers), for the TLS-upstream and gRPC rows.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
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

/// How the bench upstream speaks.
#[derive(Clone)]
pub enum Mode {
    Http1,
    /// HTTP/1.1 over TLS with this certificate.
    Tls(tokio_rustls::TlsAcceptor),
    /// h2c with prior knowledge, gRPC-shaped echo answers.
    Grpc,
}

impl Mode {
    /// TLS with the PEM certificate chain and key in these files.
    pub fn tls(cert: &str, key: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert).and_then(|c| c.collect::<Result<Vec<_>, _>>()).expect("cert");
        let key = PrivateKeyDer::from_pem_file(key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::Tls(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// Serves HTTP/1.1 on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    serve_mode(listener, Mode::Http1).await
}

/// Serves in `mode` on `listener` until the task is dropped.
pub async fn serve_mode(listener: TcpListener, mode: Mode) {
    let bodies = Arc::new(Bodies::default());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let bodies = bodies.clone();
        let mode = mode.clone();
        tokio::spawn(async move {
            match mode {
                Mode::Http1 => http1_conn(stream, bodies).await,
                Mode::Tls(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        http1_conn(tls, bodies).await
                    }
                }
                Mode::Grpc => {
                    let service = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                        let message = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(GrpcReply { message: Some(message), done: false });
                        Ok::<_, Infallible>(resp.expect("a fixed response is valid"))
                    });
                    let _ =
                        http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

async fn http1_conn<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I, bodies: Arc<Bodies>) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let grpc = req.uri().path().starts_with("/catalog.Products/");
        let body = if grpc { Bytes::from_static(GRPC_PRODUCT) } else { bodies.answer(req.uri().path()) };
        async move {
            // Drain what the client sent, so the connection stays reusable.
            let _ = req.into_body().collect().await;
            let resp = match grpc {
                // The status in the headers: HTTP/1.1 trailers would
                // need a chunked body, and the plugin reads either.
                true => {
                    hyper::Response::builder().header("content-type", "application/grpc").header("grpc-status", "0")
                }
                false => hyper::Response::builder().header("content-type", "application/json"),
            };
            Ok::<_, Infallible>(resp.body(Full::new(body)).expect("a fixed response is valid"))
        }
    });
    let _ = http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
}

/// A gRPC answer: the message, then `grpc-status: 0` as trailers.
struct GrpcReply {
    message: Option<Bytes>,
    done: bool,
}

impl hyper::body::Body for GrpcReply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if std::mem::replace(&mut self.done, true) {
            return Poll::Ready(None);
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

/// Starts the upstream on a free loopback port, on the current runtime.
pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the bench upstream");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}
