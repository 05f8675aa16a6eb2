//! Response caching in the gateway's shared state: with `[state] backend =
//! "redis"` every gateway of a fleet serves what one of them stored.
//!
//! The request phase looks the request up and answers a fresh entry itself
//! (`X-Cache: HIT`, with `Age`); otherwise the request goes on (`MISS`, or
//! `BYPASS` for what is never answered from the cache) and the response
//! phase stores the response if RFC 9111 lets a shared cache store it. The
//! full reference is in this crate's README. In short:
//!
//! ```toml
//! pipeline = [
//!     { plugin = "jwt-auth" },   # runs before every answer, cached or not
//!     { plugin = "cache", config = { vary = ["accept-encoding"], default_ttl_s = 30 } },
//! ]
//! ```

mod directives;
mod entry;
mod key;

use wasmgate_sdk::Headers;
use wasmgate_sdk::prelude::*;
use wasmgate_sdk::text::{decimal, is_token};

use directives::{Directives, age_s};
use entry::Entry;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_statuses")]
    statuses: Vec<u16>,
    #[serde(default)]
    vary: Vec<String>,
    #[serde(default)]
    default_ttl_s: u64,
    #[serde(default = "default_max_ttl_s")]
    max_ttl_s: u64,
    #[serde(default = "default_max_entry_bytes")]
    max_entry_bytes: usize,
    #[serde(default)]
    store_set_cookie: bool,
}

