//! What a plugin sees of a request and a response, and what it hands back.
//!
//! Requests and responses stay on the host: [`Request`] and [`Response`] are
//! thin views over a backend (the WIT resources on wasm, the mock host in
//! [`crate::testing`] natively), so a plugin only pays for what it reads.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Header fields as they cross the boundary: values are bytes because HTTP
/// allows values that are not UTF-8.
pub type Headers = Vec<(String, Vec<u8>)>;

/// The header and body accessors requests and responses share.
pub(crate) trait MessageBackend {
    fn header(&self, name: &str) -> Option<Vec<u8>>;
    fn header_all(&self, name: &str) -> Vec<Vec<u8>>;
    fn headers(&self) -> Headers;
    fn set_header(&self, name: &str, value: &[u8]);
    fn append_header(&self, name: &str, value: &[u8]);
    fn remove_header(&self, name: &str);
    fn body(&self) -> Option<Vec<u8>>;
    fn set_body(&self, body: &[u8]);
}

/// The request-only accessors of the WIT `request` resource.
pub(crate) trait RequestBackend {
    fn method(&self) -> String;
    fn set_method(&self, method: &str);
    fn path(&self) -> String;
    fn set_path(&self, path: &str);
    fn query(&self) -> Option<String>;
    fn set_query(&self, query: Option<&str>);
    fn route(&self) -> String;
    fn param(&self, name: &str) -> Option<String>;
    fn params(&self) -> Vec<(String, String)>;
    fn client_addr(&self) -> String;
    fn request_id(&self) -> String;
    fn get_var(&self, name: &str) -> Option<String>;
    fn set_var(&self, name: &str, value: &str);
    fn set_response_header(&self, name: &str, value: &[u8]);
    fn append_response_header(&self, name: &str, value: &[u8]);
}

/// The response-only accessors of the WIT `response` resource.
pub(crate) trait ResponseBackend {
    fn status(&self) -> u16;
    fn set_status(&self, status: u16);
    fn trailer(&self, name: &str) -> Option<Vec<u8>>;
    fn trailers(&self) -> Headers;
    fn set_trailers(&self, trailers: &[(String, Vec<u8>)]);
}

/// Why a body could not be read or written as JSON.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The host only buffers bodies a plugin asked for, so a missing body
    /// almost always means a forgotten flag in [`Needs`].
    #[error("the body was not buffered: declare it in `Plugin::needs`")]
    NotBuffered,
    /// The body is not the JSON the plugin expected (or the value could not be
    /// serialised).
    #[error("JSON body: {0}")]
    Json(#[from] serde_json::Error),
}

/// The parts requests and responses share: headers and body.
///
/// [`Request`] and [`Response`] dereference to it, so these methods are
/// called directly on them.
pub struct Message<'a> {
    backend: &'a dyn MessageBackend,
}

impl Message<'_> {
    /// First value of a header, decoded lossily: almost every header is ASCII,
    /// and the few that are not are rarely worth an error path.
    /// Names are case-insensitive.
    pub fn header(&self, name: &str) -> Option<String> {
        self.backend.header(name).map(lossy)
    }

    /// First value of a header as the exact bytes received.
    pub fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.backend.header(name)
    }

    /// Every value of a header, in order, decoded lossily.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.backend.header_all(name).into_iter().map(lossy).collect()
    }

    /// Every value of a header, in order, as the exact bytes received.
    pub fn header_all_bytes(&self, name: &str) -> Vec<Vec<u8>> {
        self.backend.header_all(name)
    }

    /// All headers, in order. This copies every header across the sandbox
    /// boundary: prefer [`header`](Self::header) when the name is known.
    pub fn headers(&self) -> Headers {
        self.backend.headers()
    }

    /// Replaces every value of the header with this one.
    pub fn set_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.backend.set_header(name, value.as_ref());
    }

    /// Adds a value after the existing ones (e.g. another `set-cookie`).
    pub fn append_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.backend.append_header(name, value.as_ref());
    }

    pub fn remove_header(&self, name: &str) {
        self.backend.remove_header(name);
    }

    /// The buffered body. `None` unless the plugin asked for it in
    /// [`Needs`]: unbuffered bodies stream past the plugin untouched.
    pub fn body(&self) -> Option<Vec<u8>> {
        self.backend.body()
    }

    /// Replaces the body; the host fixes `content-length`.
    pub fn set_body(&self, body: impl AsRef<[u8]>) {
        self.backend.set_body(body.as_ref());
    }

    /// Parses the buffered body as JSON into the plugin's own type, so
    /// validation is one `?` instead of hand-written checks.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        let body = self.body().ok_or(BodyError::NotBuffered)?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Replaces the body with `value` as JSON and sets `content-type`
    /// accordingly, so the two cannot disagree.
    pub fn set_json_body(&self, value: &impl Serialize) -> Result<(), BodyError> {
        let body = serde_json::to_vec(value)?;
        self.set_header("content-type", "application/json");
        self.set_body(body);
        Ok(())
    }
}

