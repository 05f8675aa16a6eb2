//! `{placeholder}` templates in header values, query values, JSON values and
//! path rewrites, parsed once at configure time into literal and placeholder
//! pieces so a request only concatenates.

use std::borrow::Cow;

use serde_json::Value;
use wasmgate_sdk::{Needs, Request};

/// Where a placeholder takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    RequestId,
    Route,
    Method,
    Param(String),
    /// A request header (also in the response phase: the request is still
    /// readable there).
    Header(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder(Source),
}

/// What a template may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Header, query and JSON values: every source.
    Value,
    /// Path rewrites: only route parameters, written `{id}` or
    /// `{param.id}`. Parameters are raw path segments, so they can be put
    /// back into a path as they are; other sources would need encoding
    /// rules nobody wants to remember.
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(text: &str, mode: Mode) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
                literal.push_str(&tail[..1]);
                rest = after;
                continue;
            }
            if tail.starts_with('}') {
                return Err(format!("template {text:?}: unmatched `}}` (write `}}}}` for a literal brace)"));
            }
            let Some(end) = tail.find('}') else {
                return Err(format!("template {text:?}: unclosed `{{` (write `{{{{` for a literal brace)"));
            };
            let source = parse_source(&tail[1..end], mode).map_err(|reason| format!("template {text:?}: {reason}"))?;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Placeholder(source));
            rest = &tail[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// The text itself when there is no placeholder.
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Whether the value is settled before the request phase starts: it
    /// reads only the request id, the route and route parameters, which no
    /// plugin can change (headers, the method and vars can be).
    pub fn is_fixed(&self) -> bool {
        self.pieces.iter().all(|piece| {
            matches!(
                piece,
                Piece::Literal(_) | Piece::Placeholder(Source::RequestId | Source::Route | Source::Param(_))
            )
        })
    }

    /// The literal parts, for checks that only make sense on what the
    /// config wrote (placeholders are checked when rendered).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Literal(text) => Some(text.as_str()),
            Piece::Placeholder(_) => None,
        })
    }

    /// `None` when a placeholder has no value for this request (header
    /// absent, var unset…): callers skip the operation rather than write a
    /// half-filled value. A template of one piece, the usual header value,
    /// is its literal or its looked-up value as it is, not copied again.
    pub fn render(&self, req: &Request) -> Option<Cow<'_, str>> {
        match self.pieces.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Piece::Literal(text)] => Some(Cow::Borrowed(text)),
            [Piece::Placeholder(source)] => lookup(source, req).map(Cow::Owned),
            pieces => {
                let mut out = String::with_capacity(64);
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Placeholder(source) => out.push_str(&lookup(source, req)?),
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }

    /// `needs` asking also for the headers and vars this template reads, so
    /// their values come with each call.
    pub fn prefetch(&self, needs: Needs) -> Needs {
        self.pieces.iter().fold(needs, |needs, piece| match piece {
            Piece::Placeholder(Source::Header(name)) => needs.prefetch_header(name),
            Piece::Placeholder(Source::Var(name)) => needs.prefetch_var(name),
            Piece::Placeholder(Source::RequestId) => needs.prefetch_request_id(),
            _ => needs,
        })
    }

    /// Route parameters a path template needs, for its error message.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Placeholder(Source::Param(name)) => Some(name.as_str()),
            _ => None,
        })
    }
}

