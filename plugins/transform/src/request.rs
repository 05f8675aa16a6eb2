//! The request-only operations: method override, path rewrite and query
//! parameters.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

use wasmgate_sdk::text::percent_encode;

use crate::headers::is_field_name;
use crate::template::{Mode, Template};

/// `path = { strip_prefix = "/api" }`, `{ replace_prefix = { from, to } }`
/// or `{ template = "/internal/users/{id}" }`: exactly one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathConfig {
    strip_prefix: Option<String>,
    replace_prefix: Option<ReplacePrefix>,
    template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplacePrefix {
    from: String,
    to: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PathRewrite {
    StripPrefix(String),
    ReplacePrefix { from: String, to: String },
    Template(Template),
}

impl PathRewrite {
    pub fn compile(config: PathConfig) -> Result<Self, String> {
        let prefix = |field: &str, text: String| -> Result<String, String> {
            check_path(&format!("request.path.{field}"), &text)?;
            // A trailing slash would make `/api/` miss `/api`; prefixes
            // match whole segments anyway.
            Ok(text.trim_end_matches('/').to_owned())
        };
        match (config.strip_prefix, config.replace_prefix, config.template) {
            (Some(strip), None, None) => Ok(Self::StripPrefix(prefix("strip_prefix", strip)?)),
            (None, Some(ReplacePrefix { from, to }), None) => Ok(Self::ReplacePrefix {
                from: prefix("replace_prefix.from", from)?,
                to: prefix("replace_prefix.to", to)?,
            }),
            (None, None, Some(text)) => {
                let template = Template::parse(&text, Mode::Path).map_err(|e| format!("request.path.template: {e}"))?;
                if !text.starts_with('/') {
                    return Err(format!("request.path.template: {text:?} must start with `/`"));
                }
                for literal in template.literals() {
                    check_path_chars("request.path.template", literal)?;
                }
                Ok(Self::Template(template))
            }
            _ => Err("request.path: give exactly one of `strip_prefix`, `replace_prefix` or `template`".into()),
        }
    }

    /// A template naming a parameter the route did not capture is a config
    /// mismatch between route and pipeline, answered as a 500 that says so.
    pub fn apply(&self, req: &Request) -> Result<(), Reply> {
        let path = req.path();
        let rewritten = match self {
            Self::StripPrefix(prefix) => {
                rest_after(&path, prefix).map(|rest| if rest.is_empty() { "/" } else { rest }.to_owned())
            }
            Self::ReplacePrefix { from, to } => rest_after(&path, from).map(|rest| {
                let joined = format!("{to}{rest}");
                if joined.is_empty() { "/".to_owned() } else { joined }
            }),
            Self::Template(template) => match template.render(req) {
                Some(rendered) => Some(rendered.into_owned()),
                None => {
                    let missing: Vec<&str> = template.params().filter(|p| req.param(p).is_none()).collect();
                    return Err(Reply::problem(
                        500,
                        "Internal Server Error",
                        &format!(
                            "transform: the path template needs route parameter(s) {} which route {:?} did not capture",
                            missing.join(", "),
                            req.route()
                        ),
                    ));
                }
            },
        };
        if let Some(rewritten) = rewritten
            && rewritten != path
        {
            req.set_path(&rewritten);
        }
        Ok(())
    }
}

/// What follows `prefix` in `path` when the prefix covers whole segments
/// (`/api` matches `/api` and `/api/x`, not `/apix`); `""` or `/…`.
fn rest_after<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn check_path(at: &str, text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("{at}: {text:?} must start with `/`"));
    }
    check_path_chars(at, text)
}

/// RFC 3986 path characters (`pchar` and `/`); `?` and `#` would end the
/// path.
fn check_path_chars(at: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|&c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%".contains(c))) {
        Some(c) => Err(format!("{at}: {text:?} contains {c:?}, which is not allowed in a path (percent-encode it)")),
        None => Ok(()),
    }
}

/// Checks a method override: any RFC 9110 token, as written.
pub fn compile_method(method: String) -> Result<String, String> {
    if is_field_name(&method) {
        Ok(method)
    } else {
        Err(format!("request.method: {method:?} is not a valid HTTP method"))
    }
}

/// The `query` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// Removes first, then adds: removing and adding one name replaces it.
#[derive(Debug, Default)]
pub struct QueryOps {
    /// Decoded names.
    remove: Vec<String>,
    /// Encoded name, value template (encoded when rendered).
    add: Vec<(String, Template)>,
}

