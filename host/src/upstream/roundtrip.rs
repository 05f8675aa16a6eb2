//! One request and its response on a target's connection, in the
//! request's own task: the request is written while the response head is
//! read (an upstream may answer before it has the whole body), and a body
//! that arrived with its head is taken at once, so the connection goes
//! back to the pool before the client has the response.
//!
//! An HTTP/2 upstream's requests go to `h2` instead.

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::failure::ClientError;
pub(crate) use super::outbound::{Outbound, Outgoing};
use super::pool::{Conn, Pool};
use super::spec::Protocol;
use crate::body::{self, Body, BoxError};
use crate::fields::content_length;
use crate::http1::Framing;
use crate::http1::codec::{self, Decoder, Encoder};
use crate::http1::head::{self, ResponseHead};
use crate::http1::io::{WriteBuf, read_more};
use crate::http1::upgrade::{OnUpgrade, Upgraded};
use crate::http1::write;

/// Largest response head read.
const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// Sends a request on a pooled connection, and once more on a new one when
/// the pooled one turns out to have been closed by the upstream while idle
/// (no byte of a response came back), if the body can be sent again and the
/// method may be repeated.
pub(crate) async fn send(pool: &Pool, req: &Outbound<'_>, body: Outgoing) -> Result<Response<Body>, ClientError> {
    if pool.protocol() == Protocol::H2 {
        // Boxed, as `Pool::checkout`'s connect: the HTTP/1.1 round trip
        // does not carry the larger HTTP/2 one inline.
        return Box::pin(super::h2::send(pool, req, body)).await;
    }
    let conn = pool.checkout(req.at).await?;
    let again = match &body {
        Outgoing::Bytes(bytes) if repeatable(req) => Some(bytes.clone()),
        _ => None,
    };
    match on_conn(pool, conn, req, body).await {
        Ok(resp) => Ok(resp),
        Err(Failed { error, stale: true }) if let Some(bytes) = again => {
            tracing::debug!(target = %pool.addr(), %error, "pooled connection was closed; trying a new one");
            let conn = Box::pin(pool.connect()).await?;
            on_conn(pool, conn, req, Outgoing::Bytes(bytes)).await.map_err(|f| f.error)
        }
        Err(failed) => Err(failed.error),
    }
}

/// RFC 9110 §9.2.2, or a request that carries its own idempotency key.
fn repeatable(req: &Outbound<'_>) -> bool {
    req.method.is_idempotent() || req.headers.contains_key("idempotency-key")
}

/// A round trip that got no response.
pub(crate) struct Failed {
    pub error: ClientError,
    /// A reused connection, and not a byte of a response.
    pub stale: bool,
}

/// One round trip on `conn`.
pub(crate) async fn on_conn(
    pool: &Pool,
    mut conn: Conn,
    req: &Outbound<'_>,
    body: Outgoing,
) -> Result<Response<Body>, Failed> {
    let framing = framing(req, &body);
    write::request_head(conn.out.head(), req.method, req.target, req.headers, pool.addr().as_str(), framing);
    let reused = conn.reused;
    let (head, sent) = {
        let Conn { io, buf, out, .. } = &mut conn;
        let (mut rd, mut wr) = io.split();
        let mut send = pin!(write_request(&mut wr, out, body, framing));
        let mut recv = pin!(recv(&mut rd, buf, req.method));
        let mut sent = None;
        loop {
            tokio::select! {
                biased;
                done = &mut send, if sent.is_none() => match done {
                    Ok(()) => sent = Some(true),
                    Err(SendError::Body(e)) => return Err(Failed { error: ClientError::Body(e), stale: false }),
                    // The upstream may have answered before it stopped reading.
                    Err(SendError::Io(e)) => {
                        tracing::debug!(target = %pool.addr(), error = %e, "writing the request failed");
                        sent = Some(false);
                    }
                },
                head = &mut recv => break (head, sent),
            }
        }
    };
    match head {
        // A response before the whole request was sent: the connection is
        // not clean enough for another.
        Ok(head) => Ok(response(pool, conn, head, sent == Some(true), req.at)),
        Err((received, error)) => Err(Failed { error, stale: reused && !received }),
    }
}

