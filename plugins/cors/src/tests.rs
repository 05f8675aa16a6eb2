use serde_json::{Value, json};
use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

use super::*;

const APP: &str = "https://app.example.com";

fn plugin(extra: Value) -> Cors {
    let mut config = json!({
        "allow_origins": [APP, "https://*.partner.test"],
        "allow_headers": ["Authorization", "content-type"],
        "expose_headers": ["X-Request-Id"],
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    testing::configure(&config.to_string()).unwrap()
}

fn config_error(config: Value) -> String {
    testing::configure::<Cors>(&config.to_string()).unwrap_err()
}

fn preflight(origin: &str, method: &str) -> TestRequest {
    TestRequest::new("OPTIONS", "/orders").header("origin", origin).header("access-control-request-method", method)
}

/// The headers of the response the client gets when the request goes on:
/// the upstream's (a `Vary` among them) plus what the plugin set.
fn passed(plugin: &Cors, req: &TestRequest) -> Vec<(String, String)> {
    assert_eq!(testing::run_request(plugin, req), Action::Continue);
    let resp = TestResponse::new(200).header("vary", "Accept-Encoding");
    testing::run_response(plugin, req, &resp);
    resp.as_response().headers().into_iter().map(|(n, v)| (n, String::from_utf8(v).unwrap())).collect()
}

fn answered(plugin: &Cors, req: &TestRequest) -> Reply {
    match testing::run_request(plugin, req) {
        Action::Respond(reply) => reply,
        Action::Continue => panic!("the plugin should answer"),
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.header_value(name).map(|v| std::str::from_utf8(v).unwrap())
}

/// Asserts a 403 problem+json without CORS headers; returns its detail.
fn refused(reply: &Reply) -> String {
    assert_eq!(reply.status, 403);
    assert_eq!(header(reply, "content-type"), Some("application/problem+json"));
    assert!(reply.headers.iter().all(|(n, _)| !n.starts_with("access-control-")), "{:?}", reply.headers);
    serde_json::from_slice::<Value>(&reply.body).unwrap()["detail"].as_str().unwrap().to_owned()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

#[test]
fn a_preflight_from_an_allowed_origin_is_answered_with_204() {
    let plugin = plugin(json!({"allow_credentials": true, "max_age": 3600}));
    let req = preflight(APP, "PUT").header("access-control-request-headers", "Content-Type, authorization");
    let reply = answered(&plugin, &req);
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, b"");
    assert_eq!(
        reply.headers,
        [
            ("access-control-allow-origin", APP),
            ("access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE"),
            ("access-control-max-age", "3600"),
            ("vary", "Origin"),
            ("access-control-allow-headers", "authorization, content-type"),
            ("access-control-allow-credentials", "true"),
        ]
        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
    );
    // A subdomain by pattern; the origin is echoed as sent.
    let reply = answered(&plugin, &preflight("https://EU.api.Partner.test", "GET"));
    assert_eq!(header(&reply, "access-control-allow-origin"), Some("https://EU.api.Partner.test"));
    assert_eq!(header(&reply, "access-control-allow-headers"), Some("authorization, content-type"));
}

#[test]
fn a_preflight_from_another_origin_gets_403_without_cors_headers() {
    let plugin = plugin(json!({}));
    for origin in
        ["https://evil.test", "https://app.example.com.evil.test", "http://app.example.com", "https://partner.test"]
    {
        let detail = refused(&answered(&plugin, &preflight(origin, "GET")));
        assert_eq!(detail, format!("origin `{origin}` is not allowed"));
    }
    assert_eq!(refused(&answered(&plugin, &preflight("null", "GET"))), "origin `null` is not allowed");
    let twice = preflight(APP, "GET").header("origin", APP);
    assert_eq!(refused(&answered(&plugin, &twice)), "more than one Origin header");
}

#[test]
fn a_preflight_asking_for_more_than_allowed_fails() {
    let plugin = plugin(json!({"allow_methods": ["GET", "POST"]}));
    let detail = refused(&answered(&plugin, &preflight(APP, "DELETE")));
    assert_eq!(detail, "method `DELETE` is not allowed (allowed: GET, POST)");
    // Methods are case-sensitive.
    assert!(refused(&answered(&plugin, &preflight(APP, "post"))).starts_with("method `post`"));
    let req = preflight(APP, "POST").header("access-control-request-headers", "content-type,x-debug");
    assert_eq!(
        refused(&answered(&plugin, &req)),
        "header `x-debug` is not allowed (allowed: authorization, content-type)"
    );
    let bare = testing::configure::<Cors>(&json!({"allow_origins": [APP]}).to_string()).unwrap();
    let req = preflight(APP, "GET").header("access-control-request-headers", "x-a");
    assert_eq!(refused(&answered(&bare, &req)), "header `x-a` is not allowed (allowed: none)");
    // Empty entries are no headers; a huge list is read to the first refusal.
    let req = preflight(APP, "POST").header("access-control-request-headers", " , content-type,,");
    assert_eq!(answered(&plugin, &req).status, 204);
    let huge = format!("{}x-evil", "content-type, ".repeat(20_000));
    let req = preflight(APP, "POST").header("access-control-request-headers", huge);
    assert_eq!(
        refused(&answered(&plugin, &req)),
        "header `x-evil` is not allowed (allowed: authorization, content-type)"
    );
}

#[test]
fn an_allowed_origin_gets_cors_headers_on_the_actual_response() {
    let plugin = plugin(json!({"allow_credentials": true}));
    let req = TestRequest::new("POST", "/orders").header("origin", APP);
    assert_eq!(
        passed(&plugin, &req),
        pairs(&[
            ("vary", "Accept-Encoding"),
            ("vary", "Origin"),
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-request-id"),
        ])
    );
    // OPTIONS without Access-Control-Request-Method is no preflight.
    let req = TestRequest::new("OPTIONS", "/orders").header("origin", APP);
    assert!(passed(&plugin, &req).contains(&("access-control-allow-origin".into(), APP.into())));
}

#[test]
fn another_origin_passes_without_cors_headers_and_no_origin_is_untouched() {
    let plugin = plugin(json!({}));
    for origin in
        ["https://evil.test", "null", "https://app.example.com:8443", &format!("https://{}", "a".repeat(5000))]
    {
        let req = TestRequest::new("GET", "/orders").header("origin", origin);
        assert_eq!(passed(&plugin, &req), pairs(&[("vary", "Accept-Encoding"), ("vary", "Origin")]), "{origin}");
    }
    let req = TestRequest::new("GET", "/orders");
    assert_eq!(passed(&plugin, &req), pairs(&[("vary", "Accept-Encoding")]));
    let req = TestRequest::new("OPTIONS", "/orders").header("access-control-request-method", "GET");
    assert_eq!(passed(&plugin, &req), pairs(&[("vary", "Accept-Encoding")]), "no Origin: not a preflight");
}

#[test]
fn star_answers_star_without_credentials_and_null_only_when_listed() {
    let any = testing::configure::<Cors>(&json!({"allow_origins": ["*"]}).to_string()).unwrap();
    let reply = answered(&any, &preflight("https://whoever.test", "GET"));
    assert_eq!(header(&reply, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&reply, "access-control-allow-credentials"), None);
    assert_eq!(refused(&answered(&any, &preflight("null", "GET"))), "origin `null` is not allowed");

    let null = testing::configure::<Cors>(&json!({"allow_origins": ["null"]}).to_string()).unwrap();
    assert_eq!(header(&answered(&null, &preflight("null", "GET")), "access-control-allow-origin"), Some("null"));
}

#[test]
fn bad_configs_are_refused() {
    let err = config_error(json!({"allow_origins": ["*"], "allow_credentials": true}));
    assert!(err.contains("`*` cannot be combined with allow_credentials"), "{err}");
    let err = config_error(json!({"allow_origins": [APP, "https://app.example.com/"]}));
    assert!(err.starts_with("allow_origins[1]: `https://app.example.com/` has a path"), "{err}");
    assert!(config_error(json!({"allow_origins": ["https://*example.com"]})).contains("whole leading label"));
    assert!(config_error(json!({"allow_origins": []})).contains("at least one origin"));
    assert!(config_error(json!({"allow_origins": [APP], "allow_methods": []})).contains("at least one method"));
    assert!(config_error(json!({"allow_origins": [APP], "allow_methods": ["GET POST"]})).contains("allow_methods[0]"));
    assert!(config_error(json!({"allow_origins": [APP], "allow_headers": ["*"]})).contains("`*` is not supported"));
    assert!(config_error(json!({"allow_origins": [APP], "expose_headers": ["a:b"]})).contains("expose_headers[0]"));
    assert!(config_error(json!({"allow_origins": [APP], "max_age": -1})).contains("max_age"));
    assert!(config_error(json!({"allow_origin": [APP]})).contains("unknown field `allow_origin`"));
}
