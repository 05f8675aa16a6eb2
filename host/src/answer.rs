//! Everything the gateway answers itself instead of an upstream, and the
//! one mapping of each to a status, its headers (`Allow`, `Retry-After`,
//! `Connection: close`) and an RFC 9457 problem+json body.
//!
//! The code that finds a problem says what it is; only this file says how
//! a client is told (Pingora's `fail_to_proxy` is the model). Details are
//! written for an API client's developer; what only an operator needs (a
//! plugin's trap, a backtrace) goes to the log, never here.
//!
//! A gRPC call is told in gRPC's terms instead ([`in_form`]): a
//! trailers-only response (HTTP 200, `grpc-status`, `grpc-message`).

use std::sync::Arc;

use http::header::{self, CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};
use serde::Serialize;

use crate::body::{self, Body};
use crate::grpc;
use crate::runtime::PluginError;
use crate::upstream::UpstreamError;

/// The media type of every answer here.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// An answer the gateway gives itself. Its `Display` is the problem's
/// `detail`.
#[derive(Debug, thiserror::Error)]
pub enum Answer {
    /// 400: the path has no normalised spelling.
    #[error("{0}")]
    BadPath(String),
    /// 404.
    #[error("no route for {method} {path}")]
    NoRoute { method: Method, path: String },
    /// 405, with `Allow`.
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String, allowed: Vec<Method> },
    /// 413: a body plugins asked for is past the route's limit.
    #[error("request body is larger than this route's limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// 400: a body plugins asked for could not be read.
    #[error("request body could not be read: {0}")]
    BodyUnreadable(String),
    /// What the server refuses before or around the handler: 400 (a
    /// malformed head or body), 408, 413, 414, 431. `close` ends an HTTP/1
    /// connection, whose stream cannot be trusted after such an error.
    #[error("{detail}")]
    Refused { status: StatusCode, detail: String, close: bool },
    /// 504: no response within the server's request timeout.
    #[error("no response within {limit_ms} ms")]
    Timeout { limit_ms: u128 },
    /// 500: nothing to forward to, and no plugin answered.
    #[error("route {route} has no upstream and no plugin answered")]
    NoUpstream { route: Arc<str> },
    /// 502, 503 (with `Retry-After`) or 504.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// 502: the upstream's response body failed while buffered for plugins.
    #[error("upstream response: {0}")]
    UpstreamBody(String),
    /// 502: a 101 that did not come from an upstream connection.
    #[error("a 101 Switching Protocols answer can only come from an upstream")]
    UpgradeWithoutUpstream,
    /// 500, or 503 (with `Retry-After`) for an overloaded or quarantined
    /// plugin; names the plugin and the request id to ask the operator about.
    #[error("{}", .error.detail())]
    Plugin { error: PluginError, request_id: HeaderValue },
    /// Admin API: a reload that failed (422) or was abandoned (504).
    #[error("{detail}")]
    Reload { detail: String, abandoned: bool },
    /// Admin API: 405.
    #[error("see the admin API's methods")]
    AdminMethod,
    /// Admin API: 404.
    #[error("no admin endpoint {0}")]
    NoAdminEndpoint(String),
    /// Admin API: 400, a request it cannot act on.
    #[error("{0}")]
    AdminBadRequest(String),
    /// Admin API: 404, a plugin the loaded config does not have.
    #[error("no plugin named {0:?} in the loaded config")]
    NoSuchPlugin(String),
    /// Admin API: a state purge the backend failed (503 when unreachable).
    #[error("the state backend failed the purge: {detail}")]
    PurgeFailed { detail: String, unavailable: bool },
    /// Admin API: 401, `[admin] token` set and not given.
    #[error("the admin API needs `Authorization: Bearer <token>` (or the token as a Basic password)")]
    AdminUnauthorized,
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadPath(_) | Self::BodyUnreadable(_) | Self::AdminBadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute { .. } | Self::NoAdminEndpoint(_) | Self::NoSuchPlugin(_) => StatusCode::NOT_FOUND,
            Self::PurgeFailed { unavailable: true, .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::PurgeFailed { unavailable: false, .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MethodNotAllowed { .. } | Self::AdminMethod => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Refused { status, .. } => *status,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NoUpstream { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(e) => e.status(),
            Self::UpstreamBody(_) | Self::UpgradeWithoutUpstream => StatusCode::BAD_GATEWAY,
            Self::Plugin { error, .. } => error.status(),
            Self::Reload { abandoned: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Reload { abandoned: false, .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    /// When a client may try again, in whole seconds, for `Retry-After`.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Upstream(e) => e.retry_after(),
            Self::Plugin { error, .. } => error.retry_after_secs(),
            _ => None,
        }
    }

    /// The response: the one place status, headers and body are chosen.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let detail = self.to_string();
        let (plugin, request_id) = match &self {
            Self::Plugin { error, request_id } => (Some(&**error.plugin()), request_id.to_str().ok()),
            _ => (None, None),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let problem =
            Problem { kind: "about:blank", title, status: status.as_u16(), detail: &detail, plugin, request_id };
        // Strings and a number: serialising cannot fail.
        let json = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = Response::new(body::full(json));
        *resp.status_mut() = status;
        resp.extensions_mut().insert(Detail(detail.into()));
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Self::MethodNotAllowed { allowed, .. } = &self {
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            // Method names are tokens: always valid header text.
            if let Ok(allow) = HeaderValue::try_from(allow) {
                headers.insert(header::ALLOW, allow);
            }
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::AdminUnauthorized = self {
            // Basic too, so a browser opening the dashboard asks for the
            // token (as the password) instead of showing the 401.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"wasmgate admin\", Basic realm=\"wasmgate admin\", charset=\"UTF-8\"",
                ),
            );
        }
        if let Self::Refused { close: true, .. } = self {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// The `detail` of an answer made here, kept with its response for
/// [`in_form`].
#[derive(Clone)]
struct Detail(Arc<str>);

/// The response in the form the request asked for. A gRPC call (request
/// `content-type: application/grpc*`) gets every answer from 400 up that
/// is not gRPC itself (the gateway's own, a plugin's reply, an upstream's
/// HTTP error) as a gRPC status in a trailers-only response: HTTP 200,
/// `content-type: application/grpc`, `grpc-status` mapped from the HTTP
/// status (`grpc::code`), `grpc-message` the problem's detail. gRPC
/// clients read no problem+json.
pub(crate) fn in_form(grpc_call: bool, resp: Response<Body>) -> Response<Body> {
    if !grpc_call || resp.status().as_u16() < 400 || grpc::is_grpc(resp.headers()) {
        return resp;
    }
    let (mut head, _) = resp.into_parts();
    let message = match head.extensions.get::<Detail>() {
        Some(Detail(detail)) => grpc::encode_message(detail),
        None => grpc::encode_message(head.status.canonical_reason().unwrap_or("error")),
    };
    let code = grpc::code(head.status);
    head.status = StatusCode::OK;
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    head.headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    // Percent-encoded printable ASCII: always a valid value.
    if let Ok(message) = HeaderValue::try_from(message) {
        head.headers.insert("grpc-message", message);
    }
    Response::from_parts(head, body::empty())
}

impl From<Answer> for Response<Body> {
    fn from(answer: Answer) -> Self {
        answer.into_response()
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// Extension members (RFC 9457 §3.2) of a plugin failure: which plugin,
    /// and the request id to find its log line by.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn json(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_plugin_failure_names_the_plugin_and_the_request() {
        let error = PluginError::Trap { plugin: "trap".into(), reason: "unreachable".into(), backtrace: None };
        let resp = Answer::Plugin { error, request_id: HeaderValue::from_static("req-1") }.into_response();
        assert_eq!(resp.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            json(resp).await,
            serde_json::json!({"type": "about:blank", "title": "Internal Server Error", "status": 500,
                "detail": "plugin trap failed", "plugin": "trap", "request_id": "req-1"})
        );
        let plain = json(Answer::NoAdminEndpoint("/x".into()).into_response()).await;
        assert!(plain.get("plugin").is_none() && plain.get("request_id").is_none(), "{plain}");
    }

    #[tokio::test]
    async fn grpc_calls_get_trailers_only_statuses() {
        let resp = in_form(true, Answer::NoRoute { method: Method::POST, path: "/a.B/C".into() }.into_response());
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(resp.headers()["grpc-status"], "5");
        assert_eq!(resp.headers()["grpc-message"], "no route for POST /a.B/C");
        assert!(resp.into_body().collect().await.unwrap().to_bytes().is_empty());
        let mut reply = Response::new(body::full("denied"));
        *reply.status_mut() = StatusCode::UNAUTHORIZED;
        let resp = in_form(true, reply);
        assert_eq!((resp.headers()["grpc-status"].to_str().unwrap(), resp.status()), ("16", StatusCode::OK));
        assert_eq!(resp.headers()["grpc-message"], "Unauthorized");
        let problem = in_form(false, Answer::NoAdminEndpoint("/x".into()).into_response());
        assert_eq!(problem.headers()[CONTENT_TYPE], PROBLEM_JSON, "other requests keep problem+json");
    }

    #[test]
    fn headers_of_the_answers_that_carry_them() {
        let resp = Answer::MethodNotAllowed {
            method: Method::PUT,
            path: "/a".into(),
            allowed: vec![Method::GET, Method::POST],
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET, POST");
        let overloaded = PluginError::Overloaded { plugin: "p".into() };
        let resp = Answer::Plugin { error: overloaded, request_id: HeaderValue::from_static("r") }.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let resp =
            Answer::Refused { status: StatusCode::BAD_REQUEST, detail: "bad".into(), close: true }.into_response();
        assert_eq!(resp.headers()[header::CONNECTION], "close");
    }
}
