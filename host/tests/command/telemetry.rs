//! `wasmgate run`'s telemetry as an operator meets it: the access log on
//! stdout by default (JSON with `--log-format json`, a combined line
//! otherwise), a log file reopened on SIGUSR1 after a rotation, and
//! `[server] workers` sizing the runtime.

#![cfg(unix)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wasmgate_testbed::process::GatewayProcess;
use wasmgate_testbed::{Answer, Client, TestUpstream, eventually};

const BOUND: Duration = Duration::from_secs(20);

fn start(dir: &Path, extra: &str, up: &TestUpstream, format: &str) -> GatewayProcess {
    let path = dir.join("gw.toml");
    let config = format!(
        "{extra}\n[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
        up.target()
    );
    std::fs::write(&path, config).unwrap();
    GatewayProcess::start_with(env!("CARGO_BIN_EXE_wasmgate"), &path, format, BOUND)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_on_by_default_in_the_log_format() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let json = start(dir.path(), "[server]\nlisten = [\"127.0.0.1:0\"]\n", &up, "json");
    assert_eq!(Client::new(json.addr).get("/json").await.status, 200);
    eventually("a JSON line on stdout", || async { !json.stdout().is_empty() }).await;
    let line: serde_json::Value = serde_json::from_str(&json.stdout()[0]).expect("one JSON object a line");
    assert_eq!((&line["path"], &line["status"], &line["route"]), (&"/json".into(), &200.into(), &"all".into()));
    drop(json);

    let text = start(dir.path(), "[server]\nlisten = [\"127.0.0.1:0\"]\n", &up, "text");
    assert_eq!(Client::new(text.addr).get("/text").await.status, 200);
    eventually("a combined line on stdout", || async { !text.stdout().is_empty() }).await;
    let line = &text.stdout()[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("] \"GET /text HTTP/1.1\" 200 2 \"-\" "), "{line}");
    assert!(line.contains(" route=\"all\" "), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_access_log_after_a_rotation() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let settings =
        format!("[server]\nlisten = [\"127.0.0.1:0\"]\n\n[access_log]\npath = {:?}\n", log.to_str().unwrap());
    let gateway = start(dir.path(), &settings, &up, "json");
    let client = Client::new(gateway.addr);
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap_or_default().lines().count();

    assert_eq!(client.get("/before").await.status, 200);
    eventually("the first line", || async { lines(&log) == 1 }).await;
    assert!(gateway.stdout().is_empty(), "the file, not stdout");
    std::fs::rename(&log, &rotated).unwrap();
    let signalled = Command::new("kill").args(["-USR1", &gateway.id().to_string()]).status().unwrap();
    assert!(signalled.success());
    eventually("the file is opened again", || async { log.exists() }).await;
    assert_eq!(client.get("/after").await.status, 200);
    eventually("the next line in the new file", || async { lines(&log) == 1 }).await;
    assert_eq!(lines(&rotated), 1);
    assert!(std::fs::read_to_string(&log).unwrap().contains("\"path\":\"/after\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_workers_sizes_the_runtime() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    for workers in [1, 3] {
        let settings = format!("[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\n");
        let gateway = start(dir.path(), &settings, &up, "json");
        assert_eq!(Client::new(gateway.addr).get("/").await.status, 200);
        assert_eq!(gateway.logged(&format!("\"workers\":{workers}")), 1, "the listening line says {workers}");
    }
}
