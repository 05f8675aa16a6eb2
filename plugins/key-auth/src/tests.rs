use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasmgate_sdk::testing::{self, TestRequest};

use super::*;

const ALICE_KEY: &str = "alice-key-0123456789";
const BOB_KEY: &str = "bob+key/with=symbols";

fn hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn config(extra: Value) -> Value {
    let mut config = json!({"consumers": [
        {"name": "alice", "groups": ["admin", "billing"], "keys": [hex(ALICE_KEY)]},
        {"name": "bob", "keys": [hex(BOB_KEY).to_uppercase(), hex("bob-second-key")]},
        {"name": "guest", "groups": ["public"]},
    ]});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn plugin(extra: Value) -> KeyAuth {
    testing::configure(&config(extra).to_string()).unwrap()
}

fn config_error(extra: Value) -> String {
    testing::configure::<KeyAuth>(&config(extra).to_string()).unwrap_err()
}

fn run(plugin: &KeyAuth, req: &TestRequest) -> Option<Reply> {
    match testing::run_request(plugin, req) {
        Action::Continue => None,
        Action::Respond(reply) => Some(reply),
    }
}

/// Asserts a problem+json refusal with this status and the challenge, and
/// returns its detail.
fn refused(plugin: &KeyAuth, req: &TestRequest, status: u16) -> String {
    let reply = run(plugin, req).expect("the request should be refused");
    assert_eq!(reply.status, status);
    assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
    assert_eq!(reply.header_value("www-authenticate"), Some(&br#"ApiKey realm="wasmgate""#[..]));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    body["detail"].as_str().unwrap().to_owned()
}

fn get(uri: &str) -> TestRequest {
    TestRequest::new("GET", uri)
}

#[test]
fn a_valid_key_in_either_default_header_forwards_the_consumer_and_sets_the_var() {
    let plugin = plugin(json!({}));
    for header in ["apikey", "X-API-Key"] {
        let req = get("/").header(header, ALICE_KEY);
        assert_eq!(run(&plugin, &req), None);
        let req = req.as_request();
        assert_eq!(req.header_all("x-consumer-id"), ["alice"]);
        assert_eq!(req.header_all("x-consumer-groups"), ["admin,billing"]);
        assert_eq!(req.var("consumer").as_deref(), Some("alice"));
        assert_eq!(req.header(header), None, "the key never reaches the upstream");
    }
    // Upper-case hex in config, a second key, symbols in the key.
    for key in [BOB_KEY, "bob-second-key"] {
        let req = get("/").header("apikey", key);
        assert_eq!(run(&plugin, &req), None);
        assert_eq!(req.as_request().header_all("x-consumer-id"), ["bob"]);
    }
}

#[test]
fn client_sent_consumer_headers_are_always_replaced_or_removed() {
    let plugin = plugin(json!({"anonymous": "guest"}));
    let spoof = |req: TestRequest| req.header("x-consumer-id", "alice").header("X-Consumer-Groups", "admin");

    let req = spoof(get("/").header("apikey", BOB_KEY));
    assert_eq!(run(&plugin, &req), None);
    assert_eq!(req.as_request().header_all("x-consumer-id"), ["bob"]);
    assert_eq!(req.as_request().header("x-consumer-groups"), None, "bob has no groups");

    let req = spoof(get("/"));
    assert_eq!(run(&plugin, &req), None);
    assert_eq!(req.as_request().header_all("x-consumer-id"), ["guest"]);
    assert_eq!(req.as_request().header_all("x-consumer-groups"), ["public"]);
    assert_eq!(req.as_request().var("consumer").as_deref(), Some("guest"));

    let req = spoof(get("/").header("apikey", "wrong"));
    refused(&plugin, &req, 401);
    assert_eq!(req.as_request().header("x-consumer-id"), None);
    assert_eq!(req.as_request().header("x-consumer-groups"), None);
}

#[test]
fn missing_and_invalid_keys_are_both_401_told_apart_in_the_detail() {
    let plugin = plugin(json!({}));
    let missing = refused(&plugin, &get("/"), 401);
    assert_eq!(missing, "an API key is required (in header `apikey` or header `x-api-key`)");
    assert_eq!(refused(&plugin, &get("/").header("apikey", ""), 401), missing, "an empty key is no key");

    let invalid = refused(&plugin, &get("/").header("apikey", "alice-key-012345678"), 401);
    assert_eq!(invalid, "the API key is not valid");
    // The hash itself is not a key.
    assert_eq!(refused(&plugin, &get("/").header("apikey", hex(ALICE_KEY)), 401), invalid);
    assert_eq!(refused(&plugin, &get("/").header("apikey", ALICE_KEY.to_uppercase()), 401), invalid);
    // Nothing the client sent is logged.
    assert!(testing::logs().iter().all(|(_, line)| !line.contains("alice-key")), "{:?}", testing::logs());
}

#[test]
fn anonymous_covers_a_missing_key_never_an_invalid_one() {
    let plugin = plugin(json!({"anonymous": "guest"}));
    assert_eq!(refused(&plugin, &get("/").header("x-api-key", "nope"), 401), "the API key is not valid");
}

#[test]
fn the_query_parameter_is_off_by_default_and_removed_when_on() {
    let off = plugin(json!({}));
    let req = get(&format!("/?apikey={ALICE_KEY}"));
    refused(&off, &req, 401);

    let on = plugin(json!({"key_query": "apikey"}));
    let req = get("/items?a=1&apikey=bob%2Bkey%2Fwith%3Dsymbols&b=two&a=3");
    assert_eq!(run(&on, &req), None);
    let view = req.as_request();
    assert_eq!(view.header_all("x-consumer-id"), ["bob"]);
    assert_eq!(view.query().as_deref(), Some("a=1&b=two&a=3"), "the others kept, in order");

    let req = get(&format!("/items?apikey={ALICE_KEY}"));
    assert_eq!(run(&on, &req), None);
    assert_eq!(req.as_request().query(), None, "an emptied query is dropped, not left as `?`");

    // An encoded name is the same parameter, and is removed too.
    let req = get(&format!("/items?api%6Bey={ALICE_KEY}&x=1"));
    assert_eq!(run(&on, &req), None);
    assert_eq!(req.as_request().query().as_deref(), Some("x=1"));

    let req = get("/items?apikey=wrong&x=1");
    refused(&on, &req, 401);
    assert_eq!(req.as_request().query().as_deref(), Some("x=1"));
}

#[test]
fn several_keys_are_refused_whatever_they_are_and_all_removed() {
    let plugin = plugin(json!({"key_query": "key"}));
    let cases = [
        get("/?key=x").header("apikey", ALICE_KEY),
        get(&format!("/?key={ALICE_KEY}")).header("apikey", ALICE_KEY),
        get(&format!("/?key={ALICE_KEY}&key={ALICE_KEY}")),
        get(&format!("/?key={ALICE_KEY}&key=")).header("x-api-key", BOB_KEY),
        get("/").header("apikey", ALICE_KEY).header("apikey", ALICE_KEY),
        get("/").header("apikey", ALICE_KEY).header("x-api-key", BOB_KEY),
    ];
    for req in &cases {
        let detail = refused(&plugin, req, 400);
        assert_eq!(detail, "more than one API key in the request: send exactly one");
        let view = req.as_request();
        assert_eq!((view.header("apikey"), view.header("x-api-key"), view.query()), (None, None, None));
    }
    // An empty duplicate is no second key.
    let req = get(&format!("/?key=&key={ALICE_KEY}"));
    assert_eq!(run(&plugin, &req), None);
}

#[test]
fn huge_and_binary_keys_are_just_invalid() {
    let plugin = plugin(json!({"key_query": "k"}));
    let huge = "k".repeat(64 * 1024);
    assert_eq!(refused(&plugin, &get("/").header("apikey", &huge), 401), "the API key is not valid");
    assert_eq!(refused(&plugin, &get("/").header("apikey", b"\xff\x00\xfe"), 401), "the API key is not valid");
    let req = get(&format!("/?k={huge}&k2=%ff%00"));
    assert_eq!(refused(&plugin, &req, 401), "the API key is not valid");
    assert_eq!(req.as_request().query().as_deref(), Some("k2=%ff%00"));
    let many = "a=1&".repeat(10_000);
    let req = get(&format!("/?{many}k={ALICE_KEY}"));
    assert_eq!(run(&plugin, &req), None);
    assert_eq!(req.as_request().query().unwrap().len(), many.len() - 1);
}

#[test]
fn header_names_are_configurable() {
    let plugin = plugin(json!({
        "key_headers": ["X-Service-Token"], "consumer_header": "X-Caller", "groups_header": "",
    }));
    let req = get("/").header("x-service-token", ALICE_KEY).header("x-consumer-groups", "kept");
    assert_eq!(run(&plugin, &req), None);
    let view = req.as_request();
    assert_eq!(view.header_all("x-caller"), ["alice"]);
    assert_eq!(view.header("x-service-token"), None);
    assert_eq!(view.header_all("x-consumer-groups"), ["kept"], "not this plugin's header any more");
    assert_eq!(refused(&plugin, &get("/").header("apikey", ALICE_KEY), 401), missing_in_service_token());
    assert_eq!(plugin.needs().prefetch_headers, ["x-service-token"]);
}

fn missing_in_service_token() -> &'static str {
    "an API key is required (in header `x-service-token`)"
}

#[test]
fn bad_configs_are_refused_without_repeating_a_key() {
    let err = |consumers: Value| testing::configure::<KeyAuth>(&json!({ "consumers": consumers }).to_string());
    let clear = err(json!([{"name": "alice", "keys": ["my-clear-text-api-key"]}])).unwrap_err();
    assert!(clear.contains("consumers[0] (`alice`).keys[0]: not a SHA-256 hash"), "{clear}");
    assert!(clear.contains("printf %s KEY | sha256sum"), "{clear}");
    assert!(!clear.contains("my-clear-text"), "{clear}");
    let short = err(json!([{"name": "a", "keys": [&hex("x")[..63]]}])).unwrap_err();
    assert!(short.contains("not a SHA-256 hash"), "{short}");

    let shared = err(json!([{"name": "a", "keys": [hex("k")]}, {"name": "b", "keys": [hex("k").to_uppercase()]}]));
    assert!(shared.unwrap_err().contains("consumers `a` and `b` share a key hash"));
    let twice = err(json!([{"name": "a", "keys": [hex("k"), hex("k")]}]));
    assert!(twice.unwrap_err().contains("consumer `a` lists the same key hash twice"));
    assert!(err(json!([{"name": "a"}, {"name": "a"}])).unwrap_err().contains("already declared"));
    assert!(err(json!([{"name": "a\nb"}])).unwrap_err().contains("consumers[0]: the name"));
    assert!(err(json!([{"name": "a", "groups": ["x,y"]}])).unwrap_err().contains("groups[0]"));
    assert!(err(json!([])).unwrap_err().contains("at least one consumer"));
    assert!(err(json!([{"name": "a", "key": hex("k")}])).unwrap_err().contains("unknown field `key`"));

    assert!(config_error(json!({"anonymous": "nobody"})).contains("anonymous: no consumer is named `nobody`"));
    assert!(config_error(json!({"key_headers": ["bad header"]})).contains("key_headers[0]"));
    assert!(config_error(json!({"key_headers": []})).contains("nowhere to read a key"));
    let many: Vec<String> = (0..65).map(|i| format!("x-key-{i}")).collect();
    assert!(config_error(json!({ "key_headers": many })).contains("more than 64"));
    assert!(config_error(json!({"key_query": ""})).contains("key_query"));
    assert!(config_error(json!({"consumer_header": "APIKEY"})).contains("also a key header"));
    assert!(config_error(json!({"groups_header": "x-consumer-id"})).contains("must differ"));
    assert!(config_error(json!({"realm": "a\"b"})).contains("realm"));
    // Only a query: allowed.
    assert!(testing::configure::<KeyAuth>(&config(json!({"key_headers": [], "key_query": "k"})).to_string()).is_ok());
}

#[test]
fn the_consumer_var_is_what_rate_limit_keys_on() {
    let plugin = plugin(json!({}));
    let req = get("/").header("apikey", ALICE_KEY);
    run(&plugin, &req);
    assert_eq!(req.as_request().var(CONSUMER_VAR).as_deref(), Some("alice"));
    let req = get("/");
    refused(&plugin, &req, 401);
    assert_eq!(req.as_request().var(CONSUMER_VAR), None);
}
