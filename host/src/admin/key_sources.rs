//! Key sources in `/status`: where a plugin fetches keys at run time, and
//! how that is going.
//!
//! jwt-auth keeps a JSON status document per fetched source (a `jwks_url`,
//! or an issuer found by OpenID discovery) in the shared state, under its
//! plugin's namespace at `jwks/<upstream>/<url>/status` (see its README,
//! "Status"). The sources are found in the configs the routes give their
//! plugins: a `keys` entry with `jwks_url` or `issuer_discovery = true`
//! is one, whatever the plugin is called, so a plugin with another name or
//! another plugin using the same key settings is listed too. The document
//! is the plugin's word: only its known fields are shown, each checked
//! and bounded, and its `state` is read as of now (`fresh` past the
//! refresh time is `stale`, anything past the expiry `failing`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::snapshot::Snapshot;
use crate::state::StateStore;

/// The status document's fields shown as they are, when they are numbers.
const TIMES: [&str; 5] = ["updated_ms", "last_fetch_ms", "last_success_ms", "refresh_at_ms", "expires_at_ms"];
/// Longest `version` or `error` shown: the document is the plugin's to fill.
const MAX_TEXT: usize = 1024;

/// One fetched source of a plugin, and the routes whose configs name it.
#[derive(Debug, PartialEq, Eq)]
struct Source {
    plugin: String,
    upstream: String,
    url: String,
    routes: Vec<String>,
}

impl Source {
    /// Its status document's key in the shared state.
    fn status_key(&self) -> String {
        format!("{}:jwks/{}/{}/status", self.plugin, self.upstream, self.url)
    }
}

/// Every fetched source the snapshot's plugin uses name, once each.
fn sources(snapshot: &Snapshot) -> Vec<Source> {
    let mut found: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for route in &snapshot.config.routes {
        for use_ in &route.pipeline {
            let Some(plugin) = snapshot.config.plugins.get(use_.plugin) else {
                continue;
            };
            let Ok(config) = serde_json::from_str::<Value>(&use_.config_json) else {
                continue;
            };
            for (upstream, url) in fetched_keys(&config) {
                let routes = found.entry((plugin.name.clone(), upstream, url)).or_default();
                if !routes.contains(&route.name) {
                    routes.push(route.name.clone());
                }
            }
        }
    }
    found.into_iter().map(|((plugin, upstream, url), routes)| Source { plugin, upstream, url, routes }).collect()
}

/// The `(upstream, url)` of each fetched entry of a config's `keys`, the
/// URL as jwt-auth names the source: the `jwks_url` as written, or the
/// issuer's discovery document (the entry's `issuer`, else the config's
/// only `issuers`). Entries the plugin would refuse are passed over.
fn fetched_keys(config: &Value) -> Vec<(String, String)> {
    let issuers = config["issuers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let entries = config["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| {
            let upstream = entry["upstream"].as_str().filter(|u| !u.is_empty())?;
            let url = match (entry["jwks_url"].as_str(), entry["issuer_discovery"].as_bool()) {
                (Some(url), _) => url.to_owned(),
                (None, Some(true)) => {
                    let issuer = match (entry["issuer"].as_str(), issuers) {
                        (Some(issuer), _) => issuer,
                        (None, [only]) => only.as_str()?,
                        (None, _) => return None,
                    };
                    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
                }
                _ => return None,
            };
            Some((upstream.to_owned(), url))
        })
        .collect()
}

/// What `/status` shows of each source, read from the state now.
pub(super) async fn status(snapshot: &Snapshot, state: &StateStore, now_ms: u64) -> Vec<Value> {
    let sources = sources(snapshot);
    let documents = futures_util::future::join_all(sources.iter().map(|s| async move {
        let key = s.status_key();
        state.get(&key).await
    }))
    .await;
    sources
        .into_iter()
        .zip(documents)
        .map(|(source, document)| {
            let mut shown = json!({
                "plugin": source.plugin,
                "routes": source.routes,
                "source": source.url,
                "upstream": source.upstream,
            });
            let fields = match document {
                Ok(Some(bytes)) => read_document(&bytes, now_ms),
                Ok(None) => json!({"state": NEVER_FETCHED}),
                Err(e) => json!({"state": "unknown", "error": format!("cannot read the status: {e}")}),
            };
            if let (Some(shown), Value::Object(fields)) = (shown.as_object_mut(), fields) {
                shown.extend(fields);
            }
            shown
        })
        .collect()
}

const NEVER_FETCHED: &str = "never-fetched";

