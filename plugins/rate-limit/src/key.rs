//! Whose budget a request draws from: the key parts, read per request.

use std::fmt;

use wasmgate_sdk::text::{is_token, push_decimal};
use wasmgate_sdk::{Needs, Request};

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

    /// `needs` asking also for what this part reads, so it comes with each
    /// call.
    pub fn prefetch(&self, needs: Needs) -> Needs {
        match self {
            KeyPart::Ip => needs.prefetch_client_addr(),
            KeyPart::Route => needs,
            KeyPart::User => needs.prefetch_var("user"),
            KeyPart::Header(name) => needs.prefetch_header(name),
            KeyPart::Var(name) => needs.prefetch_var(name),
        }
    }

    /// An empty value counts as missing: an empty API key is no API key.
    fn value(&self, req: &Request) -> Option<String> {
        let value = match self {
            KeyPart::Ip => ip_of(req.client_addr()),
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

impl KeyPart {
    /// How the part is written in config, which also labels its value in
    /// the state key.
    fn push_label(&self, out: &mut String) {
        let (kind, name) = match self {
            KeyPart::Ip => ("ip", None),
            KeyPart::Route => ("route", None),
            KeyPart::User => ("user", None),
            KeyPart::Header(name) => ("header:", Some(name)),
            KeyPart::Var(name) => ("var:", Some(name)),
        };
        out.push_str(kind);
        if let Some(name) = name {
            out.push_str(name);
        }
    }
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut label = String::new();
        self.push_label(&mut label);
        f.write_str(&label)
    }
}

/// The IP of the host's `ip:port` / `[ipv6]:port` client address, written
/// as `IpAddr` would: without brackets or port. Cut out of the address in
/// place rather than copied.
fn ip_of(mut addr: String) -> Option<String> {
    let port = addr.rfind(':')?;
    addr.truncate(port);
    addr.truncate(addr.trim_end_matches(']').len());
    let brackets = addr.len() - addr.trim_start_matches('[').len();
    addr.drain(..brackets);
    Some(addr)
}

/// The request's key, or `None` when a part is missing. Each value is
/// labelled and length-prefixed (`label=len:value;`): unambiguous whatever
/// the values contain, so no client can craft a header that lands in
/// another client's bucket.
pub fn build(parts: &[KeyPart], req: &Request) -> Option<String> {
    let mut key = String::with_capacity(64);
    for part in parts {
        let value = part.value(req)?;
        part.push_label(&mut key);
        key.push('=');
        push_decimal(&mut key, value.len() as u64);
        key.push(':');
        key.push_str(&value);
        key.push(';');
    }
    Some(key)
}

pub fn describe(parts: &[KeyPart]) -> String {
    parts.iter().map(KeyPart::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_labels_and_length_prefixes_every_value() {
        use wasmgate_sdk::testing::TestRequest;
        let parts = [KeyPart::Route, KeyPart::Ip, KeyPart::Header("x-api-key".into()), KeyPart::Var("tenant".into())];
        let req = TestRequest::new("GET", "/")
            .route("orders")
            .client_addr("[2001:db8::1]:443")
            .header("x-api-key", "k;1")
            .var("tenant", "t1");
        assert_eq!(
            build(&parts, &req.as_request()).as_deref(),
            Some("route=6:orders;ip=11:2001:db8::1;header:x-api-key=3:k;1;var:tenant=2:t1;")
        );
        assert_eq!(parts[2].to_string(), "header:x-api-key");
    }

    #[test]
    fn the_ip_is_the_address_without_port_or_brackets() {
        assert_eq!(ip_of("203.0.113.7:51234".into()).as_deref(), Some("203.0.113.7"));
        assert_eq!(ip_of("[2001:db8::1]:443".into()).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_of("nonsense".into()), None);
    }
}
