//! HTTP/1.1 connections, served by the gateway's own loop (see `http1`):
//! one request at a time (pipelined ones wait in the buffer), each head
//! parsed once, the handler driven in this task, and a response that is
//! ready at once written with its head in one `writev`.
//!
//! Timeouts: the first head is due `header_read_timeout` after the
//! connection opens, later ones that long after their first byte; a
//! connection with nothing in flight closes after `idle_timeout`; a
//! request gets `request_timeout` to its response head (408 while the
//! client is still sending the body, 504 otherwise). While a request
//! without a body is handled, the connection is watched: a client that
//! goes away cancels its request (and the upstream call with it).

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

use super::limits::{self, RequestBody};
use super::{Core, Handler, ServerSettings};
use crate::body::{self, Body};
use crate::fields::content_length;
use crate::http1::Framing;
use crate::http1::codec::{self, Decoder, Encoder};
use crate::http1::head::{self, H2_PREFACE, RequestHead};
use crate::http1::io::{Transport, WriteBuf, read_more};
use crate::http1::upgrade::{OnUpgrade, Upgraded};
use crate::http1::write::{self, BodyField};
use crate::proxy_headers::ClientTls;

/// How a connection served as HTTP/1 ended.
pub(crate) enum Ended<I> {
    Closed,
    /// The client opened with the HTTP/2 preface: the connection, with the
    /// bytes already read.
    Http2(I, Bytes),
}

/// After a refusal or a response that ends the connection, how long
/// unread request bytes are drained before closing, so that the close does
/// not turn into a reset that destroys the answer in flight.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 << 10;

/// Frames of a response body taken before writing, so a body that is
/// ready at once goes out with its head.
const COALESCE_BYTES: usize = 64 << 10;

/// What a client may send ahead (pipelined) while its request is handled.
const WATCH_BYTES: usize = 64 << 10;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The read side of a connection, with the bytes read and not yet parsed.
struct Reader<R> {
    io: R,
    buf: BytesMut,
}

/// The read side while a request body has it.
struct Lent<R> {
    reader: Reader<R>,
    decoder: Decoder,
}

type Home<R> = Arc<Mutex<Option<Lent<R>>>>;

pub(crate) async fn serve<H: Handler, I: Transport>(
    core: Arc<Core<H>>,
    io: I,
    client: SocketAddr,
    tls: bool,
    mut stop: watch::Receiver<bool>,
) -> Ended<I> {
    let opened = Instant::now();
    let (read, mut write) = io.split();
    let mut reader = Some(Reader { io: read, buf: BytesMut::new() });
    let mut out = WriteBuf::default();
    let mut timer = Timer::new();
    let mut first = true;
    loop {
        let Some(rd) = reader.as_mut() else { return Ended::Closed };
        let settings = (core.settings)();
        let head = match next_head(rd, &settings, &mut timer, &mut stop, first.then_some(opened), tls).await {
            Next::Head(head) => head,
            Next::Closed => return Ended::Closed,
            Next::Http2 => {
                let Reader { io: read, buf } = reader.take().expect("the reader is here");
                return Ended::Http2(I::unsplit(read, write), buf.freeze());
            }
            Next::Refused(refusal) => {
                tracing::debug!(%client, status = %refusal.status, detail = %refusal.detail, "refused a request head");
                let resp = limits::refuse(refusal.status, &refusal.detail, true);
                let _ = respond(resp, &Method::GET, Version::HTTP_11, false, &mut out, &mut write).await;
                return close(reader, write).await;
            }
        };
        first = false;
        let finished = serve_request(&core, head, &settings, client, tls, &mut reader, &mut write, &mut timer).await;
        let Some(Finished { resp, method, version, keep_alive, upgrade }) = finished else {
            return Ended::Closed;
        };
        let keep_alive = keep_alive && reader.is_some() && !*stop.borrow() && !asks_to_close(resp.headers());
        let status = resp.status();
        if respond(resp, &method, version, keep_alive, &mut out, &mut write).await.is_err() {
            return Ended::Closed;
        }
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if let (Some(tx), Some(Reader { io, buf })) = (upgrade, reader.take()) {
                let _ = tx.send(Upgraded { read: Box::new(io), write: Box::new(write), leftover: buf.freeze() });
            }
            return Ended::Closed;
        }
        if !keep_alive {
            return close(reader, write).await;
        }
    }
}

