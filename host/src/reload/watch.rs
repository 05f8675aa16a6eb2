//! Watches the config file and every plugin, embedded and certificate file
//! it names, and reloads
//! once writes have settled.
//!
//! Folders are watched, not files: editors and `cp`-then-`mv` replace a
//! file by renaming over it, which a watch on the old file never sees.
//! Events are debounced until the files have been quiet for a while, so a
//! file written in several steps is read once, complete; if a reload still
//! catches a half-written file it fails, the old snapshot keeps serving,
//! and the next write event reloads again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::gateway::Gateway;

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Keeps the watch running; dropping it stops watching.
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching the files of the gateway's current config.
pub fn watch(gateway: Arc<Gateway>) -> notify::Result<Watcher> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    })?;
    let mut state = WatchState { watcher, dirs: BTreeSet::new(), files: BTreeSet::new() };
    state.update(&gateway);
    let task = tokio::spawn(run(gateway, state, rx));
    Ok(Watcher { task })
}

struct WatchState {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
}

impl WatchState {
    /// Watches the folders of the files the current snapshot depends on.
    fn update(&mut self, gateway: &Gateway) {
        let snapshot = gateway.snapshot();
        let files: BTreeSet<PathBuf> = std::iter::once(snapshot.config.source.as_path())
            .chain(snapshot.config.plugins.iter().map(|p| p.path.as_path()))
            .chain(snapshot.config.embedded_files.iter().map(PathBuf::as_path))
            .chain(snapshot.config.server.tls.iter().flat_map(|t| [t.cert.as_path(), t.key.as_path()]))
            .map(absolute)
            .collect();
        let dirs: BTreeSet<PathBuf> = files.iter().filter_map(|f| f.parent().map(Path::to_owned)).collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %new.display(), error = %e, "cannot watch folder for reloads");
            }
        }
        self.dirs = dirs;
        self.files = files;
    }

    fn concerns(&self, event: &notify::Event) -> bool {
        !event.kind.is_access() && event.paths.iter().any(|p| self.files.contains(p))
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

async fn run(
    gateway: Arc<Gateway>,
    mut state: WatchState,
    mut rx: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
) {
    while let Some(event) = rx.recv().await {
        match event {
            Ok(event) if state.concerns(&event) => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "file watch error");
                continue;
            }
        }
        // Wait for the writes to settle.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let _ = gateway.reload("file change").await;
        state.update(&gateway);
    }
}
