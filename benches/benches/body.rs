//! JSON transform of response bodies of 1 KB, 100 KB and 1 MB: a route whose
//! upstream (in-process, on loopback) answers that body, with a transform
//! that has response body operations, against the same route without the
//! transform (the baseline, same run).
//!
//! Run: `cargo bench -p wasmgate-benches --bench body`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wasmgate_benches::{gateway, roundtrip, upstream};
use wasmgate_testbed::plugins::TRANSFORM;

pub const SIZES: [(&str, usize); 3] = [("1KB", 1 << 10), ("100KB", 100 << 10), ("1MB", 1 << 20)];

fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"
[server]
max_body_bytes = 8388608

[upstreams.data]
targets = ["{upstream}"]

[plugins.transform]
path = "{TRANSFORM}"
memory_mb = 64
# A 1 MB body takes ~30 ms of wasm, its first call longer: the default
# 50 ms per call leaves no room on a loaded machine.
timeout_ms = 1000

[[routes]]
name = "plain"
prefix = "/plain"
upstream = "data"

[[routes]]
name = "transformed"
prefix = "/tx"
upstream = "data"

[[routes.pipeline]]
plugin = "transform"
config = {{ response = {{ body = {{ rename = {{ user_name = "userName" }}, remove = ["email"], add = {{ request_id = "{{request_id}}" }} }} }} }}
"#
    )
}

fn bodies(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let addr = rt.block_on(upstream::start());
    let gw = rt.block_on(gateway(&config(addr)));
    let mut group = c.benchmark_group("body");
    group.measurement_time(Duration::from_secs(4));
    for (label, n) in SIZES {
        let plain = format!("/plain/bytes/{n}");
        let tx = format!("/tx/bytes/{n}");
        let (status, body) = rt.block_on(roundtrip(&gw, &plain));
        assert_eq!(status, 200);
        let (status, transformed) = rt.block_on(roundtrip(&gw, &tx));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&transformed));
        assert!(transformed.windows(8).any(|w| w == b"userName"), "the transform ran");
        group.throughput(Throughput::Bytes(body.len() as u64));
        if n >= 1 << 20 {
            group.sample_size(20);
        }
        group.bench_function(format!("{label}/no-transform"), |b| b.to_async(&rt).iter(|| roundtrip(&gw, &plain)));
        group.bench_function(format!("{label}/transform"), |b| b.to_async(&rt).iter(|| roundtrip(&gw, &tx)));
    }
    group.finish();
}

criterion_group!(benches, bodies);
criterion_main!(benches);
