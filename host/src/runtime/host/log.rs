//! `log`: a plugin's log lines, bounded and printable, with its name,
//! route and the request id.

use crate::message::bounds::{self, MAX_LOG_BYTES};
use crate::runtime::bindings::log;
use crate::runtime::instance::InstanceState;

impl log::Host for InstanceState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let message = bounds::printable(bounds::cut(message, MAX_LOG_BYTES));
        if level == log::Level::Error {
            self.logged_error = Some(message.clone());
        }
        let plugin = &*self.identity.plugin;
        let route = &*self.identity.route;
        let request_id = self
            .current
            .as_ref()
            .map(|info| String::from_utf8_lossy(info.request_id.as_bytes()).into_owned())
            .unwrap_or_default();
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "wasmgate::plugin", plugin, route, request_id, "{message}")
            };
        }
        match level {
            log::Level::Trace => emit!(trace),
            log::Level::Debug => emit!(debug),
            log::Level::Info => emit!(info),
            log::Level::Warn => emit!(warn),
            log::Level::Error => emit!(error),
        }
        Ok(())
    }
}
