//! Where the gateway's log lines go and what they look like.
//!
//! Everything goes through `tracing` to stderr, in text or one JSON object
//! per line. Colour codes only reach a terminal: in a file or a pipe they
//! would be noise in every line. A panic, which Rust prints as plain text
//! with a multi-line backtrace, is logged as one more event, so it cannot
//! break a JSON log stream.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: `RUST_LOG` filters (`info` when unset).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Logs panics through `tracing`: the message, where it happened, the
/// thread, and the backtrace as a field. A panic is a bug, so the
/// backtrace is always captured, whatever `RUST_BACKTRACE` says.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or("(a panic without a message)");
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(
            target: "wasmgate::panic",
            location = %location,
            thread = thread.name().unwrap_or("<unnamed>"),
            backtrace = %backtrace,
            "panicked: {message}"
        );
    }));
}