/// The request being handled.
///
/// In the response phase the request has already gone upstream, so it is
/// read-only there. Header and body methods come from [`Message`].
pub struct Request<'a> {
    message: Message<'a>,
    backend: &'a dyn RequestBackend,
}

impl<'a> Request<'a> {
    pub(crate) fn new(message: &'a dyn MessageBackend, backend: &'a dyn RequestBackend) -> Self {
        Self { message: Message { backend: message }, backend }
    }

    pub fn method(&self) -> String {
        self.backend.method()
    }

    pub fn set_method(&self, method: &str) {
        self.backend.set_method(method);
    }

    /// Path without the query string, after the host's normalisation.
    pub fn path(&self) -> String {
        self.backend.path()
    }

    pub fn set_path(&self, path: &str) {
        self.backend.set_path(path);
    }

    /// Raw query string without the leading `?`.
    pub fn query(&self) -> Option<String> {
        self.backend.query()
    }

    /// `None` drops the query string entirely (no trailing `?`).
    pub fn set_query(&self, query: Option<&str>) {
        self.backend.set_query(query);
    }

    /// Name of the matched route, as written in the gateway config.
    pub fn route(&self) -> String {
        self.backend.route()
    }

    /// A `{param}` captured by the route's path pattern.
    pub fn param(&self, name: &str) -> Option<String> {
        self.backend.param(name)
    }

    pub fn params(&self) -> Vec<(String, String)> {
        self.backend.params()
    }

    /// Client address and port as the host saw it, e.g. `203.0.113.7:51234`.
    pub fn client_addr(&self) -> String {
        self.backend.client_addr()
    }

    /// The client's IP, the usual key for rate limits; `None` only if the
    /// host sent an address that does not parse.
    pub fn client_ip(&self) -> Option<IpAddr> {
        let addr = self.client_addr();
        addr.parse::<SocketAddr>().map(|socket| socket.ip()).or_else(|_| addr.parse::<IpAddr>()).ok()
    }

    /// The request id (`x-request-id`, generated by the host when absent):
    /// forward it on outbound calls so logs line up.
    pub fn request_id(&self) -> String {
        self.backend.request_id()
    }

    /// A value set by an earlier plugin of this pipeline for this request
    /// (e.g. the authenticated user, for the rate limiter).
    pub fn var(&self, name: &str) -> Option<String> {
        self.backend.get_var(name)
    }

    /// Shares a value with the later plugins of this pipeline, and with the
    /// response phase.
    pub fn set_var(&self, name: &str, value: &str) {
        self.backend.set_var(name, value);
    }

    /// Sets a header on the response this request will get (the upstream's,
    /// a later plugin's reply, or the gateway's error when the upstream
    /// fails), replacing any value there. For headers known at request time
    /// this replaces `on_response`: a plugin that needs no response phase
    /// costs one call per request instead of two. Applied before any
    /// `on_response` runs. Request phase only.
    pub fn set_response_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.backend.set_response_header(name, value.as_ref());
    }

    /// As [`Request::set_response_header`], adding a value after any there.
    pub fn append_response_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.backend.append_response_header(name, value.as_ref());
    }
}

