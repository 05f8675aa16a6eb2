//! After a burst of sleeping and large-reply requests has grown the warm
//! pools to their full concurrency, the instances no longer needed are
//! dropped and the memory they and the bodies used goes back to the
//! system. (Its own test binary: RSS is per process.)

use std::time::Duration;

use wasmgate_testbed::memory::rss_bytes;
use wasmgate_testbed::plugins::FIXTURE_SLEEPER;
use wasmgate_testbed::{TestGateway, TestUpstream, eventually};

/// Concurrent requests per route: the pools' default concurrency.
const BURST: usize = 64;
const REPLY_BYTES: usize = 4 << 20;
/// How far above its idle level RSS may stay once the burst is over. The
/// burst itself takes it several hundred MiB up.
const BOUND: u64 = 48 << 20;

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_near_idle_after_a_burst() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&format!(
        r#"
[runtime]
instance_idle_ms = 500
[upstreams.up]
targets = ["{}"]
[plugins.sleeper]
path = "{FIXTURE_SLEEPER}"
[[routes]]
name = "sleep"
path = "/sleep"
upstream = "up"
pipeline = [{{ plugin = "sleeper", config = {{ sleep_ms = 300 }} }}]
[[routes]]
name = "big"
path = "/big"
pipeline = [{{ plugin = "sleeper", config = {{ sleep_ms = 300, reply_bytes = {REPLY_BYTES} }} }}]
"#,
        up.target()
    ))
    .await;
    let idle_instances = async || {
        let status = wasmgate::status(&gw.gateway).await;
        let uses = status["plugin_uses"].as_array().unwrap().iter();
        uses.map(|u| u["idle_instances"].as_u64().unwrap()).collect::<Vec<_>>()
    };

    // Idle: every path taken once, so the idle figure includes what any
    // request costs the first time.
    for path in ["/sleep", "/big", "/sleep", "/big"] {
        assert_eq!(gw.client.get(path).await.status, 200);
    }
    eventually("the pools are at rest", || async { idle_instances().await == [1, 1] }).await;
    let idle = rss_bytes();

    let mut burst = Vec::new();
    for i in 0..2 * BURST {
        let client = gw.client.clone();
        let path = if i % 2 == 0 { "/sleep" } else { "/big" };
        burst.push(tokio::spawn(async move { client.get(path).await }));
    }
    for reply in burst {
        let reply = reply.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let peak = rss_bytes();
    assert!(peak > idle + 4 * BOUND, "the burst took memory: idle {} MiB, peak {} MiB", mib(idle), mib(peak));

    eventually("the pools are trimmed", || async { idle_instances().await == [1, 1] }).await;
    let mut after = rss_bytes();
    for _ in 0..100 {
        if after < idle + BOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_bytes();
    }
    eprintln!("RSS idle {} MiB, after the burst {} MiB, trimmed {} MiB", mib(idle), mib(peak), mib(after));
    assert!(
        after < idle + BOUND,
        "RSS stayed at {} MiB after the burst (idle {} MiB, peak {} MiB)",
        mib(after),
        mib(idle),
        mib(peak)
    );
    // Trimmed pools still serve, growing again as needed.
    assert_eq!(gw.client.get("/big").await.body.len(), REPLY_BYTES);
}
