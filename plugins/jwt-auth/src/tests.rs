//! Tokens are minted with jwt-simple (other crypto crates than the
//! plugin's), against the mock host's clock.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use wasmgate_sdk::testing::{self, TestRequest};

use super::*;

mod remote;

/// The mock host's wall clock, in seconds.
const NOW: u64 = 1_700_000_000;
const SECRET: &str = "an-hmac-secret-of-32-bytes-or-so";

static RSA: LazyLock<RS256KeyPair> = LazyLock::new(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"));
static EC: LazyLock<ES256KeyPair> = LazyLock::new(|| ES256KeyPair::generate().with_key_id("ec-1"));
static ED: LazyLock<Ed25519KeyPair> = LazyLock::new(|| Ed25519KeyPair::generate().with_key_id("ed-1"));

/// Claims exactly as given: jwt-simple adds none of its own.
fn claims(body: Value) -> JWTClaims<Map<String, Value>> {
    let mut claims = JWTClaims::new();
    claims.custom = body.as_object().unwrap().clone();
    claims
}

fn alice() -> Value {
    json!({"sub": "alice", "role": "admin", "exp": NOW + 300})
}

fn hs256(body: Value) -> String {
    HS256Key::from_bytes(SECRET.as_bytes()).authenticate(claims(body)).unwrap()
}

/// A token with any header, claims and signature, for the forgeries.
fn raw_token(header: Value, body: Value, signature: &[u8]) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{}", part(&header), part(&body), URL_SAFE_NO_PAD.encode(signature))
}

fn secret_config(extra: Value) -> String {
    let mut config = json!({"keys": [{"secret": SECRET, "algorithms": ["HS256"]}]});
    merge(&mut config, extra);
    config.to_string()
}

fn pem_config(pem: &str, kid: &str, algorithms: Value) -> String {
    json!({"keys": [{"kid": kid, "pem": pem, "algorithms": algorithms}]}).to_string()
}

fn merge(config: &mut Value, extra: Value) {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
}

fn plugin(config: &str) -> JwtAuth {
    testing::configure(config).unwrap()
}

fn bearer(token: &str) -> TestRequest {
    TestRequest::new("GET", "/orders").header("authorization", format!("Bearer {token}"))
}

/// Runs the request and returns the refusal, if any.
fn run(plugin: &JwtAuth, req: &TestRequest) -> Option<Reply> {
    match testing::run_request(plugin, req) {
        Action::Continue => None,
        Action::Respond(reply) => Some(reply),
    }
}

fn header(reply: &Reply, name: &str) -> String {
    String::from_utf8(reply.header_value(name).unwrap().to_vec()).unwrap()
}