impl QueryOps {
    pub fn compile(config: QueryConfig) -> Result<Self, String> {
        for (i, name) in config.remove.iter().enumerate() {
            if name.is_empty() {
                return Err(format!("request.query.remove[{i}]: empty parameter name"));
            }
        }
        let add = config
            .add
            .into_iter()
            .map(|(name, value)| {
                if name.is_empty() {
                    return Err("request.query.add: empty parameter name".to_owned());
                }
                let template =
                    Template::parse(&value, Mode::Value).map_err(|e| format!("request.query.add.{name}: {e}"))?;
                Ok((percent_encode(&name), template))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { remove: config.remove, add })
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Parameters with a placeholder that has no value are left out.
    pub fn apply(&self, req: &Request) {
        let original = req.query();
        let mut pairs: Vec<String> = original
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                !self.remove.iter().any(|removed| *removed == decode(name))
            })
            .map(str::to_owned)
            .collect();
        for (name, template) in &self.add {
            if let Some(value) = template.render(req) {
                pairs.push(format!("{name}={}", percent_encode(&value)));
            }
        }
        let query = (!pairs.is_empty()).then(|| pairs.join("&"));
        if query != original {
            req.set_query(query.as_deref());
        }
    }
}

/// Decodes a query component (`%XX` and `+`), lossily; for comparing names.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(&[hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    out.push(hex(hi) << 4 | hex(lo));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => (digit | 0x20) - b'a' + 10,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::TestRequest;

    use super::*;

    fn rewrite(config: serde_json::Value) -> Result<PathRewrite, String> {
        PathRewrite::compile(serde_json::from_value(config).unwrap())
    }

    fn rewritten(config: serde_json::Value, req: TestRequest) -> String {
        rewrite(config).unwrap().apply(&req.as_request()).unwrap();
        req.as_request().path()
    }

    #[test]
    fn strips_a_prefix_at_segment_boundaries() {
        let strip = |path| rewritten(json!({"strip_prefix": "/api/"}), TestRequest::new("GET", path));
        assert_eq!(strip("/api/users/1"), "/users/1");
        assert_eq!(strip("/api"), "/");
        assert_eq!(strip("/apix/users"), "/apix/users");
        assert_eq!(strip("/other"), "/other");
    }

    #[test]
    fn replaces_a_prefix() {
        let replace = |to: &str, path| {
            rewritten(json!({"replace_prefix": {"from": "/api/v1", "to": to}}), TestRequest::new("GET", path))
        };
        assert_eq!(replace("/v2", "/api/v1/users?x=1"), "/v2/users");
        assert_eq!(replace("/", "/api/v1/users"), "/users");
        assert_eq!(replace("/", "/api/v1"), "/");
        assert_eq!(replace("/v2", "/api/v10"), "/api/v10");
    }

    #[test]
    fn fills_a_template_from_route_parameters_keeping_the_query() {
        let req = TestRequest::new("GET", "/users/42?fields=a").param("id", "42");
        assert_eq!(rewritten(json!({"template": "/internal/users/{id}/profile"}), req), "/internal/users/42/profile");
    }

    #[test]
    fn a_template_without_its_parameter_answers_500_naming_it() {
        let req = TestRequest::new("GET", "/users").route("users");
        let reply = rewrite(json!({"template": "/u/{id}"})).unwrap().apply(&req.as_request()).unwrap_err();
        assert_eq!(reply.status, 500);
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains("route parameter(s) id"), "{body}");
    }

    #[test]
    fn path_config_mistakes_are_named() {
        let err = |config| rewrite(config).unwrap_err();
        assert!(err(json!({})).contains("exactly one"));
        assert!(err(json!({"strip_prefix": "/a", "template": "/b"})).contains("exactly one"));
        assert!(err(json!({"strip_prefix": "api"})).contains("must start with `/`"));
        assert!(err(json!({"template": "/a b/{id}"})).contains("' '"));
        assert!(err(json!({"template": "/a?x={id}"})).contains("'?'"));
        assert!(err(json!({"template": "/a/{header.x}"})).contains("only route parameters"));
        assert!(err(json!({"replace_prefix": {"from": "/a", "to": "b"}})).contains("replace_prefix.to"));
    }

    fn query_ops(config: serde_json::Value) -> QueryOps {
        QueryOps::compile(serde_json::from_value(config).unwrap()).unwrap()
    }

    #[test]
    fn removes_and_adds_query_parameters() {
        let ops = query_ops(json!({
            "remove": ["debug", "a b"],
            "add": {"source": "gate way", "user": "{var.user}", "none": "{var.absent}"},
        }));
        let req = TestRequest::new("GET", "/x?debug=1&keep=2&debug&a+b=3&a%20b=4").var("user", "al&ce");
        ops.apply(&req.as_request());
        assert_eq!(req.as_request().query().as_deref(), Some("keep=2&source=gate%20way&user=al%26ce"));
    }

    #[test]
    fn removing_the_last_parameter_drops_the_query() {
        let req = TestRequest::new("GET", "/x?debug=1");
        query_ops(json!({"remove": ["debug"]})).apply(&req.as_request());
        assert_eq!(req.as_request().query(), None);
    }

    #[test]
    fn decodes_names_leniently() {
        assert_eq!(decode("a%20b+c%zz%4"), "a b c%zz%4");
    }

    #[test]
    fn methods_must_be_tokens() {
        assert_eq!(compile_method("PATCH".into()).unwrap(), "PATCH");
        assert!(compile_method("GE T".into()).unwrap_err().contains("request.method"));
    }
}
