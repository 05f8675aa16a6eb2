//! Path templates of parts (`/cafes?ids={part.user.cafe_ids}`), parsed once
//! at configure time; the parts they reference are the dependencies that
//! order the calls into waves.

use serde_json::Value;
use wasmgate_sdk::Request;
use wasmgate_sdk::text::percent_encode;

/// Where a placeholder takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Raw path segment: inserted as is.
    Param(String),
    /// Raw query value: inserted as is.
    Query(String),
    Header(String),
    Var(String),
    RequestId,
    /// A value of an earlier part's JSON response.
    Part {
        index: usize,
        path: Vec<String>,
    },
    /// The current element of a `for_each` list.
    Item(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder { text: String, source: Source },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
}

/// What a placeholder may see while rendering one call's path.
pub struct Context<'a> {
    pub req: &'a Request<'a>,
    pub query: Option<&'a str>,
    /// The JSON of each part that succeeded so far, by part index.
    pub parts: &'a [Option<&'a Value>],
    pub item: Option<&'a Value>,
}

impl PathTemplate {
    /// `part` finds a part's index by name; `has_item` says whether `{item}`
    /// is available (the part has a `for_each`).
    pub fn parse(text: &str, part: &dyn Fn(&str) -> Option<usize>, has_item: bool) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("{text:?} must start with `/`"));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("{text:?}: unmatched `}}`"));
            }
            let Some(close) = rest[open..].find('}').map(|at| open + at) else {
                return Err(format!("{text:?}: unclosed `{{`"));
            };
            push_literal(&mut pieces, &rest[..open], text)?;
            let inner = &rest[open + 1..close];
            let source = parse_source(inner, part, has_item).map_err(|e| format!("{text:?}: {e}"))?;
            pieces.push(Piece::Placeholder { text: format!("{{{inner}}}"), source });
            rest = &rest[close + 1..];
        }
        push_literal(&mut pieces, rest, text)?;
        Ok(Self { pieces })
    }

    /// Indexes of the parts this template reads.
    pub fn dependencies(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Placeholder { source: Source::Part { index, .. }, .. } => Some(*index),
            _ => None,
        })
    }

    /// The error says which placeholder had no value.
    pub fn render(&self, ctx: &Context) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Placeholder { text, source } => match lookup(source, ctx).map_err(|e| format!("{text} {e}"))? {
                    Some(value) => out.push_str(&value),
                    None => return Err(format!("{text} has no value")),
                },
            }
        }
        Ok(out)
    }
}

fn push_literal(pieces: &mut Vec<Piece>, literal: &str, text: &str) -> Result<(), String> {
    if let Some(c) = literal.chars().find(|&c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c))) {
        return Err(format!(
            "{text:?} contains {c:?}, which is not allowed in a URL path or query (percent-encode it)"
        ));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal.to_owned()));
    }
    Ok(())
}

fn parse_source(inner: &str, part: &dyn Fn(&str) -> Option<usize>, has_item: bool) -> Result<Source, String> {
    let (kind, rest) = inner.split_once('.').unwrap_or((inner, ""));
    let name = || {
        if rest.is_empty() { Err(format!("`{{{kind}.}}` needs a name after the dot")) } else { Ok(rest.to_owned()) }
    };
    Ok(match kind {
        "param" => Source::Param(name()?),
        "query" => Source::Query(name()?),
        "header" => Source::Header(name()?.to_ascii_lowercase()),
        "var" => Source::Var(name()?),
        "request_id" if rest.is_empty() => Source::RequestId,
        "part" => {
            let (part_name, path) = rest.split_once('.').unwrap_or((rest, ""));
            let index =
                part(part_name).ok_or_else(|| format!("`{{{inner}}}` references unknown part `{part_name}`"))?;
            Source::Part { index, path: json_path(path, inner)? }
        }
        "item" if has_item => Source::Item(json_path(rest, inner)?),
        "item" => return Err(format!("`{{{inner}}}` is only available in a part with `for_each`")),
        _ => {
            return Err(format!(
                "unknown placeholder `{{{inner}}}` (known: {{param.NAME}}, {{query.NAME}}, \
                 {{header.NAME}}, {{var.NAME}}, {{request_id}}, {{part.PART.PATH}}, {{item.PATH}})"
            ));
        }
    })
}

/// A dotted path into JSON; empty means the value itself.
pub fn json_path(text: &str, context: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!("`{context}`: `{text}` is not a dotted field path"));
    }
    Ok(segments)
}

fn lookup(source: &Source, ctx: &Context) -> Result<Option<String>, String> {
    Ok(match source {
        Source::Param(name) => ctx.req.param(name),
        Source::Query(name) => ctx.query.and_then(|query| query_value(query, name)).map(str::to_owned),
        Source::Header(name) => ctx.req.header(name).map(|v| percent_encode(&v)),
        Source::Var(name) => ctx.req.var(name).map(|v| percent_encode(&v)),
        Source::RequestId => Some(percent_encode(&ctx.req.request_id())),
        Source::Part { index, path } => match ctx.parts[*index] {
            Some(value) => joined(value, path)?,
            None => None,
        },
        Source::Item(path) => match ctx.item {
            Some(item) => joined(item, path)?,
            None => None,
        },
    })
}

/// The raw value of the first `name` parameter of a raw query string.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The text for a JSON value: strings, numbers and booleans as they are
/// (encoded), arrays as a comma-joined list of their elements. Objects have
/// no sensible text and are an error; missing or `null` is no value.
fn joined(value: &Value, path: &[String]) -> Result<Option<String>, String> {
    let mut texts = Vec::new();
    let found = collect(value, path, &mut texts)?;
    Ok(found.then(|| texts.join(",")))
}

