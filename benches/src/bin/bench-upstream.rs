//! A fast local upstream for the load benchmarks: fixed small JSON answers,
//! and JSON documents of a requested size.
//!
//! ```text
//! bench-upstream [ADDR]        (default 127.0.0.1:9200; threads: TOKIO_WORKER_THREADS)
//! GET /orders...               an order list (for aggregation)
//! GET /products/...            a product (for aggregation)
//! GET /bytes/{n}               a JSON object of about n bytes (cached per n)
//! anything else                a small user JSON document (~130 bytes)
//! ```

use std::net::SocketAddr;

use tokio::net::TcpListener;

fn main() {
    let addr: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9200".into()).parse().expect("ADDR");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        eprintln!("bench-upstream listening on {addr}");
        wasmgate_benches::upstream::serve(listener).await;
    });
}
