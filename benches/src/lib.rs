//! Shared set-up for the benchmarks: gateways built from TOML text and
//! driven through `Gateway::handle`, with no sockets in the way.

pub mod upstream;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmgate::Gateway;
use wasmgate::internals::body;

/// Builds a gateway from config text (plugin paths absolute).
pub async fn gateway(toml: &str) -> Gateway {
    let config = wasmgate::parse_config(Path::new("bench.toml"), toml).expect("bench config is valid");
    Gateway::new(config).await.expect("bench gateway starts")
}

/// A typical API request: ten headers, no body.
pub fn typical_request(path: &str) -> http::Request<body::Body> {
    request_with(path, &[], body::empty())
}

/// The typical request with some headers replaced or added, and a body.
pub fn request_with(path: &str, headers: &[(&str, &str)], body: body::Body) -> http::Request<body::Body> {
    let method = if headers.iter().any(|(k, _)| *k == "content-type") { "POST" } else { "GET" };
    let mut req = http::Request::builder().method(method).uri(path);
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
        if !headers.iter().any(|(name, _)| *name == k) {
            req = req.header(k, v);
        }
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).unwrap()
}

pub const CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// Sends one request through `handle` and reads the whole response.
pub async fn roundtrip(gw: &Gateway, path: &str) -> (u16, Bytes) {
    send(gw, typical_request(path)).await
}

/// Sends a request through `handle` and reads the whole response.
pub async fn send(gw: &Gateway, req: http::Request<body::Body>) -> (u16, Bytes) {
    let resp = gw.handle(req, CLIENT).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// A JSON object of about `n` bytes (never less than ~100): a user
/// document with a list of items, as list endpoints answer.
pub fn json_of_size(n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n + 128);
    out.push_str(r#"{"id":"42","user_name":"user42","email":"user42@example.com","items":["#);
    let mut i = 0usize;
    while out.len() + 80 < n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"{{"i":{i},"name":"item-{i:08}","price_cents":{},"tags":["a","b"]}}"#, i * 7 % 10_000));
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

/// A plugin's path, taken from `$WASMGATE_BENCH_PLUGINS/` instead of the
/// testbed's build when that variable is set: to compare builds of the same
/// plugins (another profile, another SDK) in one benchmark.
pub fn plugin_path(built: &str) -> String {
    match std::env::var_os("WASMGATE_BENCH_PLUGINS") {
        Some(dir) => {
            let file = Path::new(built).file_name().expect("a plugin path names a file");
            Path::new(&dir).join(file).display().to_string()
        }
        None => built.to_owned(),
    }
}
