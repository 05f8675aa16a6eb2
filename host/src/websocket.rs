//! WebSocket (HTTP/1.1 `Upgrade`) through the gateway: the handshake is an
//! ordinary request that routes, plugins and the upstream see; when the
//! upstream answers 101 both connections are handed over and their bytes
//! copied both ways until both sides close.
//!
//! Tunnels are not drained on shutdown (they may last for hours); they end
//! with the process.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};

use crate::answer::Answer;
use crate::body::{self, Body};
use crate::http1::upgrade::{OnUpgrade, is_websocket_handshake, tunnel};

/// A client's WebSocket handshake, set aside before routing.
pub(crate) struct WebSocket {
    client: OnUpgrade,
    protocol: HeaderValue,
}

impl WebSocket {
    /// Takes the client's side of the upgrade out of a WebSocket handshake
    /// request (HTTP/1.1, and [`is_websocket_handshake`]); anything else
    /// goes on as a plain request, its upgrade headers dropped as
    /// hop-by-hop.
    pub(crate) fn take(head: &mut http::request::Parts) -> Option<Self> {
        if head.version != Version::HTTP_11 || !is_websocket_handshake(&head.headers) {
            return None;
        }
        let protocol = head.headers.get(header::UPGRADE)?.clone();
        let client = head.extensions.remove::<OnUpgrade>()?;
        Some(Self { client, protocol })
    }

    /// Puts back the headers hop-by-hop stripping removed, for the upstream.
    pub(crate) fn restore_request_headers(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.protocol.clone());
    }

    /// Completes the handshake with the final response: on a 101 from the
    /// upstream, spawns the tunnel and answers 101 to the client; anything
    /// else goes back as it is (and the client's connection stays HTTP).
    pub(crate) fn finish(self, mut resp: Response<Body>) -> Response<Body> {
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return resp;
        }
        let Some(upstream) = resp.extensions_mut().remove::<OnUpgrade>() else {
            return Answer::UpgradeWithoutUpstream.into_response();
        };
        let client = self.client;
        tokio::spawn(async move {
            let (Some(client), Some(upstream)) = tokio::join!(client.get(), upstream.get()) else {
                return tracing::debug!("WebSocket upgrade failed: a connection was not handed over");
            };
            match tunnel(client, upstream).await {
                Ok((up, down)) => tracing::debug!(bytes_up = up, bytes_down = down, "WebSocket closed"),
                Err(e) => tracing::debug!(error = %e, "WebSocket ended with an error"),
            }
        });
        let headers = resp.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.protocol);
        *resp.body_mut() = body::empty();
        resp
    }
}
