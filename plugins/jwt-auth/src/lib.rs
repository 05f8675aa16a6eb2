//! Verifies `Authorization: Bearer` JSON Web Tokens, forwards the identity
//! they carry to the upstream and enforces per-route roles and scopes.
//!
//! The full config reference is in this crate's README. In short:
//!
//! ```toml
//! [plugins.jwt-auth]
//! path = "../target/plugins/jwt_auth.wasm"
//! config = { issuers = ["https://id.example.com"], keys = [
//!     { jwks = { "$file" = "keys/jwks.json" }, algorithms = ["RS256", "ES256"] },
//!     { jwks_url = "https://id.example.com/jwks.json", upstream = "idp", algorithms = ["RS256"] },
//! ] }
//!
//! [[routes]]
//! pipeline = [{ plugin = "jwt-auth", config = { roles = ["admin"] } }]
//! ```
//!
//! Security properties, each covered by tests:
//! * a token's `alg` header is honoured only if the key it names lists that
//!   algorithm, so `alg: none` and HMAC-with-the-RSA-public-key forgeries
//!   fail;
//! * identity headers the client sent are removed on every request, with or
//!   without a token, so the upstream can trust them;
//! * keys are parsed and checked when the config loads, never per request;
//!   keys fetched from an identity provider ([`remote`]) are parsed once per
//!   instance and document version, never fetched per instance, and a
//!   flood of unknown `kid`s costs the provider at most one fetch per
//!   `unknown_kid_refresh_seconds`;
//! * a token is only served from the cache if every byte of it, signature
//!   included, was verified before, and its `exp`/`nbf` are checked against
//!   the clock on every request all the same.

mod cache;
mod claims;
mod fetch;
mod key_sources;
mod keys;
mod remote;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use wasmgate_sdk::prelude::*;

use cache::TokenCache;
use claims::{ClaimRules, Claims, Window};
use keys::{Key, KeyConfig};
use remote::Source;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    keys: Vec<KeyConfig>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default = "default_required_claims")]
    required_claims: Vec<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    allow_anonymous: bool,
    #[serde(default = "default_user_claim")]
    user_claim: String,
    #[serde(default = "default_role_claim")]
    role_claim: String,
    #[serde(default = "default_user_header")]
    user_header: String,
    #[serde(default = "default_role_header")]
    role_header: String,
    #[serde(default)]
    claim_headers: BTreeMap<String, String>,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default = "default_cache_size")]
    cache_size: u32,
}

fn default_required_claims() -> Vec<String> {
    vec!["exp".into()]
}

fn default_leeway() -> u64 {
    30
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_role_claim() -> String {
    "role".into()
}

fn default_user_header() -> String {
    "x-user-id".into()
}

fn default_role_header() -> String {
    "x-user-role".into()
}

fn default_realm() -> String {
    "wasmgate".into()
}

fn default_cache_size() -> u32 {
    1024
}

#[derive(Debug)]
pub struct JwtAuth {
    keys: Vec<Key>,
    /// Keys fetched at run time, shared through the host's state.
    remote: Vec<Source>,
    /// The sum of the remote sources' generations when the token cache was
    /// last known to hold only tokens verified with the current keys.
    keys_seen: Cell<u64>,
    rules: ClaimRules,
    roles: Vec<String>,
    scopes: Vec<String>,
    allow_anonymous: bool,
    user_claim: String,
    role_claim: String,
    /// Header → claim, including the user and role headers: the client's
    /// own values of these never reach the upstream.
    forwarded: Vec<(String, String)>,
    realm: String,
    /// A `RefCell` is enough: an instance serves one call at a time, on one
    /// thread, and `Plugin` asks for neither `Send` nor `Sync`.
    cache: RefCell<TokenCache<Rc<Grant>>>,
}

impl Plugin for JwtAuth {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        if config.allow_anonymous && !(config.roles.is_empty() && config.scopes.is_empty()) {
            return Err("`allow_anonymous` cannot be combined with `roles` or `scopes`: \
                 an anonymous request has neither"
                .into());
        }
        if !is_quotable(&config.realm) {
            return Err("`realm` must be printable ASCII without `\"` or `\\`".into());
        }
        let mut forwarded = Vec::new();
        for (header, claim, field) in [
            (config.user_header, &config.user_claim, "user_header"),
            (config.role_header, &config.role_claim, "role_header"),
        ] {
            if !header.is_empty() {
                forwarded.push(checked_header(field, header, claim)?);
            }
        }
        for (header, claim) in config.claim_headers {
            forwarded.push(checked_header("claim_headers", header, &claim)?);
        }
        let keys = key_sources::parse_keys(config.keys, &config.issuers)?;
        for source in &keys.remote {
            source.announce();
        }
        Ok(JwtAuth {
            keys: keys.fixed,
            remote: keys.remote,
            keys_seen: Cell::new(0),
            rules: ClaimRules {
                issuers: config.issuers,
                audiences: config.audiences,
                required: config.required_claims,
                leeway_ms: config.leeway_seconds as f64 * 1000.0,
            },
            roles: config.roles,
            scopes: config.scopes,
            allow_anonymous: config.allow_anonymous,
            user_claim: config.user_claim,
            role_claim: config.role_claim,
            forwarded,
            realm: config.realm,
            cache: RefCell::new(TokenCache::new(config.cache_size as usize)),
        })
    }

    /// The token is read on every request.
    fn needs(&self) -> Needs {
        Needs::default().prefetch_header("authorization")
    }

    fn on_request(&self, req: &Request) -> Action {
        match self.admit(req) {
            Ok(Some(grant)) => {
                self.forward(req, &grant);
                Action::Continue
            }
            // No path that skips `forward` lets a client-chosen identity
            // through, not even to an earlier plugin's response phase.
            Ok(None) => {
                self.strip(req);
                Action::Continue
            }
            Err(refusal) => {
                self.strip(req);
                refusal
            }
        }
    }
}