fn parse_source(inner: &str, mode: Mode) -> Result<Source, String> {
    let named = |kind: &str, name: &str| -> Result<String, String> {
        if name.is_empty() { Err(format!("`{{{kind}.}}` needs a name after the dot")) } else { Ok(name.to_owned()) }
    };
    let source = match inner.split_once('.') {
        Some(("param", name)) => Source::Param(named("param", name)?),
        Some(("header", name)) => Source::Header(named("header", name)?.to_ascii_lowercase()),
        Some(("var", name)) => Source::Var(named("var", name)?),
        None if mode == Mode::Path && is_identifier(inner) => Source::Param(inner.to_owned()),
        None if inner == "request_id" => Source::RequestId,
        None if inner == "route" => Source::Route,
        None if inner == "method" => Source::Method,
        _ => {
            return Err(match mode {
                Mode::Value => format!(
                    "unknown placeholder `{{{inner}}}` (known: {{request_id}}, {{route}}, \
                     {{method}}, {{param.NAME}}, {{header.NAME}}, {{var.NAME}})"
                ),
                Mode::Path => format!(
                    "unknown placeholder `{{{inner}}}` (a path template takes route \
                     parameters: {{id}} or {{param.id}})"
                ),
            });
        }
    };
    if mode == Mode::Path && !matches!(source, Source::Param(_)) {
        return Err(format!(
            "`{{{inner}}}` cannot be used in a path: only route parameters can ({{id}} or {{param.id}})"
        ));
    }
    Ok(source)
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn lookup(source: &Source, req: &Request) -> Option<String> {
    match source {
        Source::RequestId => Some(req.request_id()),
        Source::Route => Some(req.route()),
        Source::Method => Some(req.method()),
        Source::Param(name) => req.param(name),
        Source::Header(name) => req.header(name),
        Source::Var(name) => req.var(name),
    }
}

/// A JSON value to insert, whose strings may hold placeholders. Values
/// without any stay a plain [`Value`] and are only cloned per request.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

impl ValueTemplate {
    pub fn compile(value: Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(text) => {
                let template = Template::parse(&text, Mode::Value)?;
                match template.as_literal() {
                    Some(literal) => Self::Literal(Value::String(literal.to_owned())),
                    None => Self::Text(template),
                }
            }
            Value::Array(items) => {
                let items = items.into_iter().map(Self::compile).collect::<Result<Vec<_>, _>>()?;
                let literals: Option<Vec<Value>> = items.iter().map(|item| item.literal().cloned()).collect();
                match literals {
                    Some(values) => Self::Literal(Value::Array(values)),
                    None => Self::Array(items),
                }
            }
            Value::Object(map) => {
                let fields =
                    map.into_iter()
                        .map(|(key, value)| Ok((key, Self::compile(value)?)))
                        .collect::<Result<Vec<_>, String>>()?;
                let literals: Option<serde_json::Map<String, Value>> =
                    fields.iter().map(|(key, value)| Some((key.clone(), value.literal()?.clone()))).collect();
                match literals {
                    Some(map) => Self::Literal(Value::Object(map)),
                    None => Self::Object(fields),
                }
            }
            other => Self::Literal(other),
        })
    }

    fn literal(&self) -> Option<&Value> {
        match self {
            Self::Literal(value) => Some(value),
            _ => None,
        }
    }

    /// `None` when a placeholder anywhere inside has no value.
    pub fn render(&self, req: &Request) -> Option<Value> {
        Some(match self {
            Self::Literal(value) => value.clone(),
            Self::Text(template) => Value::String(template.render(req)?.into_owned()),
            Self::Array(items) => Value::Array(items.iter().map(|item| item.render(req)).collect::<Option<_>>()?),
            Self::Object(fields) => Value::Object(
                fields.iter().map(|(key, value)| Some((key.clone(), value.render(req)?))).collect::<Option<_>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::TestRequest;

    use super::*;

    fn request() -> TestRequest {
        TestRequest::new("PUT", "/users/7")
            .route("users")
            .param("id", "7")
            .header("X-Tenant", "acme")
            .request_id("rid-1")
            .var("user", "alice")
    }

    fn render(text: &str) -> Option<String> {
        let req = request();
        Template::parse(text, Mode::Value).unwrap().render(&req.as_request()).map(Cow::into_owned)
    }

    #[test]
    fn renders_every_source() {
        assert_eq!(
            render("{request_id} {route} {method} {param.id} {header.x-tenant} {var.user}").as_deref(),
            Some("rid-1 users PUT 7 acme alice")
        );
        assert_eq!(render("{header.X-TENANT}").as_deref(), Some("acme"));
    }

    #[test]
    fn a_missing_value_renders_nothing() {
        assert_eq!(render("user-{var.nobody}"), None);
        assert_eq!(render("{header.x-absent}"), None);
        assert_eq!(render("{param.other}"), None);
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(render("{{x}} }}").as_deref(), Some("{x} }"));
        assert_eq!(Template::parse("{{plain}}", Mode::Value).unwrap().as_literal(), Some("{plain}"));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text, mode| Template::parse(text, mode).unwrap_err();
        assert!(err("{nope}", Mode::Value).contains("unknown placeholder `{nope}`"));
        assert!(err("{param.}", Mode::Value).contains("needs a name"));
        assert!(err("a{b", Mode::Value).contains("unclosed"));
        assert!(err("a}b", Mode::Value).contains("unmatched"));
        assert!(err("/x/{header.a}", Mode::Path).contains("only route parameters"));
    }

    #[test]
    fn path_templates_take_bare_parameter_names() {
        let template = Template::parse("/internal/{id}/{param.id}", Mode::Path).unwrap();
        assert_eq!(template.params().collect::<Vec<_>>(), ["id", "id"]);
        let req = request();
        assert_eq!(template.render(&req.as_request()).as_deref(), Some("/internal/7/7"));
    }

    #[test]
    fn json_values_without_placeholders_stay_literal() {
        let value = json!({"a": [1, "two", {"b": null}], "c": "{{not}}"});
        assert_eq!(
            ValueTemplate::compile(value).unwrap(),
            ValueTemplate::Literal(json!({"a": [1, "two", {"b": null}], "c": "{not}"}))
        );
    }

    #[test]
    fn json_values_render_nested_placeholders() {
        let template = ValueTemplate::compile(json!({"by": "{var.user}", "ids": ["{param.id}", 3]})).unwrap();
        let req = request();
        assert_eq!(template.render(&req.as_request()), Some(json!({"by": "alice", "ids": ["7", 3]})));
        let missing = ValueTemplate::compile(json!(["{var.none}"])).unwrap();
        assert_eq!(missing.render(&req.as_request()), None);
    }
}
