//! Errors the gateway itself answers with, as RFC 9457 problem details.

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::body::{self, Body};

pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// A problem+json response; `detail` says what happened in words an API
/// client's developer can act on.
pub fn problem(status: StatusCode, detail: &str) -> Response<Body> {
    respond(status, detail, None, None)
}

/// The problem a failed plugin gets the client: the plugin and request id
/// to ask the operator about, no more (the why is in the log).
pub fn plugin_problem(status: StatusCode, detail: &str, plugin: &str, request_id: &HeaderValue) -> Response<Body> {
    respond(status, detail, Some(plugin), request_id.to_str().ok())
}

fn respond(status: StatusCode, detail: &str, plugin: Option<&str>, request_id: Option<&str>) -> Response<Body> {
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem { kind: "about:blank", title, status: status.as_u16(), detail, plugin, request_id };
    // Strings and a number: serialising cannot fail.
    let json = serde_json::to_vec(&problem).unwrap_or_default();
    let mut resp = Response::new(body::full(json));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
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
    async fn a_plugin_problem_names_the_plugin_and_the_request() {
        let id = HeaderValue::from_static("req-1");
        let resp = plugin_problem(StatusCode::INTERNAL_SERVER_ERROR, "plugin trap failed", "trap", &id);
        assert_eq!(resp.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            json(resp).await,
            serde_json::json!({"type": "about:blank", "title": "Internal Server Error", "status": 500,
                "detail": "plugin trap failed", "plugin": "trap", "request_id": "req-1"})
        );
        let plain = json(problem(StatusCode::NOT_FOUND, "no route")).await;
        assert!(plain.get("plugin").is_none() && plain.get("request_id").is_none(), "{plain}");
    }
}
