//! HTTP/2 to a target (`protocol = "h2"`): one multiplexed connection per
//! target, shared by every request to it (hyper's HTTP/2 client; each
//! request is a stream, and the server's limit on concurrent streams holds
//! further requests until a stream ends). Over TLS the connection is
//! negotiated by ALPN; without TLS it is h2c with prior knowledge. A
//! closed connection is replaced by the next request that finds it so.
//!
//! Bodies stream both ways, trailers included (gRPC's `grpc-status`
//! arrives in the response's trailers).
//!
//! A WebSocket handshake becomes an extended CONNECT (RFC 8441): the
//! stream carries the WebSocket's bytes, and the gateway answers the
//! HTTP/1.1 client's handshake itself once the upstream accepts.

use std::io;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::failure::ClientError;
use super::outbound::{Outbound, Outgoing};
use super::pool::Pool;
use crate::body::{self, Body};
use crate::http1::upgrade::{OnUpgrade, Upgraded, is_websocket_handshake, websocket_accept};

/// Sends a request as a stream on the target's connection, made first if
/// there is none (or it closed).
pub(crate) async fn send(pool: &Pool, req: &Outbound<'_>, body: Outgoing) -> Result<Response<Body>, ClientError> {
    if let Some(key) = req.headers.get(header::SEC_WEBSOCKET_KEY)
        && is_websocket_handshake(req.headers)
    {
        // Boxed: rare, and every request's future would carry it.
        return Box::pin(websocket(pool, req, websocket_accept(key.as_bytes()))).await;
    }
    let request = request(pool, req, body)?;
    Ok(send_request(pool, request).await?.map(body::boxed))
}

async fn send_request(pool: &Pool, request: Request<Body>) -> Result<Response<Incoming>, ClientError> {
    let mut sender = sender(pool).await?;
    if sender.ready().await.is_err() {
        // Closed since it was taken: the request was not sent, a new
        // connection may carry it.
        pool.shared().clear();
        sender = sender_for(pool).await?;
        sender.ready().await.map_err(ClientError::H2)?;
    }
    sender.send_request(request).await.map_err(ClientError::H2)
}

/// The handshake as an extended CONNECT with `:protocol = websocket`
/// (`Sec-WebSocket-Version`, `-Protocol` and `-Extensions` go along; the
/// key stays here). A 2xx is answered `101` to the client with `accept`
/// (the value for its key), and the stream handed over as the upstream's
/// side of the tunnel; any other answer goes back as it is. An upstream
/// that did not enable extended CONNECT fails the try with hyper's reason.
async fn websocket(pool: &Pool, req: &Outbound<'_>, accept: HeaderValue) -> Result<Response<Body>, ClientError> {
    let mut connect = request(pool, req, Outgoing::Bytes(Bytes::new()))?;
    *connect.method_mut() = Method::CONNECT;
    connect.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    for name in [header::TE, header::SEC_WEBSOCKET_KEY, header::CONTENT_LENGTH] {
        connect.headers_mut().remove(name);
    }
    let mut resp = send_request(pool, connect).await?;
    if !resp.status().is_success() {
        return Ok(resp.map(body::boxed));
    }
    let stream = hyper::upgrade::on(&mut resp);
    let (tx, on) = OnUpgrade::pending();
    tokio::spawn(async move {
        match stream.await {
            Ok(stream) => {
                let (read, write) = tokio::io::split(TokioIo::new(stream));
                let _ = tx.send(Upgraded { read: Box::new(read), write: Box::new(write), leftover: Bytes::new() });
            }
            Err(e) => tracing::debug!(error = %e, "the upstream's WebSocket stream was not handed over"),
        }
    });
    let (mut head, _) = resp.into_parts();
    head.status = StatusCode::SWITCHING_PROTOCOLS;
    head.version = Version::HTTP_11;
    head.headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    head.extensions.insert(on);
    Ok(Response::from_parts(head, body::empty()))
}

async fn sender(pool: &Pool) -> Result<SendRequest<Body>, ClientError> {
    match pool.shared().current(pool.generation()) {
        Some(sender) => Ok(sender),
        None => sender_for(pool).await,
    }
}

/// The shared sender, or a new connection's (one at a time).
async fn sender_for(pool: &Pool) -> Result<SendRequest<Body>, ClientError> {
    let shared = pool.shared();
    let _one = shared.connecting.lock().await;
    let generation = pool.generation();
    if let Some(sender) = shared.current(generation) {
        return Ok(sender);
    }
    let sender = connect(pool).await?;
    shared.set(generation, sender.clone());
    Ok(sender)
}

/// A new HTTP/2 connection to the pool's target, driven by its own task
/// until every sender is gone or the upstream closes it.
pub(crate) async fn connect(pool: &Pool) -> Result<SendRequest<Body>, ClientError> {
    let io = pool.connector().connect().await?;
    if pool.connector().is_tls() && io.alpn() != Some(b"h2") {
        let chose = io.alpn().map_or("nothing".into(), String::from_utf8_lossy);
        let reason = format!("the upstream did not agree to HTTP/2 by ALPN (it chose {chose})");
        return Err(ClientError::Tls(io::Error::new(io::ErrorKind::InvalidData, reason)));
    }
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Connect { timed_out: false, source: io::Error::other(e) })?;
    let target = pool.addr().clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%target, error = %e, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}

/// The request as HTTP/2 carries it: scheme and authority in the URI (the
/// `Host` header becomes `:authority`), `te: trailers` (gRPC servers ask
/// for it; the only value HTTP/2 allows).
fn request(pool: &Pool, req: &Outbound<'_>, body: Outgoing) -> Result<Request<Body>, ClientError> {
    let mut headers = req.headers.clone();
    let host = headers.remove(header::HOST).and_then(|h| Authority::try_from(h.as_bytes()).ok());
    let authority = host.unwrap_or_else(|| pool.addr().clone());
    let scheme = if pool.connector().is_tls() { Scheme::HTTPS } else { Scheme::HTTP };
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(req.target)
        .build()
        .map_err(|e| ClientError::Invalid(format!("request target: {e}")))?;
    for name in [header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    let body = match body {
        Outgoing::Bytes(bytes) => body::full(bytes),
        Outgoing::Stream(stream) => stream,
    };
    let mut request = Request::new(body);
    *request.method_mut() = req.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}
