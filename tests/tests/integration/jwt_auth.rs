//! jwt-auth in a real gateway: tokens minted by jwt-simple (an independent
//! implementation) against keys the gateway reads from files through
//! `{ "$file" = ... }`, on routes that require a token, a role, or nothing.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::plugins::JWT_AUTH;
use wasmgate_testbed::{Reply, TestGateway, TestUpstream};

const SECRET: &str = "integration-secret-of-32-bytes!!";
const ISSUER: &str = "https://id.example.com";

static RSA: LazyLock<RS256KeyPair> = LazyLock::new(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"));
static EC: LazyLock<ES256KeyPair> = LazyLock::new(|| ES256KeyPair::generate().with_key_id("ec-1"));
static ED: LazyLock<Ed25519KeyPair> = LazyLock::new(|| Ed25519KeyPair::generate().with_key_id("ed-1"));

/// A gateway whose config folder holds the key files, and the upstream
/// behind it.
struct Setup {
    gw: TestGateway,
    up: TestUpstream,
    _dir: tempfile::TempDir,
}

/// Three routes with one plugin config: `/api` needs a token, `/admin` a
/// token with role `admin` and scope `admin:write`, `/public` nothing.
async fn setup() -> Setup {
    let up = TestUpstream::named("api").await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("rsa.pub.pem"), RSA.public_key().to_pem().unwrap()).unwrap();
    let jwks = json!({"keys": [
        serde_json::from_str::<Value>(&EC.public_key().with_key_id("ec-1").to_jwk()).unwrap(),
        serde_json::from_str::<Value>(&ED.public_key().with_key_id("ed-1").to_jwk()).unwrap(),
    ]});
    std::fs::write(keys.join("jwks.json"), jwks.to_string()).unwrap();
    let toml = format!(
        r#"
[upstreams.api]
targets = ["{target}"]

[plugins.jwt-auth]
path = "{JWT_AUTH}"

[plugins.jwt-auth.config]
issuers = ["{ISSUER}"]
audiences = ["api"]
keys = [
    {{ kid = "hs-1", secret = "{SECRET}", algorithms = ["HS256"] }},
    {{ kid = "rsa-1", pem = {{ "$file" = "keys/rsa.pub.pem" }}, algorithms = ["RS256", "PS256"] }},
    {{ jwks = {{ "$file" = "keys/jwks.json" }}, algorithms = ["ES256", "EdDSA"] }},
]

[[routes]]
name = "api"
prefix = "/api"
upstream = "api"
pipeline = [{{ plugin = "jwt-auth" }}]

[[routes]]
name = "admin"
prefix = "/admin"
upstream = "api"
pipeline = [{{ plugin = "jwt-auth", config = {{ roles = ["admin"], scopes = ["admin:write"] }} }}]

[[routes]]
name = "public"
prefix = "/public"
upstream = "api"
pipeline = [{{ plugin = "jwt-auth", config = {{ allow_anonymous = true }} }}]
"#,
        target = up.target()
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    Setup { gw: TestGateway::start_at(&path).await, up, _dir: dir }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Valid claims for `/api`, with `extra` merged in (a `null` removes one).
fn claims(extra: Value) -> JWTClaims<Map<String, Value>> {
    let mut body = json!({
        "sub": "alice", "role": "member", "iss": ISSUER, "aud": "api", "exp": now() + 300,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    let mut claims = JWTClaims::new();
    claims.custom = body.as_object().unwrap().clone();
    claims
}

fn hs256(extra: Value) -> String {
    HS256Key::from_bytes(SECRET.as_bytes()).with_key_id("hs-1").authenticate(claims(extra)).unwrap()
}

impl Setup {
    async fn call(&self, path: &str, token: Option<&str>, extra_headers: &[(&str, &str)]) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra_headers.to_vec();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        self.gw.client.send(Method::GET, path, &headers, "").await
    }

    /// Asserts a 401 `invalid_token` mentioning `why`, which never reached
    /// the upstream.
    async fn assert_invalid(&self, token: &str, why: &str) {
        let before = self.up.count();
        let reply = self.call("/api/orders", Some(token), &[]).await;
        let detail = reply.problem(401);
        assert!(detail.contains(why), "{detail:?} should say {why:?}");
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="wasmgate", error="invalid_token", error_description=""#),
            "{challenge}"
        );
        assert!(challenge.contains(why), "{challenge}");
        assert_eq!(self.up.count(), before, "a refused request must not reach the upstream");
    }
}

/// The same claims in another JWT's clothes: header, payload and signature
/// chosen freely.
fn raw_token(header: Value, body: &JWTClaims<Map<String, Value>>, signature: &[u8]) -> String {
    let part = |bytes: Vec<u8>| URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.{}",
        part(serde_json::to_vec(&header).unwrap()),
        part(serde_json::to_vec(&body.custom).unwrap()),
        part(signature.to_vec())
    )
}

#[tokio::test]
async fn tokens_of_every_key_type_pass_and_carry_the_identity_upstream() {
    let s = setup().await;
    let ps256 = PS256KeyPair::from_der(&RSA.to_der().unwrap()).unwrap().with_key_id("rsa-1");
    let tokens = [
        ("HS256 secret", hs256(json!({}))),
        ("RS256 PEM file", RSA.sign(claims(json!({}))).unwrap()),
        ("PS256 PEM file", ps256.sign(claims(json!({}))).unwrap()),
        ("ES256 JWKS file", EC.sign(claims(json!({}))).unwrap()),
        ("EdDSA JWKS file", ED.sign(claims(json!({}))).unwrap()),
    ];
    for (i, (what, token)) in tokens.iter().enumerate() {
        let spoofed = [("x-user-id", "mallory"), ("x-user-role", "admin")];
        let reply = s.call("/api/orders", Some(token), &spoofed).await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.text());
        let seen = &s.up.seen()[i];
        let values =
            |name| seen.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(values("x-user-id"), ["alice"], "{what}");
        assert_eq!(values("x-user-role"), ["member"], "{what}");
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let s = setup().await;
    s.assert_invalid(&hs256(json!({"exp": now() - 120})), "expired").await;
    s.assert_invalid(&hs256(json!({"nbf": now() + 120})), "not valid yet").await;
    s.assert_invalid(&hs256(json!({"exp": null})), "missing required claim `exp`").await;
    let within_leeway = hs256(json!({"exp": now() - 5, "nbf": now() + 5}));
    assert_eq!(s.call("/api/x", Some(&within_leeway), &[]).await.status, 200);
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_refused() {
    let s = setup().await;
    s.assert_invalid(&hs256(json!({"iss": "https://evil.example.com"})), "issuer is not accepted").await;
    s.assert_invalid(&hs256(json!({"aud": ["billing"]})), "not meant for this audience").await;
    s.assert_invalid(&hs256(json!({"aud": null})), "missing required claim `aud`").await;
    let both = hs256(json!({"aud": ["billing", "api"]}));
    assert_eq!(s.call("/api/x", Some(&both), &[]).await.status, 200);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let s = setup().await;

    // A member promotes themself: the payload changes, the signature not.
    let token = RSA.sign(claims(json!({}))).unwrap();
    let promoted = raw_token(json!({}), &claims(json!({"role": "admin"})), b"");
    let parts: Vec<&str> = token.split('.').collect();
    let promoted_payload = promoted.split('.').nth(1).unwrap();
    let tampered = format!("{}.{promoted_payload}.{}", parts[0], parts[2]);
    s.assert_invalid(&tampered, "invalid signature").await;

    let stranger = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
    s.assert_invalid(&stranger.sign(claims(json!({}))).unwrap(), "invalid signature").await;

    let unknown = HS256Key::from_bytes(SECRET.as_bytes()).with_key_id("hs-9");
    s.assert_invalid(&unknown.authenticate(claims(json!({}))).unwrap(), "unknown key id `hs-9`").await;
    let no_kid = HS256Key::from_bytes(SECRET.as_bytes());
    s.assert_invalid(&no_kid.authenticate(claims(json!({}))).unwrap(), "no key id").await;

    let none = raw_token(json!({"alg": "none", "kid": "hs-1"}), &claims(json!({})), b"");
    s.assert_invalid(&none, "algorithm `none` is not supported").await;

    // Key confusion: HMAC keyed with the RSA public key everyone can read.
    let public_pem = RSA.public_key().to_pem().unwrap();
    let confused = HS256Key::from_bytes(public_pem.as_bytes()).with_key_id("rsa-1");
    s.assert_invalid(&confused.authenticate(claims(json!({}))).unwrap(), "algorithm HS256 is not accepted").await;

    assert_eq!(s.up.count(), 0);
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_challenge() {
    let s = setup().await;
    for auth in [None, Some("Basic YWxpY2U6c2VjcmV0")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let reply = s.call("/api/orders", None, &headers).await;
        reply.problem(401);
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="wasmgate""#));
    }
    assert_eq!(s.up.count(), 0);
}

#[tokio::test]
async fn routes_require_their_roles_and_scopes() {
    let s = setup().await;
    let member = hs256(json!({"scope": "admin:write"}));
    let reply = s.call("/admin/users", Some(&member), &[]).await;
    assert!(reply.problem(403).contains("requires one of the roles: admin"));
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.ends_with(r#"scope="admin:write""#), "{challenge}");

    let admin_without_scope = hs256(json!({"role": ["admin"], "scope": "admin:read"}));
    let reply = s.call("/admin/users", Some(&admin_without_scope), &[]).await;
    assert!(reply.problem(403).contains("missing scope: admin:write"));
    assert_eq!(s.up.count(), 0);

    let admin = hs256(json!({"role": ["ops", "admin"], "scp": ["admin:read", "admin:write"]}));
    let reply = s.call("/admin/users", Some(&admin), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(s.up.seen()[0].header("x-user-role"), Some("ops,admin"));
    // The same token on another route of the plugin, without those rules.
    assert_eq!(s.call("/api/users", Some(&member), &[]).await.status, 200);
}

#[tokio::test]
async fn an_anonymous_route_passes_without_identity_but_refuses_bad_tokens() {
    let s = setup().await;
    let spoofed = [("x-user-id", "admin"), ("x-user-role", "admin")];
    let reply = s.call("/public/news", None, &spoofed).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = &s.up.seen()[0];
    assert_eq!(seen.header("x-user-id"), None, "spoofed identity removed");
    assert_eq!(seen.header("x-user-role"), None, "spoofed identity removed");

    let expired = hs256(json!({"exp": now() - 600}));
    let reply = s.call("/public/news", Some(&expired), &[]).await;
    assert!(reply.problem(401).contains("expired"));

    let reply = s.call("/public/news", Some(&hs256(json!({}))), &spoofed).await;
    assert_eq!(reply.status, 200);
    assert_eq!(s.up.seen()[1].header("x-user-id"), Some("alice"));
    assert_eq!(s.up.count(), 2);
}

#[tokio::test]
async fn a_bad_key_is_a_load_error_naming_the_route_and_the_key() {
    let toml = format!(
        r#"
[plugins.jwt-auth]
path = "{JWT_AUTH}"

[[routes]]
name = "api"
prefix = "/api"
pipeline = [{{ plugin = "jwt-auth", config = {{ keys = [{{ kid = "broken", pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", algorithms = ["RS256"] }}] }} }}]

[[routes]]
name = "typo"
prefix = "/typo"
pipeline = [{{ plugin = "jwt-auth", config = {{ keys = [{{ secret = "{SECRET}", algorithms = ["HS256"] }}], role = ["admin"] }} }}]
"#
    );
    let (errors, _) = refused(&toml).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains(r#"route "api""#), "{errors:?}");
    assert!(errors[0].contains(r#"keys[0] (kid "broken"): `pem` is not a PEM public key"#), "{errors:?}");
    assert!(errors[1].contains(r#"route "typo""#), "{errors:?}");
    assert!(errors[1].contains("unknown field `role`"), "{errors:?}");
}
