//! Whose budget a request draws from: the key parts, read per request.

use wasmgate_sdk::Request;
use wasmgate_sdk::text::is_token;

/// One part of a rate-limit key, written in config as `ip`, `route`,
/// `user`, `header:<name>` or `var:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    Ip,
    Route,
    /// The `user` var, which jwt-auth sets from the verified token.
    User,
    Header(String),
    Var(String),
}

/// What to do when a request lacks a key part (no API key header, no
/// authenticated user).
#[derive(Debug)]
pub enum MissingKey {
    Reject(u16),
    Skip,
    /// Key on these parts instead; when they are missing too, reject.
    Fallback {
        parts: Vec<KeyPart>,
        status: u16,
    },
}

impl KeyPart {
    fn parse(text: &str) -> Option<Self> {
        let part = match text.split_once(':') {
            None => match text {
                "ip" => KeyPart::Ip,
                "route" => KeyPart::Route,
                "user" => KeyPart::User,
                _ => return None,
            },
            Some(("header", name)) if is_token(name) => KeyPart::Header(name.to_ascii_lowercase()),
            Some(("var", name)) if !name.is_empty() => KeyPart::Var(name.to_owned()),
            Some(_) => return None,
        };
        Some(part)
    }

    /// How the part is written in config, which also labels its value in
    /// the state key.
    fn label(&self) -> String {
        match self {
            KeyPart::Ip => "ip".into(),
            KeyPart::Route => "route".into(),
            KeyPart::User => "user".into(),
            KeyPart::Header(name) => format!("header:{name}"),
            KeyPart::Var(name) => format!("var:{name}"),
        }
    }

    /// An empty value counts as missing: an empty API key is no API key.
    fn value(&self, req: &Request) -> Option<String> {
        let value = match self {
            KeyPart::Ip => req.client_ip().map(|ip| ip.to_string()),
            KeyPart::Route => Some(req.route()),
            KeyPart::User => req.var("user"),
            KeyPart::Header(name) => req.header(name),
            KeyPart::Var(name) => req.var(name),
        };
        value.filter(|v| !v.is_empty())
    }
}

pub fn parse_parts(field: &str, parts: &[String]) -> Result<Vec<KeyPart>, String> {
    if parts.is_empty() {
        return Err(format!("`{field}` must list at least one key part"));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            KeyPart::parse(text).ok_or_else(|| {
                format!(
                    "{field}[{i}]: `{text}` is not a key part \
                     (ip, route, user, header:<name>, var:<name>)"
                )
            })
        })
        .collect()
}

/// The request's key, or `None` when a part is missing. Labelled values in
/// a JSON array: unambiguous whatever the values contain, so no client can
/// craft a header that lands in another client's bucket.
pub fn build(parts: &[KeyPart], req: &Request) -> Option<String> {
    let labelled = parts.iter().map(|part| Some((part.label(), part.value(req)?))).collect::<Option<Vec<_>>>()?;
    Some(serde_json::to_string(&labelled).unwrap_or_default())
}

pub fn describe(parts: &[KeyPart]) -> String {
    parts.iter().map(KeyPart::label).collect::<Vec<_>>().join(", ")
}