export_plugin!(JwtAuth);

/// Why a request is refused, each with its own status and `error` code
/// (RFC 6750 §3.1).
enum Refusal {
    BadRequest(String),
    InvalidToken(String),
    InsufficientScope(String),
    /// No keys to check the token with: the provider has not answered yet
    /// (or not for `max_stale_seconds`). Not the client's fault, so not 401.
    KeysUnavailable {
        retry_seconds: u64,
    },
}

/// What a verified token gives on this route: all a request needs once the
/// signature is checked, read from the claims once. The cache keeps this
/// rather than the claims, which take several times their JSON size once
/// decoded.
#[derive(Debug)]
struct Grant {
    window: Window,
    /// The roles in `role_claim`.
    roles: Vec<String>,
    scopes: Vec<String>,
    /// One per `forwarded` entry, in order: `None` when the token lacks the
    /// claim, `Some(None)` when its value cannot be sent as a header.
    headers: Vec<Option<Option<String>>>,
    user: Option<String>,
    role: Option<String>,
}

impl JwtAuth {
    /// What the token grants, if its signature verifies with the key its
    /// header names (or this instance verified the very same token before)
    /// and its claims pass the rules now; otherwise why not.
    fn verify(&self, token: &[u8]) -> Result<Rc<Grant>, Refusal> {
        let now = clock::now_ms();
        for source in &self.remote {
            source.sync(false);
        }
        self.forget_tokens_if_keys_changed();
        let cached = self.cache.borrow_mut().get(token, now);
        if let Some(grant) = cached {
            grant.window.check(now).map_err(Refusal::InvalidToken)?;
            return Ok(grant);
        }
        // A cached token was text when it was verified: only a new one
        // needs the check.
        let token = std::str::from_utf8(token).map_err(|_| Refusal::InvalidToken("the token is not text".into()))?;
        let claims = self.verify_signature(token)?;
        let window = self.rules.check(&claims, now).map_err(Refusal::InvalidToken)?;
        let grant = Rc::new(self.grant(&claims, window));
        self.forget_tokens_if_keys_changed();
        self.cache.borrow_mut().insert(token.as_bytes(), grant.clone(), window.deadline_ms, now);
        Ok(grant)
    }

    /// A cached token may have been verified with a key the provider has
    /// since removed: when this instance's fetched keys change, it verifies
    /// every token afresh.
    fn forget_tokens_if_keys_changed(&self) {
        let current = self.remote.iter().map(Source::generation).sum();
        if self.keys_seen.replace(current) != current {
            self.cache.borrow_mut().clear();
        }
    }

