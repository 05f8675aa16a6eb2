//! Hot reload: new plugin files and config edits take effect atomically;
//! anything broken leaves the last good config serving and says why.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Method;
use wasmgate_testbed::files::{STAMP_V1, StampSite, replace_atomically, stamp_component};
use wasmgate_testbed::{Client, TestGateway};

const CONFIG: &str = r#"
[plugins.stamp]
path = "stamp.wasm"

[[routes]]
name = "v"
path = "/v"
pipeline = [
    { plugin = "stamp", config = { respond = false } },
    { plugin = "stamp", config = { respond = true } },
]
"#;

struct Setup {
    site: StampSite,
    gw: TestGateway,
}

impl std::ops::Deref for Setup {
    type Target = StampSite;
    fn deref(&self) -> &StampSite {
        &self.site
    }
}

async fn setup() -> Setup {
    let site = StampSite::new(CONFIG);
    let gw = TestGateway::start_at(&site.config).await;
    Setup { site, gw }
}

fn both(version: &str) -> String {
    format!("{version}+{version}")
}

/// Polls until `check` holds, for at most 20 s (file events and reloads
/// are asynchronous).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn status(admin: &Client) -> serde_json::Value {
    admin.get("/status").await.json()["reload"].clone()
}

async fn served(client: &Client) -> String {
    let reply = client.get("/v").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_file_takes_over_atomically_under_traffic() {
    let s = setup().await;
    let v2 = "stamp-v0000002";
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = s.gw.client.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut seen_new = false;
            let (mut old, mut new) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let reply = client.get("/v").await;
                assert_eq!(reply.status, 200, "{}", reply.text());
                let body = reply.text();
                if body == both(STAMP_V1) {
                    assert!(!seen_new, "an old response after the new plugin served this client");
                    old += 1;
                } else if body == both("stamp-v0000002") {
                    assert_eq!(reply.header("x-version"), Some("stamp-v0000002"));
                    seen_new = true;
                    new += 1;
                } else {
                    panic!("mixed or unknown response: {body}");
                }
            }
            (old, new)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    replace_atomically(&s.plugin, &stamp_component(v2));
    eventually("the new plugin serves", || async { served(&s.gw.client).await == both(v2) }).await;
    // Keep the traffic going past the swap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let (old, new) = c.await.unwrap();
        assert!(old > 0 && new > 0, "each client saw both versions (old {old}, new {new})");
    }
    let st = status(&s.gw.admin).await;
    assert_eq!(st["generation"], 2, "{st}");
    assert_eq!(st["last_cause"], "file change");
    assert!(st["last_error"].is_null());
}

