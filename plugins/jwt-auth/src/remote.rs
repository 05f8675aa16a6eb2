//! Keys an identity provider publishes at a JWKS URL (given, or found by
//! OpenID discovery), fetched at run time and shared by every instance.
//!
//! Instances are many and short-lived, so the fetched document lives in the
//! host's shared state, not in an instance: one instance fetches, all use
//! it. Each instance keeps the keys it parsed from the shared document with
//! the document's version (a hash of its text), and parses again only when
//! the version in the shared status changes; it looks at that status at
//! most once per [`CHECK_INTERVAL_NS`], or at once when a token names an
//! unknown `kid`.
//!
//! Shared state, under the plugin's namespace, per source (`<url>` is the
//! JWKS URL, or the issuer's discovery URL):
//!
//! * `jwks/<upstream>/<url>/status`: the [`Status`] JSON, also what the
//!   admin API shows (`/status`, `key_sources`);
//! * `jwks/<upstream>/<url>/doc/<version>`: the raw JWKS text, expiring
//!   when it may no longer be served (refresh time + `max_stale_seconds`);
//! * `jwks/<upstream>/<url>/fetch` and `…/unknown-kid`: one-event-per-window
//!   buckets taken (atomically, across instances) before a fetch, so when a
//!   refresh is due one instance fetches while the others serve the cached
//!   keys, and a flood of unknown `kid`s costs the provider at most one
//!   fetch per `unknown_kid_refresh_seconds`;
//! * `jwks/<upstream>/<url>/announced`: the configure-time warning is logged
//!   once, not once per instance.
//!
//! Should the state backend fail, each instance falls back to its own keys
//! and to its own clock for the fetch limits.

use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::rc::Rc;

use foldhash::fast::FixedState;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::{Deserialize, Serialize};
use wasmgate_sdk::prelude::{clock, log, state};

use crate::fetch::{self, Url};
use crate::keys::{self, Key, KeyConfig};

/// How often an instance looks at the shared status while it has keys: a
/// removed key stops verifying (and cached tokens it verified are dropped)
/// within this long after the shared document changes.
pub const CHECK_INTERVAL_NS: u64 = 1_000_000_000;

/// Bounds on the configured durations, so no arithmetic on them overflows.
const MAX_SECONDS: u64 = 366 * 86_400;
const MAX_FETCH_TIMEOUT_MS: u32 = 60_000;

/// The status outlives the documents so the admin API still shows a source
/// that stopped being fetched (no traffic), and is dropped a while after.
const STATUS_TTL_MS: u64 = 7 * 86_400_000;

/// A state the status document can be in (see the README's failure table).
pub const FRESH: &str = "fresh";
pub const STALE: &str = "stale";
pub const FAILING: &str = "failing";
pub const NEVER_FETCHED: &str = "never-fetched";

/// The shared record of one key source: what the instances coordinate on,
/// and what an operator would want to see. `state` is as of `updated_ms`;
/// a reader later than `refresh_at_ms` should read `fresh` as `stale`, and
/// once `expires_at_ms` has passed there are no keys (`failing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub source: String,
    pub upstream: String,
    pub state: String,
    /// Hash of the JWKS text being served, naming its `doc/<version>`.
    pub version: Option<String>,
    /// Keys usable with the algorithms of the instance that fetched.
    pub keys: usize,
    pub updated_ms: u64,
    /// The last fetch attempt, and the last successful one.
    pub last_fetch_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    /// When the keys are due for a refresh (the provider's `max-age`
    /// within the configured bounds).
    pub refresh_at_ms: Option<u64>,
    /// When the keys stop being served if no refresh succeeds.
    pub expires_at_ms: Option<u64>,
    /// Why the last fetch failed; set for the whole outage, which is how
    /// the failure is logged once rather than per request.
    pub error: Option<String>,
}

