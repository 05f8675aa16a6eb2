//! Reloading: a new snapshot is built from the config file off the request
//! path and swapped in atomically; on any failure the running snapshot
//! stays and the reason is kept for the status endpoint.

mod diff;
mod watch;

use std::time::Duration;

use serde::Serialize;

use crate::config::ConfigErrors;

pub use diff::Diff;
pub use watch::{DEBOUNCE, Watcher, watch};
pub(crate) use watch::{Reloadable, files_of};

/// The outcome of the latest reloads, for operators.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Snapshots served so far: 1 after start, +1 per successful reload.
    pub generation: u64,
    /// When the last reload was tried, ms since the Unix epoch.
    pub last_attempt_ms: Option<u64>,
    /// When a reload last succeeded (or the gateway started).
    pub last_success_ms: Option<u64>,
    /// What triggered the last attempt: `file change`, `SIGHUP`, `admin`.
    pub last_cause: Option<String>,
    /// The last attempt's errors, one per line; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Reloads that failed since start.
    pub failures: u64,
}

/// Why a reload left the previous config serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config on disk is unreadable or has mistakes.
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    /// It ran past `runtime.reload_timeout_ms` and was given up: whatever
    /// held it (a plugin's configure step, a compile) cannot hold the next.
    #[error(
        "reload abandoned: not finished within {} ms (runtime.reload_timeout_ms); the previous config keeps serving",
        limit.as_millis()
    )]
    Abandoned {
        /// `runtime.reload_timeout_ms`.
        limit: Duration,
    },
}
