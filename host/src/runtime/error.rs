//! How a plugin call can fail, as the pipeline's failure policy sees it.

use std::sync::Arc;
use std::time::Duration;

use super::limits::MemoryLimitExceeded;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} exceeded its time limit of {limit:?}")]
    Timeout { plugin: Arc<str>, limit: Duration },
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
    pub(super) fn from_call(plugin: &Arc<str>, timeout: Duration, error: wasmtime::Error) -> Self {
        if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
            return Self::Timeout { plugin: plugin.clone(), limit: timeout };
        }
        if let Some(e) = error.downcast_ref::<MemoryLimitExceeded>() {
            return Self::MemoryLimit { plugin: plugin.clone(), limit: e.limit };
        }
        Self::Trap { plugin: plugin.clone(), reason: format!("{error:#}") }
    }

    /// The HTTP status a fail-closed route answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Overloaded { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap { .. } => "trap",
            Self::Write { .. } => "write",
            Self::Overloaded { .. } => "overloaded",
            Self::Config { .. } => "config",
        }
    }
}
