//! What one try sends: the request's head and its body. Below both ways of
//! sending it (HTTP/1.1 in `roundtrip`, HTTP/2 in `h2`).

use std::time::Instant;

use bytes::Bytes;
use http::Method;
use http::header::HeaderMap;

use crate::body::Body;

/// A request body as one try sends it.
pub(crate) enum Outgoing {
    /// In memory: sent again as often as needed.
    Bytes(Bytes),
    Stream(Body),
}

/// The head of the request a try sends.
pub(crate) struct Outbound<'a> {
    pub method: &'a Method,
    /// Path and query.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    /// When the try started: the pool's clock for this round trip.
    pub at: Instant,
}
