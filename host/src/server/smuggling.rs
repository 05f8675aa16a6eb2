//! Request smuggling guard for HTTP/1 connections.
//!
//! hyper frames a request carrying both `Content-Length` and
//! `Transfer-Encoding` by the latter and drops the former before the
//! gateway sees the headers, and keeps the connection open (RFC 9112 §6.1
//! says it must close). Such a request is the classic smuggling probe, so
//! the gateway refuses it: this module follows the bytes hyper reads with
//! the same parser hyper uses (httparse), finds each request head and
//! records whether it carried both fields; request bodies are skipped by
//! their framing. The service takes one verdict per request, in order.
//!
//! When the shadow parser cannot follow the stream (an upgrade, a framing
//! it does not know), it stops and every later response on the connection
//! carries `Connection: close`: a connection is either followed or ended.

use std::collections::VecDeque;

/// Longest head or chunk line followed; hyper refuses longer heads anyway.
const MAX_LINE: usize = 1 << 20;

/// How an HTTP/2 connection with prior knowledge (or after ALPN) starts.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A well-framed request head.
    Clean,
    /// Both `Content-Length` and `Transfer-Encoding`: answer 400 and close.
    Conflicting,
    /// The connection is no longer followed: answer, then close.
    Untracked,
}

#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    /// HTTP/2 (prior knowledge or ALPN): one connection, many streams,
    /// framed by h2; nothing to follow.
    Http2,
    /// Stopped following (see the module docs).
    Off,
}

#[derive(Debug)]
pub(crate) struct Tap {
    state: State,
    buf: Vec<u8>,
    verdicts: VecDeque<bool>,
    max_headers: usize,
    /// Bytes seen so far (only the first few matter, for the h2 preface).
    seen: usize,
    /// Whether the bytes seen so far are the start of the h2 preface.
    preface: bool,
}

impl Tap {
    pub(crate) fn new(max_headers: usize) -> Self {
        Self { state: State::Head, buf: Vec::new(), verdicts: VecDeque::new(), max_headers, seen: 0, preface: true }
    }

    /// The verdict on the next request head hyper hands over.
    pub(crate) fn next_request(&mut self) -> Verdict {
        match self.verdicts.pop_front() {
            Some(true) => Verdict::Conflicting,
            Some(false) => Verdict::Clean,
            None => Verdict::Untracked,
        }
    }

    pub(crate) fn is_http2(&self) -> bool {
        matches!(self.state, State::Http2)
    }

    /// Whether later requests can no longer be checked.
    pub(crate) fn is_off(&self) -> bool {
        matches!(self.state, State::Off)
    }

