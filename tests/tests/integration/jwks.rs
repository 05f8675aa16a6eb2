//! jwt-auth with keys fetched at run time: an identity provider of the
//! test's own (a real HTTP server on loopback) publishes a JWKS, made of
//! keys jwt-simple generates, and a discovery document; the gateway reaches
//! it through an upstream named in its config.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use http::Method;
use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use wasmgate_testbed::plugins::JWT_AUTH;
use wasmgate_testbed::{Answer, Reply, TestGateway, TestUpstream, eventually};

const ISSUER_PATH: &str = "/realms/main";

/// The provider: serves `/jwks.json` (and `/realms/main/certs`) with the
/// keys currently published, and the discovery document of issuer
/// `http://<its address>/realms/main`.
struct Idp {
    server: TestUpstream,
    published: Arc<Mutex<Vec<Value>>>,
}

impl Idp {
    async fn start(keys: &[&ES256KeyPair]) -> Idp {
        let published = Arc::new(Mutex::new(Vec::new()));
        let origin = Arc::new(Mutex::new(String::new()));
        let (serving, own) = (published.clone(), origin.clone());
        let server = TestUpstream::start(move |seen| {
            let origin = own.lock().unwrap().clone();
            match seen.uri.as_str() {
                "/jwks.json" | "/realms/main/certs" => {
                    Answer::json(&json!({"keys": *serving.lock().unwrap()})).header("cache-control", "max-age=300")
                }
                "/realms/main/.well-known/openid-configuration" => Answer::json(&json!({
                    "issuer": format!("{origin}{ISSUER_PATH}"),
                    "jwks_uri": format!("{origin}{ISSUER_PATH}/certs"),
                })),
                _ => Answer::new(404, "not found"),
            }
        })
        .await;
        *origin.lock().unwrap() = format!("http://{}", server.target());
        let idp = Idp { server, published };
        idp.publish(keys);
        idp
    }

    fn publish(&self, keys: &[&ES256KeyPair]) {
        *self.published.lock().unwrap() =
            keys.iter().map(|key| serde_json::from_str(&key.public_key().to_jwk()).unwrap()).collect();
    }

    fn issuer(&self) -> String {
        format!("http://{}{ISSUER_PATH}", self.server.target())
    }

    /// Requests the provider received, as `path` strings.
    fn fetches(&self) -> Vec<String> {
        self.server.seen().into_iter().map(|seen| seen.uri).collect()
    }
}

/// A gateway whose `/api` route needs a token verified with keys from
/// `key_entry` (TOML inline table fields), fetched through upstream `idp`.
async fn gateway(idp_target: &str, key_entry: &str, issuers: &str) -> (TestGateway, TestUpstream) {
    let api = TestUpstream::named("api").await;
    let toml = format!(
        r#"
[upstreams.api]
targets = ["{api}"]

[upstreams.idp]
targets = ["{idp_target}"]

[plugins.jwt-auth]
path = "{JWT_AUTH}"

[plugins.jwt-auth.config]
issuers = [{issuers}]
keys = [{{ upstream = "idp", algorithms = ["ES256"], {key_entry} }}]

[[routes]]
name = "api"
prefix = "/api"
upstream = "api"
pipeline = [{{ plugin = "jwt-auth" }}]
"#,
        api = api.target()
    );
    (TestGateway::start(&toml).await, api)
}

async fn jwks_gateway(idp: &Idp) -> (TestGateway, TestUpstream) {
    let entry = r#"jwks_url = "http://idp.example.com/jwks.json", unknown_kid_refresh_seconds = 60"#;
    gateway(&idp.server.target(), entry, "").await
}

fn token(key: &ES256KeyPair, extra: Value) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut body = json!({"sub": "alice", "exp": now + 300});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let mut claims: JWTClaims<Map<String, Value>> = JWTClaims::new();
    claims.custom = body.as_object().unwrap().clone();
    key.sign(claims).unwrap()
}

fn es256(kid: &str) -> ES256KeyPair {
    ES256KeyPair::generate().with_key_id(kid)
}