/// One `jwks_url` or `issuer_discovery` key entry, with this instance's
/// copy of its keys.
#[derive(Debug)]
pub struct Source {
    what: What,
    upstream: String,
    algorithms: Vec<Algorithm>,
    timing: Timing,
    /// The state key prefix: `jwks/<upstream>/<url>`.
    key: String,
    local: RefCell<Local>,
    /// Bumped each time this instance's keys change, so the token cache
    /// can drop tokens verified with keys that may be gone.
    generation: Cell<u64>,
}

#[derive(Debug)]
enum What {
    Jwks(Url),
    Discovery(Url),
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    min_refresh_ms: u64,
    max_refresh_ms: u64,
    max_stale_ms: u64,
    unknown_kid_ms: u64,
    retry_ms: u64,
    fetch_timeout_ms: u32,
}

#[derive(Debug, Default)]
struct Local {
    version: Option<String>,
    keys: Rc<Vec<Key>>,
    checked_ns: Option<u64>,
    /// Fallbacks for the shared fetch limits, should the state fail.
    last_fetch_ns: Option<u64>,
    last_unknown_kid_ns: Option<u64>,
}

/// Which fetch limit applies.
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// First fetch, refresh due, or retry after a failure.
    Schedule,
    UnknownKid,
}

impl Source {
    /// Checks a key entry that has `jwks_url` or `issuer_discovery`; `name`
    /// (`keys[2]`) starts its errors.
    pub fn new(name: &str, config: KeyConfig, issuers: &[String]) -> Result<Source, String> {
        let fixed =
            [config.secret.is_some(), config.secret_base64.is_some(), config.pem.is_some(), config.jwks.is_some()];
        if fixed.contains(&true) || (config.jwks_url.is_some() && config.issuer_discovery) {
            return Err(format!(
                "{name}: give exactly one of `secret`, `secret_base64`, `pem`, `jwks`, `jwks_url` or `issuer_discovery`"
            ));
        }
        if config.kid.is_some() {
            return Err(format!("{name}: `kid` cannot be set on a fetched JWKS: each JWK carries its own"));
        }
        if let Some(alg) = config.algorithms.iter().find(|alg| alg.family() == AlgorithmFamily::Hmac) {
            return Err(format!(
                "{name}: {alg:?} is not accepted for fetched keys: an HMAC secret is never published in a JWKS"
            ));
        }
        let what = match (config.jwks_url, config.issuer) {
            (Some(url), None) => What::Jwks(Url::parse(&url).map_err(|e| format!("{name}: `jwks_url` {e}"))?),
            (Some(_), Some(_)) => return Err(format!("{name}: `issuer` only applies with `issuer_discovery = true`")),
            (None, issuer) => {
                let issuer = match (issuer, issuers) {
                    (Some(issuer), _) => issuer,
                    (None, [only]) => only.clone(),
                    (None, _) => {
                        return Err(format!(
                            "{name}: `issuer_discovery` needs the `issuer` to discover (or `issuers` listing exactly one)"
                        ));
                    }
                };
                What::Discovery(Url::parse(&issuer).map_err(|e| format!("{name}: `issuer` {e}"))?)
            }
        };
        let upstream = config.upstream.filter(|u| !u.is_empty()).ok_or_else(|| {
            format!("{name}: `upstream` is required: the gateway upstream that reaches {}", what.url().origin)
        })?;
        let seconds = |field: &str, value: Option<u64>, default: u64| -> Result<u64, String> {
            match value.unwrap_or(default) {
                0 => Err(format!("{name}: `{field}` must be at least 1")),
                s if s > MAX_SECONDS => Err(format!("{name}: `{field}` must be at most {MAX_SECONDS}")),
                s => Ok(s * 1000),
            }
        };
        let timing = Timing {
            min_refresh_ms: seconds("min_refresh_seconds", config.min_refresh_seconds, 60)?,
            max_refresh_ms: seconds("max_refresh_seconds", config.max_refresh_seconds, 600)?,
            max_stale_ms: seconds("max_stale_seconds", config.max_stale_seconds, 86_400)?,
            unknown_kid_ms: seconds("unknown_kid_refresh_seconds", config.unknown_kid_refresh_seconds, 30)?,
            retry_ms: seconds("retry_seconds", config.retry_seconds, 10)?,
            fetch_timeout_ms: config.fetch_timeout_ms.unwrap_or(5_000),
        };
        if timing.min_refresh_ms > timing.max_refresh_ms {
            return Err(format!("{name}: `min_refresh_seconds` is more than `max_refresh_seconds`"));
        }
        if !(1..=MAX_FETCH_TIMEOUT_MS).contains(&timing.fetch_timeout_ms) {
            return Err(format!("{name}: `fetch_timeout_ms` must be between 1 and {MAX_FETCH_TIMEOUT_MS}"));
        }
        // A refresh (two requests with discovery) must be over before the
        // next instance may start one.
        if timing.retry_ms < 2 * u64::from(timing.fetch_timeout_ms) {
            return Err(format!("{name}: `retry_seconds` must be at least twice `fetch_timeout_ms`"));
        }
        let key = format!("jwks/{upstream}/{}", what.state_url());
        Ok(Source {
            what,
            upstream,
            algorithms: config.algorithms,
            timing,
            key,
            local: RefCell::default(),
            generation: Cell::new(0),
        })
    }