/// Asserts a 401 `invalid_token` whose description contains `why`.
fn assert_invalid(plugin: &JwtAuth, token: &str, why: &str) {
    let reply = run(plugin, &bearer(token)).expect("the token should be refused");
    assert_eq!(reply.status, 401, "{}", String::from_utf8_lossy(&reply.body));
    let challenge = header(&reply, "www-authenticate");
    assert!(
        challenge.starts_with(r#"Bearer realm="wasmgate", error="invalid_token", error_description=""#),
        "{challenge}"
    );
    assert!(challenge.contains(why), "{challenge} should say {why:?}");
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
}

fn assert_accepted(plugin: &JwtAuth, token: &str) -> TestRequest {
    let req = bearer(token);
    if let Some(reply) = run(plugin, &req) {
        panic!("refused with {}: {}", reply.status, String::from_utf8_lossy(&reply.body));
    }
    req
}

#[test]
fn a_valid_hs256_token_forwards_the_identity_and_sets_vars() {
    let plugin = plugin(&secret_config(json!({})));
    let req = bearer(&hs256(alice())).header("x-user-id", "mallory").header("X-User-Role", "root");
    assert_eq!(run(&plugin, &req), None);
    let req = req.as_request();
    assert_eq!(req.header_all("x-user-id"), ["alice"]);
    assert_eq!(req.header_all("x-user-role"), ["admin"]);
    assert_eq!(req.var("user").as_deref(), Some("alice"));
    assert_eq!(req.var("role").as_deref(), Some("admin"));
}

#[test]
fn rsa_ec_and_ed25519_keys_from_pem_verify_their_tokens() {
    let rsa_pem = RSA.public_key().to_pem().unwrap();
    let plugin = plugin(&pem_config(&rsa_pem, "rsa-1", json!(["RS256"])));
    assert_accepted(&plugin, &RSA.sign(claims(alice())).unwrap());

    let ps256 = PS256KeyPair::from_der(&RSA.to_der().unwrap()).unwrap().with_key_id("rsa-1");
    let plugin = self::plugin(&pem_config(&rsa_pem, "rsa-1", json!(["RS256", "PS256"])));
    assert_accepted(&plugin, &ps256.sign(claims(alice())).unwrap());

    let plugin = self::plugin(&pem_config(&EC.public_key().to_pem().unwrap(), "ec-1", json!(["ES256"])));
    assert_accepted(&plugin, &EC.sign(claims(alice())).unwrap());

    let plugin = self::plugin(&pem_config(&ED.public_key().to_pem(), "ed-1", json!(["EdDSA"])));
    assert_accepted(&plugin, &ED.sign(claims(alice())).unwrap());
}

#[test]
fn a_jwks_picks_the_key_by_kid() {
    let jwks = format!(
        r#"{{"keys": [{}, {}, {}, {{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}}]}}"#,
        RSA.public_key().with_key_id("rsa-1").to_jwk(),
        EC.public_key().with_key_id("ec-1").to_jwk(),
        ED.public_key().with_key_id("ed-1").to_jwk(),
    );
    let config = json!({"keys": [{"jwks": jwks, "algorithms": ["RS256", "ES256", "EdDSA"]}]});
    let plugin = plugin(&config.to_string());
    assert_eq!(plugin.keys.len(), 3, "the encryption key is skipped");
    assert_accepted(&plugin, &RSA.sign(claims(alice())).unwrap());
    assert_accepted(&plugin, &EC.sign(claims(alice())).unwrap());
    assert_accepted(&plugin, &ED.sign(claims(alice())).unwrap());

    // An ES256 token claiming the RSA key's kid: that key never does ES256.
    let impostor = ES256KeyPair::generate().with_key_id("rsa-1");
    assert_invalid(&plugin, &impostor.sign(claims(alice())).unwrap(), "algorithm ES256 is not accepted");
}

#[test]
fn expiry_and_not_before_allow_the_configured_leeway() {
    let plugin = plugin(&secret_config(json!({"leeway_seconds": 10})));
    let token = hs256(json!({"sub": "alice", "exp": NOW - 5}));
    assert_accepted(&plugin, &token);
    testing::advance_ms(5_000);
    assert_invalid(&plugin, &token, "expired");

    let early = hs256(json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW + 60}));
    assert_invalid(&plugin, &early, "not valid yet");
    testing::advance_ms(45_000);
    assert_accepted(&plugin, &early);
}

#[test]
fn exp_is_required_by_default_and_other_claims_on_request() {
    let plugin = plugin(&secret_config(json!({})));
    assert_invalid(&plugin, &hs256(json!({"sub": "alice"})), "missing required claim `exp`");
    let plugin = self::plugin(&secret_config(json!({"required_claims": ["sub", "tenant"]})));
    assert_accepted(&plugin, &hs256(json!({"sub": "a", "tenant": "t"})));
    assert_invalid(&plugin, &hs256(json!({"sub": "a"})), "missing required claim `tenant`");
}

