//! Header operations, one implementation for requests and responses: both
//! dereference to the SDK's [`Message`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::Message;
use wasmgate_sdk::prelude::*;

use crate::template::{Mode, Template};

/// The `headers` table of the request or response section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// Appended after any existing values.
    #[serde(default)]
    add: BTreeMap<String, String>,
    /// Replacing every existing value.
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    /// Old name → new name.
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

/// Applied in the order rename, remove, set, add: renames see the headers
/// as they arrived, and a `remove` plus an `add` of one name replaces it.
#[derive(Debug, Default)]
pub struct HeaderOps {
    rename: Vec<(String, String)>,
    remove: Vec<String>,
    set: Vec<(String, Template)>,
    add: Vec<(String, Template)>,
}

impl HeaderOps {
    pub fn compile(section: &str, config: HeadersConfig) -> Result<Self, String> {
        let name = |field: &str, name: &str| {
            if is_field_name(name) {
                Ok(name.to_ascii_lowercase())
            } else {
                Err(format!("{section}.headers.{field}: `{name}` is not a valid header name (RFC 9110 token)"))
            }
        };
        let values = |field: &str, map: BTreeMap<String, String>| {
            map.into_iter()
                .map(|(header, value)| {
                    let header = name(field, &header)?;
                    let template = Template::parse(&value, Mode::Value)
                        .map_err(|e| format!("{section}.headers.{field}.{header}: {e}"))?;
                    if !template.literals().all(is_field_value) {
                        return Err(format!(
                            "{section}.headers.{field}.{header}: the value contains control characters"
                        ));
                    }
                    Ok((header, template))
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let rename = config
            .rename
            .iter()
            .map(|(from, to)| Ok((name("rename", from)?, name("rename", to)?)))
            .collect::<Result<Vec<_>, String>>()?;
        for (from, to) in &rename {
            if rename.iter().any(|(other, _)| other == to) {
                return Err(format!(
                    "{section}.headers.rename: `{from}` is renamed to `{to}`, which is itself renamed"
                ));
            }
        }
        Ok(Self {
            rename,
            remove: config.remove.iter().map(|header| name("remove", header)).collect::<Result<_, _>>()?,
            set: values("set", config.set)?,
            add: values("add", config.add)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rename.is_empty() && self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// `needs` asking also for what the `set` and `add` templates read.
    pub fn prefetch(&self, needs: Needs) -> Needs {
        self.set.iter().chain(&self.add).fold(needs, |needs, (_, template)| template.prefetch(needs))
    }

    /// Whether these operations only put values known before the request
    /// phase (no rename or remove, which need the response's own headers),
    /// so the request phase can hand them to the host and skip the
    /// response phase: `set` and `add` then give the same response.
    pub fn settled_at_request(&self) -> bool {
        self.rename.is_empty()
            && self.remove.is_empty()
            && self.set.iter().chain(&self.add).all(|(_, template)| template.is_fixed())
    }

    /// [`HeaderOps::apply`] for a response that does not exist yet: sets the
    /// headers through the request (see [`HeaderOps::settled_at_request`]).
    pub fn apply_to_coming_response(&self, req: &Request) {
        self.put(
            req,
            |header, value| req.set_response_header(header, value),
            |header, value| req.append_response_header(header, value),
        );
    }

    /// Renders `set` then `add`, handing each value to its writer.
    fn put(&self, req: &Request, set: impl Fn(&str, &str), add: impl Fn(&str, &str)) {
        for (ops, write) in [(&self.set, &set as &dyn Fn(&str, &str)), (&self.add, &add)] {
            for (header, template) in ops {
                if let Some(value) = rendered(header, template, req) {
                    write(header, &value);
                }
            }
        }
    }

    /// Edits `message`; `req` fills placeholders (the request itself in the
    /// request phase, the read-only request in the response phase).
    pub fn apply(&self, message: &Message, req: &Request) {
        for (from, to) in &self.rename {
            let values = message.header_all(from);
            if values.is_empty() {
                continue;
            }
            message.remove_header(from);
            message.remove_header(to);
            for value in values {
                message.append_header(to, value);
            }
        }
        for header in &self.remove {
            message.remove_header(header);
        }
        self.put(
            req,
            |header, value| message.set_header(header, value),
            |header, value| message.append_header(header, value),
        );
    }
}

/// A placeholder without a value skips the header. A value that could not
/// be sent (a var holding a line break) is skipped too, with a warning: the
/// host would otherwise fail the whole request over one header.
fn rendered<'t>(header: &str, template: &'t Template, req: &Request) -> Option<Cow<'t, str>> {
    let value = template.render(req)?;
    // A literal was checked when the config loaded: only placeholders
    // bring values not seen before.
    if template.as_literal().is_some() || is_field_value(&value) {
        Some(value)
    } else {
        log::warn(format!("header {header}: the rendered value contains control characters; not sent"));
        None
    }
}

/// Header names are RFC 9110 tokens.
pub use wasmgate_sdk::text::is_token as is_field_name;

/// RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL.
fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::{self, TestRequest, TestResponse};

    use super::*;

    fn ops(config: serde_json::Value) -> Result<HeaderOps, String> {
        HeaderOps::compile("request", serde_json::from_value(config).unwrap())
    }

    #[test]
    fn rename_remove_set_add_on_a_request() {
        let ops = ops(json!({
            "rename": {"X-Old": "x-new"},
            "remove": ["x-internal"],
            "set": {"x-user": "{var.user}", "x-absent": "{var.nobody}"},
            "add": {"via": "wasmgate"},
        }))
        .unwrap();
        let req = TestRequest::new("GET", "/")
            .header("x-old", "1")
            .header("x-old", "2")
            .header("x-new", "stale")
            .header("x-internal", "s")
            .header("x-user", "spoofed")
            .header("via", "1.1 proxy")
            .var("user", "alice");
        let view = req.as_request();
        ops.apply(&view, &view);

        assert_eq!(view.header_all("x-new"), ["1", "2"]);
        assert_eq!(view.header("x-old"), None);
        assert_eq!(view.header("x-internal"), None);
        assert_eq!(view.header_all("x-user"), ["alice"]);
        assert_eq!(view.header("x-absent"), None);
        assert_eq!(view.header_all("via"), ["1.1 proxy", "wasmgate"]);
    }

    #[test]
    fn the_same_code_edits_a_response() {
        let ops = ops(json!({"set": {"x-request-id": "{request_id}"}, "remove": ["server"]})).unwrap();
        let req = TestRequest::new("GET", "/").request_id("rid-1");
        let resp = TestResponse::new(200).header("server", "nginx");
        ops.apply(&resp.as_response(), &req.as_request());
        let resp = resp.as_response();
        assert_eq!(resp.header("x-request-id").as_deref(), Some("rid-1"));
        assert_eq!(resp.header("server"), None);
    }

    #[test]
    fn a_rendered_value_with_a_line_break_is_skipped_with_a_warning() {
        let ops = ops(json!({"set": {"x-user": "{var.user}"}})).unwrap();
        let req = TestRequest::new("GET", "/").var("user", "a\r\nx-admin: 1");
        let view = req.as_request();
        ops.apply(&view, &view);
        assert_eq!(view.header("x-user"), None);
        assert_eq!(testing::logs()[0].0, LogLevel::Warn);
    }

    #[test]
    fn config_mistakes_are_named() {
        let err = |config| ops(config).unwrap_err();
        assert!(err(json!({"set": {"x y": "1"}})).contains("request.headers.set: `x y`"));
        assert!(err(json!({"add": {"x": "a\nb"}})).contains("request.headers.add.x"));
        assert!(err(json!({"add": {"x": "{bad}"}})).contains("unknown placeholder"));
        assert!(err(json!({"remove": [""]})).contains("request.headers.remove"));
        assert!(err(json!({"rename": {"a": "b", "b": "c"}})).contains("itself renamed"));
    }
}