    /// The status key, relative to the plugin's namespace.
    pub fn status_key(&self) -> String {
        format!("{}/status", self.key)
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// This instance's keys (none before the first fetch, or once they
    /// are past `max_stale_seconds`).
    pub fn keys(&self) -> Rc<Vec<Key>> {
        self.local.borrow().keys.clone()
    }

    /// How long a client should wait before trying again when this source
    /// has no keys.
    pub fn retry_seconds(&self) -> u64 {
        self.timing.retry_ms / 1000
    }

    /// Called from `configure`, which never fetches (the gateway must start
    /// while the provider is down): when no instance has fetched yet, warns
    /// once that keys come with the first request, and records the source
    /// as never fetched for the admin API.
    pub fn announce(&self) {
        if !matches!(self.read_status(), Ok(None)) {
            return;
        }
        if state::increment(&format!("{}/announced", self.key), 1, STATUS_TTL_MS) != Ok(1) {
            return;
        }
        log::warn(format!(
            "jwt-auth: keys from {} (upstream `{}`) are fetched when the first token arrives; \
             until they are, requests with a token get 503",
            self.what.describe(),
            self.upstream
        ));
        self.write_status(&self.blank_status(clock::now_ms()));
    }

    /// Brings this instance's keys in line with the shared status, and
    /// refreshes them if they are due (or missing) and no other instance
    /// is at it. Without `force`, at most once per [`CHECK_INTERVAL_NS`].
    pub fn sync(&self, force: bool) {
        let now_ns = clock::monotonic_ns();
        {
            let mut local = self.local.borrow_mut();
            let recent = local.checked_ns.is_some_and(|t| now_ns.saturating_sub(t) < CHECK_INTERVAL_NS);
            if recent && !force {
                return;
            }
            local.checked_ns = Some(now_ns);
        }
        let now = clock::now_ms();
        let status = match self.read_status() {
            Ok(status) => status,
            Err(e) => {
                log::debug(format!("jwt-auth: keys from {}: state unavailable: {e}", self.what.describe()));
                if self.local.borrow().keys.is_empty() {
                    self.refresh(None, Reason::Schedule);
                }
                return;
            }
        };
        let serving = status.as_ref().filter(|s| s.expires_at_ms.is_some_and(|t| now < t));
        self.adopt(serving.and_then(|s| s.version.clone()));
        let due = serving.is_none_or(|s| s.refresh_at_ms.is_none_or(|t| now >= t));
        if due {
            self.refresh(status, Reason::Schedule);
        }
    }

    /// A token named a `kid` no key has: the provider may have rotated.
    /// Fetches once, unless a fetch for this reason happened within
    /// `unknown_kid_refresh_seconds` (on any instance). A source without
    /// keys is left to [`sync`](Self::sync)'s retries: it has nothing to
    /// rotate.
    pub fn refresh_for_unknown_kid(&self) {
        if self.local.borrow().keys.is_empty() {
            return;
        }
        let status = self.read_status().ok().flatten();
        self.refresh(status, Reason::UnknownKid);
    }

    /// Takes the shared fetch slot for `reason`, then fetches; the result
    /// (keys, or the failure) goes into the shared state and this
    /// instance.
    fn refresh(&self, previous: Option<Status>, reason: Reason) {
        if !self.claim(reason) {
            return;
        }
        let now = clock::now_ms();
        let mut status = previous.unwrap_or_else(|| self.blank_status(now));
        status.updated_ms = now;
        status.last_fetch_ms = Some(now);
        match self.fetch() {
            Ok((text, set, max_age_seconds)) => {
                let version = version_of(&text);
                let t = self.timing;
                let fresh_ms = max_age_seconds
                    .map_or(t.max_refresh_ms, |s| s.saturating_mul(1000))
                    .clamp(t.min_refresh_ms, t.max_refresh_ms);
                let lifetime_ms = fresh_ms + t.max_stale_ms;
                if let Err(e) = state::set(&format!("{}/doc/{version}", self.key), &text, Some(lifetime_ms)) {
                    log::warn(format!("jwt-auth: keys from {}: cannot share them: {e}", self.what.describe()));
                }
                if status.error.is_some() {
                    log::info(format!(
                        "jwt-auth: keys from {} are back ({} keys) after: {}",
                        self.what.describe(),
                        set.keys.len(),
                        status.error.as_deref().unwrap_or_default()
                    ));
                }
                if status.version.as_deref() != Some(version.as_str()) {
                    for reason in set.skipped.iter().chain(&set.invalid) {
                        log::warn(format!("jwt-auth: skipping {reason}"));
                    }
                }
                status = Status {
                    state: FRESH.into(),
                    version: Some(version.clone()),
                    keys: set.keys.len(),
                    last_success_ms: Some(now),
                    refresh_at_ms: Some(now + fresh_ms),
                    expires_at_ms: Some(now + lifetime_ms),
                    error: None,
                    ..status
                };
                self.write_status(&status);
                self.install(Some(version), set.keys.into_iter().map(|(_, key)| key).collect());
            }
            Err(error) => {
                let serving = status.version.is_some() && status.expires_at_ms.is_some_and(|t| now < t);
                if status.error.is_none() {
                    let fallback = match status.expires_at_ms {
                        Some(t) if serving => {
                            format!("serving the keys fetched before for up to {} s more", (t - now) / 1000)
                        }
                        _ => "no keys to serve: requests with a token get 503".into(),
                    };
                    log::error(format!("jwt-auth: fetching keys failed: {error}; {fallback}"));
                }
                status.state = if serving { STALE } else { FAILING }.into();
                status.error = Some(error);
                self.write_status(&status);
            }
        }
    }

    /// The JWKS text, its usable keys and its `max-age`, or why there are
    /// none.
    fn fetch(&self) -> Result<(String, keys::JwkSet, Option<u64>), String> {
        let timeout = self.timing.fetch_timeout_ms;
        let url = match &self.what {
            What::Jwks(url) => url.clone(),
            What::Discovery(issuer) => fetch::discover(&self.upstream, issuer, timeout)?,
        };
        let document = fetch::get(&self.upstream, &url, timeout)?;
        let set = keys::parse_jwks(&url.text, &document.text, &self.algorithms)
            .map_err(|e| format!("GET {}: the document {e}", url.text))?;
        if set.keys.is_empty() {
            let left_out: Vec<String> = set.skipped.iter().chain(&set.invalid).take(3).cloned().collect();
            return Err(format!("GET {}: the document {}", url.text, keys::no_usable_key(&self.algorithms, &left_out)));
        }
        Ok((document.text, set, document.max_age_seconds))
    }

    /// Whether this instance may fetch now for `reason`: one event per
    /// window, shared by all instances; this instance's own clock if the
    /// state cannot say.
    fn claim(&self, reason: Reason) -> bool {
        let (suffix, window_ms) = match reason {
            Reason::Schedule => ("fetch", self.timing.retry_ms),
            Reason::UnknownKid => ("unknown-kid", self.timing.unknown_kid_ms),
        };
        let now_ns = clock::monotonic_ns();
        let mut local = self.local.borrow_mut();
        let last = match reason {
            Reason::Schedule => &mut local.last_fetch_ns,
            Reason::UnknownKid => &mut local.last_unknown_kid_ns,
        };
        let allowed = match state::take(&format!("{}/{suffix}", self.key), 1, window_ms, 1, 1) {
            Ok(decision) => decision.allowed,
            Err(_) => last.is_none_or(|t| now_ns.saturating_sub(t) >= window_ms * 1_000_000),
        };
        if allowed {
            *last = Some(now_ns);
        }
        allowed
    }

    /// Makes `version` this instance's keys, reading and parsing the shared
    /// document only if it is not the one already parsed.
    fn adopt(&self, version: Option<String>) {
        if self.local.borrow().version == version {
            return;
        }
        let keys = match &version {
            None => Vec::new(),
            Some(v) => match state::get(&format!("{}/doc/{v}", self.key)) {
                Ok(Some(bytes)) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let set = keys::parse_jwks(&self.what.describe(), &text, &self.algorithms).unwrap_or_default();
                    set.keys.into_iter().map(|(_, key)| key).collect()
                }
                // Expired between the two reads: no keys, as the status
                // will say.
                Ok(None) => Vec::new(),
                Err(_) => return,
            },
        };
        self.install(version, keys);
    }

