//! Reloading: a new snapshot is built from the config file off the request
//! path and swapped in atomically; on any failure the running snapshot
//! stays and the reason is kept for the status endpoint.

mod diff;
mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use diff::Diff;
pub use watch::{DEBOUNCE, Watcher, watch};

/// The outcome of the latest reloads, for operators.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Snapshots served so far: 1 after start, +1 per successful reload.
    pub generation: u64,
    pub last_attempt_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    /// What triggered the last attempt: `file change`, `SIGHUP`, `admin`.
    pub last_cause: Option<String>,
    /// The last attempt's errors, one per line; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Reloads that failed since start.
    pub failures: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
