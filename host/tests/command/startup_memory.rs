//! A gateway that compiled its plugins at start (no artifact cache yet)
//! idles at the memory of one that loaded them from the cache: the
//! compiler's working memory goes back to the system once it is done.

#![cfg(target_os = "linux")]

use std::time::Duration;

use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::memory::process_rss_bytes;
use wasmgate_testbed::plugins::{JWT_AUTH, RATE_LIMIT, TRANSFORM};
use wasmgate_testbed::process::GatewayProcess;

const BOUND: Duration = Duration::from_secs(120);

/// What a cold start may keep above a warm one: once 90 MB (the compiler
/// in the process), then 2.5 MB (artifacts read from the compiling child
/// into thread heaps that `malloc_trim` does not shrink); now nothing
/// beyond the noise of a few pages.
const MARGIN: u64 = 1 << 20;

#[tokio::test]
async fn a_cold_start_idles_at_the_memory_of_a_warm_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let jwt =
        json!({ "config": { "keys": [{ "secret": "a-secret-of-at-least-32-bytes!!!", "algorithms": ["HS256"] }] } });
    let limit = json!({ "key": ["ip"], "limits": [{ "limit": 100, "window": "1s" }] });
    let config = GatewayConfig::new()
        .section("server", json!({ "listen": ["127.0.0.1:0"] }))
        .section("runtime", json!({ "cache_dir": dir.path().join("cache") }))
        .plugin_with("jwt-auth", JWT_AUTH, jwt)
        .plugin("rate-limit", RATE_LIMIT)
        .plugin("transform", TRANSFORM)
        .route(
            Route::prefix("api", "/")
                .stage("jwt-auth", Value::Null)
                .stage("rate-limit", limit)
                .stage("transform", json!({ "response": { "headers": { "set": { "x-via": "wasmgate" } } } })),
        );
    std::fs::write(&path, config.to_string()).unwrap();

    let idle_rss = || {
        let gateway = GatewayProcess::start(env!("CARGO_BIN_EXE_wasmgate"), &path, BOUND);
        let rss = process_rss_bytes(gateway.id());
        drop(gateway);
        rss
    };
    let cold = idle_rss();
    assert!(std::fs::read_dir(dir.path().join("cache")).unwrap().count() >= 3, "the cold start filled the cache");
    let warm = idle_rss();
    assert!(
        cold <= warm + MARGIN,
        "cold start {} MB, warm start {} MB: the compiler's memory stayed",
        cold >> 20,
        warm >> 20
    );
}
