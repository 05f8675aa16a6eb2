//! Compiled plugins are cached on disk by content hash, so a restart skips
//! compilation; a damaged cache entry is recompiled, never trusted.

use std::path::Path;

use serde_json::{Value, json};
use wasmgate_testbed::TestGateway;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{ADD_HEADER, FIXTURE_RESPOND};

fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test]
async fn artifacts_are_cached_reused_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let route = Route::path("r", "/").stage("add-header", Value::Null).stage("respond", Value::Null);
    let toml = GatewayConfig::new()
        .section("runtime", json!({"cache_dir": "cache"}))
        .plugin_with("respond", FIXTURE_RESPOND, json!({"config": {"status": 200, "body": "cached"}}))
        .plugin_with("add-header", ADD_HEADER, json!({"config": {"response": {"x-a": "1"}}}))
        .route(route);
    std::fs::write(&config, toml.to_string()).unwrap();
    let cache = dir.path().join("cache");

    let first = TestGateway::start_at(&config).await;
    assert_eq!(first.client.get("/").await.text(), "cached");
    let stored = artifacts(&cache);
    assert_eq!(stored.len(), 2, "one artifact per distinct component: {stored:?}");
    let modified: Vec<_> = stored.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();
    first.shutdown().await;

    // A restart loads the artifacts instead of writing new ones.
    let second = TestGateway::start_at(&config).await;
    assert_eq!(second.client.get("/").await.header("x-a"), Some("1"));
    assert_eq!(artifacts(&cache), stored);
    let again: Vec<_> = stored.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();
    assert_eq!(modified, again, "cached artifacts were reused, not rewritten");
    second.shutdown().await;

    // A damaged artifact is refused by wasmtime, recompiled and replaced.
    std::fs::write(&stored[0], b"not an artifact").unwrap();
    let third = TestGateway::start_at(&config).await;
    assert_eq!(third.client.get("/").await.text(), "cached");
    assert_ne!(std::fs::read(&stored[0]).unwrap(), b"not an artifact");
}
