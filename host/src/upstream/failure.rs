//! Why a try on a target got no response, and what that means for the
//! client: short reasons safe to show, and the whole chain for the logs.

use std::io;

use crate::body::BoxError;
use crate::telemetry::UpstreamOutcome;
/// Why a round trip to a target got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("connect: {source}")]
    Connect {
        timed_out: bool,
        #[source]
        source: io::Error,
    },
    /// The connection failed or closed before a whole response head.
    #[error("{reason}")]
    Broken {
        reason: &'static str,
        #[source]
        source: Option<io::Error>,
    },
    /// The TLS handshake failed (a certificate that does not verify, no
    /// common version, ALPN without h2 for an HTTP/2 upstream).
    #[error("TLS: {0}")]
    Tls(#[source] io::Error),
    /// An HTTP/2 stream or connection failed.
    #[error("HTTP/2: {0}")]
    H2(#[source] hyper::Error),
    #[error("invalid response: {0}")]
    Invalid(String),
    /// The client's body failed while it was being sent (too large, cut off).
    #[error("the request body could not be read: {0}")]
    Body(#[source] BoxError),
}

impl ClientError {
    pub(crate) fn broken(e: io::Error) -> Self {
        let reason = match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "connection reset",
            io::ErrorKind::UnexpectedEof => "connection closed before a response",
            _ => "connection error",
        };
        Self::Broken { reason, source: Some(e) }
    }
}

/// What went wrong with a try that got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientFailure {
    /// No connection could be made; the upstream never saw the request.
    Connect { timed_out: bool, reason: &'static str },
    /// The upstream refused the HTTP/2 stream (`REFUSED_STREAM`), which
    /// RFC 9113 §8.7 guarantees it did before processing any of it.
    Refused,
    /// The connection failed after the request may have been sent.
    Broken { reason: &'static str },
}

/// Sorts a client error; the `reason` is short and safe to show clients
/// (the full chain goes to the logs).
pub(super) fn classify(e: &ClientError) -> ClientFailure {
    match e {
        ClientError::Connect { timed_out: true, .. } => {
            ClientFailure::Connect { timed_out: true, reason: "connect timeout" }
        }
        ClientError::Connect { source, .. } => ClientFailure::Connect {
            timed_out: false,
            reason: if source.kind() == io::ErrorKind::ConnectionRefused {
                "connection refused"
            } else {
                "connection failed"
            },
        },
        ClientError::Tls(_) => ClientFailure::Connect { timed_out: false, reason: "TLS handshake failed" },
        ClientError::Broken { reason, .. } => ClientFailure::Broken { reason },
        ClientError::H2(e) if refused(e) => ClientFailure::Refused,
        ClientError::H2(_) => ClientFailure::Broken { reason: "HTTP/2 stream failed" },
        ClientError::Invalid(_) => ClientFailure::Broken { reason: "invalid response" },
        ClientError::Body(_) => ClientFailure::Broken { reason: "the request body could not be read" },
    }
}

/// Whether the upstream reset the stream with `REFUSED_STREAM`. Only
/// that reset says the request was not processed: a stream cut by a GOAWAY
/// may be reported with the connection's error after it was processed.
fn refused(e: &hyper::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<h2::Error>())
        .is_some_and(|e| e.is_reset() && e.is_remote() && e.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// A failed try as `wasmgate_upstream_requests_total` counts it.
pub(super) fn outcome(e: &ClientError) -> UpstreamOutcome {
    match e {
        ClientError::Connect { timed_out: true, .. } => UpstreamOutcome::Timeout,
        ClientError::Connect { .. } | ClientError::Tls(_) => UpstreamOutcome::Connect,
        // Lost, reset or closed before a whole response head.
        ClientError::Broken { .. } | ClientError::H2(_) => UpstreamOutcome::Reset,
        ClientError::Invalid(_) | ClientError::Body(_) => UpstreamOutcome::Other,
    }
}

/// The whole chain of an error, for logs.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
