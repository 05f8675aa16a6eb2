//! Request and response heads, parsed once into `http` types whose header
//! values share the read buffer, with the framing of the body they
//! announce. Whatever could make two parsers disagree about where a message
//! ends (RFC 9112 §6.3, §11.2) is refused here, before routing: both
//! `Content-Length` and `Transfer-Encoding`, differing lengths, codings
//! other than a final `chunked`, obs-fold, bare CR, control bytes.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::Framing;

/// How an HTTP/2 connection with prior knowledge starts.
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Header fields parsed without touching the heap; a head with more takes
/// a second pass with room for the configured maximum.
const STACK_HEADERS: usize = 48;

/// Most header fields of an upstream's response.
const MAX_RESPONSE_HEADERS: usize = 256;

/// Where a header's name and value lie in the head: name start, name
/// length, value start, value length.
type Span = [usize; 4];

/// A request head as the server acts on it.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target, version and fields.
    pub parts: http::request::Parts,
    /// How the body is delimited.
    pub framing: Framing,
    /// The client lets the connection carry another request afterwards.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits before sending its body.
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` field (HTTP/1.1).
    pub upgrade: bool,
}

/// A response head as the upstream client acts on it.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status, version and fields.
    pub parts: http::response::Parts,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection can carry another request once the body is read.
    pub keep_alive: bool,
}

/// A request the server answers with an error and then closes the
/// connection on: after a malformed head, nothing later on the stream can
/// be trusted to be where it seems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 414, 431, 501 or 505.
    pub status: StatusCode,
    /// What was wrong, for the problem+json body.
    pub detail: String,
}

impl Refusal {
    fn bad(detail: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, detail: detail.into() }
    }
}

/// The offsets of one parsed head in its buffer.
struct Scanned {
    len: usize,
    /// Method (requests) or status code (responses), and the target or
    /// reason.
    first: (usize, usize),
    second: (usize, usize),
    code: u16,
    version: u8,
    count: usize,
}

fn offset(base: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize).min(base.len())
}

fn record<'b>(buf: &'b [u8], headers: &[httparse::Header<'b>], spans: &mut [Span]) -> usize {
    for (span, h) in spans.iter_mut().zip(headers) {
        *span = [offset(buf, h.name.as_bytes()), h.name.len(), offset(buf, h.value), h.value.len()];
    }
    headers.len()
}

fn scan_request<'b>(
    buf: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    spans: &mut [Span],
) -> Result<Option<Scanned>, httparse::Error> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let (method, path) = (req.method.unwrap_or_default(), req.path.unwrap_or_default());
    Ok(Some(Scanned {
        len,
        first: (offset(buf, method.as_bytes()), method.len()),
        second: (offset(buf, path.as_bytes()), path.len()),
        code: 0,
        version: req.version.unwrap_or(1),
        count: record(buf, req.headers, spans),
    }))
}

fn scan_response<'b>(
    buf: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    spans: &mut [Span],
) -> Result<Option<Scanned>, httparse::Error> {
    let mut resp = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, slots)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    Ok(Some(Scanned {
        len,
        first: (0, 0),
        second: (0, 0),
        code: resp.code.unwrap_or_default(),
        version: resp.version.unwrap_or(1),
        count: record(buf, resp.headers, spans),
    }))
}

type Scan = for<'b> fn(
    &'b [u8],
    &mut [MaybeUninit<httparse::Header<'b>>],
    &mut [Span],
) -> Result<Option<Scanned>, httparse::Error>;

/// Scans a head (on the stack when its fields fit), splits it off the
/// buffer and builds from it. `Err(None)`: more header fields than `max`.
fn with_head<R>(
    buf: &mut BytesMut,
    scan: Scan,
    max: usize,
    build: impl FnOnce(Bytes, &Scanned, &[Span]) -> R,
) -> Result<Option<R>, Option<httparse::Error>> {
    let mut spans = [[0; 4]; STACK_HEADERS];
    let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    match scan(buf, &mut slots, &mut spans) {
        Ok(Some(scanned)) => {
            let head = buf.split_to(scanned.len).freeze();
            Ok(Some(build(head, &scanned, &spans[..scanned.count])))
        }
        Ok(None) => Ok(None),
        Err(httparse::Error::TooManyHeaders) if max > STACK_HEADERS => {
            let room = max + 1;
            let mut spans = vec![[0; 4]; room];
            let mut slots: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::with_capacity(room);
            slots.resize_with(room, MaybeUninit::uninit);
            match scan(buf, &mut slots, &mut spans) {
                Ok(Some(scanned)) => {
                    drop(slots);
                    let head = buf.split_to(scanned.len).freeze();
                    Ok(Some(build(head, &scanned, &spans[..scanned.count])))
                }
                Ok(None) => Ok(None),
                Err(httparse::Error::TooManyHeaders) => Err(None),
                Err(e) => Err(Some(e)),
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(None),
        Err(e) => Err(Some(e)),
    }
}

/// What the framing-related fields of a head said.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    /// Whether a `Transfer-Encoding` field was seen, and whether its last
    /// coding is `chunked`.
    transfer_encoding: bool,
    chunked_last: bool,
    /// `chunked` somewhere before the last coding.
    chunked_early: bool,
    other_coding: Option<String>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    upgrade_field: bool,
    expect: Option<bool>,
}

impl Fields {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), String> {
        if *name == header::CONTENT_LENGTH {
            let text = value.to_str().map_err(|_| "invalid Content-Length".to_owned())?;
            for item in text.split(',') {
                let item = item.trim_matches([' ', '\t']);
                if item.is_empty() || item.len() > 19 || !item.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("invalid Content-Length {text:?}"));
                }
                let n: u64 = item.parse().map_err(|_| format!("invalid Content-Length {text:?}"))?;
                if self.length.is_some_and(|seen| seen != n) {
                    return Err("differing Content-Length values".to_owned());
                }
                self.length = Some(n);
            }
        } else if *name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
            let text = value.to_str().unwrap_or_default();
            for coding in text.split(',').map(|c| c.trim_matches([' ', '\t'])).filter(|c| !c.is_empty()) {
                if self.chunked_last {
                    self.chunked_early = true;
                }
                self.chunked_last = coding.eq_ignore_ascii_case("chunked");
                if !self.chunked_last && self.other_coding.is_none() {
                    self.other_coding = Some(coding.to_owned());
                }
            }
        } else if *name == header::HOST {
            self.hosts += 1;
        } else if *name == header::CONNECTION {
            for token in value.to_str().unwrap_or_default().split(',') {
                let token = token.trim_matches([' ', '\t']);
                if token.eq_ignore_ascii_case("close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    self.keep_alive = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    self.upgrade_token = true;
                }
            }
        } else if *name == header::UPGRADE {
            self.upgrade_field = true;
        } else if *name == header::EXPECT {
            self.expect = Some(value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        }
        Ok(())
    }

    fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// The header map of a split-off head; the values share its bytes.
/// Room in a parsed head's map for the fields the gateway adds (four
/// forwarding headers, the request id, the trace context) and a few that
/// plugins add, without growing it: a map that grows rehashes every entry
/// into a new allocation (on the full pipeline it did, once per request,
/// after the trace context was added).
const ADDED_FIELDS: usize = 12;

fn headers(head: &Bytes, spans: &[Span], fields: &mut Fields) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(spans.len() + ADDED_FIELDS);
    for &[name_at, name_len, value_at, value_len] in spans {
        let raw_name = &head[name_at..name_at + name_len];
        let name = HeaderName::from_bytes(raw_name)
            .map_err(|_| format!("invalid header name {:?}", String::from_utf8_lossy(raw_name)))?;
        // SAFETY: httparse accepts in a field value exactly what
        // `HeaderValue` does (HTAB, SP, VCHAR, obs-text): checking again
        // would cost a pass over every value of every head.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(head.slice(value_at..value_at + value_len)) };
        fields.note(&name, &value)?;
        map.append(name, value);
    }
    Ok(map)
}

fn version(v: u8) -> Version {
    if v == 0 { Version::HTTP_10 } else { Version::HTTP_11 }
}

/// Parses the request head at the start of `buf`, if it has all arrived,
/// and splits it off. `max_headers` bounds the header fields parsed at all
/// (the gateway's own, lower limit is checked on the result).
pub(crate) fn parse_request(buf: &mut BytesMut, max_headers: usize) -> Result<Option<RequestHead>, Refusal> {
    match with_head(buf, scan_request, max_headers, build_request) {
        Ok(Some(built)) => built.map(Some),
        Ok(None) => Ok(None),
        Err(None) => Err(Refusal {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!("the request has more than {max_headers} header fields"),
        }),
        Err(Some(e)) => Err(Refusal::bad(format!("malformed request head: {e}"))),
    }
}

fn build_request(head: Bytes, scanned: &Scanned, spans: &[Span]) -> Result<RequestHead, Refusal> {
    let (at, len) = scanned.first;
    let method = Method::from_bytes(&head[at..at + len]).map_err(|_| Refusal::bad("invalid method"))?;
    let (at, len) = scanned.second;
    let uri = Uri::from_maybe_shared(head.slice(at..at + len)).map_err(|_| Refusal::bad("invalid request target"))?;
    let version = version(scanned.version);
    let mut fields = Fields::default();
    let headers = headers(&head, spans, &mut fields).map_err(Refusal::bad)?;

    if fields.transfer_encoding && fields.length.is_some() {
        return Err(Refusal::bad("a request must not carry both Content-Length and Transfer-Encoding"));
    }
    let framing = if fields.transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(Refusal::bad("Transfer-Encoding is not allowed in HTTP/1.0"));
        }
        if !fields.chunked_last || fields.chunked_early {
            return Err(Refusal::bad("the last transfer coding of a request must be chunked, and only it"));
        }
        if let Some(coding) = fields.other_coding {
            return Err(Refusal {
                status: StatusCode::NOT_IMPLEMENTED,
                detail: format!("transfer coding {coding:?} is not supported"),
            });
        }
        Framing::Chunked
    } else {
        match fields.length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    if fields.hosts > 1 {
        return Err(Refusal::bad("a request must carry one Host header, not several"));
    }
    if fields.hosts == 0 && version == Version::HTTP_11 {
        return Err(Refusal::bad("an HTTP/1.1 request must carry a Host header"));
    }
    if fields.expect == Some(false) {
        return Err(Refusal {
            status: StatusCode::EXPECTATION_FAILED,
            detail: "only 100-continue is supported".into(),
        });
    }

    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(RequestHead {
        framing,
        keep_alive: fields.keep_alive(version),
        expect_continue: fields.expect == Some(true) && version == Version::HTTP_11,
        upgrade: version == Version::HTTP_11 && fields.upgrade_token && fields.upgrade_field,
        parts,
    })
}

/// Parses the final response head at the start of `buf`, if it has all
/// arrived, and splits it off; interim (1xx) responses other than 101 are
/// skipped. `method` is the request's: a `HEAD` answer has no body.
pub(crate) fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, String> {
    loop {
        let built = match with_head(buf, scan_response, MAX_RESPONSE_HEADERS, |head, scanned, spans| {
            build_response(head, scanned, spans, method)
        }) {
            Ok(Some(built)) => built?,
            Ok(None) => return Ok(None),
            Err(None) => return Err(format!("more than {MAX_RESPONSE_HEADERS} header fields")),
            Err(Some(e)) => return Err(format!("malformed response head: {e}")),
        };
        if let Some(head) = built {
            return Ok(Some(head));
        }
    }
}

/// `None` for an interim response.
fn build_response(
    head: Bytes,
    scanned: &Scanned,
    spans: &[Span],
    method: &Method,
) -> Result<Option<ResponseHead>, String> {
    let status = StatusCode::from_u16(scanned.code).map_err(|_| format!("invalid status {}", scanned.code))?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(None);
    }
    let version = version(scanned.version);
    let mut fields = Fields::default();
    let headers = headers(&head, spans, &mut fields)?;
    let bodiless = *method == Method::HEAD
        || status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Empty
    } else if fields.transfer_encoding {
        if fields.chunked_last && !fields.chunked_early { Framing::Chunked } else { Framing::Close }
    } else {
        match fields.length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    // Both fields: the coding wins, and the connection is not trusted with
    // another request (RFC 9112 §6.3).
    let ambiguous = fields.transfer_encoding && fields.length.is_some();
    let keep_alive = fields.keep_alive(version)
        && framing != Framing::Close
        && !ambiguous
        && status != StatusCode::SWITCHING_PROTOCOLS;
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ResponseHead { parts, framing, keep_alive }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &[u8]) -> Result<Option<RequestHead>, Refusal> {
        parse_request(&mut BytesMut::from(text), 100)
    }

    fn refused(text: &[u8]) -> StatusCode {
        request(text).expect_err("refused").status
    }

    #[test]
    fn a_request_head_is_split_off_with_its_framing() {
        let mut buf = BytesMut::from(
            &b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nhello"[..],
        );
        let head = parse_request(&mut buf, 100).unwrap().unwrap();
        assert_eq!(&buf[..], b"hello", "the body stays in the buffer");
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive && !head.expect_continue && !head.upgrade);
        assert_eq!(head.parts.headers.get_all("x-two").iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n"[..]);
        assert!(parse_request(&mut buf, 100).unwrap().is_none());
        assert_eq!(buf.len(), 25, "nothing consumed");
        buf.extend_from_slice(b"\r\nGET /next HTTP/1.1\r\n");
        let head = parse_request(&mut buf, 100).unwrap().unwrap();
        assert_eq!(head.parts.uri, "/");
        assert_eq!(&buf[..], b"GET /next HTTP/1.1\r\n", "a pipelined request stays");
    }

    #[test]
    fn keep_alive_upgrade_and_expect() {
        let head = request(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive, "HTTP/1.0 closes unless asked");
        let head = request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap();
        assert!(head.keep_alive);
        let head = request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
        let head =
            request(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(head.upgrade);
        let head = request(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.expect_continue);
        assert_eq!(refused(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"), StatusCode::EXPECTATION_FAILED);
    }

    #[test]
    fn framing_that_parsers_could_read_two_ways_is_refused() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            bad
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            bad
        );
        assert_eq!(refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), bad);
        assert_eq!(refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"), bad);
        assert_eq!(refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n"), bad);
        assert_eq!(refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), bad);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            bad
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), bad);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), bad);
        assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), bad, "HTTP/1.1 needs a Host");
        let same =
            request(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").unwrap().unwrap();
        assert_eq!(same.framing, Framing::Length(3), "repeated equal lengths are one length");
        let chunked = request(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(chunked.framing, Framing::Chunked);
    }

    /// What the unchecked header values rely on: every value byte httparse
    /// lets through, `HeaderValue` accepts too.
    #[test]
    fn parsed_values_are_valid_header_values() {
        for b in 0..=255u8 {
            let mut text = b"GET / HTTP/1.1\r\nHost: x\r\nX-V: a".to_vec();
            text.extend_from_slice(&[b, b'z']);
            text.extend_from_slice(b"\r\n\r\n");
            if let Ok(Some(head)) = request(&text) {
                let value = head.parts.headers["x-v"].as_bytes();
                assert!(HeaderValue::from_bytes(value).is_ok(), "byte {b:#04x} passed the parser");
            }
        }
    }

    #[test]
    fn many_header_fields_take_the_heap_up_to_the_limit() {
        let mut text = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..80 {
            text.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        let head = parse_request(&mut BytesMut::from(&text[..]), 100).unwrap().unwrap();
        assert_eq!(head.parts.headers.len(), 81);
        let refusal = parse_request(&mut BytesMut::from(&text[..]), 50).unwrap_err();
        assert_eq!(refusal.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn responses_skip_interim_heads_and_know_their_framing() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..]);
        let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(head.parts.status, 200);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"ok");

        let framing = |text: &[u8], method: Method| {
            let head = parse_response(&mut BytesMut::from(text), &method).unwrap().unwrap();
            (head.framing, head.keep_alive)
        };
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", Method::HEAD), (Framing::Empty, true));
        assert_eq!(framing(b"HTTP/1.1 204 No Content\r\n\r\n", Method::GET), (Framing::Empty, true));
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::GET),
            (Framing::Chunked, true)
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n", Method::GET), (Framing::Close, false));
        assert_eq!(framing(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::GET), (Framing::Length(1), false));
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", Method::GET),
            (Framing::Chunked, false),
            "both fields: chunked, and the connection is not reused"
        );
        assert!(
            parse_response(&mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..]), &Method::GET)
                .is_err()
        );
    }
}
