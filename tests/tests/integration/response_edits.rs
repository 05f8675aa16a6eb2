//! Response headers set from the request phase (`set-response-header`):
//! rate-limit and a header-only transform run one call per request and still
//! put their headers on every answer the request gets.

use wasmgate_testbed::plugins::{FIXTURE_RESPOND, RATE_LIMIT, TRANSFORM};
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

const PLUGINS: &str = r#"
[plugins.rate-limit]
path = "RATE_LIMIT"
config = { key = ["ip"], limits = [{ limit = 100, window = "1h" }] }

[plugins.transform]
path = "TRANSFORM"
config = { response = { headers = { set = { x-gateway = "wasmgate", x-rid = "{request_id}" }, add = { vary = "x-client" } } } }

[plugins.respond]
path = "FIXTURE_RESPOND"
config = { status = 418, body = "teapot" }
"#;

fn config(upstreams: &str, routes: &str) -> String {
    let plugins = PLUGINS
        .replace("RATE_LIMIT", RATE_LIMIT)
        .replace("TRANSFORM", TRANSFORM)
        .replace("FIXTURE_RESPOND", FIXTURE_RESPOND);
    format!("{upstreams}\n{plugins}\n{routes}")
}

#[tokio::test]
async fn request_phase_headers_replace_the_upstreams_and_add_to_lists() {
    let up = TestUpstream::start(|_| {
        Answer::new(200, "ok").header("x-gateway", "upstream").header("x-ratelimit-limit", "7").header("vary", "accept")
    })
    .await;
    let gw = TestGateway::start(&config(
        &up.section("api"),
        r#"
[[routes]]
name = "api"
prefix = "/api"
upstream = "api"
pipeline = [{ plugin = "rate-limit" }, { plugin = "transform" }]
"#,
    ))
    .await;

    let first = gw.client.send(http::Method::GET, "/api/x", &[("x-request-id", "rid-1")], "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "ok");
    let all =
        |name: &str| first.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(all("x-gateway"), ["wasmgate"], "set replaces the upstream's value");
    assert_eq!(all("x-ratelimit-limit"), ["100"]);
    assert_eq!(all("x-ratelimit-remaining"), ["99"]);
    assert_eq!(all("x-rid"), ["rid-1"]);
    assert_eq!(all("vary"), ["accept", "x-client"], "add keeps the upstream's value");

    let second = gw.client.get("/api/x").await;
    assert_eq!(second.header("x-ratelimit-remaining"), Some("98"), "each request gets its own");
}

#[tokio::test]
async fn they_reach_a_later_plugins_reply_and_the_gateways_own_errors() {
    let gw = TestGateway::start(&config(
        "[upstreams.down]\ntargets = [\"127.0.0.1:1\"]\n",
        r#"
[[routes]]
name = "reply"
prefix = "/reply"
pipeline = [{ plugin = "rate-limit" }, { plugin = "transform" }, { plugin = "respond" }]

[[routes]]
name = "down"
prefix = "/down"
upstream = "down"
pipeline = [{ plugin = "rate-limit" }, { plugin = "transform" }]
"#,
    ))
    .await;

    let reply = gw.client.get("/reply").await;
    assert_eq!((reply.status, reply.text().as_str()), (418, "teapot"));
    assert_eq!(reply.header("x-ratelimit-limit"), Some("100"));
    assert_eq!(reply.header("x-gateway"), Some("wasmgate"));

    let down = gw.client.get("/down").await;
    down.problem(502);
    assert_eq!(down.header("x-ratelimit-remaining"), Some("98"), "keyed on the ip alone: one budget for both routes");
    assert_eq!(down.header("x-gateway"), Some("wasmgate"));
}
