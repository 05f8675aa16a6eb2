//! Cost of plugin calls: routes whose last plugin answers directly, with
//! 0, 1, 2, 4 and 8 no-op plugins in front. The difference between them is
//! the price of a plugin call; the 0-plugin route is the baseline measured
//! in the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_benches::{gateway, roundtrip};
use wasmgate_testbed::plugins::{ADD_HEADER, FIXTURE_RESPOND};

const LENGTHS: [usize; 5] = [0, 1, 2, 4, 8];

fn config() -> String {
    let mut toml = format!(
        r#"
[runtime]
max_instances = 64

[plugins.noop]
path = "{ADD_HEADER}"
[plugins.respond]
path = "{FIXTURE_RESPOND}"
config = {{ status = 200, body = "ok" }}
"#
    );
    for n in LENGTHS {
        let mut pipeline: Vec<&str> = vec![r#"{ plugin = "noop" }"#; n];
        pipeline.push(r#"{ plugin = "respond" }"#);
        toml.push_str(&format!(
            "[[routes]]\nname = \"noop-{n}\"\npath = \"/noop/{n}\"\npipeline = [{}]\n",
            pipeline.join(", ")
        ));
    }
    toml
}

fn pipelines(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let gw = rt.block_on(gateway(&config()));
    let mut group = c.benchmark_group("pipeline");
    for n in LENGTHS {
        let path = format!("/noop/{n}");
        assert_eq!(rt.block_on(roundtrip(&gw, &path)).0, 200);
        group.bench_function(format!("{n}-noop-plugins"), |b| b.to_async(&rt).iter(|| roundtrip(&gw, &path)));
    }
    group.finish();
}

criterion_group!(benches, pipelines);
criterion_main!(benches);
