//! The host side of `http-client.fetch-all`: every call runs concurrently,
//! each bounded by its own timeout, and only to upstreams the config names.

use std::time::Duration;

use http::HeaderValue;

use super::bindings::http_client::{FetchError, OutboundRequest, OutboundResponse};
use crate::body;
use crate::pipeline::Headers;
use crate::proxy_headers::strip_hop_by_hop;
use crate::upstream::{Payload, SendOptions, UpstreamError, Upstreams};

/// Bodies a plugin fetches are copied into its memory: cap them well below
/// any sane memory limit.
const MAX_FETCHED_BODY: usize = 8 << 20;

pub async fn fetch_all(
    upstreams: &Upstreams,
    requests: Vec<OutboundRequest>,
    request_id: Option<HeaderValue>,
) -> Vec<Result<OutboundResponse, FetchError>> {
    let calls = requests.into_iter().map(|r| fetch_one(upstreams, r, request_id.clone()));
    futures_util::future::join_all(calls).await
}

async fn fetch_one(
    upstreams: &Upstreams,
    request: OutboundRequest,
    request_id: Option<HeaderValue>,
) -> Result<OutboundResponse, FetchError> {
    let upstream = upstreams
        .get(&request.upstream)
        .ok_or_else(|| FetchError::Invalid(format!("unknown upstream {:?}", request.upstream)))?;
    let timeout = request.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(upstream.timeout());

    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| FetchError::Invalid(format!("invalid method {:?}", request.method)))?;
    if !request.path.starts_with('/') {
        return Err(FetchError::Invalid(format!("path {:?} must start with /", request.path)));
    }
    let mut builder = http::Request::builder().method(method).uri(request.path.as_str());
    let headers = builder.headers_mut().expect("builder has no error yet");
    for (name, value) in request.headers {
        Headers::append(headers, &name, value).map_err(|e| FetchError::Invalid(e.to_string()))?;
    }
    strip_hop_by_hop(headers);
    if let Some(id) = request_id {
        headers.entry(crate::proxy_headers::REQUEST_ID).or_insert(id);
    }
    let payload = Payload::Bytes(request.body.unwrap_or_default().into());
    let req = builder.body(payload).map_err(|e| FetchError::Invalid(e.to_string()))?;

    let call = async {
        let opts = SendOptions { timeout: Some(timeout), client_ip: None };
        let resp = upstream.send_with(req, opts).await.map_err(|e| match e {
            UpstreamError::Timeout { .. } => FetchError::Timeout,
            e => FetchError::Unavailable(e.to_string()),
        })?;
        let (head, body) = resp.into_parts();
        let bytes = body::collect(body, MAX_FETCHED_BODY)
            .await
            .map_err(|e| FetchError::Unavailable(format!("upstream {}: {e}", request.upstream)))?;
        Ok(OutboundResponse {
            status: head.status.as_u16(),
            headers: Headers::list(&head.headers),
            body: bytes.to_vec(),
        })
    };
    // The head and the body share the one timeout.
    tokio::time::timeout(timeout, call).await.unwrap_or(Err(FetchError::Timeout))
}