// Returned once per request and matched at once: boxing the head would
// cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(RequestHead),
    Refused(head::Refusal),
    Http2,
    Closed,
}

/// Reads until a whole request head is in, within its deadline.
/// `opened`: for the connection's first request, when it opened. The clock
/// is read only when there is something to wait for: a head that arrives
/// in one read costs no deadline at all.
async fn next_head<R: AsyncRead + Unpin>(
    rd: &mut Reader<R>,
    settings: &ServerSettings,
    timer: &mut Timer,
    stop: &mut watch::Receiver<bool>,
    opened: Option<Instant>,
    tls: bool,
) -> Next {
    let max_buf = limits::head_buffer(settings);
    let max_headers = limits::parsed_headers(settings);
    let h2 = tls || settings.h2c;
    // Idle until the first byte of a head, then the header read timeout.
    let mut deadline = opened.map(|at| (at + settings.header_read_timeout, true));
    loop {
        if !rd.buf.is_empty() {
            let seen = &rd.buf[..rd.buf.len().min(H2_PREFACE.len())];
            let preface = opened.is_some() && h2 && H2_PREFACE.starts_with(seen);
            if preface && seen.len() == H2_PREFACE.len() {
                return Next::Http2;
            }
            if !preface {
                match head::parse_request(&mut rd.buf, max_headers) {
                    Ok(Some(head)) => return Next::Head(head),
                    Ok(None) => {}
                    Err(refusal) => return Next::Refused(refusal),
                }
            }
            if rd.buf.len() > max_buf {
                return Next::Refused(limits::head_too_large(settings, &rd.buf));
            }
        }
        let started = !rd.buf.is_empty();
        let at = match deadline {
            Some((at, true)) => at,
            Some((at, false)) if !started => at,
            _ => {
                let wait = if started { settings.header_read_timeout } else { settings.idle_timeout };
                let at = Instant::now() + wait;
                deadline = Some((at, started));
                at
            }
        };
        let read = tokio::select! {
            biased;
            read = read_more(&mut rd.io, &mut rd.buf) => read,
            () = timer.until(at) => {
                let why = if started { "the request head did not arrive in time" } else { "idle" };
                tracing::debug!(why, "closing connection");
                return Next::Closed;
            }
            _ = stop.wait_for(|stop| *stop), if rd.buf.is_empty() => return Next::Closed,
        };
        if matches!(read, Ok(0) | Err(_)) {
            return Next::Closed;
        }
    }
}

/// What a handled request leaves for the connection.
struct Finished {
    resp: Response<Body>,
    method: Method,
    version: Version,
    keep_alive: bool,
    upgrade: Option<tokio::sync::oneshot::Sender<Upgraded>>,
}

