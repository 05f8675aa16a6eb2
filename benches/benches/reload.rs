//! Time from a plugin file being replaced on disk to the new version
//! answering requests, through the file watcher, as a median over repeated
//! runs. The baseline measured in the same run is a reload triggered
//! directly (no watcher, no debounce): the ratio shows what watching and
//! debouncing add to the compile-and-swap itself.
//!
//! Run: `cargo bench -p wasmgate-benches --bench reload`

use std::time::{Duration, Instant};

use wasmgate_testbed::TestGateway;
use wasmgate_testbed::files::{STAMP_CONFIG, StampSite, replace_atomically, stamp_component};

const RUNS: u32 = 15;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 0.5);
    println!(
        "{name:<34} median {:>8.1} ms   p90 {:>8.1} ms   min {:>8.1} ms   max {:>8.1} ms   (n={})",
        median.as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    );
    median
}

#[tokio::main]
async fn main() {
    let site = StampSite::new(STAMP_CONFIG);
    let plugin = &site.plugin;
    let gw = TestGateway::start_at(&site.config).await;

    let mut watched = Vec::new();
    let mut direct = Vec::new();
    for i in 1..=RUNS {
        // Through the watcher: write, then poll until the new version answers.
        let version = format!("stamp-w{i:07}");
        let bytes = stamp_component(&version);
        let start = Instant::now();
        replace_atomically(plugin, &bytes);
        // Poll every millisecond; give up (a broken watcher) after 30 s.
        let mut served = false;
        for _ in 0..30_000 {
            if gw.client.get("/v").await.header("x-version") == Some(version.as_str()) {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = start.elapsed();
        if !served {
            panic!("the watcher never served {version}");
        }
        watched.push(elapsed);
        // Let the watcher go quiet before the direct measurement.
        tokio::time::sleep(Duration::from_millis(400)).await;

        // Directly: the compile-and-swap alone.
        let version = format!("stamp-d{i:07}");
        let bytes = stamp_component(&version);
        std::fs::write(plugin, &bytes).unwrap();
        let start = Instant::now();
        gw.gateway.reload("bench").await.unwrap();
        direct.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    println!("reload latency, {RUNS} runs each:");
    let base = report("direct reload (baseline)", direct);
    let via_watch = report("file write → served (watcher)", watched);
    println!(
        "ratio watcher / direct: {:.2} (the watcher waits {} ms for writes to settle)",
        via_watch.as_secs_f64() / base.as_secs_f64(),
        wasmgate::DEBOUNCE.as_millis()
    );
}
