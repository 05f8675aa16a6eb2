//! Reloading: a new snapshot is built from the config file off the request
//! path and swapped in atomically; on any failure the running snapshot
//! stays and the reason is kept for the status endpoint.

mod diff;
mod wasm_file;
mod watch;

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use crate::config::ConfigErrors;

pub use diff::Diff;
pub use watch::{DEBOUNCE, Watcher, watch};
pub(crate) use watch::{Reloadable, Watched, files_of};

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
    /// The latest reloads, newest first (at most [`RECENT_RELOADS`]): what
    /// each changed, or why it failed.
    pub recent: VecDeque<ReloadEvent>,
}

/// How many reloads `/status` and the dashboard remember.
pub const RECENT_RELOADS: usize = 16;

/// One reload, as operators review it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReloadEvent {
    /// When it was tried, ms since the Unix epoch.
    pub at_ms: u64,
    /// What triggered it.
    pub cause: String,
    /// The generation serving after it.
    pub generation: u64,
    /// What changed (`no changes` when nothing did); absent when it failed.
    pub changes: Option<String>,
    /// Why it failed; absent when it was applied.
    pub error: Option<String>,
}

impl ReloadStatus {
    /// Records a reload's outcome.
    pub(crate) fn record(&mut self, at_ms: u64, cause: &str, outcome: &Result<Diff, ReloadError>) {
        self.last_attempt_ms = Some(at_ms);
        self.last_cause = Some(cause.to_owned());
        let (changes, error) = match outcome {
            Ok(diff) => {
                self.generation += 1;
                self.last_success_ms = Some(at_ms);
                self.last_error = None;
                (Some(diff.to_string()), None)
            }
            Err(error) => {
                self.failures += 1;
                self.last_error = Some(error.to_string());
                (None, Some(error.to_string()))
            }
        };
        let event = ReloadEvent { at_ms, cause: cause.to_owned(), generation: self.generation, changes, error };
        self.recent.truncate(RECENT_RELOADS - 1);
        self.recent.push_front(event);
    }
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
