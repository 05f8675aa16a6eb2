//! The host side of `http-client.fetch-all`: every call runs concurrently,
//! each bounded by its own timeout, and only to upstreams the config names.
//!
//! Each call is checked before anything is sent: its method, path and
//! headers must be ones HTTP can carry and the server would take from a
//! client, and a batch has a bounded number of calls and body bytes. A
//! call refused there comes back to the plugin as `invalid`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use http_body_util::BodyExt;

use http::{HeaderMap, HeaderValue};

use super::bindings::http_client::{FetchError, OutboundRequest, OutboundResponse};
use crate::message::bounds::{self, Bounds, MAX_FETCHES};
use crate::message::{Headers, MessageError};
use crate::proxy_headers::strip_hop_by_hop;
use crate::telemetry::Tries;
use crate::upstream::{Payload, SendOptions, Upstream, UpstreamError, Upstreams};

/// Bodies a plugin fetches are copied into its memory: cap them well below
/// any sane memory limit.
const MAX_FETCHED_BODY: usize = 8 << 20;

/// What one batch's responses may hold together while the host buffers
/// them: without it 256 calls of 8 MiB each would make one request hold
/// 2 GiB of host memory, outside the plugin's memory limit.
const MAX_FETCHED_BATCH: usize = 32 << 20;

pub(super) async fn fetch_all(
    upstreams: &Upstreams,
    requests: Vec<OutboundRequest>,
    request_id: Option<HeaderValue>,
    bounds: &Bounds,
) -> Vec<Result<OutboundResponse, FetchError>> {
    if let Err(reason) = check_batch(&requests, bounds) {
        return requests.iter().map(|_| Err(FetchError::Invalid(reason.clone()))).collect();
    }
    let budget = AtomicUsize::new(MAX_FETCHED_BATCH);
    let calls = requests.into_iter().map(|r| fetch_one(upstreams, r, request_id.clone(), bounds, &budget));
    futures_util::future::join_all(calls).await
}

/// The bounds on a whole batch: one client request must not turn into
/// an unbounded number of upstream calls or bytes.
fn check_batch(requests: &[OutboundRequest], bounds: &Bounds) -> Result<(), String> {
    if requests.len() > MAX_FETCHES {
        return Err(format!("a fetch-all takes at most {MAX_FETCHES} calls; this one has {}", requests.len()));
    }
    let bytes: u64 = requests.iter().map(|r| r.body.as_ref().map_or(0, |b| b.len() as u64)).sum();
    if bytes > bounds.max_body_bytes {
        return Err(format!(
            "the bodies of this fetch-all take {bytes} bytes together, over the server's \
             max_request_body_bytes of {}",
            bounds.max_body_bytes
        ));
    }
    Ok(())
}

async fn fetch_one(
    upstreams: &Upstreams,
    request: OutboundRequest,
    request_id: Option<HeaderValue>,
    bounds: &Bounds,
    budget: &AtomicUsize,
) -> Result<OutboundResponse, FetchError> {
    let upstream = upstreams
        .get(&request.upstream)
        .ok_or_else(|| FetchError::Invalid(format!("unknown upstream {:?}", bounds::shown(&request.upstream))))?;
    let timeout = request.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(upstream.timeout());
    let name = request.upstream.clone();
    let req = outbound(request, request_id, bounds).map_err(|e| FetchError::Invalid(e.to_string()))?;
    // The head and the body share the one timeout.
    tokio::time::timeout(timeout, send(upstream, req, timeout, &name, budget)).await.unwrap_or(Err(FetchError::Timeout))
}

/// The call as an HTTP request, every part of it checked.
fn outbound(
    request: OutboundRequest,
    request_id: Option<HeaderValue>,
    bounds: &Bounds,
) -> Result<http::Request<Payload>, MessageError> {
    let method = bounds::method(&request.method)?;
    bounds.check_uri(request.path.len())?;
    let uri = http::Uri::from(bounds::path_and_query(&request.path)?);
    bounds.check_fields(request.headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())))?;
    let mut headers = HeaderMap::with_capacity(request.headers.len() + 1);
    for (name, value) in request.headers {
        Headers::append(&mut headers, &name, value)?;
    }
    strip_hop_by_hop(&mut headers);
    if let Some(id) = request_id {
        headers.entry(crate::proxy_headers::REQUEST_ID).or_insert(id);
    }
    let mut req = http::Request::new(Payload::Bytes(request.body.unwrap_or_default().into()));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