    /// The token's claims, not yet checked, if its signature verifies with
    /// the key its header names. A `kid` that no key has may be a key the
    /// provider just rotated in: the fetched keys are brought up to date
    /// (from the shared state, or from the provider, rate-limited) before
    /// the token is refused.
    fn verify_signature(&self, token: &str) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::InvalidToken(unreadable_header(token)))?;
        let kid = header.kid.as_deref();
        let mut fetched: Vec<Rc<Vec<Key>>> = self.remote.iter().map(Source::keys).collect();
        let knows = |fetched: &[Rc<Vec<Key>>]| {
            self.keys.iter().chain(fetched.iter().flat_map(|keys| keys.iter())).any(|key| key.kid.as_deref() == kid)
        };
        if kid.is_some() && !self.remote.is_empty() && !knows(&fetched) {
            for source in &self.remote {
                source.sync(true);
            }
            if !knows(&self.remote.iter().map(Source::keys).collect::<Vec<_>>()) {
                for source in &self.remote {
                    source.refresh_for_unknown_kid();
                }
            }
            fetched = self.remote.iter().map(Source::keys).collect();
        }
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .chain(fetched.iter().flat_map(|keys| keys.iter()))
            .filter(|key| key.kid.as_deref() == kid)
            .collect();
        if candidates.is_empty() {
            // The key may be in a source that has none to offer right now.
            if let Some(source) = self.remote.iter().find(|source| source.keys().is_empty()) {
                return Err(Refusal::KeysUnavailable { retry_seconds: source.retry_seconds() });
            }
            return Err(Refusal::InvalidToken(match kid {
                Some(kid) => format!("unknown key id {}", quoted(kid)),
                None => "the token has no key id (kid)".into(),
            }));
        }
        let alg = header.alg;
        let mut error = format!("algorithm {alg:?} is not accepted for this key");
        for key in candidates.iter().filter(|key| key.algorithms.contains(&alg)) {
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &signature_only(alg)) {
                Ok(data) => return Ok(data.claims),
                Err(e) => error = describe(e.kind()),
            }
        }
        Err(Refusal::InvalidToken(error))
    }

    /// Everything later steps need from the claims is read here, so a
    /// cached token is authorized and forwarded exactly as a fresh one.
    fn grant(&self, claims: &Claims, window: Window) -> Grant {
        let text = |claim: &str| claims::lookup(claims, claim).and_then(claims::header_value);
        Grant {
            window,
            roles: claims::strings(claims::lookup(claims, &self.role_claim)),
            scopes: claims::scopes(claims),
            headers: self
                .forwarded
                .iter()
                .map(|(_, claim)| claims::lookup(claims, claim).map(claims::header_value))
                .collect(),
            user: text(&self.user_claim),
            role: text(&self.role_claim),
        }
    }

    /// Roles: any one of the route's suffices. Scopes: all are needed, as
    /// OAuth scopes grant one permission each.
    fn authorize(&self, grant: &Grant) -> Result<(), Refusal> {
        if !self.roles.is_empty() && !self.roles.iter().any(|role| grant.roles.contains(role)) {
            return Err(Refusal::InsufficientScope(format!("requires one of the roles: {}", self.roles.join(", "))));
        }
        let missing: Vec<&str> =
            self.scopes.iter().filter(|scope| !grant.scopes.contains(scope)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope(format!("missing scope: {}", missing.join(" "))));
        }
        Ok(())
    }

    /// What the request's token grants (`None`: anonymous and allowed), or
    /// the answer refusing it.
    fn admit(&self, req: &Request) -> Result<Option<Rc<Grant>>, Action> {
        let token = match bearer_token(req) {
            Ok(Some(token)) => token,
            Ok(None) if self.allow_anonymous => return Ok(None),
            Ok(None) => return Err(self.missing()),
            Err(description) => return Err(self.refuse(Refusal::BadRequest(description))),
        };
        let grant = self.verify(token.as_bytes()).map_err(|refusal| self.refuse(refusal))?;
        self.authorize(&grant).map_err(|refusal| self.refuse(refusal))?;
        Ok(Some(grant))
    }

    /// Identity headers for the upstream, and the `user` and `role` vars for
    /// later plugins (the rate limiter keys on `user`). Sets each identity
    /// header from the token, and removes the client's copy of each one the
    /// token does not fill. `set_header` replaces
    /// every value, so a filled header needs no removal first: one host
    /// call per header instead of two.
    fn forward(&self, req: &Request, grant: &Grant) {
        let filled = |header: &str| {
            self.forwarded.iter().zip(&grant.headers).any(|((h, _), v)| h == header && matches!(v, Some(Some(_))))
        };
        for ((header, claim), value) in self.forwarded.iter().zip(&grant.headers) {
            match value {
                Some(Some(text)) => req.set_header(header, text),
                Some(None) => log::warn(format!("jwt-auth: claim `{claim}` cannot be sent as header {header}")),
                None => {}
            }
            if !matches!(value, Some(Some(_))) && !filled(header) {
                req.remove_header(header);
            }
        }
        for (var, value) in [("user", &grant.user), ("role", &grant.role)] {
            if let Some(text) = value {
                req.set_var(var, text);
            }
        }
    }

    /// Removes every identity header the client sent.
    fn strip(&self, req: &Request) {
        for (header, _) in &self.forwarded {
            req.remove_header(header);
        }
    }

    /// RFC 6750 §3: a request without credentials gets the challenge
    /// without an error code.
    fn missing(&self) -> Action {
        Reply::problem(401, "Unauthorized", "a bearer token is required")
            .header("www-authenticate", format!("Bearer realm=\"{}\"", self.realm))
            .into()
    }

    fn refuse(&self, refusal: Refusal) -> Action {
        let (status, title, code, description) = match refusal {
            Refusal::KeysUnavailable { retry_seconds } => {
                return Reply::problem(
                    503,
                    "Service Unavailable",
                    "the keys to verify tokens with are not available yet; try again later",
                )
                .header("retry-after", retry_seconds.to_string())
                .into();
            }
            Refusal::BadRequest(d) => (400, "Bad Request", "invalid_request", d),
            Refusal::InvalidToken(d) => (401, "Unauthorized", "invalid_token", d),
            Refusal::InsufficientScope(d) => (403, "Forbidden", "insufficient_scope", d),
        };
        log::debug(format!("jwt-auth: {status} {code}: {description}"));
        let mut challenge = format!(
            "Bearer realm=\"{}\", error=\"{code}\", error_description=\"{}\"",
            self.realm,
            quotable(&description)
        );
        if status == 403 && !self.scopes.is_empty() {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(&self.scopes.join(" "))));
        }
        Reply::problem(status, title, &description).header("www-authenticate", challenge).into()
    }
}

