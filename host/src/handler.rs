//! One request's path through a snapshot, in phases over the request:
//! normalise → route → request phase → forward (or a plugin's reply) →
//! response phase. Every early end is an [`Answer`]; how an answer reads
//! is decided in `answer.rs`, not here.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, Uri};

use crate::answer::{self, Answer};
use crate::body::{self, Body, CollectError};
use crate::fields::{content_length, set_content_length};
use crate::grpc;
use crate::message::{RequestInfo, RequestState, ResponseState};
use crate::normalize::{self, PathParams};
use crate::pipeline::RequestOutcome;
use crate::proxy_headers::{self, ClientTls};
use crate::router::RouteLookup;
use crate::runtime::PluginError;
use crate::snapshot::{Route, Snapshot};
use crate::telemetry::{PluginCall, RequestRecord, TraceContext, Tries};
use crate::upstream::{Payload, SendOptions, UpstreamError};
use crate::websocket::WebSocket;

/// `record` learns the route, the plugin calls, the upstream tries and the
/// `user` var as the phases go.
pub(crate) async fn handle(
    snapshot: &Snapshot,
    req: Request<Body>,
    client: SocketAddr,
    request_id: HeaderValue,
    record: &mut RequestRecord,
) -> Response<Body> {
    let (mut head, body) = req.into_parts();
    let grpc_call = grpc::is_grpc(&head.headers);
    let normalized = normalize_path(&mut head.uri, snapshot.config.server.path_params);
    if record.detail {
        head.uri.path().clone_into(&mut record.path);
    }
    if let Err(answer) = normalized {
        return answer::in_form(grpc_call, answer.into_response());
    }
    let websocket = WebSocket::take(&mut head);
    let tls = head.extensions.get::<ClientTls>().is_some();
    let incoming = Incoming { head, body, client, request_id, tls };
    let resp = proxy(snapshot, incoming, websocket.as_ref(), record).await;
    match websocket {
        Some(websocket) => websocket.finish(resp),
        None => answer::in_form(grpc_call, resp),
    }
}

/// A path's parameters, by name, as the route matched them.
type Params = Vec<(String, String)>;

/// A request as the server handed it over, its path normalised.
struct Incoming {
    head: Parts,
    body: Body,
    client: SocketAddr,
    request_id: HeaderValue,
    tls: bool,
}

/// Where the request phase left a request.
enum Reached {
    /// A response for the response phase of the first `ran` plugins, which
    /// see the request as `view`.
    Response { resp: Response<Body>, view: Option<Box<RequestState>>, ran: usize },
    /// The final answer: no plugin sees it.
    Final(Response<Body>),
}

