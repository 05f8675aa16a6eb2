//! `plugins_dir`: a plugin file dropped into the folder of a running
//! gateway is loaded, replacing it reloads it, and removing it unloads it,
//! or, while a route names it, leaves the last good config serving.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use wasmgate_testbed::files::{STAMP_V1, replace_atomically, stamp_component};
use wasmgate_testbed::{Client, TestGateway, eventually, logs};

/// A config folder with `plugins/stamp.wasm` ([`STAMP_V1`]) and a route
/// `/v` it answers; `routes` are added to the config.
struct Site {
    _dir: tempfile::TempDir,
    config: PathBuf,
    plugins: PathBuf,
}

const CONFIG: &str = "plugins_dir = \"plugins\"\n\n[[routes]]\nname = \"v\"\npath = \"/v\"\n\
                      pipeline = [{ plugin = \"stamp\", config = { respond = true } }]\n";

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (config, plugins) = (dir.path().join("gateway.toml"), dir.path().join("plugins"));
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(plugins.join("stamp.wasm"), stamp_component(STAMP_V1)).unwrap();
        std::fs::write(&config, CONFIG).unwrap();
        Self { _dir: dir, config, plugins }
    }

    fn plugin(&self, name: &str) -> PathBuf {
        self.plugins.join(format!("{name}.wasm"))
    }
}

/// The version of the stamp plugin that answered `path`, or the status
/// it got instead.
async fn served(client: &Client, path: &str) -> String {
    let reply = client.get(path).await;
    match reply.header("x-version") {
        Some(version) if reply.status == 200 => version.to_owned(),
        _ => format!("status {}", reply.status),
    }
}

async fn status(gw: &TestGateway) -> serde_json::Value {
    gw.admin.get("/status").await.json()
}

/// Each plugin `/status` lists: name, origin and file.
async fn plugins(gw: &TestGateway) -> Vec<(String, String, PathBuf)> {
    let status = status(gw).await;
    let list = status["plugins"].as_array().unwrap().iter();
    list.map(|p| {
        (p["name"].as_str().unwrap().into(), p["origin"].as_str().unwrap().into(), p["path"].as_str().unwrap().into())
    })
    .collect()
}

async fn reloads_failed(gw: &TestGateway, failures: u64) -> bool {
    status(gw).await["reload"]["failures"] == failures
}

/// The last reload's error, which must name `file`.
async fn last_error_names(gw: &TestGateway, file: &Path) -> String {
    let error = status(gw).await["reload"]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(&file.display().to_string()), "{error:?} does not name {}", file.display());
    error
}

#[tokio::test]
async fn a_plugin_dropped_in_serves_the_route_naming_it_then_replaced_then_removed() {
    let logs = logs::capture();
    let site = Site::new();
    let gw = TestGateway::start_at(&site.config).await;
    assert_eq!(served(&gw.client, "/v").await, STAMP_V1);
    assert_eq!(plugins(&gw).await, [("stamp".into(), "plugins_dir".into(), site.plugin("stamp"))]);
    assert_eq!(status(&gw).await["plugins_dir"], site.plugins.display().to_string());

    // A route naming a plugin that is not there yet: refused, naming the file.
    let fresh = site.plugin("fresh");
    let with_w = format!(
        "{CONFIG}\n[[routes]]\nname = \"w\"\npath = \"/w\"\npipeline = [{{ plugin = \"fresh\", config = {{ respond = true }} }}]\n"
    );
    replace_atomically(&site.config, with_w.as_bytes());
    eventually("the config naming a missing plugin is refused", || reloads_failed(&gw, 1)).await;
    let error = last_error_names(&gw, &fresh).await;
    assert!(error.contains("routes[1].pipeline[0].plugin: unknown plugin \"fresh\": no file"), "{error}");
    let logged = logs.find(&[("message", "reload failed; still serving the previous config")]).expect("logged");
    assert!(logged["errors"].as_str().unwrap().contains(&fresh.display().to_string()), "{logged}");
    assert_eq!(served(&gw.client, "/v").await, STAMP_V1);
    assert_eq!(served(&gw.client, "/w").await, "status 404");

    // The file appears (written in place, as `cp` does): the config loads.
    std::fs::write(&fresh, stamp_component("stamp-v0000002")).unwrap();
    eventually("the dropped-in plugin serves /w", || async { served(&gw.client, "/w").await == "stamp-v0000002" })
        .await;
    let generation = status(&gw).await["reload"]["generation"].as_u64().unwrap();
    assert_eq!(generation, 2, "one reload loaded it");
    assert_eq!(plugins(&gw).await[0], ("fresh".into(), "plugins_dir".into(), fresh.clone()));

    // Replaced by renaming over it: the new version, in one reload.
    replace_atomically(&fresh, &stamp_component("stamp-v0000003"));
    eventually("the replacement serves /w", || async { served(&gw.client, "/w").await == "stamp-v0000003" }).await;
    let reload = status(&gw).await["reload"].clone();
    assert_eq!(
        (reload["generation"].as_u64(), reload["failures"].as_u64()),
        (Some(generation + 1), Some(1)),
        "{reload}"
    );

    // Removed while /w uses it: the last good config keeps serving.
    std::fs::remove_file(&fresh).unwrap();
    eventually("the reload without the file fails", || reloads_failed(&gw, 2)).await;
    last_error_names(&gw, &fresh).await;
    assert_eq!(served(&gw.client, "/w").await, "stamp-v0000003");
    assert_eq!(served(&gw.client, "/v").await, STAMP_V1);
    assert!(plugins(&gw).await.iter().any(|(name, ..)| name == "fresh"), "still loaded");
}