/// `Ok(None)` when there is no bearer token (no `Authorization`, or another
/// scheme such as Basic): that is a missing token, not an invalid one.
fn bearer_token(req: &Request) -> Result<Option<Bearer>, String> {
    let mut values = req.header_all_bytes("authorization");
    if values.len() > 1 {
        return Err("more than one Authorization header".into());
    }
    let Some(value) = values.pop() else {
        return Ok(None);
    };
    // Bytes, not text: a token found in the cache needs no UTF-8 check.
    let trimmed = value.trim_ascii();
    let Some(space) = trimmed.iter().position(|&b| b == b' ') else {
        return Ok(None);
    };
    if !trimmed[..space].eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let token = trimmed[space + 1..].trim_ascii();
    let start = token.as_ptr() as usize - value.as_ptr() as usize;
    let token = start..start + token.len();
    Ok(Some(Bearer { value, token }))
}

/// A bearer token where it arrived, in the `Authorization` value: no
/// second copy of it, and none moved within it.
struct Bearer {
    value: Vec<u8>,
    token: std::ops::Range<usize>,
}

impl Bearer {
    fn as_bytes(&self) -> &[u8] {
        &self.value[self.token.clone()]
    }
}

/// Signature and algorithm checks only: the claims are checked by
/// [`ClaimRules`] against the host's clock.
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

/// jsonwebtoken refuses a header it cannot read, `alg: none` included,
/// without saying which; reading the `alg` ourselves lets the client know.
fn unreadable_header(token: &str) -> String {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) => format!("algorithm {} is not supported", quoted(&alg)),
        None => "the token is not a JWT".into(),
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::InvalidAlgorithm => "algorithm not accepted for this key",
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            "the token is malformed"
        }
        _ => "the token could not be verified",
    }
    .into()
}

fn checked_header(field: &str, header: String, claim: &str) -> Result<(String, String), String> {
    let valid = header.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if header.is_empty() || !valid {
        return Err(format!("{field}: `{header}` is not a valid header name"));
    }
    if claim.is_empty() {
        return Err(format!("{field}: the claim for {header} is empty"));
    }
    Ok((header.to_ascii_lowercase(), claim.to_owned()))
}

/// Whether `text` can go inside a quoted-string as is.
fn is_quotable(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// Descriptions quote token contents (a kid) chosen by the client: anything
/// that could break out of the quoted-string is replaced.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}

/// A client-chosen value in a message: backquoted, cut short, made safe.
fn quoted(text: &str) -> String {
    let short: String = text.chars().take(64).collect();
    format!("`{}`", quotable(&short))
}

#[cfg(test)]
mod tests;