async fn proxy(
    snapshot: &Snapshot,
    mut req: Incoming,
    websocket: Option<&WebSocket>,
    record: &mut RequestRecord,
) -> Response<Body> {
    let (index, params) = match find_route(snapshot, &req.head) {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    let route = &snapshot.routes[index];
    record.route_index = Some(index);
    record.route = Some(route.name.clone());
    add_proxy_headers(&mut req, websocket, &record.trace);
    let (buffered, stream) = if route.pipeline.needs().request_body {
        match Box::pin(buffer(&req.head.headers, req.body, route.max_body_bytes)).await {
            Ok(bytes) => {
                record.bytes_in = bytes.len() as u64;
                (Some(bytes), None)
            }
            Err(answer) => return answer.into_response(),
        }
    } else {
        (None, Some(req.body))
    };
    let info = Arc::new(RequestInfo {
        route: route.name.clone(),
        params,
        client_addr: req.client,
        request_id: req.request_id,
    });
    let state = Box::new(RequestState::new(req.head, buffered, info));
    match request_phase(snapshot, route, state, stream, record).await {
        Reached::Response { resp, view: Some(view), ran } if ran > 0 => {
            Box::pin(response_phase(route, view, resp, ran, record.calls())).await
        }
        Reached::Response { resp, .. } | Reached::Final(resp) => resp,
    }
}

/// Before routing: the one spelling of the path that routes match, plugins
/// see and the upstream gets (see `normalize` for the rule).
fn normalize_path(uri: &mut Uri, params: PathParams) -> Result<(), Answer> {
    match normalize::normalize(uri.path(), params) {
        Ok(Cow::Borrowed(_)) => Ok(()),
        Ok(Cow::Owned(path)) => {
            *uri =
                with_path(uri, &path).ok_or_else(|| Answer::BadPath("the request path cannot be normalised".into()))?;
            Ok(())
        }
        Err(e) => Err(Answer::BadPath(e.to_string())),
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

/// The route (its index) for the method, host and path, with the path's
/// parameters.
fn find_route(snapshot: &Snapshot, head: &Parts) -> Result<(usize, Params), Answer> {
    let host = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()))
        .map(|h| h.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(h, |(host, _)| host));
    let routed = normalize::routing_path(head.uri.path(), snapshot.config.server.path_params);
    match snapshot.router.lookup(&head.method, host, &routed) {
        RouteLookup::Found { route, params } => Ok((route, params)),
        RouteLookup::MethodNotAllowed { allowed } => {
            Err(Answer::MethodNotAllowed { method: head.method.clone(), path: head.uri.path().to_owned(), allowed })
        }
        RouteLookup::NotFound => Err(Answer::NoRoute { method: head.method.clone(), path: head.uri.path().to_owned() }),
    }
}

/// What a proxy tells the upstream: who asked, over what, under which id,
/// and in which trace (the gateway's span as the parent).
fn add_proxy_headers(req: &mut Incoming, websocket: Option<&WebSocket>, trace: &TraceContext) {
    let head = &mut req.head;
    // HTTP/2 clients name the host in the URI, not a Host header; the
    // upstream speaks HTTP/1.1 and must still learn it.
    if !head.headers.contains_key(header::HOST)
        && let Some(authority) = head.uri.authority().and_then(|a| HeaderValue::try_from(a.as_str()).ok())
    {
        head.headers.insert(header::HOST, authority);
    }
    let original_host = head.headers.get(header::HOST).cloned();
    proxy_headers::forward(&mut head.headers, req.client, original_host.as_ref(), &req.request_id, req.tls);
    trace.propagate(&mut head.headers);
    if let Some(websocket) = websocket {
        websocket.restore_request_headers(&mut head.headers);
    }
}

/// Runs the plugins' request phase, then forwards the request or turns a
/// plugin's reply into the response.
async fn request_phase(
    snapshot: &Snapshot,
    route: &Route,
    state: Box<RequestState>,
    stream: Option<Body>,
    record: &mut RequestRecord,
) -> Reached {
    let needs = route.pipeline.needs();
    // Plugin calls are large futures: boxed, they stay out of the
    // connection's own state, and a route without plugins skips them.
    let (outcome, info) = if route.pipeline.stages().is_empty() {
        (RequestOutcome::Forward { req: state }, None)
    } else {
        let info = state.info.clone();
        let phase = route.pipeline.request_phase(state, &snapshot.bounds, record.calls());
        (Box::pin(phase).await, Some(info))
    };
    if record.detail
        && let RequestOutcome::Forward { req } | RequestOutcome::Respond { req, .. } = &outcome
    {
        record.user = req.var("user").map(str::to_owned);
    }
    match outcome {
        RequestOutcome::Forward { mut req } => {
            let view = needs.response.then(|| req.response_phase_view());
            let edits = std::mem::take(&mut req.response_edits);
            // The gateway's own error answer gets the edits too, but no
            // response phase.
            let forwarded = forward(route, *req, stream, &mut record.upstream).await;
            let (mut resp, answered) = match forwarded {
                Ok(resp) => (resp, true),
                Err(answer) => (answer.into_response(), false),
            };
            edits.apply(resp.headers_mut());
            match answered {
                true => Reached::Response { resp, view, ran: route.pipeline.stages().len() },
                false => Reached::Final(resp),
            }
        }
        RequestOutcome::Respond { req, mut resp, by } => {
            let view = needs.response.then(|| req.response_phase_view());
            req.response_edits.apply(resp.headers_mut());
            Reached::Response { resp, view, ran: by }
        }
        RequestOutcome::Failed { error } => {
            let request_id = info.map(|info| info.request_id.clone()).unwrap_or_else(|| HeaderValue::from_static(""));
            Reached::Final(plugin_failed(route, request_id, error, "failed the request"))
        }
    }
}

/// Sends the request to the route's upstream.
/// The error is boxed like the other early answers: only that rare path
/// pays for the allocation, and the `Result` is no larger than the response.
async fn forward(
    route: &Route,
    req: RequestState,
    stream: Option<Body>,
    tries: &mut Tries,
) -> Result<Response<Body>, Box<Answer>> {
    let Some(upstream) = &route.upstream else {
        return Err(Box::new(Answer::NoUpstream { route: route.name.clone() }));
    };
    let mut head = req.head;
    // A buffered body can be sent again by a retry; a streamed one only
    // while nobody has read it (see `upstream::retry`).
    let payload = match req.body {
        Some(bytes) => {
            set_content_length(&mut head.headers, bytes.len());
            Payload::Bytes(bytes)
        }
        None => stream.map_or(Payload::Bytes(Bytes::new()), Payload::from_body),
    };
    // A gRPC call's own deadline bounds the upstream's (or the route's).
    let timeout = match grpc::timeout(&head.headers) {
        Some(call) => Some(call.min(route.timeout.unwrap_or_else(|| upstream.timeout()))),
        None => route.timeout,
    };
    let opts = SendOptions { timeout, client_ip: Some(req.info.client_addr.ip()) };
    match upstream.send_with(Request::from_parts(head, payload), opts, tries).await {
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
            Err(Box::new(Answer::Upstream(e)))
        }
    }
}