/// Walks `path` (through arrays, element by element) and gathers the
/// encoded scalars found; returns whether anything but `null` was reached.
fn collect(value: &Value, path: &[String], out: &mut Vec<String>) -> Result<bool, String> {
    match (path.split_first(), value) {
        (_, Value::Array(items)) => {
            let mut found = path.is_empty();
            for item in items {
                found |= collect(item, path, out)?;
            }
            Ok(found)
        }
        (Some((first, rest)), Value::Object(map)) => match map.get(first) {
            Some(child) => collect(child, rest, out),
            None => Ok(false),
        },
        (Some(_), _) => Ok(false),
        (None, Value::Null) => Ok(false),
        (None, Value::String(text)) => {
            out.push(percent_encode(text));
            Ok(true)
        }
        (None, Value::Number(number)) => {
            out.push(number.to_string());
            Ok(true)
        }
        (None, Value::Bool(flag)) => {
            out.push(flag.to_string());
            Ok(true)
        }
        (None, Value::Object(_)) => Err("is a JSON object, which cannot go into a path".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::TestRequest;

    use super::*;

    fn parts(name: &str) -> Option<usize> {
        ["user", "orders"].iter().position(|n| *n == name)
    }

    fn parse(text: &str) -> Result<PathTemplate, String> {
        PathTemplate::parse(text, &parts, true)
    }

    fn render(text: &str, values: &[Option<&Value>], item: Option<&Value>) -> Result<String, String> {
        let req = TestRequest::new("GET", "/d/7?page=2&q=a%20b")
            .param("id", "7")
            .header("x-tenant", "acme corp")
            .var("user", "al/ice")
            .request_id("rid-1");
        let view = req.as_request();
        let query = view.query();
        parse(text).unwrap().render(&Context { req: &view, query: query.as_deref(), parts: values, item })
    }

    #[test]
    fn renders_request_values_encoding_the_decoded_ones() {
        assert_eq!(
            render(
                "/u/{param.id}?p={query.page}&q={query.q}&t={header.x-tenant}&u={var.user}&r={request_id}",
                &[None, None],
                None
            )
            .unwrap(),
            "/u/7?p=2&q=a%20b&t=acme%20corp&u=al%2Fice&r=rid-1"
        );
    }

    #[test]
    fn renders_part_values_and_joins_arrays() {
        let user = json!({"id": 7, "cafe_ids": ["c 1", "c2"], "admin": true, "meta": {"a": 1}, "none": null});
        let orders = json!({"orders": [{"product_id": "p-1"}, {"product_id": "p-7"}, {}]});
        let values = [Some(&user), Some(&orders)];
        let r = |text| render(text, &values, None);
        assert_eq!(r("/cafes?ids={part.user.cafe_ids}").unwrap(), "/cafes?ids=c%201,c2");
        assert_eq!(r("/x/{part.user.id}/{part.user.admin}").unwrap(), "/x/7/true");
        assert_eq!(r("/p?ids={part.orders.orders.product_id}").unwrap(), "/p?ids=p-1,p-7");
        assert_eq!(r("/x/{part.user.missing}").unwrap_err(), "{part.user.missing} has no value");
        assert_eq!(r("/x/{part.user.none}").unwrap_err(), "{part.user.none} has no value");
        assert_eq!(
            r("/x/{part.user.meta}").unwrap_err(),
            "{part.user.meta} is a JSON object, which cannot go into a path"
        );
    }

    #[test]
    fn an_empty_array_is_an_empty_value_not_a_missing_one() {
        let user = json!({"cafe_ids": []});
        let values = [Some(&user), None];
        assert_eq!(render("/c?ids={part.user.cafe_ids}", &values, None).unwrap(), "/c?ids=");
    }

    #[test]
    fn renders_items() {
        let item = json!({"product_id": "p-1"});
        assert_eq!(render("/products/{item.product_id}", &[None, None], Some(&item)).unwrap(), "/products/p-1");
        assert_eq!(render("/p/{item}", &[None, None], Some(&json!(5))).unwrap(), "/p/5");
    }

    #[test]
    fn a_missing_request_value_is_named() {
        assert_eq!(render("/x/{header.x-absent}", &[None, None], None).unwrap_err(), "{header.x-absent} has no value");
        assert_eq!(render("/x/{query.nope}", &[None, None], None).unwrap_err(), "{query.nope} has no value");
    }

    #[test]
    fn lists_dependencies() {
        let template = parse("/a/{part.orders.x}/{part.user.id}/{param.id}").unwrap();
        assert_eq!(template.dependencies().collect::<Vec<_>>(), [1, 0]);
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("x/{param.id}").unwrap_err().contains("must start with `/`"));
        assert!(parse("/{part.usr.id}").unwrap_err().contains("unknown part `usr`"));
        assert!(parse("/{nope}").unwrap_err().contains("unknown placeholder `{nope}`"));
        assert!(parse("/{param.}").unwrap_err().contains("needs a name"));
        assert!(parse("/{part.user..id}").unwrap_err().contains("dotted field path"));
        assert!(parse("/a b").unwrap_err().contains("' '"));
        assert!(parse("/a{").unwrap_err().contains("unclosed"));
        assert!(
            PathTemplate::parse("/{item}", &parts, false)
                .unwrap_err()
                .contains("only available in a part with `for_each`")
        );
    }
}