#[test]
fn issuer_and_audience_must_match_when_configured() {
    let plugin = plugin(&secret_config(json!({
        "issuers": ["https://id.example.com"],
        "audiences": ["orders", "billing"],
    })));
    let with = |iss: &str, aud: Value| hs256(json!({"sub": "a", "exp": NOW + 60, "iss": iss, "aud": aud}));
    assert_accepted(&plugin, &with("https://id.example.com", json!("orders")));
    assert_accepted(&plugin, &with("https://id.example.com", json!(["other", "billing"])));
    assert_invalid(&plugin, &with("https://evil.example.com", json!("orders")), "issuer is not accepted");
    assert_invalid(&plugin, &with("https://id.example.com", json!(["other"])), "not meant for this audience");
    assert_invalid(
        &plugin,
        &hs256(json!({"sub": "a", "exp": NOW + 60, "iss": "https://id.example.com"})),
        "missing required claim `aud`",
    );
}

#[test]
fn a_tampered_token_is_refused() {
    let plugin = plugin(&secret_config(json!({})));
    let token = hs256(alice());
    let mut parts: Vec<&str> = token.split('.').collect();
    let promoted =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"sub": "alice", "role": "root", "exp": NOW + 300})).unwrap());
    parts[1] = &promoted;
    assert_invalid(&plugin, &parts.join("."), "invalid signature");

    let other_key = HS256Key::from_bytes(b"another-secret-of-32-bytes-or-so").authenticate(claims(alice())).unwrap();
    assert_invalid(&plugin, &other_key, "invalid signature");
    assert_invalid(&plugin, "not-a-jwt", "not a JWT");
}

#[test]
fn a_token_that_is_not_text_is_refused_and_the_cached_one_it_resembles_still_passes() {
    let plugin = plugin(&secret_config(json!({})));
    let token = hs256(alice());
    assert_accepted(&plugin, &token);
    let mut bytes = format!("Bearer {token}").into_bytes();
    bytes.push(0xff);
    let reply = run(&plugin, &TestRequest::new("GET", "/orders").header("authorization", &bytes)).expect("refused");
    assert_eq!(reply.status, 401);
    assert!(header(&reply, "www-authenticate").contains("the token is not text"));
    // Spaces around the token (and only ASCII ones) are not part of it.
    let spaced = TestRequest::new("GET", "/orders").header("authorization", format!("  bearer   {token}\t"));
    assert!(run(&plugin, &spaced).is_none(), "the cached token, found by its bytes");
    let wide = TestRequest::new("GET", "/orders").header("authorization", format!("Bearer {token}\u{3000}"));
    assert_eq!(run(&plugin, &wide).expect("refused").status, 401, "a non-ASCII space is part of the token");
}

#[test]
fn tokens_are_matched_to_keys_by_kid() {
    let config = json!({"keys": [
        {"kid": "k1", "secret": SECRET, "algorithms": ["HS256"]},
        {"kid": "k2", "secret": "a-second-secret-of-32-bytes-long", "algorithms": ["HS256"]},
    ]});
    let plugin = plugin(&config.to_string());
    let k2 = HS256Key::from_bytes(b"a-second-secret-of-32-bytes-long").with_key_id("k2");
    assert_accepted(&plugin, &k2.authenticate(claims(alice())).unwrap());

    let k3 = HS256Key::from_bytes(SECRET.as_bytes()).with_key_id("k3\"");
    assert_invalid(&plugin, &k3.authenticate(claims(alice())).unwrap(), "unknown key id `k3'`");
    // Every key has a kid, so a token without one matches none.
    assert_invalid(&plugin, &hs256(alice()), "no key id");
}

#[test]
fn alg_none_is_refused() {
    let plugin = plugin(&secret_config(json!({})));
    let token = raw_token(json!({"alg": "none", "typ": "JWT"}), alice(), b"");
    assert_invalid(&plugin, &token, "algorithm `none` is not supported");
}