    fn install(&self, version: Option<String>, keys: Vec<Key>) {
        let mut local = self.local.borrow_mut();
        if local.version == version && version.is_some() {
            return;
        }
        local.version = version;
        local.keys = Rc::new(keys);
        self.generation.set(self.generation.get() + 1);
    }

    fn read_status(&self) -> Result<Option<Status>, String> {
        Ok(state::get(&self.status_key())?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    fn write_status(&self, status: &Status) {
        let now = clock::now_ms();
        let ttl = status.expires_at_ms.map_or(0, |t| t.saturating_sub(now)).max(STATUS_TTL_MS);
        let json = serde_json::to_vec(status).unwrap_or_default();
        if let Err(e) = state::set(&self.status_key(), json, Some(ttl)) {
            log::debug(format!("jwt-auth: keys from {}: cannot record their status: {e}", self.what.describe()));
        }
    }

    fn blank_status(&self, now: u64) -> Status {
        Status {
            source: self.what.describe(),
            upstream: self.upstream.clone(),
            state: NEVER_FETCHED.into(),
            version: None,
            keys: 0,
            updated_ms: now,
            last_fetch_ms: None,
            last_success_ms: None,
            refresh_at_ms: None,
            expires_at_ms: None,
            error: None,
        }
    }
}

impl What {
    fn url(&self) -> &Url {
        match self {
            What::Jwks(url) | What::Discovery(url) => url,
        }
    }

    /// The URL the source is known by in the state keys.
    fn state_url(&self) -> String {
        match self {
            What::Jwks(url) => url.text.clone(),
            What::Discovery(issuer) => {
                format!("{}/.well-known/openid-configuration", issuer.text.trim_end_matches('/'))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            What::Jwks(url) => url.text.clone(),
            What::Discovery(issuer) => format!("{} (OpenID discovery)", issuer.text),
        }
    }
}

/// A version for the document's text, the same in every instance.
fn version_of(text: &str) -> String {
    format!("{:016x}", FixedState::with_seed(0x6a77_6b73).hash_one(text))
}