/// One request from its head to the handler's response; `None` when the
/// client went away (the request was cancelled).
#[allow(clippy::too_many_arguments)]
async fn serve_request<H: Handler, R, W>(
    core: &Core<H>,
    head: RequestHead,
    settings: &ServerSettings,
    client: SocketAddr,
    tls: bool,
    reader: &mut Option<Reader<R>>,
    write: &mut W,
    timer: &mut Timer,
) -> Option<Finished>
where
    R: AsyncRead + Send + Sync + Unpin + 'static,
    W: AsyncWrite + Unpin,
{
    let RequestHead { mut parts, framing, keep_alive, expect_continue, upgrade } = head;
    let (method, version) = (parts.method.clone(), parts.version);
    let finished =
        |resp, keep_alive, upgrade| Some(Finished { resp, method: method.clone(), version, keep_alive, upgrade });
    let has_body = framing != Framing::Empty;
    if let Some(resp) = limits::check_head(settings, &parts) {
        // The body was not read: the connection cannot go on.
        return finished(resp, keep_alive && !has_body, None);
    }
    if tls {
        parts.extensions.insert(ClientTls);
    }
    let upgrade = upgrade.then(|| {
        let (tx, on) = OnUpgrade::pending();
        parts.extensions.insert(on);
        tx
    });
    let deadline = settings.request_timeout.map(|t| Instant::now() + t);

    // The handler's future is the whole pipeline and upstream round trip:
    // boxed once here rather than copied into every future around it.
    if !has_body {
        let call = Box::pin(core.handler.call(Request::from_parts(parts, body::empty()), client));
        let rd = reader.as_mut().expect("the reader is here without a body");
        return match drive(call, deadline, timer, Some(rd), None, write).await {
            Driven::Response(resp) => finished(resp, keep_alive, upgrade),
            Driven::TimedOut => finished(limits::timed_out(settings, None, true), keep_alive, None),
            Driven::Gone => None,
        };
    }

    let home: Home<R> = Arc::new(Mutex::new(None));
    let lent = Lent { reader: reader.take().expect("the reader is here"), decoder: Decoder::new(framing) };
    let notify = expect_continue.then(|| Arc::new(Notify::new()));
    let client_body = ClientBody { lent: Some(lent), home: home.clone(), wants_continue: notify.clone() };
    let (mut body, state) = RequestBody::new(client_body, settings.max_request_body_bytes);
    let handler = &core.handler;
    let call = Box::pin(async move {
        if !expect_continue
            && !HttpBody::is_end_stream(&body)
            && let Err(resp) = body.read_first().await
        {
            return *resp;
        }
        handler.call(Request::from_parts(parts, body::boxed(body)), client).await
    });
    let driven = drive(call, deadline, timer, None::<&mut Reader<R>>, notify.as_deref(), write).await;
    // Dropped with the handler, the body is home by now unless
    // something else holds it; only a body read to its end leaves the
    // connection fit for another request.
    let back = home.lock().expect("body home lock").take();
    let done = back.as_ref().is_some_and(|l| l.decoder.is_done());
    *reader = back.map(|l| l.reader);
    match driven {
        Driven::Response(resp) => finished(limits::finish(settings, &state, resp, true), keep_alive && done, upgrade),
        Driven::TimedOut => finished(limits::timed_out(settings, Some(&state), true), false, None),
        Driven::Gone => None,
    }
}

enum Driven {
    Response(Response<Body>),
    TimedOut,
    /// The client closed the connection.
    Gone,
}

/// Runs the handler to its response within the deadline, meanwhile
/// sending `100 Continue` when the body asks for it and watching the
/// connection (when it is not lent to the body) for the client leaving.
async fn drive<F, R, W>(
    call: F,
    deadline: Option<Instant>,
    timer: &mut Timer,
    mut watch: Option<&mut Reader<R>>,
    wants_continue: Option<&Notify>,
    write: &mut W,
) -> Driven
where
    F: Future<Output = Response<Body>>,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut call = pin!(call);
    let mut continued = wants_continue.is_none();
    loop {
        tokio::select! {
            biased;
            resp = &mut call => return Driven::Response(resp),
            () = timer.until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => return Driven::TimedOut,
            gone = client_gone(watch.as_deref_mut()), if watch.is_some() => {
                if gone {
                    return Driven::Gone;
                }
                watch = None;
            }
            () = async { wants_continue.expect("guarded").notified().await }, if !continued => {
                continued = true;
                if write.write_all(CONTINUE).await.is_err() || write.flush().await.is_err() {
                    return Driven::Gone;
                }
            }
        }
    }
}

/// Reads what the client sends while its request is handled (a pipelined
/// request stays buffered): true once it has closed, false when the
/// buffer is full and watching stops.
async fn client_gone<R: AsyncRead + Unpin>(rd: Option<&mut Reader<R>>) -> bool {
    let Some(rd) = rd else { return false };
    while rd.buf.len() < WATCH_BYTES {
        match read_more(&mut rd.io, &mut rd.buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

fn asks_to_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))))
}