#[test]
fn an_hmac_token_keyed_with_the_rsa_public_key_is_refused() {
    let pem = RSA.public_key().to_pem().unwrap();
    let plugin = plugin(&pem_config(&pem, "rsa-1", json!(["RS256"])));
    let forged = HS256Key::from_bytes(pem.as_bytes()).with_key_id("rsa-1").authenticate(claims(alice())).unwrap();
    assert_invalid(&plugin, &forged, "algorithm HS256 is not accepted");

    let err = testing::configure::<JwtAuth>(&pem_config(&pem, "rsa-1", json!(["RS256", "HS256"]))).unwrap_err();
    assert!(err.contains("an RSA key accepts only RS256") && err.contains("not HS256"), "{err}");
    let err = testing::configure::<JwtAuth>(&json!({"keys": [{"secret": pem, "algorithms": ["HS256"]}]}).to_string())
        .unwrap_err();
    assert!(err.contains("`secret` holds a PEM key"), "{err}");
}

#[test]
fn a_missing_token_gets_a_challenge_without_error() {
    let plugin = plugin(&secret_config(json!({"realm": "orders"})));
    for req in
        [TestRequest::new("GET", "/"), TestRequest::new("GET", "/").header("authorization", "Basic YWxpY2U6cHc=")]
    {
        let reply = run(&plugin, &req).unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(header(&reply, "www-authenticate"), r#"Bearer realm="orders""#);
        assert_eq!(header(&reply, "content-type"), "application/problem+json");
    }
    let twice = bearer("a").header("authorization", "Bearer b");
    let reply = run(&plugin, &twice).unwrap();
    assert_eq!(reply.status, 400);
    assert!(header(&reply, "www-authenticate").contains(r#"error="invalid_request""#));
}

#[test]
fn routes_can_require_roles_and_scopes() {
    let plugin = plugin(&secret_config(json!({"roles": ["admin", "ops"]})));
    assert_accepted(&plugin, &hs256(json!({"sub": "a", "role": ["ops"], "exp": NOW + 60})));
    let reply = run(&plugin, &bearer(&hs256(json!({"sub": "a", "role": "user", "exp": NOW + 60})))).unwrap();
    assert_eq!(reply.status, 403);
    let challenge = header(&reply, "www-authenticate");
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains("admin, ops"), "{challenge}");

    let plugin = self::plugin(&secret_config(json!({"scopes": ["orders:read", "orders:write"]})));
    assert_accepted(&plugin, &hs256(json!({"sub": "a", "scope": "orders:write orders:read", "exp": NOW + 60})));
    assert_accepted(&plugin, &hs256(json!({"sub": "a", "scp": ["orders:read", "orders:write"], "exp": NOW + 60})));
    let reply = run(&plugin, &bearer(&hs256(json!({"sub": "a", "scope": "orders:read", "exp": NOW + 60})))).unwrap();
    assert_eq!(reply.status, 403);
    let challenge = header(&reply, "www-authenticate");
    assert!(challenge.contains("missing scope: orders:write"), "{challenge}");
    assert!(challenge.ends_with(r#"scope="orders:read orders:write""#), "{challenge}");
}

#[test]
fn a_header_the_token_does_not_fill_loses_the_clients_value() {
    let plugin = plugin(&secret_config(json!({})));
    let token = hs256(json!({"sub": "alice", "exp": NOW + 300}));
    let req = bearer(&token).header("x-user-id", "mallory").header("x-user-role", "root");
    assert_eq!(run(&plugin, &req), None);
    let req = req.as_request();
    assert_eq!(req.header_all("x-user-id"), ["alice"]);
    assert!(req.header_all("x-user-role").is_empty(), "no role claim: the client's role is removed");
}

#[test]
fn a_refused_request_keeps_no_client_chosen_identity() {
    let plugin = plugin(&secret_config(json!({"roles": ["admin"]})));
    let token = hs256(json!({"sub": "bob", "role": "member", "exp": NOW + 300}));
    let req = bearer(&token).header("x-user-id", "mallory").header("x-user-role", "admin");
    let reply = run(&plugin, &req).expect("refused: not an admin");
    assert_eq!(reply.status, 403);
    assert!(req.as_request().header_all("x-user-id").is_empty());
    assert!(req.as_request().header_all("x-user-role").is_empty());
}

#[test]
fn anonymous_routes_pass_without_a_token_but_never_with_a_bad_one() {
    let plugin = plugin(&secret_config(json!({"allow_anonymous": true})));
    let req = TestRequest::new("GET", "/").header("x-user-id", "admin");
    assert_eq!(run(&plugin, &req), None);
    assert_eq!(req.as_request().header("x-user-id"), None, "spoofed id removed");
    assert_eq!(req.as_request().var("user"), None);

    assert_invalid(&plugin, &hs256(json!({"sub": "a", "exp": NOW - 600})), "expired");
    let req = assert_accepted(&plugin, &hs256(alice()));
    assert_eq!(req.as_request().var("user").as_deref(), Some("alice"));

    let err = testing::configure::<JwtAuth>(&secret_config(json!({"allow_anonymous": true, "roles": ["admin"]})))
        .unwrap_err();
    assert!(err.contains("`allow_anonymous` cannot be combined"), "{err}");
}

#[test]
fn claims_to_forward_are_configurable() {
    let plugin = plugin(&secret_config(json!({
        "user_claim": "email",
        "role_claim": "/realm_access/roles",
        "role_header": "",
        "claim_headers": {"X-Tenant": "tenant", "x-groups": "groups"},
    })));
    let req = bearer(&hs256(json!({
        "sub": "u-1",
        "email": "alice@example.com",
        "tenant": 42,
        "groups": {"not": "text"},
        "realm_access": {"roles": ["admin", "ops"]},
        "exp": NOW + 60,
    })))
    .header("x-tenant", "7")
    .header("x-user-role", "kept: not configured");
    assert_eq!(run(&plugin, &req), None);
    let req = req.as_request();
    assert_eq!(req.header("x-user-id").as_deref(), Some("alice@example.com"));
    assert_eq!(req.header_all("x-tenant"), ["42"]);
    assert_eq!(req.header("x-groups"), None, "objects are not forwarded");
    assert_eq!(req.header("x-user-role").as_deref(), Some("kept: not configured"));
    assert_eq!(req.var("role").as_deref(), Some("admin,ops"));
    assert!(testing::logs()[0].1.contains("claim `groups`"));
}

fn config_error(config: Value) -> String {
    testing::configure::<JwtAuth>(&config.to_string()).unwrap_err()
}

#[test]
fn bad_keys_are_load_errors_naming_the_key() {
    let err = config_error(json!({"keys": [
        {"secret": SECRET, "algorithms": ["HS256"]},
        {"kid": "broken", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "algorithms": ["RS256"]},
    ]}));
    assert!(err.starts_with(r#"keys[1] (kid "broken"): `pem` is not a PEM public key"#), "{err}");

    let err = config_error(json!({"keys": [{"pem": RSA.to_pem().unwrap(), "algorithms": ["RS256"]}]}));
    assert!(err.starts_with("keys[0]: `pem` holds a private key"), "{err}");

    let err = config_error(json!({"keys": [{"secret": "short", "algorithms": ["HS256"]}]}));
    assert!(err.contains("the secret is 5 bytes; HS256 needs at least 32"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "algorithms": ["HS512"]}]}));
    assert!(err.contains("HS512 needs at least 64"), "{err}");

    let err = config_error(json!({"keys": [{"jwks": "{\"keys\": []}", "kid": "x", "algorithms": ["RS256"]}]}));
    assert!(err.contains("`kid` cannot be set on a JWKS entry"), "{err}");
    let err = config_error(json!({"keys": [{"jwks": "{\"keys\": []}", "algorithms": ["RS256"]}]}));
    assert!(err.contains("the JWKS has no signing key usable with RS256"), "{err}");
    let err = config_error(json!({"keys": [{"jwks": "[1]", "algorithms": ["RS256"]}]}));
    assert!(err.starts_with("keys[0]: `jwks` is not a JWK Set"), "{err}");

    let err = config_error(json!({"keys": [{"algorithms": ["HS256"]}]}));
    assert!(err.contains("give exactly one of"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "pem": "x", "algorithms": ["HS256"]}]}));
    assert!(err.contains("give exactly one of"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "algorithms": []}]}));
    assert!(err.contains("`algorithms` must list at least one"), "{err}");
    let err = config_error(json!({"keys": []}));
    assert!(err.contains("`keys` must list at least one key"), "{err}");

    let err = config_error(json!({"keys": [
        {"kid": "same", "secret": SECRET, "algorithms": ["HS256"]},
        {"kid": "same", "secret": SECRET, "algorithms": ["HS256"]},
    ]}));
    assert!(err.contains(r#"kid "same" is already used by keys[0]"#), "{err}");
}

#[test]
fn keys_must_fit_their_algorithms() {
    let err = config_error(
        json!({"keys": [{"kid": "ec", "pem": EC.public_key().to_pem().unwrap(), "algorithms": ["ES384"]}]}),
    );
    assert!(err.contains(r#"keys[0] (kid "ec"): ES384 needs a P-384 key, and this is not one"#), "{err}");

    // jwt-simple refuses to make a key this weak: any 1024-bit modulus will do.
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let n = rsa::BigUint::from(1u8) << 1023usize | rsa::BigUint::from(1u8);
    let small = rsa::RsaPublicKey::new(n, rsa::BigUint::from(65_537u32)).unwrap();
    let pem = small.to_public_key_pem(LineEnding::LF).unwrap();
    let err = config_error(json!({"keys": [{"pem": pem, "algorithms": ["RS256"]}]}));
    assert!(err.contains("the RSA key has 1024 bits"), "{err}");
}

#[test]
fn config_typos_and_unknown_algorithms_name_the_field() {
    let err = config_error(json!({"keys": [{"secret": SECRET, "algorithms": ["none"]}]}));
    assert!(err.starts_with("invalid config: keys[0].algorithms[0]: unknown variant `none`"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "algorithms": ["HS256"]}], "role": ["admin"]}));
    assert!(err.contains("unknown field `role`"), "{err}");
    let err = config_error(json!({"keys": [{"secret": SECRET, "algorithm": ["HS256"]}]}));
    assert!(err.contains("keys[0]") && err.contains("unknown field `algorithm`"), "{err}");
    let err = testing::configure::<JwtAuth>(&secret_config(json!({"user_header": "x user"}))).unwrap_err();
    assert!(err.contains("user_header: `x user` is not a valid header name"), "{err}");
    let err = testing::configure::<JwtAuth>(&secret_config(json!({"cache_size": -1}))).unwrap_err();
    assert!(err.starts_with("invalid config: cache_size: invalid value: integer `-1`"), "{err}");
}

