//! A fast local upstream for the load benchmarks: fixed small JSON answers,
//! and JSON documents of a requested size.
//!
//! ```text
//! bench-upstream [ADDR] [--tls CERT KEY | --grpc]
//!                              (default 127.0.0.1:9200, plaintext HTTP/1.1;
//!                              threads: TOKIO_WORKER_THREADS)
//! --tls CERT KEY               HTTP/1.1 over TLS with this PEM certificate and key
//! --grpc                       h2c prior knowledge; every call echoes its message
//!                              with grpc-status 0 in the trailers
//! GET /orders...               an order list (for aggregation)
//! GET /products/...            a product (for aggregation)
//! GET /bytes/{n}               a JSON object of about n bytes (cached per n)
//! anything else                a small user JSON document (~130 bytes)
//! ```

use std::net::SocketAddr;

use tokio::net::TcpListener;
use wasmgate_benches::upstream::Mode;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args.first().map_or("127.0.0.1:9200", String::as_str).parse().expect("ADDR");
    let mode = match args.get(1).map(String::as_str) {
        None => Mode::Http1,
        Some("--tls") => Mode::tls(args.get(2).expect("--tls CERT KEY"), args.get(3).expect("--tls CERT KEY")),
        Some("--grpc") => Mode::Grpc,
        Some(other) => panic!("unknown option {other}: expected --tls CERT KEY or --grpc"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        eprintln!("bench-upstream listening on {addr}");
        wasmgate_benches::upstream::serve_mode(listener, mode).await;
    });
}
