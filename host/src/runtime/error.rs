//! How a plugin call can fail, as the pipeline's failure policy sees it.

use std::sync::Arc;
use std::time::Duration;

use super::deadline::WallDeadlinePassed;
use super::limits::{MemoryLimitExceeded, PluginLimits};

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} exceeded its time limit of {limit:?}")]
    Timeout { plugin: Arc<str>, limit: Duration },
    /// Wasm, host calls and sleeps together took too long.
    #[error("plugin {plugin} did not finish within its wall-clock limit of {limit:?}")]
    WallTimeout { plugin: Arc<str>, limit: Duration },
    #[error("plugin {plugin} did not finish configuring within {} ms", limit.as_millis())]
    ConfigureTimeout { plugin: Arc<str>, limit: Duration },
    /// The plugin's breaker is open: the call was not made.
    #[error("plugin {plugin} is quarantined after repeated failures")]
    Quarantined { plugin: Arc<str>, retry_after: Duration },
    #[error("plugin {plugin} exceeded its memory limit of {limit} bytes")]
    MemoryLimit { plugin: Arc<str>, limit: usize },
    #[error("plugin {plugin} failed: {reason}")]
    Trap { plugin: Arc<str>, reason: String },
    /// The call returned writes HTTP cannot carry (a bad header name…).
    #[error("plugin {plugin} failed: {reason}")]
    Write { plugin: Arc<str>, reason: String },
    #[error("plugin {plugin} has no free instance")]
    Overloaded { plugin: Arc<str> },
    #[error("plugin {plugin} rejected its config: {reason}")]
    Config { plugin: Arc<str>, reason: String },
}

impl PluginError {
    /// Classifies an error out of a call into the guest.
    pub(super) fn from_call(plugin: &Arc<str>, limits: &PluginLimits, error: wasmtime::Error) -> Self {
        if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
            return Self::Timeout { plugin: plugin.clone(), limit: limits.timeout };
        }
        if error.is::<WallDeadlinePassed>() {
            return Self::WallTimeout { plugin: plugin.clone(), limit: limits.wall_timeout };
        }
        if let Some(e) = error.downcast_ref::<MemoryLimitExceeded>() {
            return Self::MemoryLimit { plugin: plugin.clone(), limit: e.limit };
        }
        Self::Trap { plugin: plugin.clone(), reason: format!("{error:#}") }
    }

    /// The HTTP status a fail-closed route answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Overloaded { .. } | Self::Quarantined { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// For a 503: when to try again, in whole seconds (at least one).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Overloaded { .. } => Some(1),
            Self::Quarantined { retry_after, .. } => Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            _ => None,
        }
    }

    /// Whether the plugin itself failed in the sandbox (and counts towards
    /// its breaker), rather than the host refusing it work or its writes.
    pub fn is_sandbox_failure(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::WallTimeout { .. }
            | Self::ConfigureTimeout { .. }
            | Self::MemoryLimit { .. }
            | Self::Trap { .. } => true,
            Self::Write { .. } | Self::Overloaded { .. } | Self::Config { .. } | Self::Quarantined { .. } => false,
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::WallTimeout { .. } => "wall_timeout",
            Self::ConfigureTimeout { .. } => "configure_timeout",
            Self::Quarantined { .. } => "quarantined",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap { .. } => "trap",
            Self::Write { .. } => "write",
            Self::Overloaded { .. } => "overloaded",
            Self::Config { .. } => "config",
        }
    }
}
