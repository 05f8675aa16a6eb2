//! How the gateway measures and reads header fields, the same way on
//! every side: a client's headers against the server's limits, a plugin's
//! writes against the same limits, and the declared body length.

use bytes::Bytes;
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

/// Joins an HTTP/2 request's `cookie` fields into one with `"; "` (RFC 9113
/// §8.2.3): HTTP/2 clients split cookies into separate fields for header
/// compression, but HTTP/1.1 (plugins, upstreams) allows one `Cookie` line,
/// and two would be read as one cookie with a comma in it.
pub(crate) fn join_cookies(headers: &mut HeaderMap) {
    let mut crumbs = headers.get_all(header::COOKIE).iter();
    let (Some(first), Some(_)) = (crumbs.next(), crumbs.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for crumb in headers.get_all(header::COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(crumb.as_bytes());
    }
    // Valid values joined with a valid separator: always a valid value.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Two lowercase hex digits per byte value, made at compile time.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    pairs
};

/// Lowercase hex of `bytes` into `out`, which holds two digits per byte
/// (ids the gateway makes for every request: a table load per byte, no
/// allocation, no checks of its own output).
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    let (pairs, _) = out.as_chunks_mut::<2>();
    for (byte, pair) in bytes.iter().zip(pairs) {
        *pair = HEX_PAIRS[usize::from(*byte)];
    }
}

/// A header value of text the gateway wrote itself from hex digits and
/// dashes ([`hex_into`]): checking it again, byte by byte, would cost
/// more than making it.
pub(crate) fn ascii_value(text: Bytes) -> HeaderValue {
    debug_assert!(text.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-'), "{text:?}");
    // SAFETY: hex digits and dashes are visible ASCII, which a header value
    // may hold; the callers pass only those (checked above in tests).
    unsafe { HeaderValue::from_maybe_shared_unchecked(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_fields_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        join_cookies(&mut headers);
        let cookies: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
        assert_eq!(headers.len(), 2);

        let mut one = HeaderMap::new();
        one.append(header::COOKIE, HeaderValue::from_static("a=1, b"));
        join_cookies(&mut one);
        assert_eq!(one.get_all(header::COOKIE).iter().collect::<Vec<_>>(), ["a=1, b"]);
    }
}
