//! `google.api.http` path templates, compiled once at configure time into
//! matchers that capture variables by segment position.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```

use wasmgate_sdk::text::percent_decode;

/// One compiled template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
    /// The `:verb` suffix of the last segment, without the colon.
    verb: Option<String>,
    variables: Vec<Variable>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: the rest of the path, zero or more segments. Last only.
    Rest,
}

/// A `{field.path=…}` capture: the segments from `start` to `end`
/// (exclusive; `None` = to the end of the path, for a trailing `**`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variable {
    pub field_path: Vec<String>,
    start: usize,
    end: Option<usize>,
}

impl Template {
    /// Parses a template; the error says what is wrong with it.
    pub(crate) fn parse(template: &str) -> Result<Self, String> {
        let rest = template.strip_prefix('/').ok_or("a path template starts with `/`")?;
        // The verb is a colon after the last `/` and outside any `{…}`.
        let (body, verb) = match verb_colon(rest) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        if let Some(verb) = verb
            && (verb.is_empty() || !verb.chars().all(is_literal_char))
        {
            return Err(format!("invalid verb {verb:?}"));
        }
        let mut parser = Parser { segments: Vec::new(), variables: Vec::new() };
        let mut pieces = split_segments(body)?.into_iter();
        while let Some(piece) = pieces.next() {
            if let Some(inner) = piece.strip_prefix('{') {
                let inner = inner.strip_suffix('}').ok_or_else(|| format!("unclosed variable in {piece:?}"))?;
                parser.variable(inner)?;
            } else {
                parser.segment(piece)?;
            }
            if parser.segments.last() == Some(&Segment::Rest) && pieces.len() > 0 {
                return Err("`**` may only be the last segment".into());
            }
        }
        Ok(Self { segments: parser.segments, verb: verb.map(str::to_owned), variables: parser.variables })
    }

    pub(crate) fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The variables' values when `path` matches, percent-decoded, in the
    /// order of [`variables`](Self::variables). `Err` for a match whose
    /// values do not decode to UTF-8.
    pub(crate) fn matches(&self, path: &str) -> Option<Result<Vec<String>, String>> {
        let mut path = path.strip_prefix('/')?;
        if let Some(verb) = &self.verb {
            path = path.strip_suffix(verb.as_str())?.strip_suffix(':')?;
        }
        let parts: Vec<&str> = path.split('/').collect();
        let mut at = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(at) != Some(&literal.as_str()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::One => {
                    if parts.get(at).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::Rest => at = parts.len(),
            }
        }
        if at != parts.len() {
            return None;
        }
        let values = self.variables.iter().map(|variable| {
            let end = variable.end.unwrap_or(parts.len());
            let raw = parts.get(variable.start..end).unwrap_or_default().join("/");
            String::from_utf8(percent_decode(&raw, false))
                .map_err(|_| format!("path variable {} is not UTF-8", variable.field_path.join(".")))
        });
        Some(values.collect())
    }
}

struct Parser {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
}

impl Parser {
    fn segment(&mut self, piece: &str) -> Result<(), String> {
        let segment = match piece {
            "*" => Segment::One,
            "**" => Segment::Rest,
            "" => return Err("empty path segment".into()),
            literal if literal.chars().all(is_literal_char) => Segment::Literal(literal.to_owned()),
            other => return Err(format!("invalid path segment {other:?}")),
        };
        self.segments.push(segment);
        Ok(())
    }

    fn variable(&mut self, inner: &str) -> Result<(), String> {
        let (path, pattern) = match inner.split_once('=') {
            Some((path, pattern)) => (path, pattern),
            None => (inner, "*"),
        };
        let field_path: Vec<String> = path.split('.').map(str::to_owned).collect();
        if field_path.iter().any(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            return Err(format!("invalid field path {path:?} in a variable"));
        }
        if self.variables.iter().any(|v| v.field_path == field_path) {
            return Err(format!("variable {path:?} is bound twice"));
        }
        let start = self.segments.len();
        for piece in pattern.split('/') {
            if piece.starts_with('{') {
                return Err(format!("nested variable in {inner:?}"));
            }
            self.segment(piece)?;
        }
        let end = (self.segments.last() != Some(&Segment::Rest)).then_some(self.segments.len());
        self.variables.push(Variable { field_path, start, end });
        Ok(())
    }
}

