//! Request and response heads off the wire. Invariants: a head that parses
//! was not already complete in any shorter prefix; every header value is
//! one `HeaderValue` accepts (the parser builds them unchecked); and a
//! head written back as the gateway writes it parses to the same head.

#![no_main]

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use wasmgate::internals::{Framing, parse_request, parse_response, request_head, response_head};

const MAX_HEADERS: usize = 100;

fuzz_target!(|data: &[u8]| {
    request(data);
    for method in [Method::GET, Method::HEAD] {
        response(data, &method);
    }
});

/// `headers` without the fields the writers decide themselves.
fn without(headers: &HeaderMap, decided: &[HeaderName]) -> HeaderMap {
    let mut kept = headers.clone();
    for name in decided {
        kept.remove(name);
    }
    kept
}

fn values_are_valid(headers: &HeaderMap) {
    for (name, value) in headers {
        assert!(HeaderValue::from_bytes(value.as_bytes()).is_ok(), "{name}: {value:?} is no valid header value");
    }
}

/// Where to cut `len` bytes for the prefix check: anywhere, chosen by the
/// input itself so the fuzzer can steer it.
fn cut(data: &[u8], len: usize) -> usize {
    data.iter().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(*b))) % len.max(1)
}

/// The head at the start of `data`, after checking that a prefix of it
/// is not one yet (interim response heads in it are skipped).
fn whole_head<H: std::fmt::Debug, E: std::fmt::Debug>(
    data: &[u8],
    parse: impl Fn(&mut BytesMut) -> Result<Option<H>, E>,
) -> Option<H> {
    let mut buf = BytesMut::from(data);
    let head = parse(&mut buf).ok()??;
    let used = data.len() - buf.len();
    let prefix = &data[..cut(data, used)];
    let early = parse(&mut BytesMut::from(prefix));
    assert!(matches!(early, Ok(None)), "the prefix {prefix:?} of a head of {used} bytes reads as {early:?}");
    Some(head)
}

fn request(data: &[u8]) {
    let Some(head) = whole_head(data, |buf| parse_request(buf, MAX_HEADERS)) else { return };
    let parts = &head.parts;
    values_are_valid(&parts.headers);

    let framing = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING];
    let target = parts.uri.to_string();
    let wire = request_head(&parts.method, &target, &parts.headers, "fuzz.invalid", head.framing);
    // The writer adds `Host` to a head without one (HTTP/1.0), one field
    // more than the parser took.
    let again = match parse_request(&mut BytesMut::from(&wire[..]), MAX_HEADERS + 1) {
        Ok(Some(again)) => again,
        other => panic!("{:?} written back as {:?} does not parse: {other:?}", parts, String::from_utf8_lossy(&wire)),
    };
    assert_eq!(again.parts.method, parts.method);
    assert_eq!(again.parts.uri, parts.uri);
    assert_eq!(again.framing, head.framing);
    let mut expected = without(&parts.headers, &framing);
    if !expected.contains_key(header::HOST) {
        expected.insert(header::HOST, HeaderValue::from_static("fuzz.invalid"));
    }
    assert_eq!(without(&again.parts.headers, &framing), expected);
}

fn response(data: &[u8], method: &Method) {
    let Some(head) = whole_head(data, |buf| parse_response(buf, method)) else { return };
    let parts = &head.parts;
    values_are_valid(&parts.headers);

    let bodiless = *method == Method::HEAD
        || [StatusCode::SWITCHING_PROTOCOLS, StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED].contains(&parts.status);
    // The gateway answers an empty body that the head did not announce as
    // none with a zero length, not by closing.
    let framing = match head.framing {
        Framing::Empty if !bodiless => Framing::Length(0),
        framing => framing,
    };
    let wire = response_head(parts.status, &parts.headers, framing);
    let again = match parse_response(&mut BytesMut::from(&wire[..]), method) {
        Ok(Some(again)) => again,
        other => panic!("{:?} written back as {:?} does not parse: {other:?}", parts, String::from_utf8_lossy(&wire)),
    };
    assert_eq!(again.parts.status, parts.status);
    let read_back = match again.framing {
        Framing::Length(0) if !bodiless => Framing::Empty,
        f => f,
    };
    assert_eq!(read_back, head.framing);
    let decided = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION, header::DATE];
    assert_eq!(without(&again.parts.headers, &decided), without(&parts.headers, &decided));
}
