//! A plain HTTP client for talking to a gateway in tests.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Fields sent after the body (empty when none were).
    pub trailers: http::HeaderMap,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts an RFC 9457 problem with this status and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        let json = self.json();
        assert_eq!(json["status"], status);
        assert!(json["title"].is_string());
        json["detail"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the problem a failed plugin gets the client: this status,
    /// the plugin's name and the request id as extension members, and
    /// nothing of the plugin's insides (trap text, wasm backtrace). Returns
    /// its detail.
    pub fn plugin_problem(&self, status: u16, plugin: &str) -> String {
        let detail = self.problem(status);
        let json = self.json();
        assert_eq!(json["plugin"], plugin, "{json}");
        let id = self.header("x-request-id").expect("every response carries x-request-id");
        assert_eq!(json["request_id"], id, "{json}");
        let text = self.text();
        for inside in ["backtrace", "wasm", "unreachable", "panicked", ".rs:"] {
            assert!(!text.contains(inside), "the body shows {inside:?}: {text}");
        }
        detail
    }
}

/// One HTTP/1.1 connection, kept alive between requests: a request that
/// broke the connection fails the next one.
pub struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connecting to the gateway");
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 handshake");
        tokio::spawn(conn);
        Self { sender }
    }

    /// GET `path` on this connection; `Err` when the connection is gone.
    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.sender.ready().await.map_err(|e| format!("the connection is gone: {e}"))?;
        let req = http::Request::get(path).header("host", "gateway").body(Full::new(Bytes::new())).expect("a request");
        let resp = self.sender.send_request(req).await.map_err(|e| format!("no response: {e}"))?;
        let (head, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| format!("the body broke off: {e}"))?;
        Ok(reply(head, body))
    }
}

#[derive(Clone)]
pub struct Client {
    base: SocketAddr,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(base: SocketAddr) -> Self {
        Self { base, inner: HyperClient::builder(TokioExecutor::new()).build_http() }
    }

    /// Speaks HTTP/2 with prior knowledge (h2c).
    pub fn http2(base: SocketAddr) -> Self {
        Self { base, inner: HyperClient::builder(TokioExecutor::new()).http2_only(true).build_http() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(http::Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = http::Request::builder().method(method).uri(format!("http://{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).expect("a valid test request");
        let resp = self.inner.request(req).await.expect("the gateway answers");
        let (head, body) = resp.into_parts();
        reply(head, body.collect().await.expect("reading the response body"))
    }
}

fn reply(head: http::response::Parts, body: http_body_util::Collected<Bytes>) -> Reply {
    let trailers = body.trailers().cloned().unwrap_or_default();
    Reply { status: head.status.as_u16(), headers: head.headers, body: body.to_bytes(), trailers }
}
