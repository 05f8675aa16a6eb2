//! Many reloads, each compiling a new plugin version, leave memory level:
//! old snapshots, their instances and compiled code are freed once no
//! request uses them. (Its own test binary: RSS is per process.)

use wasmgate_testbed::files::{STAMP_CONFIG, StampSite, stamp_component};
use wasmgate_testbed::memory::rss_bytes;

#[tokio::test]
async fn memory_levels_off_across_many_reloads() {
    let site = StampSite::new(&format!("[runtime]\nmax_instances = 16\n{STAMP_CONFIG}"));
    let gw = wasmgate::Gateway::load(&site.config).await.unwrap();
    let client: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();

    let mut samples = Vec::new();
    for i in 1..=200u32 {
        let version = format!("stamp-v{i:07}");
        std::fs::write(&site.plugin, stamp_component(&version)).unwrap();
        gw.reload("test").await.unwrap();
        let req = http::Request::get("/v").body(wasmgate::internals::body::empty()).unwrap();
        let resp = gw.handle(req, client).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-version"], version.as_str(), "reload {i} serves its version");
        if i % 50 == 0 {
            samples.push(rss_bytes());
        }
    }
    eprintln!("RSS at reloads 50, 100, 150, 200: {:?} MiB", samples.iter().map(|s| s >> 20).collect::<Vec<_>>());
    let growth = samples[3].saturating_sub(samples[0]);
    // Leaking one compiled component per reload would add well over this
    // in 150 reloads; a level RSS stays far below it.
    assert!(
        growth < 24 << 20,
        "RSS grew by {} MiB from reload 50 to 200 (samples {:?} MiB)",
        growth >> 20,
        samples.iter().map(|s| s >> 20).collect::<Vec<_>>()
    );
    assert_eq!(gw.reload_status().generation, 201);
}
