//! Rewrites requests on their way upstream and responses on their way back:
//! headers, query parameters, path, method, and JSON bodies (rename, move,
//! remove and add fields; per-client allow-lists for the BFF pattern).
//!
//! ```toml
//! pipeline = [{ plugin = "transform", config = {
//!     request = { path = { template = "/internal/users/{id}" }, headers = { set = { x-user = "{var.user}" } } },
//!     response = { body = { rename = { user_name = "userName" }, allow = { header = "x-client", clients = { mobile = ["id", "userName"] } } } },
//! } }]
//! ```
//!
//! Everything is compiled in `configure`; a request only walks the compiled
//! operations. The plugin asks the host for no more than its config uses:
//! bodies are buffered only for a phase with JSON operations, and the
//! response phase runs only when it has something to do, so header-only
//! transforms leave bodies streaming. The README is the config reference.

mod headers;
mod json;
mod request;
mod template;

use serde_json::Value;
use wasmgate_sdk::Message;
use wasmgate_sdk::prelude::*;

use crate::headers::{HeaderOps, HeadersConfig};
use crate::json::{BodyConfig, BodyOps};
use crate::request::{PathConfig, PathRewrite, QueryConfig, QueryOps};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    request: RequestConfig,
    #[serde(default)]
    response: ResponseConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestConfig {
    method: Option<String>,
    path: Option<PathConfig>,
    #[serde(default)]
    query: QueryConfig,
    #[serde(default)]
    headers: HeadersConfig,
    #[serde(default)]
    body: BodyConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseConfig {
    #[serde(default)]
    headers: HeadersConfig,
    #[serde(default)]
    body: BodyConfig,
    #[serde(default)]
    on_invalid_json: OnInvalidJson,
}

/// What to do with a successful response whose body the JSON operations
/// cannot parse.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnInvalidJson {
    /// Send it on untouched.
    Pass,
    /// Answer 502. The default, because the operations may exist to hide
    /// fields (an allow-list), and an unparsable body cannot be filtered.
    #[default]
    Error,
}

#[derive(Debug)]
pub struct Transform {
    method: Option<String>,
    path: Option<PathRewrite>,
    query: QueryOps,
    request_headers: HeaderOps,
    request_body: BodyOps,
    response_headers: HeaderOps,
    response_body: BodyOps,
    /// Response headers set from the request phase, sparing the response
    /// phase (see [`HeaderOps::settled_at_request`]).
    response_headers_early: bool,
    on_invalid_json: OnInvalidJson,
}

impl Plugin for Transform {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let Config { request, response } = config;
        let response_headers = HeaderOps::compile("response", response.headers)?;
        let response_body = BodyOps::compile("response", response.body)?;
        Ok(Transform {
            method: request.method.map(request::compile_method).transpose()?,
            path: request.path.map(PathRewrite::compile).transpose()?,
            query: QueryOps::compile(request.query)?,
            request_headers: HeaderOps::compile("request", request.headers)?,
            request_body: BodyOps::compile("request", request.body)?,
            response_headers_early: response_body.is_empty()
                && !response_headers.is_empty()
                && response_headers.settled_at_request(),
            response_headers,
            response_body,
            on_invalid_json: response.on_invalid_json,
        })
    }

    fn needs(&self) -> Needs {
        let response_body = !self.response_body.is_empty();
        let needs = Needs {
            request_body: !self.request_body.is_empty(),
            response: response_body || !(self.response_headers.is_empty() || self.response_headers_early),
            response_body,
            ..Needs::default()
        };
        // Header templates are rendered on every request; the rarer query
        // and body templates read through the host.
        self.response_headers.prefetch(self.request_headers.prefetch(needs))
    }

    fn on_request(&self, req: &Request) -> Action {
        if let Some(method) = &self.method {
            req.set_method(method);
        }
        if let Some(path) = &self.path
            && let Err(reply) = path.apply(req)
        {
            return reply.into();
        }
        if !self.query.is_empty() {
            self.query.apply(req);
        }
        self.request_headers.apply(req, req);
        if !self.response_body.is_empty() {
            // A compressed answer could not be parsed: ask for an identity
            // one, as any proxy that rewrites bodies must.
            req.remove_header("accept-encoding");
        }
        if !self.request_body.is_empty() {
            match read_json(req) {
                Ok(Some(mut body)) => {
                    self.request_body.apply(&mut body, req);
                    write_json(req, &body);
                }
                // No body (a GET, say): nothing to transform.
                Ok(None) => {}
                Err(problem) => {
                    return Reply::problem(400, "Bad Request", &format!("the request body {problem}")).into();
                }
            }
        }
        // Last, so this plugin's own replies above do not get them: replies
        // only reach the response phase of earlier plugins.
        if self.response_headers_early {
            self.response_headers.apply_to_coming_response(req);
        }
        Action::Continue
    }

    fn on_response(&self, req: &Request, resp: &Response) {
        // Body first: a 502 for an unparsable body still gets the configured
        // response headers (CORS and the like).
        if !self.response_body.is_empty() {
            self.transform_response_body(req, resp);
        }
        if !self.response_headers_early {
            self.response_headers.apply(resp, req);
        }
        if let Some(header) = self.response_body.client_header() {
            // The body depends on this request header: caches must know.
            resp.append_header("vary", header);
        }
    }
}

