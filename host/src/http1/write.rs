//! Request and response heads as bytes. Framing fields (`Content-Length`,
//! `Transfer-Encoding`) and `Connection` on a response are written from
//! what the connection decided, never copied from the message, so a head
//! cannot announce a body other than the one that follows.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use super::Framing;

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn framing_field(out: &mut Vec<u8>, framing: Framing) {
    match framing {
        Framing::Length(n) => field(out, b"content-length", itoa::Buffer::new().format(n).as_bytes()),
        Framing::Chunked => field(out, b"transfer-encoding", b"chunked"),
        Framing::Empty | Framing::Close => {}
    }
}

/// A request head for an upstream. `host` is sent when the headers carry
/// none; `Framing::Empty` sends no length at all (a bodiless GET).
pub(crate) fn request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    host: &str,
    framing: Framing,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) {
        field(out, b"host", host.as_bytes());
    }
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    framing_field(out, framing);
    out.extend_from_slice(b"\r\n");
}

/// How a response head describes its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyField {
    /// Write this framing's field.
    Framing(Framing),
    /// An answer without a body that keeps the length the body would have
    /// had (to HEAD, or 304): the message's own `Content-Length` stays.
    AsIs,
}

/// A response head for a client: HTTP/1.1, a `date` when the message has
/// none, `connection: close` (or `keep-alive` for an HTTP/1.0 client that
/// asked) as decided.
pub(crate) fn response_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    body: BodyField,
    connection: Option<&'static str>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let keep_length = body == BodyField::AsIs;
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in headers {
        let framing = name == header::TRANSFER_ENCODING || (name == header::CONTENT_LENGTH && !keep_length);
        if framing || (name == header::CONNECTION && !upgrade) {
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !headers.contains_key(header::DATE) {
        date(out);
    }
    if let BodyField::Framing(framing) = body {
        framing_field(out, framing);
    }
    if let Some(connection) = connection.filter(|_| !upgrade) {
        field(out, b"connection", connection.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `date` field of the current second, formatted once a second.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

fn date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, line)| {
        if *at != second {
            line.clear();
            field(line, b"date", httpdate::fmt_http_date(now).as_bytes());
            *at = second;
        }
        out.extend_from_slice(line);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn request_heads_carry_our_framing_and_a_host() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let mut out = Vec::new();
        request_head(&mut out, &Method::POST, "/p?q", &headers, "10.0.0.1:80", Framing::Length(3));
        assert_eq!(text(&out), "POST /p?q HTTP/1.1\r\nhost: 10.0.0.1:80\r\nx-a: 1\r\ncontent-length: 3\r\n\r\n");
        headers.insert(header::HOST, HeaderValue::from_static("api.test"));
        let mut out = Vec::new();
        request_head(&mut out, &Method::GET, "/", &headers, "10.0.0.1:80", Framing::Empty);
        assert_eq!(text(&out), "GET / HTTP/1.1\r\nx-a: 1\r\nhost: api.test\r\n\r\n");
    }

    #[test]
    fn response_heads_write_the_decided_framing_and_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(header::DATE, HeaderValue::from_static("then"));
        let mut out = Vec::new();
        response_head(&mut out, StatusCode::OK, &headers, BodyField::Framing(Framing::Chunked), Some("close"));
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\ndate: then\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        response_head(&mut out, StatusCode::OK, &headers, BodyField::AsIs, None);
        assert_eq!(text(&out), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: then\r\n\r\n");
        let mut out = Vec::new();
        response_head(&mut out, StatusCode::NOT_FOUND, &HeaderMap::new(), BodyField::Framing(Framing::Length(0)), None);
        let head = text(&out);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\ndate: "), "{head}");
        assert!(head.ends_with(" GMT\r\ncontent-length: 0\r\n\r\n"), "{head}");
    }
}
