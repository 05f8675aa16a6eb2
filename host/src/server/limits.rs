//! Limits every request meets before the gateway handles it: request
//! target and header sizes (414, 431), body size whether buffered or
//! streamed (413), malformed bodies (400) and total time to the response
//! head (408 while the client is still sending, 504 otherwise).
//!
//! The HTTP/1 parser has hard caps below these (its read buffer and header
//! count are sized from them with room to spare) that refuse a head far
//! over the limits before it is whole; within the caps the limit that was
//! hit is named.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;

use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::ServerSettings;
use crate::answer::Answer;
use crate::body::{Body, BoxError};
use crate::fields::{content_length, header_bytes};
use crate::http1::head::Refusal;

/// Header fields parsed at all, past our own limit (which answers with
/// which limit was hit): beyond this the head is refused outright.
pub(crate) fn parsed_headers(s: &ServerSettings) -> usize {
    s.max_headers.saturating_mul(2).max(s.max_headers + 16)
}

/// The most a request head may take in the read buffer.
pub(crate) fn head_buffer(s: &ServerSettings) -> usize {
    (s.max_uri_bytes + s.max_header_bytes).saturating_mul(2).max(16 << 10)
}

/// HTTP/2's header list limit, past ours.
pub(crate) fn h2_max_header_list(s: &ServerSettings) -> u32 {
    head_buffer(s).min(u32::MAX as usize) as u32
}

/// The refusal of a head that outgrew its buffer: 414 while the request
/// line is still unfinished, 431 after.
pub(crate) fn head_too_large(s: &ServerSettings, buffered: &[u8]) -> Refusal {
    if !buffered.contains(&b'\n') {
        return Refusal {
            status: StatusCode::URI_TOO_LONG,
            detail: format!("the request target is longer than the limit of {} bytes", s.max_uri_bytes),
        };
    }
    Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        detail: format!("the request headers are larger than the limit of {} bytes", s.max_header_bytes),
    }
}

/// A problem response; over HTTP/1 it also ends the connection, for
/// errors after which the rest of the stream cannot be trusted.
pub(crate) fn refuse(status: StatusCode, detail: &str, close: bool) -> Response<Body> {
    Answer::Refused { status, detail: detail.to_owned(), close }.into_response()
}

/// Checks the request target and headers against the limits: the refusal
/// if they are past one.
pub(crate) fn check_head(s: &ServerSettings, req: &http::request::Parts) -> Option<Response<Body>> {
    let uri = &req.uri;
    let uri_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    if uri_len > s.max_uri_bytes {
        return Some(refuse(
            StatusCode::URI_TOO_LONG,
            &format!("the request target is {uri_len} bytes long; the limit is {}", s.max_uri_bytes),
            false,
        ));
    }
    let headers = &req.headers;
    if headers.len() > s.max_headers {
        return Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("the request has {} header fields; the limit is {}", headers.len(), s.max_headers),
            false,
        ));
    }
    let size = header_bytes(headers);
    if size > s.max_header_bytes {
        return Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("the request headers are {size} bytes; the limit is {}", s.max_header_bytes),
            false,
        ));
    }
    if let Some(len) = content_length(headers).filter(|len| *len > s.max_request_body_bytes) {
        return Some(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is {len} bytes; the limit is {}", s.max_request_body_bytes),
            true,
        ));
    }
    None
}

/// What happened to a request body, seen from outside the handler.
#[derive(Debug, Default)]
pub(crate) struct BodyState {
    started: AtomicBool,
    finished: AtomicBool,
    exceeded: AtomicBool,
    failed: AtomicBool,
}

/// A request body that refuses more than the server-wide limit, records
/// how reading went, and may hold its first frame already read.
pub(crate) struct RequestBody<B> {
    inner: B,
    first: Option<Frame<Bytes>>,
    done: bool,
    read: u64,
    limit: u64,
    state: Arc<BodyState>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the server's limit of {0} bytes")]
pub(crate) struct TooLarge(u64);

impl<B> RequestBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(inner: B, limit: u64) -> (Self, Arc<BodyState>) {
        let state = Arc::new(BodyState::default());
        let done = inner.is_end_stream();
        if done {
            state.finished.store(true, Ordering::Relaxed);
        }
        (Self { inner, first: None, done, read: 0, limit, state: state.clone() }, state)
    }

    /// Waits for the first frame, so a body malformed from its first byte
    /// (bad chunk framing) is refused before anything goes upstream, and an
    /// upstream request only starts once the client has started its body.
    pub(crate) async fn read_first(&mut self) -> Result<(), Box<Response<Body>>> {
        match self.frame().await {
            None => Ok(()),
            Some(Ok(frame)) => {
                self.first = Some(frame);
                Ok(())
            }
            Some(Err(e)) => {
                Err(Box::new(refuse(StatusCode::BAD_REQUEST, &format!("the request body is malformed: {e}"), true)))
            }
        }
    }
}