impl Transform {
    /// Only successful answers are rewritten: an error body (a problem
    /// document, an HTML error page) is not the resource the operations
    /// were written for, and filtering it would hide the error.
    fn transform_response_body(&self, req: &Request, resp: &Response) {
        if !(200..300).contains(&resp.status()) {
            return;
        }
        match read_json(resp) {
            Ok(Some(mut body)) => {
                self.response_body.apply(&mut body, req);
                write_json(resp, &body);
            }
            Ok(None) => {}
            Err(problem) => match self.on_invalid_json {
                OnInvalidJson::Pass => {
                    log::debug(format!("response body {problem}; passed on untouched"));
                }
                OnInvalidJson::Error => {
                    log::warn(format!("response body {problem}; answering 502"));
                    resp.replace_with(&Reply::problem(
                        502,
                        "Bad Gateway",
                        &format!("the upstream's response body {problem}"),
                    ));
                }
            },
        }
    }
}

export_plugin!(Transform);

/// The buffered body as JSON; `None` when empty. The error completes a
/// sentence starting with "the request body" / "the response body".
fn read_json(message: &Message) -> Result<Option<Value>, String> {
    let body = message.body().unwrap_or_default();
    if body.is_empty() {
        return Ok(None);
    }
    if let Some(encoding) = message.header("content-encoding")
        && !encoding.trim().eq_ignore_ascii_case("identity")
    {
        return Err(format!("is encoded (content-encoding: {encoding}) and cannot be read as JSON"));
    }
    if let Some(content_type) = message.header("content-type")
        && !is_json(&content_type)
    {
        return Err(format!("must be JSON, not {content_type}"));
    }
    serde_json::from_slice(&body).map(Some).map_err(|err| format!("is not valid JSON: {err}"))
}

/// The host fixes `content-length` when a body is replaced; the content
/// type is kept (`application/problem+json` stays what it was) and only
/// filled in when missing.
fn write_json(message: &Message, body: &Value) {
    // Serialising a `Value` cannot fail.
    message.set_body(serde_json::to_vec(body).unwrap_or_default());
    if message.header("content-type").is_none() {
        message.set_header("content-type", "application/json");
    }
}

