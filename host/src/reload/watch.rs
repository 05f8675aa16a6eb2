//! Watches the config file and every plugin, embedded and certificate file
//! it names, and reloads once writes to them have settled.
//!
//! Folders are watched, not files: editors and `cp`-then-`mv` replace a
//! file by renaming over it, which a watch on the old file never sees.
//! A folder holds other files too (the gateway's own log, an editor's swap
//! files), so every event is first checked against [`Interest`]: only
//! changes to the files the config uses start or prolong the quiet period
//! a reload waits for. Events are debounced until those files have been
//! quiet for a while, so a file written in several steps is read once,
//! complete. A plugin file copied in place (`cp`) may pause longer than
//! that between writes, so a changed `.wasm` file must also be a whole
//! component ([`wasm_file::is_whole`]) before the reload starts; one still
//! cut short after [`SETTLE_LIMIT`] is reloaded anyway and fails, the old
//! snapshot keeps serving, and the next write event reloads again.
//!
//! With `plugins_dir`, every `*.wasm` file directly in that folder is of
//! interest, the ones no plugin came from yet included: a file dropped in
//! is a new plugin. So is the folder the config on disk names, when a
//! reload of it failed: its route may be waiting for a file to appear.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::wasm_file;
use crate::config::Config;

/// Quiet time after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// How long a changed plugin file that is not yet a whole component holds
/// the reload off, from the first change: a copy that stops halfway is
/// then reported, not waited for forever.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Keeps the watch running; dropping it stops watching.
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the watcher reloads (the gateway): it is driven from here, without
/// this module knowing what it is.
pub trait Reloadable: Send + Sync + 'static {
    /// The files the running config depends on ([`files_of`] it).
    fn watched_files(&self) -> Watched;
    /// Reloads after a change to one of them; failures are its own to report.
    fn reload_files(&self) -> impl Future<Output = ()> + Send;
}

/// Starts watching the files of the target's current config.
pub fn watch<T: Reloadable>(gateway: Arc<T>) -> notify::Result<Watcher> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    })?;
    let mut state = WatchState { watcher, dirs: BTreeSet::new(), interest: Interest::default() };
    state.update(&*gateway);
    let task = tokio::spawn(run(gateway, state, rx));
    Ok(Watcher { task })
}

/// What a config depends on: its files, and the folder whose plugin files
/// come and go.
#[derive(Debug, Default, Clone)]
pub struct Watched {
    /// Files whose changes reload.
    pub files: Vec<PathBuf>,
    /// Folders in which any `*.wasm` file coming, changing or going
    /// reloads.
    pub plugins_dirs: Vec<PathBuf>,
}

/// What decides whether a changed path calls for a reload, and which
/// folders to watch for it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Interest {
    files: BTreeSet<PathBuf>,
    plugins_dirs: BTreeSet<PathBuf>,
}

impl Interest {
    /// As absolute paths (event paths are the watched folder joined with a
    /// file name).
    fn new(watched: Watched) -> Self {
        Self {
            files: watched.files.iter().map(|f| absolute(f)).collect(),
            plugins_dirs: watched.plugins_dirs.iter().map(|d| absolute(d)).collect(),
        }
    }

    fn matters(&self, path: &Path) -> bool {
        self.files.contains(path) || self.plugins_dirs.iter().any(|dir| is_plugin_file_in(dir, path))
    }

    fn folders(&self) -> BTreeSet<PathBuf> {
        self.files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .chain(self.plugins_dirs.iter().cloned())
            .collect()
    }
}

/// A file the plugins folder makes a plugin of (the config check then
/// says whether its name is usable).
fn is_plugin_file_in(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir)
        && path.extension().is_some_and(|e| e == "wasm")
        && !path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
}

/// The config file, its plugins, the files embedded into plugin configs,
/// the TLS certificate and key, and the plugins folder.
pub(crate) fn files_of(config: &Config) -> Watched {
    let files = std::iter::once(&config.source)
        .chain(config.plugins.iter().map(|p| &p.path))
        .chain(&config.embedded_files)
        .chain(config.server.tls.iter().flat_map(|t| [&t.cert, &t.key]))
        .cloned()
        .collect();
    Watched { files, plugins_dirs: config.plugins_dir.iter().cloned().collect() }
}

struct WatchState {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    interest: Interest,
}