    /// Follows bytes read from the client.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        if self.seen < PREFACE.len() && self.preface {
            let n = bytes.len().min(PREFACE.len() - self.seen);
            if bytes[..n] != PREFACE[self.seen..self.seen + n] {
                self.preface = false;
            } else if self.seen + n == PREFACE.len() {
                self.state = State::Http2;
                self.buf = Vec::new();
            }
        }
        self.seen = self.seen.saturating_add(bytes.len());
        while !bytes.is_empty() {
            match &mut self.state {
                State::Http2 | State::Off => return,
                State::Head => {
                    let before = self.buf.len();
                    self.buf.extend_from_slice(bytes);
                    match self.parse_head() {
                        Some(len) => {
                            let used = len - before;
                            self.buf.clear();
                            bytes = &bytes[used..];
                        }
                        None => {
                            if self.buf.len() > MAX_LINE {
                                self.stop();
                            }
                            return;
                        }
                    }
                }
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::ChunkEnd;
                    }
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        self.buf.extend_from_slice(bytes);
                        if self.buf.len() > MAX_LINE {
                            self.stop();
                        }
                        return;
                    };
                    self.buf.extend_from_slice(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line);
                }
            }
        }
    }

    fn stop(&mut self) {
        self.state = State::Off;
        self.buf = Vec::new();
    }

    /// One whole line of chunked framing (with its CRLF).
    fn line(&mut self, line: &[u8]) {
        let Some(text) = line.strip_suffix(b"\r\n") else {
            return self.stop();
        };
        match self.state {
            State::ChunkEnd if text.is_empty() => self.state = State::ChunkSize,
            State::ChunkSize => {
                let size = text.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size).ok().map(|s| s.trim_end_matches([' ', '\t']));
                match size.and_then(|s| (!s.is_empty()).then(|| u64::from_str_radix(s, 16).ok()).flatten()) {
                    Some(0) => self.state = State::Trailers,
                    Some(n) => self.state = State::ChunkData(n),
                    None => self.stop(),
                }
            }
            State::Trailers if text.is_empty() => self.state = State::Head,
            State::Trailers => {}
            _ => self.stop(),
        }
    }

    /// Parses the buffered head; on success records its verdict, sets the
    /// body state and returns the head's length.
    fn parse_head(&mut self) -> Option<usize> {
        let mut headers = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                // hyper refuses it too and closes the connection.
                self.stop();
                return None;
            }
        };
        let http11 = req.version == Some(1);
        let mut te = false;
        let mut chunked = false;
        let mut lengths = Vec::new();
        let mut upgrade = req.method == Some("CONNECT");
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = true;
                chunked = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.rsplit(',').next())
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                lengths.push(std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok()));
            } else if h.name.eq_ignore_ascii_case("upgrade") && http11 {
                upgrade = true;
            }
        }
        self.verdicts.push_back(te && !lengths.is_empty());
        self.state = if te {
            if chunked && http11 { State::ChunkSize } else { State::Off }
        } else {
            match lengths.first() {
                None => State::Head,
                Some(Some(n)) if lengths.iter().all(|l| *l == Some(*n)) => {
                    if *n == 0 {
                        State::Head
                    } else {
                        State::Body(*n)
                    }
                }
                Some(_) => State::Off,
            }
        };
        if upgrade {
            // What follows may be another protocol.
            self.state = State::Off;
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(chunks: &[&[u8]]) -> (Vec<Verdict>, bool) {
        let mut tap = Tap::new(100);
        for c in chunks {
            tap.feed(c);
        }
        let mut out = Vec::new();
        while !tap.verdicts.is_empty() {
            out.push(tap.next_request());
        }
        (out, tap.is_off())
    }

    #[test]
    fn follows_keep_alive_requests_of_every_framing() {
        let stream: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
        let (all_at_once, off) = verdicts(&[stream]);
        assert_eq!(all_at_once, vec![Verdict::Clean; 4]);
        assert!(!off);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(verdicts(&bytes).0, vec![Verdict::Clean; 4], "byte by byte");
    }

    #[test]
    fn flags_content_length_with_transfer_encoding_in_either_order() {
        let (v, _) =
            verdicts(&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]);
        assert_eq!(v, vec![Verdict::Conflicting]);
        let (v, _) =
            verdicts(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"]);
        assert_eq!(v, vec![Verdict::Conflicting]);
        let smuggled = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n";
        assert_eq!(verdicts(&[smuggled]).0, vec![Verdict::Clean, Verdict::Conflicting, Verdict::Clean]);
    }

    #[test]
    fn stops_following_what_it_cannot_frame() {
        let (v, off) = verdicts(&[b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nraw bytes"]);
        assert_eq!(v, vec![Verdict::Clean]);
        assert!(off);
        let (_, off) = verdicts(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
        assert!(off);
        let mut tap = Tap::new(100);
        tap.feed(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(tap.next_request(), Verdict::Clean);
        assert!(tap.is_off());
        assert_eq!(tap.next_request(), Verdict::Untracked);
    }

    #[test]
    fn recognises_http2() {
        let mut tap = Tap::new(100);
        tap.feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00");
        assert!(matches!(tap.state, State::Http2));
        let mut tap = Tap::new(100);
        for b in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
            tap.feed(&[*b]);
        }
        assert!(matches!(tap.state, State::Http2));
    }
}