/// `application/json` and the `+json` suffix types (RFC 6839).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

    use super::*;

    fn plugin(config: Value) -> Transform {
        testing::configure(&config.to_string()).unwrap()
    }

    fn body_json(resp: &TestResponse) -> Value {
        serde_json::from_slice(&resp.as_response().body().unwrap()).unwrap()
    }

    #[test]
    fn asks_only_for_what_the_config_uses() {
        let needs = |config| plugin(config).needs();
        assert_eq!(needs(json!({})), Needs::default());
        assert_eq!(
            needs(json!({"request": {"headers": {"set": {"x": "1"}}, "path": {"strip_prefix": "/a"}}})),
            Needs::default(),
            "request header and path ops need neither bodies nor the response phase"
        );
        assert_eq!(
            needs(json!({"response": {"headers": {"remove": ["server"]}}})),
            Needs { response: true, ..Needs::default() }
        );
        assert_eq!(
            needs(json!({"request": {"body": {"remove": ["x"]}}})),
            Needs { request_body: true, ..Needs::default() }
        );
        assert_eq!(
            needs(json!({"response": {"body": {"remove": ["x"]}}})),
            Needs { response: true, response_body: true, ..Needs::default() }
        );
        assert_eq!(needs(json!({"request": {"body": {}}, "response": {"body": {}}})), Needs::default());
    }

    #[test]
    fn response_headers_known_at_request_time_skip_the_response_phase() {
        let plugin = plugin(json!({"response": {"headers": {
            "set": {"x-gateway": "wasmgate", "x-request-id": "{request_id}", "x-user-id": "{param.id}"},
            "add": {"vary": "x-client"},
        }}}));
        assert_eq!(plugin.needs(), Needs::default().prefetch_request_id(), "the request id comes with the call");
        let req = TestRequest::new("GET", "/users/7").param("id", "7").request_id("rid-9");
        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
        let resp = TestResponse::new(200).header("x-gateway", "upstream").header("vary", "accept");
        assert!(!testing::run_response(&plugin, &req, &resp));
        let resp = resp.as_response();
        assert_eq!(resp.header_all("x-gateway"), ["wasmgate"]);
        assert_eq!(resp.header("x-request-id").as_deref(), Some("rid-9"));
        assert_eq!(resp.header("x-user-id").as_deref(), Some("7"));
        assert_eq!(resp.header_all("vary"), ["accept", "x-client"]);
    }

    #[test]
    fn response_headers_that_later_plugins_could_change_wait_for_the_response_phase() {
        // A var or request header may still be set by a later plugin, and
        // rename/remove need the response's own headers.
        let response = Needs { response: true, ..Needs::default() };
        for (headers, needs) in [
            (json!({"set": {"x-user": "{var.user}"}}), response.clone().prefetch_var("user")),
            (json!({"set": {"x-client": "{header.x-client}"}}), response.clone().prefetch_header("x-client")),
            (json!({"set": {"x-a": "1"}, "remove": ["server"]}), response.clone()),
        ] {
            let plugin = plugin(json!({"response": {"headers": headers}}));
            assert_eq!(plugin.needs(), needs, "{headers}");
        }
        let plugin = plugin(json!({"response": {"headers": {"set": {"x-user": "{var.user}"}}}}));
        let req = TestRequest::new("GET", "/");
        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
        req.as_request().set_var("user", "alice");
        let resp = TestResponse::new(200);
        assert!(testing::run_response(&plugin, &req, &resp));
        assert_eq!(resp.as_response().header("x-user").as_deref(), Some("alice"));
    }

    #[test]
    fn rewrites_a_request_completely() {
        let plugin = plugin(json!({"request": {
            "method": "POST",
            "path": {"template": "/internal/users/{id}/profile"},
            "query": {"add": {"via": "gw"}, "remove": ["debug"]},
            "headers": {"set": {"x-user": "{var.user}"}},
            "body": {"rename": {"user_name": "userName"}, "add": {"request_id": "{request_id}"}},
        }}));
        let req = TestRequest::new("PUT", "/users/7?debug=1")
            .param("id", "7")
            .var("user", "alice")
            .request_id("rid-1")
            .header("content-type", "application/json; charset=utf-8")
            .body(r#"{"user_name": "al"}"#);
        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);

        let view = req.as_request();
        assert_eq!(view.method(), "POST");
        assert_eq!(view.path(), "/internal/users/7/profile");
        assert_eq!(view.query().as_deref(), Some("via=gw"));
        assert_eq!(view.header("x-user").as_deref(), Some("alice"));
        assert_eq!(view.json_body::<Value>().unwrap(), json!({"userName": "al", "request_id": "rid-1"}));
        assert_eq!(
            view.header("content-type").as_deref(),
            Some("application/json; charset=utf-8"),
            "the client's content type is kept"
        );
    }

    #[test]
    fn malformed_or_non_json_request_bodies_get_a_400_naming_the_problem() {
        let plugin = plugin(json!({"request": {"body": {"remove": ["x"]}}}));
        let detail = |req: TestRequest| match testing::run_request(&plugin, &req) {
            Action::Respond(reply) => {
                assert_eq!(reply.status, 400);
                assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
                serde_json::from_slice::<Value>(&reply.body).unwrap()["detail"].as_str().unwrap().to_owned()
            }
            Action::Continue => panic!("expected a 400"),
        };
        let malformed = detail(TestRequest::new("POST", "/").body(r#"{"x": "#));
        assert!(malformed.starts_with("the request body is not valid JSON: EOF"), "{malformed}");
        let text = detail(TestRequest::new("POST", "/").header("content-type", "text/plain").body("hi"));
        assert_eq!(text, "the request body must be JSON, not text/plain");
        let zipped = detail(TestRequest::new("POST", "/").header("content-encoding", "gzip").body([0x1f, 0x8b]));
        assert!(zipped.contains("content-encoding: gzip"), "{zipped}");
    }

    #[test]
    fn an_empty_request_body_is_left_alone() {
        let plugin = plugin(json!({"request": {"body": {"add": {"x": 1}}}}));
        let req = TestRequest::new("GET", "/");
        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
        assert!(req.as_request().body().unwrap().is_empty());
    }

    #[test]
    fn response_body_ops_ask_upstreams_for_an_uncompressed_answer() {
        let req = TestRequest::new("GET", "/").header("accept-encoding", "gzip, br");
        testing::run_request(&plugin(json!({"response": {"headers": {"set": {"x": "1"}}}})), &req);
        assert!(req.as_request().header("accept-encoding").is_some());
        testing::run_request(&plugin(json!({"response": {"body": {"remove": ["x"]}}})), &req);
        assert_eq!(req.as_request().header("accept-encoding"), None);
    }

    fn mobile_and_web() -> Transform {
        plugin(json!({"response": {"body": {
            "rename": {"user_name": "userName"},
            "allow": {
                "header": "x-client",
                "clients": {"mobile": ["id", "userName"], "web": ["id", "userName", "email", "role"]},
                "default": "web",
            },
        }}}))
    }

    fn user() -> TestResponse {
        TestResponse::new(200)
            .header("content-type", "application/json")
            .body(r#"{"id": "7", "user_name": "u7", "email": "u7@x", "role": "member", "internal": 1}"#)
    }

    #[test]
    fn mobile_clients_get_a_lighter_response_than_web_clients() {
        let plugin = mobile_and_web();
        let mobile = TestRequest::new("GET", "/").header("x-client", "mobile");
        let resp = user();
        assert!(testing::run_response(&plugin, &mobile, &resp));
        assert_eq!(body_json(&resp), json!({"id": "7", "userName": "u7"}));
        assert_eq!(resp.as_response().header("vary").as_deref(), Some("x-client"));

        let resp = user();
        testing::run_response(&plugin, &TestRequest::new("GET", "/"), &resp);
        assert_eq!(body_json(&resp), json!({"id": "7", "userName": "u7", "email": "u7@x", "role": "member"}));
    }

    #[test]
    fn error_responses_are_not_rewritten() {
        let resp = TestResponse::new(404)
            .header("content-type", "application/problem+json")
            .body(r#"{"title": "Not Found", "status": 404}"#);
        testing::run_response(&mobile_and_web(), &TestRequest::new("GET", "/"), &resp);
        assert_eq!(body_json(&resp)["title"], "Not Found");
    }

    #[test]
    fn invalid_response_json_is_a_502_by_default() {
        let resp = TestResponse::new(200).header("content-type", "application/json").body("{oops");
        testing::run_response(&mobile_and_web(), &TestRequest::new("GET", "/"), &resp);
        let view = resp.as_response();
        assert_eq!(view.status(), 502);
        assert_eq!(view.header("content-type").as_deref(), Some("application/problem+json"));
        let detail = body_json(&resp)["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with("the upstream's response body is not valid JSON"), "{detail}");
    }

    #[test]
    fn invalid_response_json_passes_when_configured() {
        let plugin = plugin(json!({"response": {
            "body": {"remove": ["x"]},
            "headers": {"set": {"x-t": "1"}},
            "on_invalid_json": "pass",
        }}));
        let resp = TestResponse::new(200).header("content-type", "text/html").body("<p>hi</p>");
        testing::run_response(&plugin, &TestRequest::new("GET", "/"), &resp);
        let view = resp.as_response();
        assert_eq!((view.status(), view.body().unwrap()), (200, b"<p>hi</p>".to_vec()));
        assert_eq!(view.header("x-t").as_deref(), Some("1"), "header ops still apply");
    }

    #[test]
    fn a_rewritten_response_without_a_content_type_gets_one() {
        let plugin = plugin(json!({"response": {"body": {"add": {"v": 1}}}}));
        let resp = TestResponse::new(200).body("[{}, {}]");
        testing::run_response(&plugin, &TestRequest::new("GET", "/"), &resp);
        assert_eq!(body_json(&resp), json!([{"v": 1}, {"v": 1}]));
        assert_eq!(resp.as_response().header("content-type").as_deref(), Some("application/json"));
    }

    #[test]
    fn recognises_json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/json+html"));
        assert!(!is_json("text/plain"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |config: Value| testing::configure::<Transform>(&config.to_string()).unwrap_err();
        assert!(err(json!({"requests": {}})).contains("unknown field `requests`"));
        assert!(err(json!({"request": {"headers": {"sett": {}}}})).contains("request.headers.sett"));
        assert!(err(json!({"response": {"on_invalid_json": "ignore"}})).contains("unknown variant `ignore`"));
        assert!(err(json!({"response": {"body": {"rename": {"a": "b.c"}}}})).starts_with("response.body.rename.a"));
        assert!(err(json!({"request": {"method": "G T"}})).contains("request.method"));
    }
}