/// RFC 9110 §15.1's heuristically cacheable statuses, but 206 (this cache
/// keeps no ranges).
fn default_statuses() -> Vec<u16> {
    vec![200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
}

fn default_max_ttl_s() -> u64 {
    86_400
}

fn default_max_entry_bytes() -> usize {
    512 << 10
}

/// The host keeps values of at most 1 MiB.
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The config, checked, with `vary` lowercased.
#[derive(Debug)]
pub struct Cache(Config);

/// The request's key, for the response phase: set on a miss (and on a
/// request's `no-cache`) when the response may be stored. Plugins after
/// this one may change the request before it goes upstream, so the key is
/// the one made here.
const KEY_VAR: &str = "cache.key";
/// Set with the key when the request was authenticated (see
/// [`authenticated`]).
const AUTH_VAR: &str = "cache.authorized";
/// The vars jwt-auth and key-auth set for an authenticated caller: they
/// may have removed the credential itself from the request (key-auth
/// does), yet the answer is still that caller's.
const IDENTITY_VARS: [&str; 2] = ["user", "consumer"];
const X_CACHE: &str = "x-cache";

/// Never stored: recomputed on every answer, or framing the host sets.
const UNSTORED: [&str; 4] = [X_CACHE, "age", "content-length", "transfer-encoding"];

impl Plugin for Cache {
    type Config = Config;

    fn configure(mut config: Config) -> Result<Self, String> {
        if config.statuses.is_empty() {
            return Err("`statuses` must list at least one status".into());
        }
        for (i, &status) in config.statuses.iter().enumerate() {
            if !(200..=599).contains(&status) || status == 206 {
                return Err(format!("statuses[{i}]: {status} cannot be cached (200 to 599, not 206)"));
            }
        }
        for (i, name) in config.vary.iter_mut().enumerate() {
            if !is_token(name) || name == "*" {
                return Err(format!("vary[{i}]: `{name}` is not a header name"));
            }
            name.make_ascii_lowercase();
        }
        if !(1..=MAX_ENTRY_BYTES).contains(&config.max_entry_bytes) {
            return Err(format!("`max_entry_bytes` must be 1 to {MAX_ENTRY_BYTES}, got {}", config.max_entry_bytes));
        }
        if config.max_ttl_s == 0 {
            return Err("`max_ttl_s` must be at least 1".into());
        }
        if config.default_ttl_s > config.max_ttl_s {
            return Err(format!(
                "`default_ttl_s` ({}) is above `max_ttl_s` ({})",
                config.default_ttl_s, config.max_ttl_s
            ));
        }
        Ok(Cache(config))
    }

    /// What every request reads comes with the call; the response phase
    /// gets the whole response, body included, to store it.
    fn needs(&self) -> Needs {
        let mut needs = Needs { response: true, response_body: true, ..Needs::default() }
            .prefetch_header("host")
            .prefetch_header("cache-control")
            .prefetch_header("pragma")
            .prefetch_header("authorization")
            .prefetch_var(KEY_VAR)
            .prefetch_var(AUTH_VAR)
            .prefetch_var(IDENTITY_VARS[0])
            .prefetch_var(IDENTITY_VARS[1]);
        for name in &self.0.vary {
            needs = needs.prefetch_header(name.as_str());
        }
        needs
    }

    fn on_request(&self, req: &Request) -> Action {
        let method = req.method();
        if method != "GET" && method != "HEAD" {
            return bypass(req);
        }
        let control = Directives::parse(&req.header_all("cache-control"));
        if control.no_store {
            return bypass(req);
        }
        let Some(key) = key::key(req, &self.0.vary) else {
            return bypass(req);
        };
        // `Pragma: no-cache` counts only without `Cache-Control` (RFC 9111 §5.4).
        let no_cache = control.no_cache
            || (req.header("cache-control").is_none()
                && req
                    .header_all("pragma")
                    .iter()
                    .any(|p| p.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-cache"))));
        let now_ms = clock::now_ms();
        if !no_cache && let Some(reply) = self.lookup(&key, now_ms) {
            metrics::counter_add("cache_hits", 1);
            return reply.into();
        }
        // HEAD is answered from GET's entry, but its own answer has no body
        // to store.
        if method == "GET" {
            req.set_var(KEY_VAR, &key);
            if authenticated(req) {
                req.set_var(AUTH_VAR, "1");
            }
        }
        if no_cache {
            return bypass(req);
        }
        metrics::counter_add("cache_misses", 1);
        req.set_response_header(X_CACHE, "MISS");
        Action::Continue
    }

    fn on_response(&self, req: &Request, resp: &Response) {
        let Some(key) = req.var(KEY_VAR) else {
            return;
        };
        let now_ms = clock::now_ms();
        let Some(entry) = self.storable(req, resp, now_ms) else {
            return;
        };
        let ttl_ms = entry.expires_at_ms - now_ms;
        let Some(bytes) = entry.encode() else {
            return;
        };
        match state::set(&key, bytes, Some(ttl_ms)) {
            Ok(()) => metrics::counter_add("cache_stored", 1),
            Err(e) => {
                metrics::counter_add("cache_errors", 1);
                log::warn(format!("cache: storing {key:?} failed: {e}"));
            }
        }
    }
}

export_plugin!(Cache);

/// Whether the request carries credentials, or an earlier stage
/// authenticated its caller: RFC 9111 §3.5's `Authorization`, widened to
/// the credentials the gateway's own auth plugins take.
fn authenticated(req: &Request) -> bool {
    req.header("authorization").is_some() || IDENTITY_VARS.iter().any(|var| req.var(var).is_some())
}

fn bypass(req: &Request) -> Action {
    metrics::counter_add("cache_bypasses", 1);
    req.set_response_header(X_CACHE, "BYPASS");
    Action::Continue
}

impl Cache {
    /// The fresh entry at `key` as a reply, `Age` and `X-Cache: HIT` added.
    /// A state error is a miss (logged): the upstream still answers.
    fn lookup(&self, key: &str, now_ms: u64) -> Option<Reply> {
        let bytes = match state::get(key) {
            Ok(bytes) => bytes?,
            Err(e) => {
                metrics::counter_add("cache_errors", 1);
                log::warn(format!("cache: reading {key:?} failed: {e}"));
                return None;
            }
        };
        let Some(entry) = Entry::decode(&bytes) else {
            log::debug(format!("cache: {key:?} holds no entry of this version: a miss"));
            return None;
        };
        if entry.expires_at_ms <= now_ms {
            return None;
        }
        let age = entry.age_s.saturating_add(now_ms.saturating_sub(entry.stored_at_ms) / 1000);
        let mut reply = Reply::new(entry.status);
        reply.headers = entry.headers;
        reply.body = entry.body;
        Some(reply.header("age", decimal(age)).header(X_CACHE, "HIT"))
    }

    /// The response as an entry, when a shared cache may store it
    /// (RFC 9111 §3) and this one is configured to: a listed status, no
    /// `no-store`/`private`/`no-cache`, explicit permission when the
    /// request was authorized (§3.5), no `Set-Cookie` unless configured,
    /// `Vary` only on configured headers, a freshness left after its `Age`,
    /// within the size limit.
    fn storable(&self, req: &Request, resp: &Response, now_ms: u64) -> Option<Entry> {
        let status = resp.status();
        if !self.0.statuses.contains(&status) {
            return None;
        }
        let control = Directives::parse(&resp.header_all("cache-control"));
        if control.no_store || control.private || control.no_cache {
            return None;
        }
        if req.var(AUTH_VAR).is_some() && !(control.public || control.s_maxage.is_some() || control.must_revalidate) {
            return None;
        }
        if !self.0.store_set_cookie && resp.header("set-cookie").is_some() {
            return None;
        }
        for value in resp.header_all("vary") {
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.0.vary.iter().any(|v| v.eq_ignore_ascii_case(name)) {
                    log::debug(format!("cache: not stored: it varies on `{name}`, which `vary` does not list"));
                    return None;
                }
            }
        }
        let lifetime = control
            .lifetime(resp.header("expires").as_deref(), resp.header("date").as_deref(), now_ms)
            .unwrap_or(self.0.default_ttl_s)
            .min(self.0.max_ttl_s);
        let age = age_s(resp.header("age").as_deref());
        let fresh_s = lifetime.checked_sub(age).filter(|s| *s > 0)?;
        let headers: Headers = resp
            .headers()
            .into_iter()
            .filter(|(name, _)| !UNSTORED.iter().any(|u| name.eq_ignore_ascii_case(u)))
            .collect();
        let body = resp.body().unwrap_or_default();
        let size = Entry::encoded_len(&headers, body.len());
        if size > self.0.max_entry_bytes {
            log::debug(format!("cache: not stored: {size} bytes, over max_entry_bytes ({})", self.0.max_entry_bytes));
            return None;
        }
        Some(Entry {
            stored_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(fresh_s.saturating_mul(1000)),
            age_s: age,
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests;
