//! The plugin contract's versions: a plugin built for an earlier patch of
//! the host's minor version (here 0.2.0, against a 0.2.1 host) loads and
//! serves, its imports linked by semver.

use serde_json::Value;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::FIXTURE_CONTRACT_0_2_0;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test]
async fn a_plugin_built_for_contract_0_2_0_loads_and_serves() {
    // The fixture is built from its own copy of the 0.2.0 contract.
    let wasm = std::fs::read(FIXTURE_CONTRACT_0_2_0).unwrap();
    let imports = |version: &str| wasm.windows(version.len()).any(|w| w == version.as_bytes());
    assert!(imports("wasmgate:plugin/types@0.2.0"));
    assert!(!imports("wasmgate:plugin/types@0.2.1"));

    let up =
        TestUpstream::start(|seen| Answer::new(200, format!("saw {}", seen.header("x-contract").unwrap_or("-")))).await;
    let config = GatewayConfig::new()
        .plugin("old", FIXTURE_CONTRACT_0_2_0)
        .upstream("api", &up)
        .route(Route::prefix("api", "/").upstream("api").stage("old", Value::Null));
    let gw = TestGateway::start(&config.to_string()).await;
    let reply = gw.client.get("/x").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "saw 0.2.0+old-plugin", "both phases ran");
    assert_eq!(reply.header("x-contract"), Some("0.2.0"));
}