fn framing(req: &Outbound<'_>, body: &Outgoing) -> Framing {
    match body {
        Outgoing::Bytes(bytes) if bytes.is_empty() => {
            let bodiless = [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS, Method::TRACE, Method::CONNECT];
            if bodiless.contains(req.method) { Framing::Empty } else { Framing::Length(0) }
        }
        Outgoing::Bytes(bytes) => Framing::Length(bytes.len() as u64),
        Outgoing::Stream(stream) => {
            stream.size_hint().exact().or_else(|| content_length(req.headers)).map_or(Framing::Chunked, Framing::Length)
        }
    }
}

enum SendError {
    Io(io::Error),
    Body(BoxError),
}

/// Writes the head (already in `out`) and the body.
async fn write_request<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut WriteBuf,
    body: Outgoing,
    framing: Framing,
) -> Result<(), SendError> {
    let mut encoder = Encoder::new(framing);
    let body_error = |e| SendError::Body(Box::new(e));
    match body {
        Outgoing::Bytes(bytes) => {
            encoder.data(bytes, out).map_err(body_error)?;
            encoder.finish(out).map_err(body_error)?;
        }
        Outgoing::Stream(stream) => {
            out.flush(wr).await.map_err(SendError::Io)?;
            let mut stream = pin!(stream);
            while let Some(frame) = poll_fn(|cx| stream.as_mut().poll_frame(cx)).await {
                let frame = frame.map_err(|e| SendError::Body(Box::new(e)))?;
                match frame.into_data() {
                    Ok(data) => encoder.data(data, out).map_err(body_error)?,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            encoder.trailers(&trailers, out).map_err(body_error)?;
                        }
                    }
                }
                out.flush(wr).await.map_err(SendError::Io)?;
            }
            encoder.finish(out).map_err(body_error)?;
        }
    }
    out.flush(wr).await.map_err(SendError::Io)
}

/// Reads the final response head. The error says whether any byte of a
/// response came back.
async fn recv<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut bytes::BytesMut,
    method: &Method,
) -> Result<ResponseHead, (bool, ClientError)> {
    let mut received = !buf.is_empty();
    loop {
        if !buf.is_empty() {
            match head::parse_response(buf, method) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err((true, ClientError::Invalid(e))),
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err((true, ClientError::Invalid("the response head is too large".into())));
            }
        }
        match read_more(rd, buf).await {
            Ok(0) => {
                let reason = "connection closed before a response";
                return Err((received, ClientError::Broken { reason, source: None }));
            }
            Ok(_) => received = true,
            Err(e) => return Err((received, ClientError::broken(e))),
        }
    }
}

/// The response, its body taken at once when it is all in, and the
/// connection back in the pool when the round trip left it clean.
fn response(pool: &Pool, mut conn: Conn, head: ResponseHead, clean: bool, at: Instant) -> Response<Body> {
    let ResponseHead { mut parts, framing, keep_alive } = head;
    let reuse = keep_alive && clean;
    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
        let leftover = conn.buf.split().freeze();
        let (read, write) = conn.io.into_split();
        parts.extensions.insert(OnUpgrade::ready(Upgraded { read, write, leftover }));
        return Response::from_parts(parts, body::empty());
    }
    let body = match framing {
        Framing::Empty => {
            if reuse {
                pool.checkin(conn, at);
            }
            body::empty()
        }
        Framing::Length(n) if conn.buf.len() as u64 >= n => {
            let data = conn.buf.split_to(n as usize).freeze();
            if reuse {
                pool.checkin(conn, at);
            }
            body::full(data)
        }
        _ => body::boxed(Streamed { conn: Some(conn), decoder: Decoder::new(framing), pool: pool.clone(), reuse }),
    };
    Response::from_parts(parts, body)
}

/// A response body still arriving; the connection goes back to the pool
/// once it has been read to the end.
struct Streamed {
    conn: Option<Conn>,
    decoder: Decoder,
    pool: Pool,
    reuse: bool,
}

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
        let frame = ready!(codec::poll_frame(&mut this.decoder, &mut conn.io, &mut conn.buf, cx));
        if frame.is_none()
            && let Some(conn) = this.conn.take().filter(|_| this.reuse)
        {
            this.pool.checkin(conn, Instant::now());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(if self.conn.is_some() { n } else { 0 }),
            None => SizeHint::default(),
        }
    }
}