impl<'a> Deref for Request<'a> {
    type Target = Message<'a>;

    fn deref(&self) -> &Message<'a> {
        &self.message
    }
}

/// The response on its way back to the client. Header and body methods come
/// from [`Message`].
pub struct Response<'a> {
    message: Message<'a>,
    backend: &'a dyn ResponseBackend,
}

impl<'a> Response<'a> {
    pub(crate) fn new(message: &'a dyn MessageBackend, backend: &'a dyn ResponseBackend) -> Self {
        Self { message: Message { backend: message }, backend }
    }

    pub fn status(&self) -> u16 {
        self.backend.status()
    }

    pub fn set_status(&self, status: u16) {
        self.backend.set_status(status);
    }

    /// First value of a trailer (a field the upstream sent after the body,
    /// as gRPC's `grpc-status`), decoded lossily. Trailers are kept with
    /// the buffered body: `None` unless the plugin asked for
    /// `response_body` in [`Needs`], and when the upstream sent none.
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.backend.trailer(name).map(lossy)
    }

    /// Every trailer, in order.
    pub fn trailers(&self) -> Headers {
        self.backend.trailers()
    }

    /// Replaces every trailer: `&[]` sends none, as a reply rewritten into
    /// a complete body (JSON from gRPC) wants.
    pub fn set_trailers(&self, trailers: &[(String, Vec<u8>)]) {
        self.backend.set_trailers(trailers);
    }

    /// Turns the response into `reply`, for plugins that replace an upstream
    /// answer wholesale (e.g. masking an error).
    pub fn replace_with(&self, reply: &Reply) {
        self.set_status(reply.status);
        for (name, _) in self.headers() {
            self.remove_header(&name);
        }
        for (name, value) in &reply.headers {
            self.append_header(name, value);
        }
        self.set_body(&reply.body);
        self.set_trailers(&[]);
    }
}

impl<'a> Deref for Response<'a> {
    type Target = Message<'a>;

    fn deref(&self) -> &Message<'a> {
        &self.message
    }
}

/// A complete answer produced by the plugin itself: a short-circuit (denied,
/// rate limited, cached) or an aggregated response.
///
/// Fields are public so tests can inspect what a plugin answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Appends a header, so repeated headers (`set-cookie`) are possible.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body with a matching `content-type`.
    ///
    /// Serialising a plain data type cannot fail; for the types that can
    /// (maps with non-string keys), the reply becomes a 500 problem rather
    /// than forcing every caller through a `Result` for a programming error.
    pub fn json(self, value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.replace_header("content-type", "application/json").body(body),
            Err(err) => Self::problem(
                500,
                "Internal Server Error",
                &format!("the plugin's reply could not be serialised: {err}"),
            ),
        }
    }

    /// An RFC 9457 `application/problem+json` answer, the error shape the
    /// gateway itself uses, so clients see one format whoever refused them.
    pub fn problem(status: u16, title: &str, detail: &str) -> Self {
        #[derive(Serialize)]
        struct Problem<'a> {
            r#type: &'a str,
            title: &'a str,
            status: u16,
            detail: &'a str,
        }
        let problem = Problem { r#type: "about:blank", title, status, detail };
        // Only strings and a number: serialising cannot fail.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        Self::new(status).header("content-type", "application/problem+json").body(body)
    }

    /// First value of a header, for tests and for plugins that post-process
    /// a reply they built.
    pub fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn replace_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }
}

/// What [`Plugin::on_request`](crate::Plugin::on_request) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on with the (possibly modified) request.
    Continue,
    /// Stop here and answer with this reply: the upstream and the remaining
    /// request-phase plugins are skipped.
    Respond(Reply),
}

impl From<Reply> for Action {
    fn from(reply: Reply) -> Self {
        Action::Respond(reply)
    }
}