fn cached(plugin: &JwtAuth) -> usize {
    plugin.cache.borrow().len()
}

#[test]
fn a_cached_token_forwards_the_same_identity_again() {
    let mut plugin = plugin(&secret_config(json!({"claim_headers": {"x-tenant": "tenant"}})));
    let token = hs256(json!({"sub": "alice", "role": "admin", "tenant": 7, "exp": NOW + 300}));
    for spoofed in ["mallory", "eve"] {
        let req = bearer(&token).header("x-user-id", spoofed).header("x-tenant", "1");
        assert_eq!(run(&plugin, &req), None);
        let req = req.as_request();
        assert_eq!(req.header_all("x-user-id"), ["alice"]);
        assert_eq!(req.header_all("x-user-role"), ["admin"]);
        assert_eq!(req.header_all("x-tenant"), ["7"]);
        assert_eq!(req.var("user").as_deref(), Some("alice"));
        assert_eq!(req.var("role").as_deref(), Some("admin"));
        assert_eq!(cached(&plugin), 1);
        // Without keys, only a cache hit can accept the token from now on.
        plugin.keys.clear();
    }
}

#[test]
fn a_cached_token_is_refused_once_the_clock_passes_its_time_claims() {
    let plugin = plugin(&secret_config(json!({"leeway_seconds": 10})));
    let token = hs256(json!({"sub": "alice", "exp": NOW + 5}));
    assert_accepted(&plugin, &token);
    testing::advance_ms(14_999);
    assert_accepted(&plugin, &token);
    assert_eq!(cached(&plugin), 1);
    testing::advance_ms(1);
    assert_invalid(&plugin, &token, "expired");
    assert_eq!(cached(&plugin), 0, "an expired token is evicted when met");

    // A clock stepped back (NTP) before `nbf`: only a check at each hit
    // catches it, as the entry has not expired.
    let early = hs256(json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW + 60}));
    testing::set_now_ms((NOW + 50) * 1000);
    assert_accepted(&plugin, &early);
    testing::set_now_ms(NOW * 1000);
    assert_invalid(&plugin, &early, "not valid yet");
    assert_eq!(cached(&plugin), 1);
}

