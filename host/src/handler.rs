//! One request's path through a snapshot: route → request phase →
//! upstream (or a plugin's reply) → response phase.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderName;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};

use crate::body::{self, Body, CollectError};
use crate::normalize;
use crate::pipeline::bounds::{self, Bounds};
use crate::pipeline::{ExchangeError, Headers, RequestInfo, RequestOutcome, RequestState, ResponseState};
use crate::problem::{plugin_problem, problem};
use crate::proxy_headers;
use crate::router::RouteLookup;
use crate::runtime::{PluginError, Reply};
use crate::server::upgrade::WebSocket;
use crate::server::{ClientTls, ServerSettings};
use crate::snapshot::{Route, Snapshot};
use crate::upstream::{Payload, SendOptions, UpstreamError};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

pub async fn handle(
    snapshot: &Snapshot,
    req: Request<Body>,
    client: SocketAddr,
    request_id: HeaderValue,
) -> Response<Body> {
    let (mut head, body) = req.into_parts();
    // Before routing: the one spelling of the path that routes match, plugins
    // see and the upstream gets (see `normalize` for the rule).
    match normalize::normalize(head.uri.path(), snapshot.config.server.path_params) {
        Ok(Cow::Borrowed(_)) => {}
        Ok(Cow::Owned(path)) => match with_path(&head.uri, &path) {
            Some(uri) => head.uri = uri,
            None => return problem(StatusCode::BAD_REQUEST, "the request path cannot be normalised"),
        },
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    }
    let websocket = WebSocket::take(&mut head);
    let tls = head.extensions.get::<ClientTls>().is_some();
    let resp = route(snapshot, head, body, client, request_id, websocket.as_ref(), tls).await;
    match websocket {
        Some(websocket) => websocket.finish(resp),
        None => resp,
    }
}

/// `uri` with another path, the same query.
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let pq = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

async fn route(
    snapshot: &Snapshot,
    mut head: http::request::Parts,
    body: Body,
    client: SocketAddr,
    request_id: HeaderValue,
    websocket: Option<&WebSocket>,
    tls: bool,
) -> Response<Body> {
    let host = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()))
        .map(|h| h.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(h, |(host, _)| host));

    let routed = normalize::routing_path(head.uri.path(), snapshot.config.server.path_params);
    let (index, params) = match snapshot.router.lookup(&head.method, host, &routed) {
        RouteLookup::Found { route, params } => (route, params),
        RouteLookup::MethodNotAllowed { allowed } => {
            let mut resp = problem(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed on {}", head.method, head.uri.path()),
            );
            let allow = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::try_from(allow).expect("methods are valid header text"));
            return resp;
        }
        RouteLookup::NotFound => {
            return problem(StatusCode::NOT_FOUND, &format!("no route for {} {}", head.method, head.uri.path()));
        }
    };
    let route = &snapshot.routes[index];
    let needs = route.pipeline.needs();

    // HTTP/2 clients name the host in the URI, not a Host header; the
    // upstream speaks HTTP/1.1 and must still learn it.
    if !head.headers.contains_key(header::HOST)
        && let Some(authority) = head.uri.authority().and_then(|a| HeaderValue::try_from(a.as_str()).ok())
    {
        head.headers.insert(header::HOST, authority);
    }
    let original_host = head.headers.get(header::HOST).cloned();
    proxy_headers::forward(&mut head.headers, client, original_host.as_ref(), &request_id);
    if let Some(websocket) = websocket {
        websocket.restore_request_headers(&mut head.headers);
    }
    if tls {
        head.headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    }

    let (buffered, mut stream) = if needs.request_body {
        match Box::pin(buffer(&head.headers, body, route.max_body_bytes)).await {
            Ok(bytes) => (Some(bytes), None),
            Err(resp) => return *resp,
        }
    } else {
        (None, Some(body))
    };

    let info = Arc::new(RequestInfo { route: route.name.clone(), params, client_addr: client, request_id });
    let state = Box::new(RequestState::new(head, buffered, info));

    // Plugin calls are large futures: boxed, they stay out of the
    // connection's own state, and a route without plugins skips them.
    let (outcome, info) = if route.pipeline.stages().is_empty() {
        (RequestOutcome::Forward { req: state }, None)
    } else {
        let info = state.info.clone();
        (Box::pin(route.pipeline.request_phase(state)).await, Some(info))
    };
    let (view, ran, response) = match outcome {
        RequestOutcome::Forward { mut req } => {
            let view = needs.response.then(|| req.response_phase_view());
            let ran = route.pipeline.stages().len();
            let edits = std::mem::take(&mut req.response_edits);
            // The gateway's own error answer gets the edits too, but no
            // response phase.
            let (mut resp, answered) = match forward(route, *req, stream.take()).await {
                Ok(resp) => (resp, true),
                Err(resp) => (*resp, false),
            };
            edits.apply(resp.headers_mut());
            if !answered {
                return resp;
            }
            (view, ran, resp)
        }
        RequestOutcome::Respond { req, reply, by } => match reply_response(reply, &snapshot.config.server) {
            Ok(mut resp) => {
                let view = needs.response.then(|| req.response_phase_view());
                req.response_edits.apply(resp.headers_mut());
                (view, by, resp)
            }
            Err(e) => {
                let plugin = route.pipeline.stages().get(by).map_or_else(|| "?".into(), |s| s.pool.plugin().clone());
                let error = PluginError::Write { plugin, reason: format!("its reply: {e}") };
                return plugin_failed(route, &req.info.request_id, &error, "replied");
            }
        },
        RequestOutcome::Failed { error } => {
            let request_id = info.map(|info| info.request_id.clone()).unwrap_or_else(|| HeaderValue::from_static(""));
            return plugin_failed(route, &request_id, &error, "failed the request");
        }
    };

    match view {
        Some(view) if ran > 0 => Box::pin(response_phase(route, view, response, ran)).await,
        _ => response,
    }
}