async fn call(gw: &TestGateway, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    gw.client.send(Method::GET, "/api/orders", &[("authorization", &auth)], "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_with_keys_fetched_once_for_every_instance() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let (gw, api) = jwks_gateway(&idp).await;
    assert!(idp.fetches().is_empty(), "nothing is fetched before a token arrives");

    let reply = call(&gw, &token(&key, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(api.seen()[0].header("x-user-id"), Some("alice"));
    let fetch = &idp.server.seen()[0];
    assert_eq!(fetch.uri, "/jwks.json");
    assert_eq!(fetch.header("host"), Some("idp.example.com"), "the URL's host, whatever the upstream's address");

    // Concurrent requests need several instances; they share the keys.
    let replies = join_all((0..32).map(|i| {
        let token = token(&key, json!({"sub": format!("user-{i}")}));
        let gw = &gw;
        async move { call(gw, &token).await.status }
    }))
    .await;
    assert!(replies.iter().all(|status| *status == 200), "{replies:?}");
    assert_eq!(idp.fetches(), ["/jwks.json"]);

    let impostor = es256("k1");
    let detail = call(&gw, &token(&impostor, json!({}))).await.problem(401);
    assert_eq!(detail, "invalid signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_in_is_accepted_after_one_refresh() {
    let (old, new) = (es256("2024-01"), es256("2024-02"));
    let idp = Idp::start(&[&old]).await;
    let (gw, _api) = jwks_gateway(&idp).await;
    assert_eq!(call(&gw, &token(&old, json!({}))).await.status, 200);

    idp.publish(&[&old, &new]);
    let reply = call(&gw, &token(&new, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(idp.fetches().len(), 2, "one refresh for the new kid");
    assert_eq!(call(&gw, &token(&old, json!({}))).await.status, 200);
    assert_eq!(idp.fetches().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unknown_kids_cost_the_provider_one_fetch() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let (gw, api) = jwks_gateway(&idp).await;
    assert_eq!(call(&gw, &token(&key, json!({}))).await.status, 200);

    let tokens: Vec<String> = (0..1_000).map(|i| token(&es256(&format!("random-{i}")), json!({}))).collect();
    for chunk in tokens.chunks(50) {
        let replies = join_all(chunk.iter().map(|token| call(&gw, token))).await;
        for reply in replies {
            assert!(reply.problem(401).starts_with("unknown key id `random-"));
        }
    }
    // The first fetch, then at most one per unknown_kid_refresh_seconds (60).
    assert_eq!(idp.fetches().len(), 2);
    assert_eq!(api.count(), 1, "no unknown kid reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_stopped_cached_keys_keep_serving_and_a_fresh_gateway_answers_503() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let target = idp.server.target();
    let (gw, _api) = jwks_gateway(&idp).await;
    assert_eq!(call(&gw, &token(&key, json!({}))).await.status, 200);
    drop(idp);

    // A refresh attempt (for the unknown kid) fails; the keys stay.
    assert!(call(&gw, &token(&es256("other"), json!({}))).await.problem(401).contains("unknown key id"));
    let reply = call(&gw, &token(&key, json!({"sub": "bob"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // A gateway started while the provider is down starts (configure
    // never fetches), and has no keys to check with: 503, not 401.
    let entry = r#"jwks_url = "http://idp.example.com/jwks.json""#;
    let (fresh, fresh_api) = gateway(&target, entry, "").await;
    let reply = call(&fresh, &token(&key, json!({}))).await;
    let detail = reply.problem(503);
    assert!(detail.contains("keys to verify tokens with are not available"), "{detail}");
    assert_eq!(reply.header("retry-after"), Some("10"));
    assert_eq!(fresh_api.count(), 0);
    let no_token = fresh.client.get("/api/orders").await;
    assert_eq!(no_token.problem(401), "a bearer token is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_discovery_is_followed_to_the_jwks() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let issuer = idp.issuer();
    let (gw, _api) = gateway(&idp.server.target(), "issuer_discovery = true", &format!("\"{issuer}\"")).await;

    let reply = call(&gw, &token(&key, json!({"iss": issuer}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(idp.fetches(), ["/realms/main/.well-known/openid-configuration", "/realms/main/certs"]);
    let detail = call(&gw, &token(&key, json!({"iss": "http://elsewhere"}))).await.problem(401);
    assert_eq!(detail, "the token's issuer is not accepted");
    let source = key_source(&gw).await;
    assert_eq!(source["source"], format!("{issuer}/.well-known/openid-configuration"), "{source}");
    assert_eq!(source["state"], "fresh", "{source}");
}

/// The one key source `/status` lists.
async fn key_source(gw: &TestGateway) -> Value {
    let status = gw.admin.get("/status").await.json();
    let sources = status["key_sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{status}");
    sources[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_key_source_never_fetched_then_fresh_then_stale_when_the_provider_is_gone() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let (gw, _api) = jwks_gateway(&idp).await;
    let source = key_source(&gw).await;
    let named = [&source["plugin"], &source["source"], &source["upstream"], &source["routes"]];
    assert_eq!(named, [&json!("jwt-auth"), &json!("http://idp.example.com/jwks.json"), &json!("idp"), &json!(["api"])]);
    assert_eq!(source["state"], "never-fetched", "{source}");

    assert_eq!(call(&gw, &token(&key, json!({}))).await.status, 200);
    let source = key_source(&gw).await;
    assert_eq!((&source["state"], &source["keys"], &source["error"]), (&json!("fresh"), &json!(1), &Value::Null));
    let fetched = source["last_success_ms"].as_u64().expect("a successful fetch");
    assert!(source["refresh_at_ms"].as_u64() > Some(fetched), "{source}");

    drop(idp);
    // A token with another kid makes the plugin try a refresh, which fails.
    assert!(call(&gw, &token(&es256("other"), json!({}))).await.problem(401).contains("unknown key id"));
    let source = key_source(&gw).await;
    assert_eq!(source["state"], "stale", "{source}");
    assert!(source["error"].as_str().is_some_and(|e| e.contains("jwks.json")), "{source}");
    assert_eq!(source["last_success_ms"].as_u64(), Some(fetched));
}

/// Without traffic nobody fetches and the document keeps saying `fresh`;
/// `/status` reads it as of now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_keys_past_their_refresh_time_as_stale_and_past_their_expiry_as_failing() {
    let key = es256("k1");
    let idp = Idp::start(&[&key]).await;
    let timing = |stale: u32| {
        format!(
            r#"jwks_url = "http://idp.example.com/jwks.json", min_refresh_seconds = 1, max_refresh_seconds = 1, max_stale_seconds = {stale}"#
        )
    };
    let (due, _api) = gateway(&idp.server.target(), &timing(3600), "").await;
    let (expiring, _api2) = gateway(&idp.server.target(), &timing(1), "").await;
    for gw in [&due, &expiring] {
        assert_eq!(call(gw, &token(&key, json!({}))).await.status, 200);
    }
    eventually("keys past their refresh time read as stale", || async { key_source(&due).await["state"] == "stale" })
        .await;
    eventually("keys past their expiry read as failing", || async {
        key_source(&expiring).await["state"] == "failing"
    })
    .await;
    for gw in [&due, &expiring] {
        assert_eq!(key_source(gw).await["reported_state"], "fresh", "as the plugin last wrote it");
    }
    assert_eq!(idp.fetches().len(), 2, "one fetch per gateway, none since");
}