#[test]
fn a_tampered_signature_misses_the_cache() {
    let plugin = plugin(&secret_config(json!({})));
    let token = hs256(alice());
    assert_accepted(&plugin, &token);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_invalid(&plugin, &tampered, "invalid signature");
    assert_invalid(&plugin, &format!("{token}A"), "invalid signature");
    assert_eq!(cached(&plugin), 1, "refused tokens are not cached");
    assert_accepted(&plugin, &token);
}

#[test]
fn a_cache_size_of_zero_verifies_every_time() {
    let plugin = plugin(&secret_config(json!({"cache_size": 0})));
    let token = hs256(alice());
    for _ in 0..2 {
        let req = assert_accepted(&plugin, &token);
        assert_eq!(req.as_request().header_all("x-user-id"), ["alice"]);
    }
    assert_eq!(cached(&plugin), 0);
}

#[test]
fn the_cache_holds_at_most_cache_size_tokens() {
    let plugin = plugin(&secret_config(json!({"cache_size": 3})));
    for i in 0..20 {
        let token = hs256(json!({"sub": format!("user-{i}"), "exp": NOW + 300}));
        let req = assert_accepted(&plugin, &token);
        assert_eq!(req.as_request().header_all("x-user-id"), [format!("user-{i}")]);
        assert!((1..=3).contains(&cached(&plugin)), "{} tokens cached", cached(&plugin));
    }
}

