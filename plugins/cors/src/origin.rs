//! Which origins may call: exact origins, `*.`-patterns, `*` and `null`,
//! parsed once; a request's `Origin` is matched without allocating.

/// One `allow_origins` entry, lower-case.
#[derive(Debug, PartialEq, Eq)]
enum Rule {
    /// `*`: any origin but `null`.
    Any,
    /// `null`, listed explicitly.
    Null,
    Exact {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
    /// `https://*.example.com`: `suffix` is `.example.com`.
    Subdomains {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

#[derive(Debug)]
pub struct Origins {
    rules: Vec<Rule>,
}

/// What an allowed origin gets back in `Access-Control-Allow-Origin`.
#[derive(Debug, PartialEq, Eq)]
pub enum Allowed {
    /// `*` (only possible without credentials).
    Any,
    /// The origin, echoed as the client sent it.
    Echo,
}

/// Longer than any real origin; a longer header is not parsed at all.
const MAX_ORIGIN: usize = 1024;

impl Origins {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        if entries.is_empty() {
            return Err("`allow_origins` must list at least one origin (or \"*\")".into());
        }
        let rules = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| rule(entry).map_err(|why| format!("allow_origins[{i}]: `{}` {why}", shown(entry))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules })
    }

    pub fn has_any(&self) -> bool {
        self.rules.contains(&Rule::Any)
    }

    /// Whether the origin `text` (an `Origin` header's value) is allowed.
    pub fn allows(&self, text: &str) -> Option<Allowed> {
        if text == "null" {
            return self.rules.contains(&Rule::Null).then_some(Allowed::Echo);
        }
        let origin = parse_request(text)?;
        let mut any = false;
        for rule in &self.rules {
            let matched = match rule {
                Rule::Any => {
                    any = true;
                    false
                }
                Rule::Null => false,
                Rule::Exact { scheme, host, port } => {
                    origin.scheme.eq_ignore_ascii_case(scheme)
                        && origin.host.eq_ignore_ascii_case(host)
                        && origin.port == *port
                }
                Rule::Subdomains { scheme, suffix, port } => {
                    origin.scheme.eq_ignore_ascii_case(scheme)
                        && origin.port == *port
                        && is_subdomain(origin.host, suffix)
                }
            };
            if matched {
                return Some(Allowed::Echo);
            }
        }
        any.then_some(Allowed::Any)
    }
}

/// A request's origin, borrowed from the header.
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

/// `scheme://host[:port]` and nothing else: no path, no user, no spaces.
/// A default port (`:443` on https) is no port, as browsers write it.
fn parse_request(text: &str) -> Option<Origin<'_>> {
    if text.len() > MAX_ORIGIN {
        return None;
    }
    let (scheme, authority) = text.split_once("://")?;
    if !is_scheme(scheme) {
        return None;
    }
    let (host, port) = split_port(authority)?;
    if !is_host(host) {
        return None;
    }
    let port = port.filter(|&p| Some(p) != default_port(scheme));
    Some(Origin { scheme, host, port })
}

/// `host` and its port, if any; `None` when the port is not a number.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the `]`.
        Some(rest) => rest.find(']').map(|end| end + 2).filter(|&at| at < authority.len()),
        None => authority.rfind(':'),
    };
    match port_at {
        Some(at) => {
            let (host, port) = (&authority[..at], authority.get(at + 1..)?);
            if authority.as_bytes().get(at) != Some(&b':')
                || port.is_empty()
                || !port.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some((host, Some(port.parse().ok()?)))
        }
        None => Some((authority, None)),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else {
        None
    }
}

fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
}

/// DNS labels separated by dots, or a bracketed IPv6 literal.
fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    is_labels(host)
}

/// One or more non-empty labels of letters, digits and `-`, joined by dots.
fn is_labels(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// `host` is one or more labels followed by `suffix` (`.example.com`):
/// the `*` never matches an empty label, a `:`, a `/` or an `@`.
fn is_subdomain(host: &str, suffix: &str) -> bool {
    let Some(split) = host.len().checked_sub(suffix.len()) else {
        return false;
    };
    match (host.get(..split), host.get(split..)) {
        (Some(labels), Some(tail)) => tail.eq_ignore_ascii_case(suffix) && is_labels(labels),
        _ => false,
    }
}

fn rule(entry: &str) -> Result<Rule, &'static str> {
    match entry {
        "*" => return Ok(Rule::Any),
        "null" => return Ok(Rule::Null),
        _ => {}
    }
    let entry = entry.to_ascii_lowercase();
    let (scheme, authority) = entry.split_once("://").ok_or("is not an origin: write `scheme://host[:port]`")?;
    if !is_scheme(scheme) {
        return Err("has an invalid scheme");
    }
    if authority.contains(['/', '?', '#']) {
        return Err("has a path: an origin is only `scheme://host[:port]`, without even a trailing `/`");
    }
    if authority.contains('@') {
        return Err("has a user name: an origin is only `scheme://host[:port]`");
    }
    let (host, port) = split_port(authority).ok_or("has an invalid port")?;
    if port == Some(0) {
        return Err("has an invalid port");
    }
    let port = port.filter(|&p| Some(p) != default_port(scheme));
    let scheme = scheme.to_owned();
    if let Some(suffix) = host.strip_prefix('*') {
        if !suffix.starts_with('.') || !is_labels(&suffix[1..]) {
            return Err("has a `*` that is not a whole leading label (write `https://*.example.com`)");
        }
        return Ok(Rule::Subdomains { scheme, suffix: suffix.to_owned(), port });
    }
    if host.contains('*') {
        return Err("has a `*` that is not a whole leading label (write `https://*.example.com`)");
    }
    if !is_host(host) {
        return Err("has an invalid host");
    }
    Ok(Rule::Exact { scheme, host: host.to_owned(), port })
}

