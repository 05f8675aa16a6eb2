//! Router lookup alone, with 1,000 routes against 10 (the baseline, in the
//! same run): 60% exact static paths, 30% paths with a `{param}`, 10%
//! prefix routes, looked up with a hit of each kind and a miss.
//!
//! Run: `cargo bench -p wasmgate-benches --bench router`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use wasmgate::internals::{PathPattern, RouteLookup, RouteMatcher, Router};

fn matcher(path: PathPattern, methods: Vec<Method>) -> RouteMatcher {
    RouteMatcher { path, methods, hosts: Vec::new() }
}

/// `n` routes, kinds interleaved: i % 10 in 0..6 exact, 6..9 param, 9 prefix.
fn routes(n: usize) -> Vec<RouteMatcher> {
    (0..n)
        .map(|i| match i % 10 {
            0..6 => matcher(PathPattern::Exact(format!("/api/v1/svc{i}/items")), vec![Method::GET]),
            6..9 => matcher(PathPattern::Exact(format!("/api/v1/svc{i}/items/{{id}}")), vec![Method::GET, Method::PUT]),
            _ => matcher(PathPattern::Prefix(format!("/static/s{i}")), Vec::new()),
        })
        .collect()
}

/// One path of each kind, from the middle of the route list.
fn lookups(n: usize) -> [(&'static str, String); 4] {
    let mid = n / 2 / 10 * 10;
    [
        ("exact", format!("/api/v1/svc{}/items", mid + 3)),
        ("param", format!("/api/v1/svc{}/items/12345", mid + 7)),
        ("prefix", format!("/static/s{}/css/site.css", mid + 9)),
        ("miss", "/nothing/here".to_owned()),
    ]
}

fn router(c: &mut Criterion) {
    let mut group = c.benchmark_group("router");
    for n in [10, 1000] {
        let router = Router::build(routes(n)).expect("routes do not conflict");
        for (kind, path) in lookups(n) {
            let found =
                matches!(router.lookup(&Method::GET, Some("api.example.com"), &path), RouteLookup::Found { .. });
            assert_eq!(found, kind != "miss", "{n} routes, {kind}: {path}");
            group.bench_function(format!("{n}-routes/{kind}"), |b| {
                b.iter(|| router.lookup(&Method::GET, Some("api.example.com"), black_box(&path)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