/// What a configured plugin asks of the host. Anything not asked for is not
/// done, which keeps pipelines cheap: bodies stream through untouched and
/// `on_response` is never called.
///
/// The `prefetch_*` fields name what the plugin reads on (nearly) every
/// request: those values come with each call, where reading anything else
/// costs a call into the host. Reads see the plugin's own writes either way.
/// A plugin that asks for nothing to come along gets nothing: its calls
/// are the cheapest.
///
/// ```
/// # use wasmgate_sdk::Needs;
/// let needs = Needs::default().prefetch_header("authorization").prefetch_var("user");
/// assert_eq!(needs.prefetch_headers, ["authorization"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Buffer the request body so [`Message::body`] returns it.
    pub request_body: bool,
    /// Call [`Plugin::on_response`](crate::Plugin::on_response).
    pub response: bool,
    /// Buffer the response body so [`Message::body`] returns it in
    /// `on_response` (meaningful only with `response`).
    pub response_body: bool,
    /// Request headers whose values come with every call.
    pub prefetch_headers: Vec<String>,
    /// Vars whose values come with every call.
    pub prefetch_vars: Vec<String>,
    /// The request id comes with every call.
    pub prefetch_request_id: bool,
    /// The client address comes with every call.
    pub prefetch_client_addr: bool,
}

impl Needs {
    /// Sends this request header's values with every call.
    pub fn prefetch_header(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.prefetch_headers.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            self.prefetch_headers.push(name);
        }
        self
    }

    /// Sends this var's value with every call.
    pub fn prefetch_var(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.prefetch_vars.contains(&name) {
            self.prefetch_vars.push(name);
        }
        self
    }

    /// Sends the request id with every call.
    pub fn prefetch_request_id(mut self) -> Self {
        self.prefetch_request_id = true;
        self
    }

    /// Sends the client address with every call.
    pub fn prefetch_client_addr(mut self) -> Self {
        self.prefetch_client_addr = true;
        self
    }
}

