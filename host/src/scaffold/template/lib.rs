//! `{{name}}`, a wasmgate plugin.
//!
//! It hands `x-greeting` to the upstream (on the request) and to the client
//! (on the response); on a route whose config says `answer = true` it
//! answers the request itself. Make it yours: the SDK's guide is
//! `wasmgate-sdk/README.md`.

use wasmgate_sdk::prelude::*;

/// The route's `config` merged over the plugin's `config` in gateway.toml,
/// as JSON. `deny_unknown_fields` turns a typo into a load error instead of
/// a silently ignored setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    greeting: String,
    #[serde(default)]
    answer: bool,
}

#[derive(Debug)]
pub struct {{type}} {
    greeting: String,
    answer: bool,
}

impl Plugin for {{type}} {
    type Config = Config;

    /// Runs once per instance: an error here stops the gateway from loading
    /// the config (`wasmgate check` shows it with the file and line).
    fn configure(config: Config) -> Result<Self, String> {
        let Config { greeting, answer } = config;
        if greeting.is_empty() || greeting.chars().any(char::is_control) {
            return Err("`greeting` must not be empty or hold control characters".into());
        }
        Ok(Self { greeting, answer })
    }

    fn on_request(&self, req: &Request) -> Action {
        if self.answer {
            let reply = Reply::new(200).header("content-type", "text/plain");
            return reply.body(format!("{}\n", self.greeting)).into();
        }
        req.set_header("x-greeting", &self.greeting);
        req.set_response_header("x-greeting", &self.greeting);
        Action::Continue
    }
}

export_plugin!({{type}});

#[cfg(test)]
mod tests {
    use wasmgate_sdk::testing::{self, TestRequest};

    use super::*;

    fn configure(json: &str) -> Result<{{type}}, String> {
        testing::configure(json)
    }

    #[test]
    fn greets_the_upstream_and_the_client() {
        let plugin = configure(r#"{"greeting": "hi"}"#).unwrap();
        let req = TestRequest::new("GET", "/orders/7");

        assert_eq!(testing::run_request(&plugin, &req), Action::Continue);

        let req = req.as_request();
        assert_eq!(req.header("x-greeting").as_deref(), Some("hi"));
    }

    #[test]
    fn answers_itself_when_asked_to() {
        let plugin = configure(r#"{"greeting": "hi", "answer": true}"#).unwrap();
        let req = TestRequest::new("GET", "/hello");

        let Action::Respond(reply) = testing::run_request(&plugin, &req) else {
            panic!("expected a reply");
        };
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"hi\n"[..]));
    }

    #[test]
    fn refuses_a_bad_config() {
        let err = configure(r#"{"greeting": ""}"#).unwrap_err();
        assert!(err.contains("greeting"), "{err}");
        let err = configure(r#"{"greting": "hi"}"#).unwrap_err();
        assert!(err.contains("unknown field `greting`"), "{err}");
    }
}
