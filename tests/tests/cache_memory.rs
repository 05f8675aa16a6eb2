//! A flood of distinct URLs through the cache plugin grows the gateway's
//! memory only up to the state store's bound, however long it goes on.
//! (Its own test binary: RSS is per process.)

use futures_util::StreamExt as _;
use serde_json::json;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::memory::rss_bytes;
use wasmgate_testbed::plugins::CACHE;
use wasmgate_testbed::upstream::Answer;
use wasmgate_testbed::{TestGateway, TestUpstream};

const BODY_BYTES: usize = 4 << 10;
/// `[state] max_memory_bytes`: 12 MiB of it for values.
const MAX_MEMORY_BYTES: u64 = 16 << 20;
/// Once the store is full, how much RSS may still grow over the next
/// 80,000 distinct URLs. Kept whole, they would take over 320 MiB.
const GROWTH_BOUND: u64 = 32 << 20;

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

async fn flood(gw: &TestGateway, urls: std::ops::Range<usize>) {
    let stored = futures_util::stream::iter(urls.clone())
        .map(|i| {
            let client = gw.client.clone();
            async move { client.get(&format!("/api/{i}")).await }
        })
        .buffer_unordered(16)
        .filter(|reply| std::future::ready(reply.status == 200 && reply.header("x-cache") == Some("MISS")))
        .count()
        .await;
    assert_eq!(stored, urls.len(), "every URL is new: a miss that is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_bounded_under_100k_distinct_urls() {
    let body = "x".repeat(BODY_BYTES);
    let up =
        TestUpstream::counting(move |_| Answer::new(200, body.clone()).header("cache-control", "max-age=600")).await;
    let toml = GatewayConfig::new()
        .upstream("api", &up)
        .plugin("cache", CACHE)
        .route(Route::prefix("api", "/api").upstream("api").stage("cache", json!({})))
        .section("state", json!({ "max_memory_bytes": MAX_MEMORY_BYTES }))
        .to_string();
    let gw = TestGateway::start(&toml).await;

    // 20,000 URLs of 4 KiB fill the 12 MiB of values several times over.
    flood(&gw, 0..20_000).await;
    let full = rss_bytes();
    flood(&gw, 20_000..100_000).await;
    let after = rss_bytes();

    let status = wasmgate::status(&gw.gateway).await;
    let values = &status["state"]["memory"]["values"];
    eprintln!("RSS with the store full {} MiB, after 80,000 more URLs {} MiB; values {values}", mib(full), mib(after));
    assert!(values["bytes"].as_u64().unwrap() <= values["budget"].as_u64().unwrap(), "{values}");
    assert!(after < full + GROWTH_BOUND, "RSS grew from {} MiB to {} MiB over 80,000 URLs", mib(full), mib(after));
}
