//! A connection handed over after `101 Switching Protocols`, on either side
//! of the proxy, and the tunnel between two of them.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// Both directions of a connection no longer speaking HTTP, and the bytes
/// already read past the head that switched it.
pub(crate) struct Upgraded {
    pub(crate) read: Box<dyn AsyncRead + Send + Unpin>,
    pub(crate) write: Box<dyn AsyncWrite + Send + Unpin>,
    pub(crate) leftover: Bytes,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("leftover", &self.leftover.len()).finish_non_exhaustive()
    }
}

/// In a message's extensions: its connection, once the `101` has been
/// written (the client's side) or read (the upstream's). Clones share it
/// (extensions must be `Clone`); one of them gets the connection.
#[derive(Debug, Clone)]
pub(crate) struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// For the side that hands the connection over later.
    pub(crate) fn pending() -> (oneshot::Sender<Upgraded>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(Arc::new(Mutex::new(Some(rx)))))
    }

    pub(crate) fn ready(upgraded: Upgraded) -> Self {
        let (tx, this) = Self::pending();
        let _ = tx.send(upgraded);
        this
    }

    /// `None` when the connection was not handed over after all.
    pub(crate) async fn get(self) -> Option<Upgraded> {
        let rx = self.0.lock().expect("upgrade lock").take()?;
        rx.await.ok()
    }
}

/// A WebSocket handshake's headers: `Connection: upgrade`,
/// `Upgrade: websocket` and a `Sec-WebSocket-Key`. Without the key it is
/// no handshake (RFC 6455 §4.1), and goes on as a plain request.
pub(crate) fn is_websocket_handshake(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case("upgrade"))));
    upgrade
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455
/// §4.2.2): what the gateway answers itself when the upstream took the
/// WebSocket over HTTP/2, which has no key (RFC 8441).
pub(crate) fn websocket_accept(key: &[u8]) -> HeaderValue {
    let digest = Sha1::new().chain_update(key).chain_update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").finalize();
    let text = base64::engine::general_purpose::STANDARD.encode(digest);
    HeaderValue::try_from(text).expect("base64 is a valid header value")
}

/// Copies bytes both ways until each side has finished sending; returns
/// the bytes sent from `a` to `b` and from `b` to `a`.
pub(crate) async fn tunnel(a: Upgraded, b: Upgraded) -> std::io::Result<(u64, u64)> {
    let Upgraded { read: a_read, write: mut a_write, leftover: a_left } = a;
    let Upgraded { read: b_read, write: mut b_write, leftover: b_left } = b;
    let forward = async {
        let n = tokio::io::copy(&mut Cursor::new(a_left).chain(a_read), &mut b_write).await?;
        b_write.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    let back = async {
        let n = tokio::io::copy(&mut Cursor::new(b_left).chain(b_read), &mut a_write).await?;
        a_write.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    tokio::try_join!(forward, back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s() {
        // RFC 6455 §1.3's example.
        assert_eq!(websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_handshake_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_websocket_handshake(&headers), "no Connection: upgrade");
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(is_websocket_handshake(&headers));
        headers.remove(header::SEC_WEBSOCKET_KEY);
        assert!(!is_websocket_handshake(&headers), "no key");
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!is_websocket_handshake(&headers));
    }
}