/// Sends the request to the route's upstream.
/// The error is the gateway's own answer (no upstream, or the upstream
/// failed), boxed like the other early answers: only that rare path pays
/// for the allocation, and the `Result` is no larger than the response.
async fn forward(
    route: &Route,
    req: RequestState,
    stream: Option<Body>,
) -> Result<Response<Body>, Box<Response<Body>>> {
    let Some(upstream) = &route.upstream else {
        return Err(Box::new(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("route {} has no upstream and no plugin answered", route.name),
        )));
    };
    let mut head = req.head;
    // A buffered body can be sent again by a retry; a streamed one only
    // while nobody has read it (see `upstream::retry`).
    let payload = match req.body {
        Some(bytes) => {
            set_length(&mut head.headers, bytes.len());
            Payload::Bytes(bytes)
        }
        None => stream.map_or(Payload::Bytes(Bytes::new()), Payload::from_body),
    };
    let opts = SendOptions { timeout: route.timeout, client_ip: Some(req.info.client_addr.ip()) };
    match upstream.send_with(Request::from_parts(head, payload), opts).await {
        Ok(resp) => {
            let (mut head, body) = resp.into_parts();
            proxy_headers::strip_hop_by_hop(&mut head.headers);
            Ok(Response::from_parts(head, body))
        }
        Err(e) => {
            match e {
                UpstreamError::Unavailable { .. } => {
                    tracing::warn!(route = %route.name, error = %e, "upstream unavailable")
                }
                _ => tracing::debug!(route = %route.name, error = %e, "upstream failed"),
            }
            let mut resp = problem(e.status(), &e.to_string());
            if let Some(seconds) = e.retry_after() {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Err(Box::new(resp))
        }
    }
}

async fn response_phase(
    route: &Route,
    view: Box<RequestState>,
    response: Response<Body>,
    ran: usize,
) -> Response<Body> {
    let (head, body) = response.into_parts();
    let (buffered, stream) = if route.pipeline.needs().response_body {
        match body::collect(body, route.max_body_bytes).await {
            Ok(bytes) => (Some(bytes), None),
            Err(e) => return problem(StatusCode::BAD_GATEWAY, &format!("upstream response: {e}")),
        }
    } else {
        (None, Some(body))
    };
    let state = Box::new(ResponseState { head, body: buffered });
    let request_id = view.info.request_id.clone();
    match route.pipeline.response_phase(view, state, ran).await {
        Ok(state) => {
            let ResponseState { mut head, body } = *state;
            let body = match body {
                Some(bytes) => {
                    set_length(&mut head.headers, bytes.len());
                    body::full(bytes)
                }
                None => stream.unwrap_or_else(body::empty),
            };
            Response::from_parts(head, body)
        }
        Err(error) => plugin_failed(route, &request_id, &error, "failed the response"),
    }
}

/// A plugin failure: logged with everything an operator needs to find the
/// cause (the plugin's panic message, the trap, the backtrace), answered
/// with only what the client needs to report it.
fn plugin_failed(route: &Route, request_id: &HeaderValue, error: &PluginError, what: &str) -> Response<Body> {
    let plugin = error.plugin();
    let id = String::from_utf8_lossy(request_id.as_bytes());
    if error.logged_per_call() {
        tracing::warn!(
            %plugin,
            route = %route.name,
            request_id = %id,
            kind = error.kind(),
            // A string value, quoted and escaped in text logs: it holds what
            // the plugin logged and refused values.
            reason = &*error.reason(),
            backtrace = error.backtrace(),
            "plugin {what}"
        );
    }
    let mut resp = plugin_problem(error.status(), &error.detail(), plugin, request_id);
    if let Some(seconds) = error.retry_after_secs() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

/// Reads the request body for plugins that asked for it; 413 past the
/// route's limit (refused from `Content-Length` before reading, when sent).
async fn buffer(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Bytes, Box<Response<Body>>> {
    let too_large = || {
        Box::new(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body is larger than this route's limit of {limit} bytes"),
        ))
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match body::collect(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(CollectError::TooLarge { .. }) => Err(too_large()),
        Err(CollectError::Read(e)) => {
            Err(Box::new(problem(StatusCode::BAD_REQUEST, &format!("request body could not be read: {e}"))))
        }
    }
}

fn set_length(headers: &mut http::HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

/// A plugin's direct answer as an HTTP response, held to what the server
/// would send: a final status, valid fields within the header limits.
fn reply_response(reply: Reply, server: &ServerSettings) -> Result<Response<Body>, ExchangeError> {
    let status = bounds::final_status(reply.status)?;
    let bounds = Bounds::new(server);
    bounds.check_fields(reply.headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())))?;
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    for (name, value) in reply.headers {
        Headers::append(resp.headers_mut(), &name, value)?;
    }
    set_length(resp.headers_mut(), reply.body.len());
    *resp.body_mut() = body::full(reply.body);
    Ok(resp)
}