/// A log written beside the config (`wasmgate run gateway.toml > gateway.log`)
/// changes the folder all the time; a reload must not wait for it to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_the_config_does_not_use_do_not_hold_reloads_off() {
    let s = setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let log = s.dir.path().join("gateway.log");
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut writes = 0u32;
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&log, format!("line {writes}\n")).unwrap();
                writes += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            writes
        })
    };
    let v2 = "stamp-v0000002";
    replace_atomically(&s.plugin, &stamp_component(v2));
    // With every write to the log restarting the quiet period, this waits
    // until the writer stops, which it does only after the check.
    eventually("the new plugin serves while the log is being written", || async {
        served(&s.gw.client).await == both(v2)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let st = status(&s.gw.admin).await;
    assert_eq!(st["generation"], 2, "one reload, for the plugin only: {st}");
}

/// Breaks the config or plugin, checks the old version keeps serving and
/// the status names the problem, then fixes it and checks the fix loads.
async fn break_and_fix(
    s: &Setup,
    expected_error: &str,
    break_it: impl FnOnce(),
    fix_it: impl FnOnce(),
    serves_after_fix: &str,
) {
    let before = status(&s.gw.admin).await;
    let served_before = served(&s.gw.client).await;
    break_it();
    eventually(&format!("the reload fails with {expected_error:?}"), || async {
        status(&s.gw.admin).await["failures"] != before["failures"]
    })
    .await;
    let st = status(&s.gw.admin).await;
    let error = st["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(expected_error), "status error {error:?} lacks {expected_error:?}");
    assert_eq!(st["generation"], before["generation"]);
    assert_eq!(served(&s.gw.client).await, served_before, "the last good config keeps serving");

    fix_it();
    eventually("the fix is picked up", || async { status(&s.gw.admin).await["generation"] != before["generation"] })
        .await;
    assert!(status(&s.gw.admin).await["last_error"].is_null());
    assert_eq!(served(&s.gw.client).await, both(serves_after_fix));
}

#[tokio::test]
async fn broken_plugin_files_keep_the_old_version_serving() {
    let s = setup().await;
    let v2 = stamp_component("stamp-v0000002");
    // A truncated file, as a slow copy leaves it for a moment.
    break_and_fix(
        &s,
        "is not a valid wasm component",
        || std::fs::write(&s.plugin, &v2[..v2.len() / 2]).unwrap(),
        || std::fs::write(&s.plugin, &v2).unwrap(),
        "stamp-v0000002",
    )
    .await;
    // Deleted while a route still uses it.
    break_and_fix(
        &s,
        "cannot read",
        || std::fs::remove_file(&s.plugin).unwrap(),
        || replace_atomically(&s.plugin, &stamp_component("stamp-v0000003")),
        "stamp-v0000003",
    )
    .await;
}

#[tokio::test]
async fn broken_config_edits_keep_the_old_config_serving() {
    let s = setup().await;
    let edit = |from: &str, to: &str| {
        let path: &Path = &s.config;
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from));
        replace_atomically(path, text.replacen(from, to, 1).as_bytes());
    };
    let file = s.config.display().to_string();
    // A config the plugin's configure step rejects.
    break_and_fix(
        &s,
        "plugin stamp rejected its config",
        || edit("respond = true", "respond = \"yes\""),
        || edit("respond = \"yes\"", "respond = true"),
        STAMP_V1,
    )
    .await;
    // A syntax error, located.
    break_and_fix(
        &s,
        &format!("{file}:6:"),
        || edit("name = \"v\"", "name = = \"v\""),
        || edit("name = = \"v\"", "name = \"v\""),
        STAMP_V1,
    )
    .await;
    // A reference to a plugin that does not exist.
    break_and_fix(
        &s,
        "unknown plugin \"stamps\"",
        || edit("{ plugin = \"stamp\", config = { respond = false } }", "{ plugin = \"stamps\" }"),
        || edit("{ plugin = \"stamps\" }", "{ plugin = \"stamp\", config = { respond = false } }"),
        STAMP_V1,
    )
    .await;
}

#[tokio::test]
async fn the_admin_api_reloads_on_request() {
    let s = setup().await;
    let reply = s.gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["changes"], "no changes");
    assert_eq!(status(&s.gw.admin).await["last_cause"], "admin");

    std::fs::write(&s.config, "[[routes]\n").unwrap();
    let reply = s.gw.admin.send(Method::POST, "/reload", &[], "").await;
    let detail = reply.problem(422);
    assert!(detail.contains("gateway.toml:1:"), "{detail}");
    assert_eq!(served(&s.gw.client).await, both(STAMP_V1));
}

/// The content hash `/status` shows for the `stamp` plugin.
async fn stamp_hash(gateway: &wasmgate::Gateway) -> String {
    let status = wasmgate::status(gateway).await;
    let plugins = status["plugins"].as_array().unwrap();
    let stamp = plugins.iter().find(|p| p["name"] == "stamp").expect("stamp is listed");
    stamp["hash"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reload_reports_what_changed() {
    // No watcher here, so this reload sees both edits at once.
    let site = StampSite::new(CONFIG);
    let (config, plugin) = (&site.config, &site.plugin);
    let gw = wasmgate::Gateway::load(config).await.unwrap();
    let old_hash = stamp_hash(&gw).await;

    std::fs::write(plugin, stamp_component("stamp-v0000009")).unwrap();
    std::fs::write(
        config,
        format!("{CONFIG}\n[[routes]]\nname = \"w\"\npath = \"/w\"\npipeline = [{{ plugin = \"stamp\", config = {{ respond = true }} }}]\n"),
    )
    .unwrap();
    let diff = gw.reload("test").await.unwrap();
    let new_hash = stamp_hash(&gw).await;
    assert_ne!(old_hash, new_hash);
    assert_eq!(diff.routes_added, vec!["w".to_owned()]);
    assert!(diff.routes_removed.is_empty() && diff.routes_changed.is_empty(), "{diff}");
    assert_eq!(diff.plugins_changed, vec![format!("stamp: {old_hash} → {new_hash}")]);
    assert_eq!(diff.to_string(), format!("routes added: w; plugins changed: stamp: {old_hash} → {new_hash}"));
}
