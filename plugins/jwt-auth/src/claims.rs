//! What a verified token's claims must say, and what they grant.
//!
//! Time claims are checked here against the host's clock rather than by
//! jsonwebtoken, which would read the WASI clock: the host clock is the
//! gateway's, and the one unit tests can move.

use serde_json::{Map, Value};

pub type Claims = Map<String, Value>;

/// Checks on the claims of a token whose signature is valid.
#[derive(Debug)]
pub struct ClaimRules {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub required: Vec<String>,
    pub leeway_ms: f64,
}

impl ClaimRules {
    /// The token's validity window, if the claims pass every check at
    /// `now_ms`. `Err` is the `error_description` for the client.
    pub fn check(&self, claims: &Claims, now_ms: u64) -> Result<Window, String> {
        for name in &self.required {
            if lookup(claims, name).is_none_or(Value::is_null) {
                return Err(format!("missing required claim `{name}`"));
            }
        }
        let window = Window {
            deadline_ms: time_claim(claims, "exp")?.map(|exp| exp * 1000.0 + self.leeway_ms),
            not_before_ms: time_claim(claims, "nbf")?.map(|nbf| nbf * 1000.0 - self.leeway_ms),
        };
        window.check(now_ms)?;
        if !self.issuers.is_empty() {
            match claims.get("iss").and_then(Value::as_str) {
                Some(iss) if self.issuers.iter().any(|i| i == iss) => {}
                Some(_) => return Err("the token's issuer is not accepted".into()),
                None => return Err("missing required claim `iss`".into()),
            }
        }
        if !self.audiences.is_empty() {
            let audiences = strings(claims.get("aud"));
            if audiences.is_empty() {
                return Err("missing required claim `aud`".into());
            }
            if !audiences.iter().any(|a| self.audiences.contains(a)) {
                return Err("the token is not meant for this audience".into());
            }
        }
        Ok(window)
    }
}

/// When a token is accepted, leeway included, in ms since the epoch. The
/// only check whose outcome changes with time, so the only one a cached
/// token goes through again.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// `exp` + leeway: refused from then on.
    pub deadline_ms: Option<f64>,
    /// `nbf` − leeway: refused until then.
    not_before_ms: Option<f64>,
}

impl Window {
    pub fn check(&self, now_ms: u64) -> Result<(), String> {
        let now = now_ms as f64;
        if self.deadline_ms.is_some_and(|deadline| now >= deadline) {
            return Err("the token has expired".into());
        }
        if self.not_before_ms.is_some_and(|not_before| now < not_before) {
            return Err("the token is not valid yet (nbf)".into());
        }
        Ok(())
    }
}

/// NumericDate (RFC 7519 §2): seconds, possibly fractional. Present but not
/// a number is a malformed token, not a missing claim.
fn time_claim(claims: &Claims, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| format!("claim `{name}` is not a number")),
    }
}

/// A claim by name, or by JSON pointer when it starts with `/` (nested
/// claims such as Keycloak's `/realm_access/roles`). Plain names may contain
/// dots and slashes elsewhere, as namespaced claims
/// (`https://example.com/roles`) do.
pub fn lookup<'a>(claims: &'a Claims, name: &str) -> Option<&'a Value> {
    let Some(pointer) = name.strip_prefix('/') else {
        return claims.get(name);
    };
    // The claims are a map, not a `Value`: the first token is looked up by
    // hand (unescaped as RFC 6901 says), the rest by `Value::pointer`.
    let (first, rest) = pointer.split_once('/').map_or((pointer, None), |(f, r)| (f, Some(r)));
    let top = claims.get(&first.replace("~1", "/").replace("~0", "~"))?;
    match rest {
        None => Some(top),
        Some(rest) => top.pointer(&format!("/{rest}")),
    }
}

/// A claim holding one string or a list of them (`aud`, roles, `scp`).
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// OAuth scopes: the `scope` claim is space-separated (RFC 8693 §4.2),
/// `scp` is an array in some providers and a string in others.
pub fn scopes(claims: &Claims) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for name in ["scope", "scp"] {
        for item in strings(claims.get(name)) {
            scopes.extend(item.split_whitespace().map(str::to_owned));
        }
    }
    scopes
}

/// A claim as a header value: scalars as text, lists of scalars joined with
/// commas (the HTTP list syntax). Objects have no agreed text form and give
/// `None`, as do values a header cannot carry (control characters).
pub fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(_) | Value::Object(_) | Value::Null => None,
                scalar => header_value(scalar),
            })
            .collect::<Option<Vec<_>>>()?
            .join(","),
        Value::Null | Value::Object(_) => return None,
    };
    (!text.bytes().any(|b| b.is_ascii_control() && b != b'\t')).then_some(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Claims {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn lookup_reads_plain_names_and_json_pointers() {
        let c = claims(json!({
            "https://example.com/roles": ["a"],
            "realm_access": {"roles": ["admin"]},
            "a/b": 1
        }));
        assert_eq!(lookup(&c, "https://example.com/roles"), Some(&json!(["a"])));
        assert_eq!(lookup(&c, "/realm_access/roles"), Some(&json!(["admin"])));
        assert_eq!(lookup(&c, "/a~1b"), Some(&json!(1)));
        assert_eq!(lookup(&c, "/missing/x"), None);
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let c = claims(json!({"scope": "read write", "scp": ["admin"]}));
        assert_eq!(scopes(&c), ["read", "write", "admin"]);
        assert_eq!(scopes(&claims(json!({"scp": "a b"}))), ["a", "b"]);
    }

    #[test]
    fn header_values_are_text_or_nothing() {
        assert_eq!(header_value(&json!("alice")).as_deref(), Some("alice"));
        assert_eq!(header_value(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_value(&json!(["a", "b"])).as_deref(), Some("a,b"));
        assert_eq!(header_value(&json!({"a": 1})), None);
        assert_eq!(header_value(&json!([{"a": 1}])), None);
        assert_eq!(header_value(&json!("a\r\nx-admin: 1")), None);
    }

    #[test]
    fn time_claims_must_be_numbers() {
        let rules = ClaimRules { issuers: vec![], audiences: vec![], required: vec![], leeway_ms: 0.0 };
        let err = rules.check(&claims(json!({"exp": "tomorrow"})), 0).unwrap_err();
        assert_eq!(err, "claim `exp` is not a number");
        assert!(rules.check(&claims(json!({"exp": 10.5})), 10_499).is_ok());
        assert!(rules.check(&claims(json!({"exp": 10.5})), 10_500).is_err());
    }
}