async fn response_phase(
    route: &Route,
    view: Box<RequestState>,
    response: Response<Body>,
    ran: usize,
    calls: Option<&mut Vec<PluginCall>>,
) -> Response<Body> {
    let (head, body) = response.into_parts();
    // The trailers come with the body: a plugin reading a gRPC reply's
    // body needs its `grpc-status`.
    let (buffered, trailers, stream) = if route.pipeline.needs().response_body {
        match body::collect_with_trailers(body, route.max_body_bytes).await {
            Ok((bytes, trailers)) => (Some(bytes), trailers, None),
            Err(e) => return Answer::UpstreamBody(e.to_string()).into_response(),
        }
    } else {
        (None, http::HeaderMap::new(), Some(body))
    };
    let state = Box::new(ResponseState { head, body: buffered, trailers });
    let request_id = view.info.request_id.clone();
    match route.pipeline.response_phase(view, state, ran, calls).await {
        Ok(state) => {
            let ResponseState { mut head, body, trailers } = *state;
            let body = match body {
                // With trailers, no length: HTTP/1.1 carries them only in
                // a chunked body.
                Some(bytes) if !trailers.is_empty() => {
                    head.headers.remove(header::CONTENT_LENGTH);
                    body::full_with_trailers(bytes, trailers)
                }
                Some(bytes) => {
                    set_content_length(&mut head.headers, bytes.len());
                    body::full(bytes)
                }
                None => stream.unwrap_or_else(body::empty),
            };
            Response::from_parts(head, body)
        }
        Err(error) => plugin_failed(route, request_id, error, "failed the response"),
    }
}

/// A plugin failure: logged with everything an operator needs to find the
/// cause (the plugin's panic message, the trap, the backtrace), answered
/// with only what the client needs to report it.
fn plugin_failed(route: &Route, request_id: HeaderValue, error: PluginError, what: &str) -> Response<Body> {
    let id = String::from_utf8_lossy(request_id.as_bytes());
    if error.logged_per_call() {
        tracing::warn!(
            plugin = %error.plugin(),
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
    Answer::Plugin { error, request_id }.into_response()
}

/// Reads the request body for plugins that asked for it; 413 past the
/// route's limit (refused from `Content-Length` before reading, when sent).
async fn buffer(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Bytes, Answer> {
    if content_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(Answer::BodyTooLarge { limit });
    }
    match body::collect(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(CollectError::TooLarge { .. }) => Err(Answer::BodyTooLarge { limit }),
        Err(CollectError::Read(e)) => Err(Answer::BodyUnreadable(e.to_string())),
    }
}
