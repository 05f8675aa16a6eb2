//! Entry points for the fuzz targets in `tests/fuzz` and the benchmarks in
//! `benches/`, not an API.
//!
//! The HTTP/1.1 head parser, head writer and body codec, path
//! normalisation, the router and body helpers are private to the crate and
//! stay so: this module lends the fuzzers and benchmarks what they call,
//! and nothing else. Plugin edit buffers are decoded by
//! `wasmgate_sdk::edits` and their header fields checked by [`NameCache`].

use bytes::BytesMut;
use http::{HeaderMap, Method, StatusCode};

pub use crate::http1::Framing;
pub use crate::http1::codec::{DecodeError, DecodedBody, decode_in_steps, encode_chunked};
pub use crate::http1::head::{Refusal, RequestHead, ResponseHead};
use crate::http1::{head, write};
pub use crate::message::NameCache;
pub use crate::normalize::{PathParams, normalize, routing_path};
pub use crate::router::{PathPattern, RouteLookup, RouteMatcher, Router};

/// Bodies as the gateway's handler takes and gives them.
pub mod body {
    pub use crate::body::{Body, empty, full};
}

/// See `http1::head::parse_request`.
pub fn parse_request(buf: &mut BytesMut, max_headers: usize) -> Result<Option<RequestHead>, Refusal> {
    head::parse_request(buf, max_headers)
}

/// See `http1::head::parse_response`.
pub fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, String> {
    head::parse_response(buf, method)
}

/// A request head as sent upstream (`host` when `headers` have none).
pub fn request_head(method: &Method, target: &str, headers: &HeaderMap, host: &str, framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    write::request_head(&mut out, method, target, headers, host, framing);
    out
}

/// A response head as sent to a client, framed as `framing` says.
pub fn response_head(status: StatusCode, headers: &HeaderMap, framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    write::response_head(&mut out, status, headers, write::BodyField::Framing(framing), None);
    out
}