/// A value quoted in a message: cut short, control characters dropped.
pub fn shown(text: &str) -> String {
    text.chars().take(64).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(entries: &[&str]) -> Origins {
        Origins::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn error(entry: &str) -> String {
        Origins::parse(&[entry.to_owned()]).unwrap_err()
    }

    #[test]
    fn exact_origins_match_case_insensitively_and_default_ports_are_no_ports() {
        let o = origins(&["https://App.Example.com", "http://localhost:3000", "https://api.example.com:443"]);
        assert_eq!(o.allows("https://app.example.com"), Some(Allowed::Echo));
        assert_eq!(o.allows("HTTPS://APP.EXAMPLE.COM"), Some(Allowed::Echo));
        assert_eq!(o.allows("https://app.example.com:443"), Some(Allowed::Echo));
        assert_eq!(o.allows("https://api.example.com"), Some(Allowed::Echo));
        assert_eq!(o.allows("http://localhost:3000"), Some(Allowed::Echo));
        for no in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.com",
            "https://evilapp.example.com",
            "https://app.example.co",
            "http://localhost",
            "http://localhost:30000",
            "https://app.example.com/",
            "https://user@app.example.com",
            "app.example.com",
            "",
        ] {
            assert_eq!(o.allows(no), None, "{no}");
        }
    }

    #[test]
    fn a_star_matches_whole_labels_only_never_a_scheme_or_port() {
        let o = origins(&["https://*.example.com"]);
        for yes in ["https://a.example.com", "https://a.b.example.com", "https://A-1.Example.COM"] {
            assert_eq!(o.allows(yes), Some(Allowed::Echo), "{yes}");
        }
        for no in [
            "https://example.com",
            "https://.example.com",
            "https://a..example.com",
            "https://evil.com/.example.com",
            "https://evil.com:1@a.example.com",
            "https://evil.com?.example.com",
            "http://a.example.com",
            "https://a.example.com:8443",
            "https://aexample.com",
            "https://a.example.com.evil.com",
            "https://evil.com#.example.com",
            "https://a_b.example.com",
            "https://x.example.com:",
        ] {
            assert_eq!(o.allows(no), None, "{no}");
        }
        let with_port = origins(&["https://*.example.com:8443"]);
        assert_eq!(with_port.allows("https://a.example.com:8443"), Some(Allowed::Echo));
        assert_eq!(with_port.allows("https://a.example.com"), None);
    }

    #[test]
    fn star_allows_any_origin_but_null_which_must_be_listed() {
        let any = origins(&["*"]);
        assert_eq!(any.allows("https://anything.test"), Some(Allowed::Any));
        assert_eq!(any.allows("null"), None);
        assert_eq!(any.allows("not an origin"), None);
        let null = origins(&["null", "https://a.test"]);
        assert_eq!(null.allows("null"), Some(Allowed::Echo));
        assert_eq!(origins(&["https://a.test"]).allows("null"), None);
        // A listed origin is echoed even where `*` would do.
        assert_eq!(origins(&["*", "https://a.test"]).allows("https://a.test"), Some(Allowed::Echo));
    }

    #[test]
    fn ipv6_literals_and_hostile_origins() {
        let o = origins(&["http://[::1]:8080"]);
        assert_eq!(o.allows("http://[::1]:8080"), Some(Allowed::Echo));
        assert_eq!(o.allows("http://[::1]"), None);
        assert_eq!(o.allows("http://[::1]x:8080"), None);
        let huge = format!("https://{}.example.com", "a.".repeat(4000));
        assert_eq!(origins(&["https://*.example.com"]).allows(&huge), None);
        assert_eq!(origins(&["*"]).allows("https://a.test, https://b.test"), None);
        assert_eq!(origins(&["*"]).allows("https://a.test:99999"), None);
    }

    #[test]
    fn bad_entries_are_named_with_the_reason() {
        assert!(error("https://app.example.com/").contains("has a path"), "{}", error("https://app.example.com/"));
        assert!(error("app.example.com").contains("is not an origin"));
        assert!(error("https://*example.com").contains("whole leading label"));
        assert!(error("https://api.*.example.com").contains("whole leading label"));
        assert!(error("*.example.com").contains("is not an origin"));
        assert!(error("https://*.").contains("whole leading label"));
        assert!(error("https://a.test:http").contains("invalid port"));
        assert!(error("https://a.test:0").contains("invalid port"));
        assert!(error("https://u@a.test").contains("user name"));
        assert!(error("https://a b.test").contains("invalid host"));
        assert!(error("1http://a.test").contains("invalid scheme"));
        assert!(error("https://a.test/").starts_with("allow_origins[0]: `https://a.test/`"));
        assert!(Origins::parse(&[]).unwrap_err().contains("at least one"));
    }
}