#[tokio::test]
async fn an_unused_plugin_file_is_loaded_and_unloaded_with_its_file() {
    let site = Site::new();
    let gw = TestGateway::start_at(&site.config).await;
    let spare = site.plugin("spare");
    std::fs::write(&spare, stamp_component("stamp-v0000004")).unwrap();
    eventually("the new file is loaded", || async { plugins(&gw).await.len() == 2 }).await;
    assert_eq!(plugins(&gw).await[0], ("spare".into(), "plugins_dir".into(), spare.clone()));
    let changes = status(&gw).await["reload"]["recent"][0]["changes"].as_str().unwrap().to_owned();
    assert!(changes.starts_with("plugins added: spare@"), "{changes}");

    // Files that are not plugins do not reload anything.
    std::fs::write(site.plugins.join("README.txt"), "notes").unwrap();
    std::fs::write(site.plugins.join(".spare.wasm.swp"), "editor").unwrap();

    std::fs::remove_file(&spare).unwrap();
    eventually("the removed file is unloaded", || async { plugins(&gw).await.len() == 1 }).await;
    let reload = status(&gw).await["reload"].clone();
    assert_eq!((reload["generation"].as_u64(), reload["failures"].as_u64()), (Some(3), Some(0)), "{reload}");
    assert!(reload["recent"][0]["changes"].as_str().unwrap().starts_with("plugins removed: spare@"), "{reload}");
    assert_eq!(served(&gw.client, "/v").await, STAMP_V1);
}

/// A copy that pauses longer than the debounce between its writes: the
/// reload waits for the whole component instead of failing on half of it.
#[tokio::test]
async fn a_plugin_copied_in_two_slow_writes_loads_once_complete() {
    let site = Site::new();
    let gw = TestGateway::start_at(&site.config).await;
    let v2 = stamp_component("stamp-v0000002");
    let (first, rest) = v2.split_at(v2.len() / 2);
    std::fs::write(site.plugin("stamp"), first).unwrap();
    tokio::time::sleep(wasmgate::DEBOUNCE * 4).await;
    std::fs::OpenOptions::new().append(true).open(site.plugin("stamp")).unwrap().write_all(rest).unwrap();
    eventually("the copied plugin serves", || async { served(&gw.client, "/v").await == "stamp-v0000002" }).await;
    let reload = status(&gw).await["reload"].clone();
    assert_eq!((reload["generation"].as_u64(), reload["failures"].as_u64()), (Some(2), Some(0)), "{reload}");
}

/// The running config has no plugins folder; an edit adds one, with a
/// route naming a plugin not in it yet: refused, and loaded once the file
/// appears, although the folder is not the running config's.
#[tokio::test]
async fn a_config_that_starts_using_a_plugins_folder_loads_when_its_file_appears() {
    let site = Site::new();
    let own = site.config.with_file_name("stamp.wasm");
    std::fs::write(&own, stamp_component(STAMP_V1)).unwrap();
    let explicit = CONFIG.replace("plugins_dir = \"plugins\"\n", "[plugins.stamp]\npath = \"stamp.wasm\"\n");
    replace_atomically(&site.config, explicit.as_bytes());
    let gw = TestGateway::start_at(&site.config).await;
    assert_eq!(status(&gw).await["plugins_dir"], serde_json::Value::Null);

    let with_w = format!(
        "{CONFIG}\n[[routes]]\nname = \"w\"\npath = \"/w\"\npipeline = [{{ plugin = \"fresh\", config = {{ respond = true }} }}]\n"
    );
    replace_atomically(&site.config, with_w.as_bytes());
    eventually("the config naming a missing plugin is refused", || reloads_failed(&gw, 1)).await;
    last_error_names(&gw, &site.plugin("fresh")).await;

    std::fs::write(site.plugin("fresh"), stamp_component("stamp-v0000002")).unwrap();
    eventually("the plugin appearing loads the config", || async {
        served(&gw.client, "/w").await == "stamp-v0000002"
    })
    .await;
    assert_eq!(status(&gw).await["plugins_dir"], site.plugins.display().to_string());
}
