//! Fetching an identity provider's documents (its JWKS, its OpenID
//! discovery document) through a gateway upstream. Each fetch is bounded in
//! time and size, and every way it can go wrong is one message, for the log
//! and the key source's status.
//!
//! Plugins reach only the upstreams the gateway config names, so a URL is
//! only read for its path (sent to the upstream) and its authority (sent as
//! `Host`); the upstream decides where the request goes and over what, so
//! nothing here depends on the scheme.

use serde::Deserialize;
use wasmgate_sdk::prelude::{OutboundRequest, http};

/// Identity providers' JWKS are a few KiB; anything past this is not one,
/// and would be copied into every instance's memory.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// An absolute `http` or `https` URL, as far as fetching it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The URL as written, for messages.
    pub text: String,
    /// `scheme://authority`: what an issuer and its `jwks_uri` must share.
    pub origin: String,
    pub authority: String,
    /// Path and query, never empty.
    pub path: String,
}

impl Url {
    /// Refuses what a fetch through an upstream could not honour or would
    /// misread: another scheme, credentials, a fragment, spaces or control
    /// characters, a missing host.
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = ["https://", "http://"]
            .iter()
            .find_map(|scheme| strip_prefix_ignore_case(text, scheme).map(|rest| (scheme, rest)));
        let Some((scheme, rest)) = rest else {
            return Err(format!("{text:?} is not an http:// or https:// URL"));
        };
        if text.bytes().any(|b| b <= b' ' || b == 0x7f) || text.contains('#') {
            return Err(format!("{text:?} must not contain spaces, control characters or a #fragment"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{text:?} must name a host, without credentials"));
        }
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        Ok(Url {
            text: text.to_owned(),
            origin: format!("{}{}", scheme, authority.to_ascii_lowercase()),
            authority: authority.to_owned(),
            path,
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// A fetched document and how long its server says it stays fresh.
#[derive(Debug)]
pub struct Document {
    pub text: String,
    /// From `Cache-Control`: `max-age`, or 0 for `no-cache`/`no-store`.
    pub max_age_seconds: Option<u64>,
}

/// GETs `url` through `upstream`. Only a 200 with a UTF-8 body of at most
/// [`MAX_DOCUMENT_BYTES`] is a document.
pub fn get(upstream: &str, url: &Url, timeout_ms: u32) -> Result<Document, String> {
    let request = OutboundRequest::get(upstream, &url.path)
        .header("host", url.authority.as_str())
        .header("accept", "application/json")
        .timeout_ms(timeout_ms);
    let response = http::fetch(request).map_err(|e| format!("GET {}: {e}", url.text))?;
    if response.status != 200 {
        return Err(format!("GET {}: answered {}", url.text, response.status));
    }
    if response.body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "GET {}: the document is {} bytes, more than the {MAX_DOCUMENT_BYTES} accepted",
            url.text,
            response.body.len()
        ));
    }
    let max_age_seconds = response.header("cache-control").and_then(|value| max_age(&value));
    let text = String::from_utf8(response.body).map_err(|_| format!("GET {}: the document is not UTF-8", url.text))?;
    Ok(Document { text, max_age_seconds })
}

/// OpenID Connect Discovery 1.0 §4: the issuer's configuration is at
/// `<issuer>/.well-known/openid-configuration`, and must name the same
/// issuer (§4.3), or its keys could be another issuer's. Its `jwks_uri`
/// must be on the issuer's own origin, since it is fetched through the
/// same upstream.
pub fn discover(upstream: &str, issuer: &Url, timeout_ms: u32) -> Result<Url, String> {
    #[derive(Deserialize)]
    struct Configuration {
        issuer: String,
        jwks_uri: String,
    }
    let config_url = Url::parse(&format!("{}/.well-known/openid-configuration", issuer.text.trim_end_matches('/')))?;
    let document = get(upstream, &config_url, timeout_ms)?;
    let config: Configuration = serde_json::from_str(&document.text).map_err(|e| {
        format!("GET {}: not an OpenID configuration with `issuer` and `jwks_uri`: {e}", config_url.text)
    })?;
    if config.issuer != issuer.text {
        return Err(format!(
            "GET {}: the document is for issuer {:?}, not {:?}",
            config_url.text, config.issuer, issuer.text
        ));
    }
    let jwks = Url::parse(&config.jwks_uri).map_err(|e| format!("GET {}: `jwks_uri` {e}", config_url.text))?;
    if jwks.origin != issuer.origin {
        return Err(format!(
            "GET {}: `jwks_uri` {:?} is not on the issuer's origin {}; configure it as `jwks_url` with an upstream \
             that reaches its host",
            config_url.text, jwks.text, issuer.origin
        ));
    }
    Ok(jwks)
}

/// The freshness a `Cache-Control` value grants (RFC 9111 §5.2.2):
/// `max-age`, or none at all for `no-cache` and `no-store`.
fn max_age(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = value.trim().trim_matches('"').parse().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_authority_and_path() {
        let url = Url::parse("HTTPS://IdP.example.com:8443/realms/x/certs?v=1").unwrap();
        assert_eq!(url.origin, "https://idp.example.com:8443");
        assert_eq!(url.authority, "IdP.example.com:8443");
        assert_eq!(url.path, "/realms/x/certs?v=1");
        assert_eq!(Url::parse("http://idp").unwrap().path, "/");
        assert_eq!(Url::parse("http://idp?x").unwrap().path, "/?x");
        for bad in
            ["ftp://idp/keys", "idp/keys", "https:///keys", "https://u:p@idp/", "https://idp/a b", "https://idp/#k"]
        {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_control_gives_the_max_age() {
        assert_eq!(max_age("public, max-age=300, must-revalidate"), Some(300));
        assert_eq!(max_age("Max-Age=\"60\""), Some(60));
        assert_eq!(max_age("max-age=300, no-cache"), Some(0));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
