//! Cost of each real plugin on a typical request, through `Gateway::handle`
//! without sockets. Every plugin route ends in the `respond` fixture, so the
//! baseline is the route with `respond` alone, measured in the same run;
//! the aggregate and grpc-transcode routes need real upstream calls, so
//! their baseline is a plain proxied call to the same (in-process)
//! upstream.
//!
//! Run: `cargo bench -p wasmgate-benches --bench plugins`; with
//! `WASMGATE_BENCH_PLUGINS=<dir>` the plugins come from that folder
//! (to compare builds, e.g. another opt-level).

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate::internals::body;
use wasmgate_benches::{gateway, plugin_path, request_with, send, upstream};
use wasmgate_testbed::demo::TOKEN_MEMBER;
use wasmgate_testbed::plugins::{AGGREGATE, FIXTURE_RESPOND, GRPC_TRANSCODE, JWT_AUTH, RATE_LIMIT, TRANSFORM};

/// grpc-transcode's test service, `catalog.Products`, compiled.
const CATALOG: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/grpc-transcode/testdata/catalog.pb.b64"));

fn config(upstream: std::net::SocketAddr) -> String {
    let [jwt_auth, rate_limit, transform, aggregate, grpc_transcode] =
        [JWT_AUTH, RATE_LIMIT, TRANSFORM, AGGREGATE, GRPC_TRANSCODE].map(plugin_path);
    let catalog = CATALOG.trim();
    format!(
        r#"
[runtime]
max_instances = 64

[upstreams.users]
targets = ["{upstream}"]
[upstreams.orders]
targets = ["{upstream}"]
[upstreams.products]
targets = ["{upstream}"]

[plugins.respond]
path = "{FIXTURE_RESPOND}"
config = {{ status = 200, body = "ok" }}

[plugins.jwt-auth]
path = "{jwt_auth}"
config = {{ issuers = ["https://demo.wasmgate.test"], keys = [{{ kid = "demo", secret = "demo-secret-change-me-0123456789ab", algorithms = ["HS256"] }}] }}

[plugins.rate-limit]
path = "{rate_limit}"
config = {{ key = ["route", "ip"], limits = [{{ limit = 1000000000, window = "1s" }}] }}

[plugins.transform]
path = "{transform}"

[plugins.aggregate]
path = "{aggregate}"

[plugins.grpc-transcode]
path = "{grpc_transcode}"
config = {{ descriptor_set_base64 = "{catalog}" }}

[[routes]]
name = "baseline"
path = "/baseline"
pipeline = [{{ plugin = "respond" }}]

[[routes]]
name = "jwt"
path = "/jwt"
pipeline = [{{ plugin = "jwt-auth", config = {{ roles = ["member", "admin"] }} }}, {{ plugin = "respond" }}]

[[routes]]
name = "jwt-uncached"
path = "/jwt-uncached"
pipeline = [{{ plugin = "jwt-auth", config = {{ roles = ["member", "admin"], cache_size = 0 }} }}, {{ plugin = "respond" }}]

[[routes]]
name = "rate"
path = "/rate"
pipeline = [{{ plugin = "rate-limit" }}, {{ plugin = "respond" }}]

[[routes]]
name = "headers"
path = "/headers"

[[routes.pipeline]]
plugin = "transform"
config = {{ request = {{ headers = {{ set = {{ x-gateway = "wasmgate", x-trace = "{{request_id}}" }}, remove = ["cookie"] }} }}, response = {{ headers = {{ remove = ["server"] }} }} }}

[[routes.pipeline]]
plugin = "respond"

[[routes]]
name = "json"
path = "/json"

[[routes.pipeline]]
plugin = "transform"
config = {{ request = {{ body = {{ rename = {{ user_name = "userName" }}, remove = ["created"], add = {{ request_id = "{{request_id}}" }} }} }} }}

[[routes.pipeline]]
plugin = "respond"

# The load benchmark's full pipeline (benches/configs/full.toml), ending
# in `respond` instead of an upstream.
[[routes]]
name = "full"
path = "/full"

[[routes.pipeline]]
plugin = "jwt-auth"
config = {{ roles = ["member", "admin"] }}

[[routes.pipeline]]
plugin = "rate-limit"

[[routes.pipeline]]
plugin = "transform"
config = {{ request = {{ headers = {{ set = {{ x-gateway = "wasmgate", x-correlation-id = "{{request_id}}" }}, remove = ["cookie"] }} }}, response = {{ headers = {{ set = {{ x-gateway = "wasmgate" }} }} }} }}

[[routes.pipeline]]
plugin = "respond"

[[routes]]
name = "proxy"
path = "/users/{{id}}"
upstream = "users"

# GET /v1/products/{{id}} as the gRPC call catalog.Products/Get, its reply
# back to JSON: against the proxied call's baseline.
[[routes]]
name = "grpc"
prefix = "/v1"
upstream = "users"
pipeline = [{{ plugin = "grpc-transcode" }}]

[[routes]]
name = "aggregate"
path = "/agg/{{id}}"

[[routes.pipeline]]
plugin = "aggregate"
config = {{ deadline_ms = 2000, parts = [{{ name = "user", upstream = "users", path = "/users/{{param.id}}" }}, {{ name = "orders", upstream = "orders", path = "/orders?user={{param.id}}" }}, {{ name = "product", upstream = "products", path = "/products/p-1" }}] }}
"#
    )
}

type Case = (&'static str, &'static str, Vec<(&'static str, &'static str)>, Option<&'static str>);

fn cases() -> Vec<Case> {
    let auth = Box::leak(format!("Bearer {TOKEN_MEMBER}").into_boxed_str());
    vec![
        ("0-baseline-respond-only", "/baseline", vec![], None),
        ("jwt-auth-hs256", "/jwt", vec![("authorization", auth)], None),
        ("jwt-auth-hs256-uncached", "/jwt-uncached", vec![("authorization", auth)], None),
        ("rate-limit-high-limit", "/rate", vec![], None),
        ("transform-headers", "/headers", vec![], None),
        ("full-jwt-rate-limit-transform", "/full", vec![("authorization", auth)], None),
        ("transform-json-request-body", "/json", vec![("content-type", "application/json")], Some(upstream::USER)),
        ("0-baseline-proxy-one-call", "/users/42", vec![], None),
        ("aggregate-three-calls", "/agg/42", vec![], None),
        ("grpc-transcode-unary", "/v1/products/p-1?view=FULL", vec![], None),
    ]
}

fn plugins(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let addr = rt.block_on(upstream::start());
    let gw = rt.block_on(gateway(&config(addr)));
    let mut group = c.benchmark_group("plugins");
    for (name, path, headers, body) in cases() {
        let req = || request_with(path, &headers, body.map_or_else(body::empty, body::full));
        let (status, reply) = rt.block_on(send(&gw, req()));
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&reply));
        group.bench_function(name, |b| b.to_async(&rt).iter(|| send(&gw, req())));
    }
    group.finish();
}

criterion_group!(benches, plugins);
criterion_main!(benches);