impl WatchState {
    /// Watches the folders of the files the current snapshot depends on.
    fn update(&mut self, target: &impl Reloadable) {
        self.interest = Interest::new(target.watched_files());
        let dirs = self.interest.folders();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %new.display(), error = %e, "cannot watch folder for reloads");
            }
        }
        self.dirs = dirs;
    }

    /// Whether `event` may have changed a file the config uses (noting the
    /// plugin files among them in `changed`). When the system dropped
    /// events (a full inotify queue), any of them may have.
    fn concerns(&self, event: &notify::Event, changed: &mut BTreeSet<PathBuf>) -> bool {
        if event.kind.is_access() {
            return event.need_rescan();
        }
        let mut concerns = event.need_rescan();
        for path in event.paths.iter().filter(|p| self.interest.matters(p)) {
            concerns = true;
            if path.extension().is_some_and(|e| e == "wasm") {
                changed.insert(path.clone());
            }
        }
        concerns
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Waits for the next event that concerns the config's files, passing
/// over the others; `false` once the watcher is gone.
async fn next_change(
    rx: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    state: &WatchState,
    changed: &mut BTreeSet<PathBuf>,
) -> bool {
    while let Some(event) = rx.recv().await {
        match event {
            Ok(event) if state.concerns(&event, changed) => return true,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watch error"),
        }
    }
    false
}

/// Whether every changed plugin file is whole (or gone: a removal is
/// complete as it is).
async fn settled(changed: &BTreeSet<PathBuf>) -> bool {
    for path in changed {
        if let Ok(bytes) = tokio::fs::read(path).await
            && !wasm_file::is_whole(&bytes)
        {
            return false;
        }
    }
    true
}

async fn run<T: Reloadable>(
    gateway: Arc<T>,
    mut state: WatchState,
    mut rx: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
) {
    let mut changed = BTreeSet::new();
    while next_change(&mut rx, &state, &mut changed).await {
        let first = Instant::now();
        // Wait for the writes to settle: only another change to a file the
        // config uses restarts the wait, and a plugin file cut short
        // prolongs it (up to SETTLE_LIMIT).
        loop {
            match tokio::time::timeout(DEBOUNCE, next_change(&mut rx, &state, &mut changed)).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(_) if first.elapsed() < SETTLE_LIMIT && !settled(&changed).await => continue,
                Err(_) => break,
            }
        }
        changed.clear();
        gateway.reload_files().await;
        state.update(&*gateway);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_a_config_uses_matter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), "{}").unwrap();
        let text = r#"
[plugins.p]
path = "plugins/p.wasm"
config = { keys = { "$file" = "jwks.json" } }
[[routes]]
name = "r"
path = "/"
pipeline = [{ plugin = "p" }]
"#;
        let used = ["gateway.toml", "plugins/p.wasm", "jwks.json"];
        let unrelated = ["gateway.log", "gateway.toml.swp", "plugins/other.wasm", "plugins", "jwks.json.tmp"];
        let interest = assert_interest(&dir, text, &used, &unrelated);
        assert!(interest.plugins_dirs.is_empty());
    }

    /// The interest of config `text` in `dir`: the `used` files matter, the
    /// `unrelated` ones do not, and it watches `dir` and `dir/plugins`.
    fn assert_interest(dir: &tempfile::TempDir, text: &str, used: &[&str], unrelated: &[&str]) -> Interest {
        let config = crate::config::parse(&dir.path().join("gateway.toml"), text).unwrap();
        let interest = Interest::new(files_of(&config));
        let base = absolute(dir.path());
        for used in used {
            assert!(interest.matters(&base.join(used)), "{used}");
        }
        for unrelated in unrelated {
            assert!(!interest.matters(&base.join(unrelated)), "{unrelated}");
        }
        assert_eq!(interest.folders(), BTreeSet::from([base.clone(), base.join("plugins")]));
        interest
    }

    #[test]
    fn any_plugin_file_in_the_plugins_folder_matters_even_one_not_loaded_yet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let used = ["gateway.toml", "plugins/new.wasm", "plugins/has space.wasm"];
        let unrelated = ["plugins/.new.wasm", "plugins/new.wasm.tmp", "plugins/sub/new.wasm", "plugins", "new.wasm"];
        assert_interest(&dir, "plugins_dir = \"plugins\"\n", &used, &unrelated);
    }
}
