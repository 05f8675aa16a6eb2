//! `wasmgate plugin new`, as a plugin author uses it outside the repository:
//! scaffold, test, build, check, serve.
//!
//! The scaffolded crate builds with `--offline`, so its SDK and every
//! dependency resolve with no network and no checkout of this repository
//! (the registry cache the workspace's own build filled is enough). It
//! shares `target/scaffold/` across runs, so a repeated run is incremental;
//! the plugin is then copied where the generated config expects it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use wasmgate_testbed::process::GatewayProcess;
use wasmgate_testbed::{Client, TestUpstream, cargo_env};

const BIN: &str = env!("CARGO_BIN_EXE_wasmgate");
const BOUND: Duration = Duration::from_secs(30);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is inside the workspace").to_owned()
}

fn wasmgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).current_dir(dir).args(args).env("RUST_LOG", "off").output().unwrap()
}

/// Runs cargo as the plugin's author would, offline; its output, or a
/// failure showing it.
fn cargo(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cargo_env::scrub(&mut cmd);
    let out = cmd
        .current_dir(dir)
        .args(args)
        .arg("--offline")
        .env("CARGO_TARGET_DIR", workspace_root().join("target/scaffold"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo {args:?} failed:\n{text}");
    text
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_plugin_builds_outside_the_repository_and_serves_traffic() {
    let outer = tempfile::tempdir().unwrap();
    assert!(!outer.path().starts_with(workspace_root()), "the crate is made outside the repository");
    // A workspace above the new crate must not claim it.
    std::fs::write(outer.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();

    let out = wasmgate(outer.path(), &["plugin", "new", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("wasmgate run gateway.toml"), "{}", text(&out.stdout));
    let crate_dir = outer.path().join("hello");

    let tested = cargo(&crate_dir, &["test"]);
    assert!(tested.contains("test result: ok. 3 passed"), "{tested}");

    cargo(&crate_dir, &["build", "--profile", "plugin", "--target", "wasm32-wasip2"]);
    let built = workspace_root().join("target/scaffold/wasm32-wasip2/plugin/hello.wasm");
    let expected = crate_dir.join("target/wasm32-wasip2/plugin/hello.wasm");
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    std::fs::copy(&built, &expected).unwrap();

    // The generated config as it is.
    let out = wasmgate(&crate_dir, &["check", "gateway.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "gateway.toml: ok (2 routes, 1 plugins, 1 upstreams)
  plugin hello (config): target/wasm32-wasip2/plugin/hello.wasm"
    );

    // Served, with the placeholder upstream replaced by a real one and a
    // free port instead of 8080.
    let up = TestUpstream::named("backend").await;
    let config_path = crate_dir.join("gateway.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let placeholders = ["listen = [\"127.0.0.1:8080\"]", "targets = [\"127.0.0.1:9000\"]"];
    for line in placeholders {
        assert!(config.contains(line), "{line} in:\n{config}");
    }
    let config = config
        .replace(placeholders[0], "listen = [\"127.0.0.1:0\"]")
        .replace(placeholders[1], &format!("targets = [\"{}\"]", up.target()));
    std::fs::write(&config_path, config).unwrap();
    let gateway = GatewayProcess::start(BIN, &config_path, BOUND);
    let client = Client::new(gateway.addr);

    let answered = client.get("/hello").await;
    assert_eq!((answered.status, answered.text().as_str()), (200, "hello from hello\n"));
    assert_eq!(up.count(), 0, "the plugin answered /hello itself");

    let proxied = client.get("/orders/7").await;
    assert_eq!((proxied.status, proxied.text().as_str()), (200, "backend GET /orders/7"));
    assert_eq!(proxied.header("x-greeting"), Some("hello from hello"));
    assert_eq!(up.seen()[0].header("x-greeting"), Some("hello from hello"));
}

#[test]
fn a_bad_name_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasmgate(dir.path(), &["plugin", "new", "2fa"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "wasmgate: \"2fa\" cannot be a plugin name: it must start with a lowercase ASCII letter"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_folder_with_files_in_it_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();

    let out = wasmgate(dir.path(), &["plugin", "new", "hello", "taken"]);
    assert!(!out.status.success());
    assert_eq!(text(&out.stderr).trim(), "wasmgate: taken already exists and is not empty");
    let left: Vec<_> = std::fs::read_dir(&taken).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["notes.txt"]);
    assert_eq!(std::fs::read_to_string(taken.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn an_empty_folder_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasmgate(dir.path(), &["plugin", "new", "my-auth", "."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"my-auth\""), "{manifest}");
    let config = std::fs::read_to_string(dir.path().join("gateway.toml")).unwrap();
    assert!(config.contains("path = \"target/wasm32-wasip2/plugin/my_auth.wasm\""), "{config}");
    assert!(dir.path().join("wit/plugin.wit").is_file());
}
