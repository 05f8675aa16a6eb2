//! Why a request got no response from an upstream, in words that name the
//! upstream and target but nothing more of the gateway's insides.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::uri::Authority;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// 504: the request's deadline, or the last try's timeout, ran out.
    #[error("upstream {upstream}{} did not answer within {timeout:?}", at(target))]
    Timeout { upstream: Arc<str>, target: Option<Authority>, timeout: Duration },
    /// 502: the last try could not reach its target or lost the connection.
    #[error("upstream {upstream} ({target}) is unavailable: {reason}")]
    Unavailable { upstream: Arc<str>, target: Authority, reason: String },
    /// 503: no target may be tried (unhealthy, ejected, breaker open);
    /// nothing was sent.
    #[error("upstream {upstream} has no available target: {reason}")]
    NoTarget { upstream: Arc<str>, reason: &'static str, retry_after: Duration },
}

fn at(target: &Option<Authority>) -> String {
    target.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
}

impl UpstreamError {
    /// The status the gateway answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable { .. } => StatusCode::BAD_GATEWAY,
            Self::NoTarget { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// When a client may try again, for `Retry-After` (whole seconds, ≥ 1).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::NoTarget { retry_after, .. } => Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_messages_and_retry_after() {
        let e = UpstreamError::NoTarget {
            upstream: "users".into(),
            reason: "circuit breaker open",
            retry_after: Duration::from_millis(1200),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(2));
        assert_eq!(e.to_string(), "upstream users has no available target: circuit breaker open");
        let e = UpstreamError::Timeout { upstream: "u".into(), target: None, timeout: Duration::from_millis(200) };
        assert_eq!((e.status(), e.retry_after()), (StatusCode::GATEWAY_TIMEOUT, None));
        assert_eq!(e.to_string(), "upstream u did not answer within 200ms");
        let e = UpstreamError::Timeout {
            upstream: "u".into(),
            target: Some("10.0.0.1:80".parse().unwrap()),
            timeout: Duration::ZERO,
        };
        assert!(e.to_string().starts_with("upstream u (10.0.0.1:80) did not"));
    }
}
