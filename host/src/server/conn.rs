//! One accepted connection: the TLS handshake (bounded by the header read
//! timeout), then HTTP/1.1 on the gateway's own loop or HTTP/2 on hyper,
//! as ALPN or the client's first bytes say.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::h1::{self, Ended};
use super::{Core, Handler, h2};
use crate::http1::io::Transport;

/// Serves one accepted connection until it ends, is closed for a timeout,
/// or shutdown interrupts its TLS handshake.
pub(crate) async fn serve<H: Handler>(
    core: Arc<Core<H>>,
    stream: TcpStream,
    client: SocketAddr,
    tls: bool,
    watcher: Watcher,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Held for the connection's life: the server's drain waits for it.
    let _watcher = watcher;
    let _ = stream.set_nodelay(true);
    let Some(source) = core.tls.as_ref().filter(|_| tls) else {
        return serve_http(core, stream, client, false, stop).await;
    };
    let settings = (core.settings)();
    let handshake = tokio::time::timeout(settings.header_read_timeout, source.acceptor().accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(%client, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%client, "TLS handshake timed out"),
        },
        _ = stop.wait_for(|stop| *stop) => return,
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return h2::serve(core, stream, Bytes::new(), client, settings, stop, true).await;
    }
    serve_http(core, stream, client, true, stop).await
}

/// HTTP/1, unless the client opens with the HTTP/2 preface.
async fn serve_http<H: Handler, I: Transport>(
    core: Arc<Core<H>>,
    io: I,
    client: SocketAddr,
    tls: bool,
    stop: watch::Receiver<bool>,
) {
    if let Ended::Http2(io, read) = h1::serve(core.clone(), io, client, tls, stop.clone()).await {
        let settings = (core.settings)();
        h2::serve(core, io, read, client, settings, stop, tls).await;
    }
}
