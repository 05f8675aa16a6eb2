//! Shared set-up for the benchmarks: gateways built from TOML text and
//! driven through `Gateway::handle`, with no sockets in the way.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmgate::Gateway;
use wasmgate::body;

/// Builds a gateway from config text (plugin paths absolute).
pub async fn gateway(toml: &str) -> Gateway {
    let config = wasmgate::config::parse(Path::new("bench.toml"), toml).expect("bench config is valid");
    Gateway::new(config).await.expect("bench gateway starts")
}

/// A typical API request: ten headers, no body.
pub fn typical_request(path: &str) -> http::Request<body::Body> {
    let mut req = http::Request::builder().method("GET").uri(path);
    for (k, v) in [
        ("host", "api.example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("authorization", "Bearer abc.def.ghi"),
        ("x-api-key", "k-123456"),
        ("x-request-id", "bench-request"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("cache-control", "no-cache"),
    ] {
        req = req.header(k, v);
    }
    req.body(body::empty()).unwrap()
}

pub const CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// Sends one request through `handle` and reads the whole response.
pub async fn roundtrip(gw: &Gateway, path: &str) -> (u16, Bytes) {
    let resp = gw.handle(typical_request(path), CLIENT).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}