/// Writes a response: its head with the framing decided here, then its
/// body. Errors mean the connection is done.
async fn respond<W: AsyncWrite + Unpin>(
    resp: Response<Body>,
    method: &Method,
    version: Version,
    keep_alive: bool,
    out: &mut WriteBuf,
    write: &mut W,
) -> io::Result<()> {
    let (parts, body) = resp.into_parts();
    let status = parts.status;
    let chunked_ok = version == Version::HTTP_11;
    let (field, framing) = if *method == Method::HEAD || status == StatusCode::NOT_MODIFIED {
        (BodyField::AsIs, Framing::Empty)
    } else if status.is_informational() || status == StatusCode::NO_CONTENT {
        (BodyField::Framing(Framing::Empty), Framing::Empty)
    } else {
        let framing = match body.size_hint().exact() {
            Some(n) => Framing::Length(n),
            None => match content_length(&parts.headers) {
                Some(n) => Framing::Length(n),
                None if chunked_ok => Framing::Chunked,
                None => Framing::Close,
            },
        };
        (BodyField::Framing(framing), framing)
    };
    let keep_alive = keep_alive && framing != Framing::Close;
    let connection = match (keep_alive, version) {
        (false, _) => Some("close"),
        (true, Version::HTTP_10) => Some("keep-alive"),
        _ => None,
    };
    write::response_head(out.head(), status, &parts.headers, field, connection);
    if framing == Framing::Empty || body.is_end_stream() {
        let mut encoder = Encoder::new(framing);
        encoder.finish(out).map_err(io::Error::other)?;
        return out.flush(write).await;
    }
    send_body(body, Encoder::new(framing), out, write).await
}

/// Writes a body's frames, taking every frame that is ready before each
/// write.
async fn send_body<W: AsyncWrite + Unpin>(
    body: Body,
    mut encoder: Encoder,
    out: &mut WriteBuf,
    write: &mut W,
) -> io::Result<()> {
    let mut body = pin!(body);
    loop {
        let polled = poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await;
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                out.flush(write).await?;
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        match frame {
            None => {
                encoder.finish(out).map_err(io::Error::other)?;
                return out.flush(write).await;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; closing the connection");
                let _ = out.flush(write).await;
                return Err(io::Error::other(e));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => encoder.data(data, out).map_err(io::Error::other)?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        encoder.trailers(&trailers, out).map_err(io::Error::other)?;
                    }
                }
            },
        }
        if out.len() >= COALESCE_BYTES {
            out.flush(write).await?;
        }
    }
}

/// Ends the connection: our side first, then what the client still sends
/// is read and dropped for a moment, so the answer reaches it.
async fn close<R: AsyncRead + Unpin, W: AsyncWrite + Unpin, I>(reader: Option<Reader<R>>, mut write: W) -> Ended<I> {
    let _ = write.shutdown().await;
    if let Some(mut rd) = reader {
        let drain = async {
            let mut dropped = 0;
            while dropped < LINGER_BYTES {
                rd.buf.clear();
                match read_more(&mut rd.io, &mut rd.buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => dropped += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
    Ended::Closed
}

/// A request body read off the connection, which it holds until the body
/// ends or is dropped, then gives back.
struct ClientBody<R> {
    lent: Option<Lent<R>>,
    home: Home<R>,
    /// Told on the first read, so the connection sends `100 Continue`.
    wants_continue: Option<Arc<Notify>>,
}

impl<R> ClientBody<R> {
    fn give_back(&mut self) {
        if let Some(lent) = self.lent.take() {
            *self.home.lock().expect("body home lock") = Some(lent);
        }
    }
}

impl<R> Drop for ClientBody<R> {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl<R: AsyncRead + Unpin> HttpBody for ClientBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some(notify) = this.wants_continue.take() {
            notify.notify_one();
        }
        let Some(lent) = this.lent.as_mut() else { return Poll::Ready(None) };
        let frame = ready!(codec::poll_frame(&mut lent.decoder, &mut lent.reader.io, &mut lent.reader.buf, cx));
        if frame.is_none() {
            this.give_back();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.lent.as_ref().is_none_or(|l| l.decoder.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        match self.lent.as_ref().map(|l| l.decoder.remaining()) {
            Some(Some(n)) => SizeHint::with_exact(n),
            Some(None) => SizeHint::default(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// One timer for all of a connection's deadlines, re-armed only when a
/// deadline comes before the one it is set for. Requests nearly always end
/// long before their deadline, so this spares a timer-wheel insertion and
/// removal per request; when the timer fires for a deadline that has since
/// moved later, it re-arms itself for the later one.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> Self {
        Self { sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))), armed: None }
    }

    async fn until(&mut self, at: Instant) {
        loop {
            if self.armed.is_none_or(|armed| at < armed) {
                self.sleep.as_mut().reset(at);
                self.armed = Some(at);
            }
            self.sleep.as_mut().await;
            self.armed = None;
            if Instant::now() >= at {
                return;
            }
        }
    }
}
