//! How the gateway measures and reads header fields, the same way on
//! every side: a client's headers against the server's limits, a plugin's
//! writes against the same limits, and the declared body length.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// A field's share of `max_header_bytes`: its name, value, `: ` and line
/// end. Plugins' writes are measured the same way (`message::bounds`).
pub(crate) fn field_bytes(name: &HeaderName, value: &HeaderValue) -> usize {
    name.as_str().len() + value.len() + 4
}

/// The size of headers as `max_header_bytes` counts it.
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| field_bytes(name, value)).sum()
}

/// The body length a message declares in `Content-Length`, when it is one
/// number (the HTTP/1.1 parser has refused a malformed one already).
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Declares a body of `len` bytes held whole: `Content-Length`, never
/// chunked.
pub(crate) fn set_content_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}
