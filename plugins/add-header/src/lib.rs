//! Sets configured headers on the request going upstream and on the response
//! going back to the client.
//!
//! ```toml
//! [[routes]]
//! pipeline = [
//!     { plugin = "add-header", config = { request = { x-team = "payments" }, response = { x-frame-options = "DENY" } } },
//! ]
//! ```
//!
//! A header that is already present is replaced, so the configured value is
//! the one the upstream (or the client) sees.

use std::collections::BTreeMap;

use wasmgate_sdk::prelude::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Headers set on the request before it goes upstream.
    #[serde(default)]
    pub request: BTreeMap<String, String>,
    /// Headers set on the response before it goes to the client.
    #[serde(default)]
    pub response: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct AddHeader {
    request: Vec<(String, String)>,
    response: Vec<(String, String)>,
}

impl Plugin for AddHeader {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        Ok(AddHeader {
            request: validated("request", config.request)?,
            response: validated("response", config.response)?,
        })
    }

    fn needs(&self) -> Needs {
        // Without response headers to set, the response phase is skipped
        // entirely.
        Needs { response: !self.response.is_empty(), ..Needs::default() }
    }

    fn on_request(&self, req: &Request) -> Action {
        for (name, value) in &self.request {
            req.set_header(name, value);
        }
        Action::Continue
    }

    fn on_response(&self, _req: &Request, resp: &Response) {
        for (name, value) in &self.response {
            resp.set_header(name, value);
        }
    }
}

export_plugin!(AddHeader);

/// Checks names and values at load time: the host would otherwise refuse
/// them on every request, long after the config was accepted.
fn validated(section: &str, headers: BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    headers
        .into_iter()
        .map(|(name, value)| {
            if !is_field_name(&name) {
                return Err(format!("{section}: `{name}` is not a valid header name (RFC 9110 token)"));
            }
            if !is_field_value(&value) {
                return Err(format!("{section}.{name}: the value contains control characters"));
            }
            Ok((name, value))
        })
        .collect()
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL.
fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

    use super::*;

    #[test]
    fn sets_request_headers_replacing_what_the_client_sent() {
        let plugin: AddHeader = testing::configure(r#"{"request": {"x-team": "payments", "x-env": "prod"}}"#).unwrap();
        let req = TestRequest::new("GET", "/pay").header("x-team", "spoofed");

        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);

        let req = req.as_request();
        assert_eq!(req.header_all("x-team"), ["payments"]);
        assert_eq!(req.header("x-env").as_deref(), Some("prod"));
    }

    #[test]
    fn sets_response_headers() {
        let plugin: AddHeader = testing::configure(r#"{"response": {"x-frame-options": "DENY"}}"#).unwrap();
        let req = TestRequest::new("GET", "/");
        let resp = TestResponse::new(200).header("x-frame-options", "SAMEORIGIN");

        assert!(testing::run_response(&plugin, &req, &resp));

        let resp = resp.as_response();
        assert_eq!(resp.header_all("x-frame-options"), ["DENY"]);
        assert_eq!(resp.status(), 200);
    }

    #[test]
    fn skips_the_response_phase_without_response_headers() {
        let plugin: AddHeader = testing::configure(r#"{"request": {"x-a": "1"}}"#).unwrap();
        assert_eq!(plugin.needs(), Needs::default());
        let resp = TestResponse::new(200);
        assert!(!testing::run_response(&plugin, &TestRequest::new("GET", "/"), &resp));
    }

    #[test]
    fn an_empty_config_does_nothing() {
        let plugin: AddHeader = testing::configure("{}").unwrap();
        let req = TestRequest::new("GET", "/").header("x-a", "1");
        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
        assert_eq!(req.as_request().headers(), [("x-a".to_owned(), b"1".to_vec())]);
    }

    #[test]
    fn rejects_an_invalid_header_name_naming_it() {
        let err = testing::configure::<AddHeader>(r#"{"response": {"x bad": "1"}}"#).unwrap_err();
        assert!(err.contains("`x bad`"), "{err}");
        assert!(err.starts_with("response"), "{err}");
    }

    #[test]
    fn rejects_a_value_with_a_line_break() {
        let err = testing::configure::<AddHeader>(r#"{"request": {"x-a": "1\r\nx-b: 2"}}"#).unwrap_err();
        assert!(err.contains("request.x-a"), "{err}");
    }

    #[test]
    fn rejects_unknown_fields_and_wrong_types_naming_them() {
        let err = testing::configure::<AddHeader>(r#"{"requests": {}}"#).unwrap_err();
        assert!(err.contains("unknown field `requests`"), "{err}");

        let err = testing::configure::<AddHeader>(r#"{"request": {"x-a": 1}}"#).unwrap_err();
        assert!(err.contains("request.x-a"), "{err}");
    }
}