async fn send(
    upstream: &Upstream,
    req: http::Request<Payload>,
    timeout: Duration,
    name: &str,
    budget: &AtomicUsize,
) -> Result<OutboundResponse, FetchError> {
    let opts = SendOptions { timeout: Some(timeout), client_ip: None };
    let resp = upstream.send_with(req, opts, &mut Tries::default()).await.map_err(|e| match e {
        UpstreamError::Timeout { .. } => FetchError::Timeout,
        e => FetchError::Unavailable(e.to_string()),
    })?;
    let (head, mut body) = resp.into_parts();
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Unavailable(format!("upstream {name}: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if bytes.len() + data.len() > MAX_FETCHED_BODY {
            return Err(FetchError::Unavailable(format!(
                "upstream {name}: the response body is larger than {MAX_FETCHED_BODY} bytes"
            )));
        }
        take(budget, data.len()).map_err(|()| {
            FetchError::Unavailable(format!(
                "upstream {name}: this fetch-all's responses are larger than {MAX_FETCHED_BATCH} bytes together"
            ))
        })?;
        bytes.extend_from_slice(&data);
    }
    Ok(OutboundResponse { status: head.status.as_u16(), headers: Headers::list(&head.headers), body: bytes.to_vec() })
}

/// Takes `n` bytes from the batch's budget, or none if fewer are left.
fn take(budget: &AtomicUsize, n: usize) -> Result<(), ()> {
    budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).map(drop).map_err(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds { max_headers: 4, max_header_bytes: 64, max_uri_bytes: 32, max_body_bytes: 100 }
    }

    fn call(method: &str, path: &str) -> OutboundRequest {
        OutboundRequest {
            upstream: "up".into(),
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    fn refusal(request: OutboundRequest) -> String {
        outbound(request, None, &bounds()).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn a_good_call_becomes_a_request_with_the_request_id() {
        let mut good = call("PATCH", "/users/7?x=1");
        good.headers = vec![("x-a".into(), b"1".to_vec()), ("connection".into(), b"close".to_vec())];
        let req = outbound(good, Some(HeaderValue::from_static("id-1")), &bounds()).unwrap();
        assert_eq!((req.method().as_str(), req.uri().to_string().as_str()), ("PATCH", "/users/7?x=1"));
        assert_eq!(req.headers()["x-a"], "1");
        assert_eq!(req.headers()["x-request-id"], "id-1");
        assert!(req.headers().get("connection").is_none(), "hop-by-hop headers are dropped");
    }

    #[test]
    fn calls_http_cannot_carry_are_refused() {
        for path in ["/a b", "/a\r\nx-injected: yes", "/a\nb", "relative", "", "http://elsewhere/"] {
            assert!(refusal(call("GET", path)).starts_with("invalid path or query"), "{path:?}");
        }
        assert!(refusal(call("GET", &format!("/{}", "a".repeat(40)))).contains("max_uri_bytes"));
        for method in ["GE T", "", "GET\r\n", &"A".repeat(40)] {
            assert!(refusal(call(method, "/")).starts_with("invalid method"), "{method:?}");
        }
        let mut bad_value = call("GET", "/");
        bad_value.headers = vec![("x-a".into(), b"1\r\nx-b: 2".to_vec())];
        assert_eq!(refusal(bad_value), "invalid value for header x-a");
        let mut many = call("GET", "/");
        many.headers = (0..5).map(|i| (format!("x-{i}"), b"v".to_vec())).collect();
        assert!(refusal(many).starts_with("more than 4 header fields"));
        let mut big = call("GET", "/");
        big.headers = vec![("x-a".into(), vec![b'v'; 60])];
        assert!(refusal(big).contains("max_header_bytes"));
    }

    #[test]
    fn a_batch_has_a_bounded_number_of_calls_and_body_bytes() {
        let b = bounds();
        assert!(check_batch(&vec![call("GET", "/"); MAX_FETCHES], &b).is_ok());
        let too_many = check_batch(&vec![call("GET", "/"); MAX_FETCHES + 1], &b).unwrap_err();
        assert_eq!(
            too_many,
            format!("a fetch-all takes at most {MAX_FETCHES} calls; this one has {}", MAX_FETCHES + 1)
        );
        let with_body = |n| OutboundRequest { body: Some(vec![b'x'; n]), ..call("POST", "/") };
        assert!(check_batch(&[with_body(50), with_body(50)], &b).is_ok());
        assert!(check_batch(&[with_body(50), with_body(51)], &b).unwrap_err().contains("101 bytes together"));
    }
}