impl<B> HttpBody for RequestBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.state.started.store(true, Ordering::Relaxed);
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        Poll::Ready(match polled {
            None => {
                self.done = true;
                self.state.finished.store(true, Ordering::Relaxed);
                None
            }
            Some(Err(e)) => {
                self.done = true;
                self.state.failed.store(true, Ordering::Relaxed);
                Some(Err(e.into()))
            }
            Some(Ok(frame)) => {
                self.read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if self.read > self.limit {
                    self.done = true;
                    self.state.exceeded.store(true, Ordering::Relaxed);
                    Some(Err(TooLarge(self.limit).into()))
                } else {
                    if self.inner.is_end_stream() {
                        self.state.finished.store(true, Ordering::Relaxed);
                    }
                    Some(Ok(frame))
                }
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().and_then(|f| f.data_ref()).map_or(0, |d| d.len() as u64);
        if self.done {
            return SizeHint::with_exact(first);
        }
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + first);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

/// Runs the handler within the request timeout (HTTP/2; HTTP/1
/// connections keep their own timer), then [`finish`]es its answer.
pub(crate) async fn within<F>(s: &ServerSettings, body: &BodyState, http1: bool, handler: F) -> Response<Body>
where
    F: Future<Output = Response<Body>>,
{
    let resp = match s.request_timeout {
        None => handler.await,
        Some(limit) => match tokio::time::timeout(limit, handler).await {
            Ok(resp) => resp,
            Err(_) => return timed_out(s, Some(body), http1),
        },
    };
    finish(s, body, resp, http1)
}

/// The answer when the request timeout passes: 408 while the client is
/// still sending its body, 504 otherwise.
pub(crate) fn timed_out(s: &ServerSettings, body: Option<&BodyState>, http1: bool) -> Response<Body> {
    let limit = s.request_timeout.unwrap_or_default().as_millis();
    let sending = body.is_some_and(|b| b.started.load(Ordering::Relaxed) && !b.finished.load(Ordering::Relaxed));
    if sending {
        return refuse(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the request body did not arrive within {limit} ms"),
            http1,
        );
    }
    Answer::Timeout { limit_ms: limit }.into_response()
}

/// Turns what the body wrapper saw into the right answer: 413 past the
/// body limit, 400 for a body that could not be read (the handler only saw
/// a read error).
pub(crate) fn finish(s: &ServerSettings, body: &BodyState, resp: Response<Body>, http1: bool) -> Response<Body> {
    if body.exceeded.load(Ordering::Relaxed) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the server's limit of {} bytes", s.max_request_body_bytes),
            http1,
        );
    }
    let refused = matches!(resp.status(), StatusCode::BAD_REQUEST | StatusCode::REQUEST_TIMEOUT);
    if body.failed.load(Ordering::Relaxed) && !refused {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the request body could not be read: it is malformed or was cut off",
            http1,
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn counts_streamed_bytes_against_the_limit() {
        let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> =
            (0..4).map(|_| Ok(Frame::data(Bytes::from_static(b"0123456789")))).collect();
        let (body, state) = RequestBody::new(StreamBody::new(futures_util::stream::iter(chunks)), 25);
        let Err(err) = body.collect().await else { panic!("over the limit") };
        assert!(err.to_string().contains("limit of 25 bytes"), "{err}");
        assert!(state.exceeded.load(Ordering::Relaxed));

        let (mut body, state) = RequestBody::new(Full::new(Bytes::from_static(b"hello")), 25);
        body.read_first().await.unwrap();
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        assert!(state.finished.load(Ordering::Relaxed) && !state.exceeded.load(Ordering::Relaxed));
    }

    #[test]
    fn head_limits() {
        let s = ServerSettings { max_uri_bytes: 10, max_headers: 2, max_header_bytes: 40, ..Default::default() };
        let req = |uri: &str, headers: &[(&str, &str)]| {
            let mut b = http::Request::builder().uri(uri);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert!(check_head(&s, &req("/short", &[("a", "1")])).is_none());
        assert_eq!(check_head(&s, &req("/much-too-long", &[])).unwrap().status(), 414);
        assert_eq!(check_head(&s, &req("/", &[("a", "1"), ("b", "2"), ("c", "3")])).unwrap().status(), 431);
        assert_eq!(check_head(&s, &req("/", &[("a", &"x".repeat(40))])).unwrap().status(), 431);
    }
}