/// Splits at `/` outside of `{…}`.
fn split_segments(body: &str) -> Result<Vec<&str>, String> {
    let mut pieces = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' if depth == 0 => depth = 1,
            '{' => return Err("nested `{` in a path template".into()),
            '}' if depth == 1 => depth = 0,
            '}' => return Err("unbalanced `}` in a path template".into()),
            '/' if depth == 0 => {
                pieces.push(&body[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed `{` in a path template".into());
    }
    pieces.push(&body[from..]);
    Ok(pieces)
}

/// Where the verb's colon is: after the last `/` outside `{…}`.
fn verb_colon(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut colon = None;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => colon = None,
            ':' if depth == 0 => colon = Some(i),
            _ => {}
        }
    }
    colon
}

/// Characters a literal segment may hold: RFC 3986 unreserved, sub-delims
/// (but not `/`, `{`, `}`, `:`, `*`, `=`) and `%` escapes.
fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;@%".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(template: &str, path: &str) -> Option<Vec<String>> {
        Template::parse(template).unwrap().matches(path).map(|r| r.unwrap())
    }

    #[test]
    fn single_segment_variables_and_literals() {
        assert_eq!(vars("/v1/products/{id}", "/v1/products/p-1"), Some(vec!["p-1".into()]));
        assert_eq!(vars("/v1/products/{id}", "/v1/products/p-1/x"), None);
        assert_eq!(vars("/v1/products/{id}", "/v1/products/"), None);
        assert_eq!(vars("/v1/products/{id}", "/v1/product/p-1"), None);
        assert_eq!(vars("/v1/products", "/v1/products"), Some(vec![]));
        assert_eq!(vars("/v1/products/{id}", "/v1/products/a%20b"), Some(vec!["a b".into()]));
    }

    #[test]
    fn multi_segment_variables_wildcards_and_verbs() {
        let t = "/v1/{name=shelves/*/books/*}";
        assert_eq!(vars(t, "/v1/shelves/s1/books/b2"), Some(vec!["shelves/s1/books/b2".into()]));
        assert_eq!(vars(t, "/v1/shelves/s1/books"), None);
        assert_eq!(vars("/files/{path=**}", "/files/a/b/c"), Some(vec!["a/b/c".into()]));
        assert_eq!(vars("/files/{path=**}", "/files"), Some(vec!["".into()]));
        assert_eq!(vars("/v1/{product.id}/*", "/v1/7/anything"), Some(vec!["7".into()]));
        assert_eq!(vars("/v1/{name=ops/*}:cancel", "/v1/ops/o1:cancel"), Some(vec!["ops/o1".into()]));
        assert_eq!(vars("/v1/{name=ops/*}:cancel", "/v1/ops/o1"), None);
        assert_eq!(vars("/v1/{name=ops/*}:cancel", "/v1/ops/o1:undo"), None);
        let t = Template::parse("/v1/{a}/{b.c=x/*}").unwrap();
        assert_eq!(t.variables()[1].field_path, ["b", "c"]);
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let err = |t: &str| Template::parse(t).unwrap_err();
        assert!(err("v1/x").contains("starts with `/`"));
        assert!(err("/v1/{id").contains("unclosed"));
        assert!(err("/v1/{a={b}}").contains("nested"));
        assert!(err("/v1/**/x").contains("last segment"));
        assert!(err("/v1//x").contains("empty path segment"));
        assert!(err("/v1/{a}/{a}").contains("bound twice"));
        assert!(err("/v1/{a-b}").contains("invalid field path"));
        assert!(err("/v1/x:").contains("invalid verb"));
        assert!(err("/v1/a b").contains("invalid path segment"));
    }

    #[test]
    fn undecodable_values_are_an_error_not_a_mismatch() {
        let t = Template::parse("/v1/{id}").unwrap();
        assert!(t.matches("/v1/%ff").unwrap().is_err());
    }
}