/// Severity of a line written with [`crate::host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::testing::{TestRequest, TestResponse};

    #[test]
    fn problem_is_rfc_9457_json() {
        let reply = Reply::problem(429, "Too Many Requests", "slow down");
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header_value("Content-Type"), Some(&b"application/problem+json"[..]));
        assert_eq!(
            String::from_utf8(reply.body).unwrap(),
            r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"slow down"}"#
        );
    }

    #[test]
    fn reply_json_sets_one_content_type_and_keeps_other_headers() {
        let reply = Reply::new(200)
            .header("content-type", "text/plain")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .json(&serde_json::json!({"ok": true}));
        assert_eq!(reply.body, br#"{"ok":true}"#);
        let content_types: Vec<_> = reply.headers.iter().filter(|(n, _)| n == "content-type").collect();
        assert_eq!(content_types.len(), 1);
        assert_eq!(reply.header_value("content-type"), Some(&b"application/json"[..]));
        assert_eq!(reply.headers.iter().filter(|(n, _)| n == "set-cookie").count(), 2);
    }

    #[test]
    fn reply_json_that_cannot_serialise_becomes_a_500_problem() {
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let reply = Reply::new(200).json(&map);
        assert_eq!(reply.status, 500);
        assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
    }

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Order {
        id: u32,
        items: Vec<String>,
    }

    #[test]
    fn json_body_round_trips_and_sets_content_type() {
        let req = TestRequest::new("POST", "/orders").body(r#"{"id": 7, "items": ["tea"]}"#);
        let req = req.as_request();
        let mut order: Order = req.json_body().unwrap();
        assert_eq!(order.id, 7);

        order.items.push("milk".into());
        req.set_json_body(&order).unwrap();
        assert_eq!(req.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(req.body().unwrap(), br#"{"id":7,"items":["tea","milk"]}"#);
    }

    #[test]
    fn json_body_errors_say_what_went_wrong() {
        let req = TestRequest::new("POST", "/").body(r#"{"id": "seven"}"#);
        let err = req.as_request().json_body::<Order>().unwrap_err();
        assert!(matches!(err, BodyError::Json(_)));
        assert!(err.to_string().contains("invalid type"), "{err}");

        // The mock hides a body that was not asked for, like the host.
        struct Forgetful;
        impl crate::Plugin for Forgetful {
            type Config = crate::NoConfig;
            fn configure(_: crate::NoConfig) -> Result<Self, String> {
                Ok(Forgetful)
            }
            fn on_request(&self, req: &Request) -> Action {
                match req.json_body::<serde_json::Value>() {
                    Err(err @ BodyError::NotBuffered) => Reply::problem(500, "oops", &err.to_string()).into(),
                    _ => Action::Continue,
                }
            }
        }
        let req = TestRequest::new("POST", "/").body("{}");
        let Action::Respond(reply) = crate::testing::run_request(&Forgetful, &req) else {
            panic!("the body should have been hidden");
        };
        assert!(String::from_utf8(reply.body).unwrap().contains("Plugin::needs"));
        // Outside `run_request` the body is visible again.
        assert!(req.as_request().json_body::<serde_json::Value>().is_ok());
    }

    #[test]
    fn header_accessors_are_case_insensitive_and_lossy() {
        let req = TestRequest::new("GET", "/")
            .header("Accept", "text/html")
            .header("accept", "application/json")
            .header("x-raw", b"caf\xe9");
        let req = req.as_request();
        assert_eq!(req.header("ACCEPT").as_deref(), Some("text/html"));
        assert_eq!(req.header_all("accept"), ["text/html", "application/json"]);
        assert_eq!(req.header("x-raw").as_deref(), Some("caf\u{fffd}"));
        assert_eq!(req.header_bytes("x-raw").unwrap(), b"caf\xe9");

        req.set_header("Accept", "*/*");
        assert_eq!(req.header_all("accept"), ["*/*"]);
        req.append_header("accept", "text/plain");
        assert_eq!(req.header_all("accept"), ["*/*", "text/plain"]);
        req.remove_header("ACCEPT");
        assert_eq!(req.header("accept"), None);
        assert_eq!(req.headers(), [("x-raw".to_owned(), b"caf\xe9".to_vec())]);
    }

    #[test]
    fn client_ip_parses_v4_v6_and_bare_addresses() {
        let ip = |addr: &str| TestRequest::new("GET", "/").client_addr(addr).as_request().client_ip();
        assert_eq!(ip("203.0.113.7:51234"), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(ip("[2001:db8::1]:443"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip("2001:db8::1"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip("not an address"), None);
    }

    #[test]
    fn request_accessors_reach_the_backend() {
        let req = TestRequest::new("GET", "/users/42?fields=name")
            .route("users")
            .param("id", "42")
            .request_id("abc")
            .var("user", "alice");
        let view = req.as_request();
        assert_eq!(view.method(), "GET");
        assert_eq!(view.path(), "/users/42");
        assert_eq!(view.query().as_deref(), Some("fields=name"));
        assert_eq!(view.route(), "users");
        assert_eq!(view.param("id").as_deref(), Some("42"));
        assert_eq!(view.param("other"), None);
        assert_eq!(view.params(), [("id".to_owned(), "42".to_owned())]);
        assert_eq!(view.request_id(), "abc");
        assert_eq!(view.var("user").as_deref(), Some("alice"));

        view.set_method("POST");
        view.set_path("/v2/users/42");
        view.set_query(None);
        view.set_var("tier", "gold");
        let view = req.as_request();
        assert_eq!((view.method(), view.path(), view.query()), ("POST".to_owned(), "/v2/users/42".to_owned(), None));
        assert_eq!(view.var("tier").as_deref(), Some("gold"));
    }

    #[test]
    fn replace_with_swaps_status_headers_and_body() {
        let resp = TestResponse::new(502).header("x-upstream", "db-3").body("stack trace");
        resp.as_response().replace_with(&Reply::problem(502, "Bad Gateway", "try later"));
        let view = resp.as_response();
        assert_eq!(view.status(), 502);
        assert_eq!(view.header("x-upstream"), None);
        assert_eq!(view.header("content-type").as_deref(), Some("application/problem+json"));
        assert!(view.body().unwrap().starts_with(b"{\"type\":\"about:blank\""));
    }
}