/// The known fields of a status document, its state read as of `now_ms`.
fn read_document(bytes: &[u8], now_ms: u64) -> Value {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(bytes) else {
        return json!({"state": "unknown", "error": "the status document is not a JSON object"});
    };
    let mut shown = Map::new();
    let time = |field: &str| doc.get(field).and_then(Value::as_u64);
    for field in TIMES {
        shown.insert(field.into(), time(field).into());
    }
    for field in ["version", "error"] {
        let text = doc.get(field).and_then(Value::as_str).map(|s| bounded(s, MAX_TEXT));
        shown.insert(field.into(), text.into());
    }
    shown.insert("keys".into(), doc.get("keys").and_then(Value::as_u64).into());
    let reported = doc.get("state").and_then(Value::as_str);
    let state = state_now(reported, time("refresh_at_ms"), time("expires_at_ms"), now_ms);
    shown.insert("state".into(), state.into());
    shown.insert("reported_state".into(), reported.map(|s| bounded(s, 32)).into());
    Value::Object(shown)
}

/// A document's state as of `now_ms`: it was written as of its last
/// update, and time moved on without anyone fetching.
fn state_now(reported: Option<&str>, refresh_at: Option<u64>, expires_at: Option<u64>, now_ms: u64) -> &'static str {
    let past = |t: Option<u64>| t.is_some_and(|t| now_ms >= t);
    match reported {
        Some("fresh" | "stale") if past(expires_at) => "failing",
        Some("fresh") if past(refresh_at) => "stale",
        Some("fresh") => "fresh",
        Some("stale") => "stale",
        Some("failing") => "failing",
        Some(NEVER_FETCHED) | None => NEVER_FETCHED,
        Some(_) => "unknown",
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn bounded(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_go_stale_at_their_refresh_time_and_fail_at_their_expiry() {
        let (refresh, expiry) = (Some(1_000), Some(2_000));
        assert_eq!(state_now(Some("fresh"), refresh, expiry, 999), "fresh");
        assert_eq!(state_now(Some("fresh"), refresh, expiry, 1_000), "stale");
        assert_eq!(state_now(Some("fresh"), refresh, expiry, 2_000), "failing");
        assert_eq!(state_now(Some("stale"), refresh, expiry, 1_500), "stale");
        assert_eq!(state_now(Some("stale"), refresh, expiry, 2_500), "failing");
        assert_eq!(state_now(Some("failing"), None, None, 0), "failing");
        assert_eq!(state_now(None, None, None, 0), "never-fetched");
        assert_eq!(state_now(Some("never-fetched"), None, None, 0), "never-fetched");
        assert_eq!(state_now(Some("<script>"), None, None, 0), "unknown");
    }

    #[test]
    fn a_document_shows_only_its_known_fields_checked_and_bounded() {
        let doc = json!({
            "source": "https://evil.example", "state": "fresh", "version": "v".repeat(5000), "keys": 2,
            "updated_ms": 10, "refresh_at_ms": "soon", "expires_at_ms": 100, "error": null, "extra": {"a": 1},
        });
        let shown = read_document(doc.to_string().as_bytes(), 50);
        assert_eq!(shown["state"], "fresh");
        assert_eq!(shown["version"].as_str().unwrap().len(), MAX_TEXT);
        assert_eq!((shown["keys"].as_u64(), shown["updated_ms"].as_u64()), (Some(2), Some(10)));
        assert!(shown["refresh_at_ms"].is_null() && shown.get("extra").is_none() && shown.get("source").is_none());
        assert_eq!(read_document(b"[1]", 0)["state"], "unknown");
        assert_eq!(bounded("é", 1), "");
    }

    #[test]
    fn sources_are_named_as_jwt_auth_names_them() {
        let config = json!({
            "issuers": ["https://id.example.com/"],
            "keys": [
                {"jwks_url": "https://id.example.com/jwks.json", "upstream": "idp"},
                {"issuer_discovery": true, "upstream": "idp"},
                {"issuer_discovery": true, "issuer": "https://other.example.com", "upstream": "other"},
                {"jwks_url": "https://no-upstream.example.com/jwks.json"},
                {"secret": "s", "algorithms": ["HS256"]},
            ],
        });
        assert_eq!(
            fetched_keys(&config),
            [
                ("idp".into(), "https://id.example.com/jwks.json".into()),
                ("idp".into(), "https://id.example.com/.well-known/openid-configuration".into()),
                ("other".into(), "https://other.example.com/.well-known/openid-configuration".into()),
            ]
        );
        assert!(fetched_keys(&json!({"keys": "not a list"})).is_empty());
    }
}
