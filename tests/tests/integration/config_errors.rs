//! Bad config and bad plugin files are refused with the file, line and key
//! to fix.

use wasmgate_testbed::gateway::refused as start_errors;
use wasmgate_testbed::plugins::*;

#[tokio::test]
async fn syntax_errors_name_file_and_line() {
    let (errors, file) = start_errors("[server]\nmax_body_bytes = = 3\n").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{file}:2:")), "{errors:?}");
    let (errors, file) = start_errors("[server]\nmax_body_bytes = \"big\"\n").await;
    assert!(errors[0].starts_with(&format!("{file}:2:18: \"big\": invalid type: string")), "{errors:?}");
}

#[tokio::test]
async fn unknown_keys_name_the_key() {
    let toml = "[upstreams.users]\ntargets = [\"127.0.0.1:9\"]\ntimeout = 5\n";
    let (errors, file) = start_errors(toml).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{file}:3:1: timeout: unknown field `timeout`")), "{errors:?}");
}

#[tokio::test]
async fn every_missing_reference_is_reported_at_once() {
    let toml = format!(
        r#"[upstreams.users]
targets = ["127.0.0.1:9"]

[plugins.add-header]
path = "{ADD_HEADER}"

[[routes]]
name = "a"
path = "/a"
upstream = "user"

[[routes]]
name = "b"
path = "/b"
upstream = "users"
pipeline = [{{ plugin = "add-headers" }}]
"#
    );
    let (errors, file) = start_errors(&toml).await;
    assert_eq!(
        errors,
        vec![
            format!("{file}:10:12: routes[0].upstream: unknown upstream \"user\" (defined: users)"),
            format!("{file}:16:24: routes[1].pipeline[0].plugin: unknown plugin \"add-headers\" (defined: add-header)"),
        ]
    );
}

#[tokio::test]
async fn a_plugin_rejecting_its_config_names_route_and_plugin() {
    let toml = format!(
        r#"[plugins.strict]
path = "{FIXTURE_BAD_CONFIG}"

[[routes]]
name = "guarded"
path = "/g"
pipeline = [{{ plugin = "strict", config = {{ anything = 1 }} }}]
"#
    );
    let (errors, file) = start_errors(&toml).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "{file}:7:13: routes[0].pipeline[0]: route \"guarded\": plugin strict rejected its config:"
        )),
        "{errors:?}"
    );
    assert!(errors[0].contains("bad-config fixture rejects every config"), "{errors:?}");
}

#[tokio::test]
async fn typed_plugin_config_errors_name_the_field() {
    let toml = format!(
        r#"[plugins.add-header]
path = "{ADD_HEADER}"

[[routes]]
name = "h"
path = "/h"
pipeline = [{{ plugin = "add-header", config = {{ requestt = {{ a = "b" }} }} }}, {{ plugin = "add-header", config = {{ request = {{ "bad header" = "b" }} }} }}]
"#
    );
    let (errors, _) = start_errors(&toml).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("requestt"), "{errors:?}");
    assert!(errors[1].contains("bad header"), "{errors:?}");
}

#[tokio::test]
async fn missing_and_invalid_plugin_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0 not really").unwrap();
    let toml = format!(
        r#"[plugins.missing]
path = "does-not-exist.wasm"
[plugins.garbage]
path = "{}"
"#,
        garbage.display()
    );
    let (errors, file) = start_errors(&toml).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{file}:4:8: plugins.garbage.path: ")), "{errors:?}");
    assert!(errors[0].contains("is not a valid wasm component"), "{errors:?}");
    assert!(errors[1].starts_with(&format!("{file}:2:8: plugins.missing.path: cannot read ")), "{errors:?}");
    assert!(errors[1].contains("does-not-exist.wasm"), "{errors:?}");
}

/// A component whose only import is an (empty) instance of the plugin
/// contract's `types` interface at `version`.
fn component_importing_contract(version: &str) -> Vec<u8> {
    use wasm_encoder::{Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType};
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import(format!("wasmgate:plugin/types@{version}"), ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

#[tokio::test]
async fn a_plugin_built_for_another_contract_version_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.wasm");
    std::fs::write(&old, component_importing_contract("0.1.0")).unwrap();
    let toml = format!("[plugins.old]\npath = \"{}\"\n", old.display());
    let (errors, file) = start_errors(&toml).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{file}:2:8: plugins.old.path: ")), "{errors:?}");
    assert!(errors[0].contains("built for wasmgate:plugin@0.1.0, this gateway runs @0.2.1 plugins"), "{errors:?}");
}

#[tokio::test]
async fn time_limits_and_breakers_are_checked() {
    let toml = format!(
        r#"[runtime]
wall_timeout_ms = 40
timeout_ms = 50
reload_timeout_ms = 0

[runtime.breaker]
failure_threshold = 0

[plugins.slow]
path = "{ADD_HEADER}"
timeout_ms = 20
wall_timeout_ms = 10
breaker = {{ open_ms = 0 }}

[plugins.cpu]
path = "{ADD_HEADER}"
wall_timeout_ms = 100
timeout_ms = 200
configure_timeout_ms = 0
"#
    );
    let (errors, file) = start_errors(&toml).await;
    assert_eq!(
        errors,
        vec![
            format!(
                "{file}:2:19: runtime.wall_timeout_ms: wall_timeout_ms (40) must be at least timeout_ms (50): wall-clock time includes the CPU time"
            ),
            format!("{file}:7:21: runtime.breaker.failure_threshold: must be greater than 0, got 0"),
            format!("{file}:4:21: runtime.reload_timeout_ms: must be greater than 0, got 0"),
            format!("{file}:19:24: plugins.cpu.configure_timeout_ms: must be greater than 0, got 0"),
            format!(
                "{file}:17:19: plugins.cpu.wall_timeout_ms: wall_timeout_ms (100) must be at least timeout_ms (200): wall-clock time includes the CPU time"
            ),
            format!(
                "{file}:12:19: plugins.slow.wall_timeout_ms: wall_timeout_ms (10) must be at least timeout_ms (20): wall-clock time includes the CPU time"
            ),
            format!("{file}:13:23: plugins.slow.breaker.open_ms: must be greater than 0, got 0"),
        ]
    );
}
