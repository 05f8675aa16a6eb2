//! How a plugin call can fail, as the pipeline's failure policy sees it.
//!
//! The `Display` text is for the gateway's log and may carry what the
//! plugin did wrong; [`PluginError::detail`] is what a client is told, and
//! never shows the plugin's insides (trap text, backtrace).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::deadline::WallDeadlinePassed;
use super::limits::{MemoryLimitExceeded, PluginLimits};
use crate::message::MessageError;

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
    /// A panic, a bad instruction, an import called wrongly.
    #[error("plugin {plugin} failed: {reason}")]
    Trap { plugin: Arc<str>, reason: String, backtrace: Option<String> },
    /// The plugin handed the host a value HTTP cannot carry or the
    /// server's limits do not allow (a bad header name, a reply status of
    /// 99, 100,000 headers…).
    #[error("plugin {plugin} returned an invalid value: {reason}")]
    Write { plugin: Arc<str>, reason: String },
    #[error("plugin {plugin} has no free instance")]
    Overloaded { plugin: Arc<str> },
    /// The state backend is down and `[state] on_unavailable` is
    /// fail-closed (logged once per outage by the store, not per call).
    #[error("plugin {plugin} needs shared state, which is unavailable: {reason}")]
    StateUnavailable { plugin: Arc<str>, reason: String },
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
        if let Some(e) = error.downcast_ref::<crate::state::Unavailable>() {
            return Self::StateUnavailable { plugin: plugin.clone(), reason: e.0.clone() };
        }
        // A value an import refused (`set-status(99)`) fails the call.
        if let Some(e) = error.downcast_ref::<MessageError>() {
            return Self::Write { plugin: plugin.clone(), reason: e.to_string() };
        }
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(ToString::to_string);
        Self::Trap { plugin: plugin.clone(), reason: error.root_cause().to_string(), backtrace }
    }

    /// Adds to a trap the last error the plugin logged before it: an SDK
    /// plugin logs its panic message (with file and line) just before the
    /// panic becomes a trap, which on its own says only "unreachable".
    pub(super) fn after_logging(mut self, logged: Option<String>) -> Self {
        if let (Self::Trap { reason, .. }, Some(logged)) = (&mut self, logged) {
            *reason = format!("{reason}, after the plugin logged: {logged}");
        }
        self
    }

    pub fn plugin(&self) -> &Arc<str> {
        match self {
            Self::Timeout { plugin, .. }
            | Self::WallTimeout { plugin, .. }
            | Self::ConfigureTimeout { plugin, .. }
            | Self::Quarantined { plugin, .. }
            | Self::MemoryLimit { plugin, .. }
            | Self::Trap { plugin, .. }
            | Self::Write { plugin, .. }
            | Self::Overloaded { plugin }
            | Self::StateUnavailable { plugin, .. }
            | Self::Config { plugin, .. } => plugin,
        }
    }

    /// What a client is told: which limit was hit, or that the plugin
    /// failed; the rest is in the log.
    pub fn detail(&self) -> String {
        match self {
            Self::Trap { plugin, .. } => format!("plugin {plugin} failed"),
            Self::Write { plugin, .. } => format!("plugin {plugin} returned an invalid value"),
            Self::Config { plugin, .. } => format!("plugin {plugin} rejected its config"),
            Self::StateUnavailable { plugin, .. } => {
                format!("plugin {plugin} needs shared state, which is unavailable")
            }
            Self::Timeout { .. }
            | Self::WallTimeout { .. }
            | Self::ConfigureTimeout { .. }
            | Self::Quarantined { .. }
            | Self::MemoryLimit { .. }
            | Self::Overloaded { .. } => self.to_string(),
        }
    }

    /// Why the call failed, for the log: everything the error knows but
    /// the plugin's name and the backtrace.
    pub fn reason(&self) -> Cow<'_, str> {
        match self {
            Self::Trap { reason, .. }
            | Self::Write { reason, .. }
            | Self::Config { reason, .. }
            | Self::StateUnavailable { reason, .. } => reason.into(),
            Self::Timeout { .. }
            | Self::WallTimeout { .. }
            | Self::ConfigureTimeout { .. }
            | Self::Quarantined { .. }
            | Self::MemoryLimit { .. }
            | Self::Overloaded { .. } => self.to_string().into(),
        }
    }

    /// Where in the plugin a trap happened, for the log.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            Self::Trap { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status a fail-closed route answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Overloaded { .. } | Self::Quarantined { .. } | Self::StateUnavailable { .. } => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// For a 503: when to try again, in whole seconds (at least one).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Overloaded { .. } | Self::StateUnavailable { .. } => Some(1),
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
            Self::Write { .. }
            | Self::Overloaded { .. }
            | Self::Config { .. }
            | Self::Quarantined { .. }
            | Self::StateUnavailable { .. } => false,
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
            Self::StateUnavailable { .. } => "state_unavailable",
        }
    }

    /// Whether each failure is worth a log line: a quarantine and a state
    /// outage are said once when they begin, not on every call.
    pub fn logged_per_call(&self) -> bool {
        !matches!(self, Self::Quarantined { .. } | Self::StateUnavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap(reason: &str) -> PluginError {
        PluginError::Trap { plugin: "p".into(), reason: reason.into(), backtrace: Some("0: 0x1 - f".into()) }
    }

    #[test]
    fn clients_are_told_what_failed_and_the_log_why() {
        let e = trap("wasm `unreachable` instruction executed")
            .after_logging(Some("panicked at src/lib.rs:3:5:\nboom".into()));
        assert_eq!(e.detail(), "plugin p failed");
        assert_eq!(
            e.to_string(),
            "plugin p failed: wasm `unreachable` instruction executed, after the plugin logged: \
             panicked at src/lib.rs:3:5:\nboom"
        );
        assert_eq!(e.backtrace(), Some("0: 0x1 - f"));
        assert!(e.reason().starts_with("wasm `unreachable` instruction executed, after"));
        let e = PluginError::Write { plugin: "p".into(), reason: "invalid status 99".into() };
        assert_eq!(e.detail(), "plugin p returned an invalid value");
        let e = PluginError::Timeout { plugin: "p".into(), limit: Duration::from_millis(100) };
        assert_eq!(e.detail(), "plugin p exceeded its time limit of 100ms");
        assert_eq!(e.plugin().as_ref(), "p");
    }

    #[test]
    fn only_a_trap_takes_the_logged_error() {
        let e = PluginError::Overloaded { plugin: "p".into() }.after_logging(Some("x".into()));
        assert_eq!(e.to_string(), "plugin p has no free instance");
        assert_eq!(trap("t").after_logging(None).to_string(), "plugin p failed: t");
    }
}