#[test]
fn roles_and_scopes_are_enforced_on_a_cache_hit() {
    // Each route's config is an instance of its own, with its own cache.
    let mut admin_route = plugin(&secret_config(json!({"roles": ["admin"], "scopes": ["orders:read"]})));
    let member = hs256(json!({"sub": "bob", "role": "member", "scope": "orders:read", "exp": NOW + 300}));
    let unscoped_admin = hs256(json!({"sub": "carol", "role": "admin", "exp": NOW + 300}));
    for _ in 0..2 {
        let reply = run(&admin_route, &bearer(&member)).expect("a member is refused");
        assert_eq!(reply.status, 403);
        assert!(header(&reply, "www-authenticate").contains("requires one of the roles: admin"));
        let reply = run(&admin_route, &bearer(&unscoped_admin)).expect("a token without the scope is refused");
        assert_eq!(reply.status, 403);
        assert!(header(&reply, "www-authenticate").contains("missing scope: orders:read"));
        assert_eq!(cached(&admin_route), 2, "valid tokens are cached even when the route refuses them");
        // Without keys, the second round can only be cache hits.
        admin_route.keys.clear();
    }
    // The member's token is valid: it is refused for its role only.
    let open_route = plugin(&secret_config(json!({})));
    assert_accepted(&open_route, &member);
}

#[test]
fn the_token_comes_with_each_call() {
    let needs = plugin(&secret_config(json!({}))).needs();
    assert_eq!(needs, Needs::default().prefetch_header("authorization"));
}
