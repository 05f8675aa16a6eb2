//! Keys fetched from an identity provider: the mock host's scripted fetches
//! play the provider, and several plugins configured in one test are
//! several instances sharing the mock host's state.

use std::cell::RefCell;
use std::rc::Rc;

use wasmgate_sdk::LogLevel;
use wasmgate_sdk::host::http::{FetchError, OutboundResponse};

use super::*;

const JWKS_URL: &str = "https://idp.example.com/keys/jwks.json";
const STATUS_KEY: &str = "jwks/idp/https://idp.example.com/keys/jwks.json/status";
const ISSUER: &str = "https://sso.example.com/realms/main";

/// What the scripted provider answers; tests change it as they go.
struct Idp {
    keys: Vec<String>,
    /// Overrides the JWKS answer (a failure, garbage).
    answer: Option<Result<OutboundResponse, FetchError>>,
    cache_control: Option<String>,
    /// The `issuer` and `jwks_uri` of the discovery document.
    discovery: (String, String),
}

type Shared = Rc<RefCell<Idp>>;

fn jwk(key: &ES256KeyPair) -> String {
    key.public_key().to_jwk()
}

fn idp(keys: &[&ES256KeyPair]) -> Shared {
    let idp = Rc::new(RefCell::new(Idp {
        keys: keys.iter().map(|key| jwk(key)).collect(),
        answer: None,
        cache_control: None,
        discovery: (ISSUER.into(), "https://sso.example.com/realms/main/certs".into()),
    }));
    let script = idp.clone();
    testing::on_fetch(move |req| {
        let idp = script.borrow();
        if req.path.ends_with("/.well-known/openid-configuration") {
            let (issuer, jwks_uri) = &idp.discovery;
            return Ok(OutboundResponse::new(200, json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string()));
        }
        if let Some(answer) = &idp.answer {
            return answer.clone();
        }
        let mut response = OutboundResponse::new(200, format!(r#"{{"keys": [{}]}}"#, idp.keys.join(",")));
        if let Some(value) = &idp.cache_control {
            response.headers.push(("cache-control".into(), value.clone().into_bytes()));
        }
        Ok(response)
    });
    idp
}

fn es256(kid: &str) -> ES256KeyPair {
    ES256KeyPair::generate().with_key_id(kid)
}

fn token(key: &ES256KeyPair) -> String {
    key.sign(claims(json!({"sub": "alice", "exp": NOW + 3_600}))).unwrap()
}

fn remote_config(extra: Value) -> String {
    let mut entry = json!({"jwks_url": JWKS_URL, "upstream": "idp", "algorithms": ["ES256"]});
    merge(&mut entry, extra);
    json!({"keys": [entry]}).to_string()
}

fn status() -> Value {
    let bytes = state::get(STATUS_KEY).unwrap().expect("a status document");
    serde_json::from_slice(&bytes).unwrap()
}

fn logged(level: LogLevel, text: &str) -> usize {
    testing::logs().iter().filter(|(l, line)| *l == level && line.contains(text)).count()
}

/// Asserts the 503 a request gets when there are no keys to check with.
fn assert_unavailable(plugin: &JwtAuth, token: &str) {
    let reply = run(plugin, &bearer(token)).expect("the request should be refused");
    assert_eq!(reply.status, 503, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(header(&reply, "content-type"), "application/problem+json");
    assert!(header(&reply, "retry-after").parse::<u64>().is_ok());
    assert!(reply.header_value("www-authenticate").is_none(), "not the client's fault");
}

#[test]
fn keys_are_fetched_once_and_shared_by_every_instance() {
    let key = es256("k1");
    idp(&[&key]);
    let instances: Vec<JwtAuth> = (0..3).map(|_| plugin(&remote_config(json!({})))).collect();
    assert!(testing::fetches().is_empty(), "configure never fetches");
    assert_eq!(logged(LogLevel::Warn, "are fetched when the first token arrives"), 1, "warned once, not per instance");
    assert_eq!(status()["state"], "never-fetched");

    for plugin in &instances {
        assert_accepted(plugin, &token(&key));
    }
    let fetches = testing::fetches();
    assert_eq!(fetches.len(), 1, "one fetch for all instances");
    assert_eq!((fetches[0].upstream.as_str(), fetches[0].path.as_str()), ("idp", "/keys/jwks.json"));
    assert!(fetches[0].headers.contains(&("host".into(), b"idp.example.com".to_vec())));
    let status = status();
    assert_eq!((status["state"].as_str(), status["keys"].as_u64()), (Some("fresh"), Some(1)));
    assert_eq!(status["last_success_ms"], testing::now_ms());

    assert_invalid(&instances[0], &es256("k1").sign(claims(alice())).unwrap(), "invalid signature");
}

#[test]
fn the_refresh_follows_max_age_within_the_bounds() {
    let key = es256("k1");
    let bounds = json!({"min_refresh_seconds": 60, "max_refresh_seconds": 600});
    for (cache_control, fresh_seconds) in
        [(None, 600), (Some("public, max-age=120"), 120), (Some("max-age=5"), 60), (Some("max-age=86400"), 600)]
    {
        testing::reset();
        idp(&[&key]).borrow_mut().cache_control = cache_control.map(str::to_owned);
        let plugin = plugin(&remote_config(bounds.clone()));
        assert_accepted(&plugin, &token(&key));
        let status = status();
        let expected = testing::now_ms() + fresh_seconds * 1000;
        assert_eq!(status["refresh_at_ms"], expected, "{cache_control:?}");
        assert_eq!(status["expires_at_ms"], expected + 86_400_000, "{cache_control:?}");

        testing::advance_ms(fresh_seconds * 1000 - 1);
        assert_accepted(&plugin, &token(&key));
        assert_eq!(testing::fetches().len(), 1, "{cache_control:?}: not due yet");
        // An instance looks at the shared status once a second.
        testing::advance_ms(1_000);
        assert_accepted(&plugin, &token(&key));
        assert_eq!(testing::fetches().len(), 2, "{cache_control:?}: due, even for a cached token");
    }
}

#[test]
fn when_a_refresh_is_due_one_instance_fetches_and_the_others_serve_the_cached_keys() {
    let key = es256("k1");
    idp(&[&key]);
    let instances: Vec<JwtAuth> = (0..4).map(|_| plugin(&remote_config(json!({})))).collect();
    assert_accepted(&instances[0], &token(&key));
    testing::advance_ms(600_000);
    // The provider hangs: the fetch this round costs is a timeout.
    testing::on_fetch(|_| Err(FetchError::Timeout));
    for plugin in &instances {
        assert_accepted(plugin, &token(&key));
    }
    assert_eq!(testing::fetches().len(), 2, "one refresh attempt for all instances");
    assert_eq!(status()["state"], "stale");
}

#[test]
fn a_rotated_key_is_fetched_once_and_a_flood_of_unknown_kids_is_rate_limited() {
    let (old, new) = (es256("old"), es256("new"));
    let idp = idp(&[&old]);
    let plugin = plugin(&remote_config(json!({"unknown_kid_refresh_seconds": 30})));
    assert_accepted(&plugin, &token(&old));

    idp.borrow_mut().keys = vec![jwk(&old), jwk(&new)];
    assert_accepted(&plugin, &token(&new));
    assert_eq!(testing::fetches().len(), 2, "the new kid cost one fetch");

    for i in 0..1_000 {
        assert_invalid(&plugin, &token(&es256(&format!("random-{i}"))), "unknown key id `random-");
    }
    assert_eq!(testing::fetches().len(), 2, "no fetch within 30 s of the last one for an unknown kid");
    testing::advance_ms(30_000);
    assert_invalid(&plugin, &token(&es256("random")), "unknown key id `random`");
    assert_eq!(testing::fetches().len(), 3, "one more once the window has passed");
}

#[test]
fn a_key_the_provider_removed_stops_verifying_even_cached_tokens() {
    let (old, new) = (es256("old"), es256("new"));
    let idp = idp(&[&old, &new]);
    let plugin = plugin(&remote_config(json!({})));
    let old_token = token(&old);
    assert_accepted(&plugin, &old_token);
    assert_eq!(cached(&plugin), 1);

    idp.borrow_mut().keys = vec![jwk(&new)];
    testing::advance_ms(600_000);
    assert_accepted(&plugin, &token(&new));
    assert_eq!(testing::fetches().len(), 2);
    assert_invalid(&plugin, &old_token, "unknown key id `old`");
}

#[test]
fn without_keys_requests_get_503_and_the_outage_is_logged_once() {
    let key = es256("k1");
    let idp = idp(&[&key]);
    idp.borrow_mut().answer = Some(Err(FetchError::Unavailable("connection refused".into())));
    let plugin = plugin(&remote_config(json!({"retry_seconds": 10})));
    for _ in 0..5 {
        assert_unavailable(&plugin, &token(&key));
        testing::advance_ms(10_000);
    }
    assert_eq!(testing::fetches().len(), 5, "one attempt per retry_seconds");
    assert_eq!(logged(LogLevel::Error, "connection refused; no keys to serve"), 1, "{:?}", testing::logs());
    let status = status();
    assert_eq!(status["state"], "failing");
    assert_eq!(status["error"], format!("GET {JWKS_URL}: unavailable: connection refused"));

    idp.borrow_mut().answer = None;
    assert_accepted(&plugin, &token(&key));
    assert_eq!(logged(LogLevel::Info, "are back (1 keys)"), 1);
    assert_eq!(self::status()["state"], "fresh");
    let reply = run(&plugin, &TestRequest::new("GET", "/")).unwrap();
    assert_eq!(reply.status, 401, "no token is still 401");
}

#[test]
fn the_last_good_keys_serve_through_an_outage_up_to_max_stale() {
    let key = es256("k1");
    let idp = idp(&[&key]);
    let plugin = plugin(&remote_config(json!({"max_refresh_seconds": 600, "max_stale_seconds": 3600})));
    assert_accepted(&plugin, &token(&key));

    let huge = format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(fetch::MAX_DOCUMENT_BYTES));
    let garbage = [
        (Ok(OutboundResponse::new(500, "oops")), "answered 500"),
        (Ok(OutboundResponse::new(200, "<html>")), "the document is not a JWK Set"),
        (Ok(OutboundResponse::new(200, r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)), "no signing key usable"),
        (Ok(OutboundResponse::new(200, huge)), "more than the 262144 accepted"),
        (Err(FetchError::Timeout), "timeout"),
    ];
    testing::advance_ms(600_000);
    for (answer, why) in garbage {
        idp.borrow_mut().answer = Some(answer);
        let fresh = token(&key);
        assert_accepted(&plugin, &fresh);
        assert_eq!(status()["state"], "stale");
        assert!(status()["error"].as_str().unwrap().contains(why), "{} should say {why}", status()["error"]);
        testing::advance_ms(10_000);
    }
    assert_eq!(logged(LogLevel::Error, "fetching keys failed"), 1, "one line for the whole outage");
    assert_eq!(logged(LogLevel::Error, "serving the keys fetched before"), 1);

    // The keys stop serving max_stale_seconds past their refresh time.
    testing::set_now_ms(NOW * 1000 + 600_000 + 3_600_000 - 1);
    testing::advance_ms(1_000);
    assert_unavailable(&plugin, &key.sign(claims(json!({"sub": "bob", "exp": NOW + 10_000}))).unwrap());
}

#[test]
fn issuer_discovery_finds_the_jwks_on_the_issuers_origin() {
    let key = es256("k1");
    idp(&[&key]);
    let config =
        json!({"issuers": [ISSUER], "keys": [{"issuer_discovery": true, "upstream": "sso", "algorithms": ["ES256"]}]});
    let plugin = plugin(&config.to_string());
    assert_accepted(&plugin, &key.sign(claims(json!({"sub": "a", "iss": ISSUER, "exp": NOW + 60}))).unwrap());
    let paths: Vec<String> = testing::fetches().iter().map(|f| format!("{} {}", f.upstream, f.path)).collect();
    assert_eq!(paths, ["sso /realms/main/.well-known/openid-configuration", "sso /realms/main/certs"]);

    for (discovery, why) in [
        ((ISSUER, "https://elsewhere.example.com/certs"), "is not on the issuer's origin"),
        (("https://sso.example.com/realms/other", "https://sso.example.com/certs"), "is for issuer"),
    ] {
        testing::reset();
        idp(&[&key]).borrow_mut().discovery = (discovery.0.into(), discovery.1.into());
        let plugin = self::plugin(&config.to_string());
        assert_unavailable(&plugin, &token(&key));
        let status_key = "jwks/sso/https://sso.example.com/realms/main/.well-known/openid-configuration/status";
        let status: Value = serde_json::from_slice(&state::get(status_key).unwrap().unwrap()).unwrap();
        assert!(status["error"].as_str().unwrap().contains(why), "{status}");
    }
}

#[test]
fn shared_state_failures_fall_back_to_the_instances_own_keys_and_limits() {
    let key = es256("k1");
    idp(&[&key]);
    let plugin = plugin(&remote_config(json!({})));
    testing::fail_state(Some("redis: connection refused"));
    assert_accepted(&plugin, &token(&key));
    for i in 0..100 {
        assert_invalid(&plugin, &token(&es256(&format!("r{i}"))), "unknown key id");
    }
    assert_eq!(testing::fetches().len(), 2, "the first fetch, then one for the unknown kids");
}

#[test]
fn remote_key_entries_are_checked_at_load() {
    let entry = |extra: Value| {
        let mut entry = json!({"jwks_url": JWKS_URL, "upstream": "idp", "algorithms": ["ES256"]});
        merge(&mut entry, extra);
        config_error(json!({"keys": [entry]}))
    };
    for (extra, why) in [
        (
            json!({"upstream": null}),
            "keys[0]: `upstream` is required: the gateway upstream that reaches https://idp.example.com",
        ),
        (json!({"algorithms": ["HS256"]}), "HS256 is not accepted for fetched keys"),
        (json!({"jwks_url": "ftp://idp/keys"}), "`jwks_url` \"ftp://idp/keys\" is not an http:// or https:// URL"),
        (json!({"pem": "x"}), "give exactly one of"),
        (json!({"issuer_discovery": true}), "give exactly one of"),
        (json!({"kid": "k"}), "`kid` cannot be set on a fetched JWKS"),
        (json!({"issuer": ISSUER}), "`issuer` only applies with `issuer_discovery = true`"),
        (json!({"min_refresh_seconds": 700}), "`min_refresh_seconds` is more than `max_refresh_seconds`"),
        (json!({"max_stale_seconds": 0}), "`max_stale_seconds` must be at least 1"),
        (json!({"retry_seconds": 100_000_000}), "`retry_seconds` must be at most"),
        (json!({"fetch_timeout_ms": 0}), "`fetch_timeout_ms` must be between 1 and 60000"),
        (json!({"retry_seconds": 1, "fetch_timeout_ms": 5000}), "at least twice `fetch_timeout_ms`"),
    ] {
        let err = entry(extra.clone());
        assert!(err.contains(why), "{extra}: {err}");
    }
    let err = config_error(json!({"keys": [{"issuer_discovery": true, "upstream": "sso", "algorithms": ["ES256"]}]}));
    assert!(err.contains("`issuer_discovery` needs the `issuer`"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "upstream": "idp", "algorithms": ["HS256"]}]}));
    assert!(err.contains("keys[0]: `upstream` only applies to keys fetched"), "{err}");
}
