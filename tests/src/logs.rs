//! The gateway's log events as a test sees them: captured as JSON lines
//! on the test's own thread, where a `#[tokio::test]` (current-thread
//! runtime) runs the gateway's tasks too.
//!
//! tracing caches whether a call site is enabled across every subscriber
//! alive: a call site first reached while no test captured was cached as
//! disabled, and a capture starting in another thread at that moment lost
//! its events. A process-wide subscriber that takes every event (and keeps
//! none) is installed first, so no call site is ever cached as disabled.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::subscriber::DefaultGuard;

/// Captures until dropped.
pub struct Logs {
    captured: Captured,
    _guard: DefaultGuard,
}

/// Starts capturing every event (all levels) on this thread.
pub fn capture() -> Logs {
    static EVERY_CALL_SITE_ENABLED: std::sync::Once = std::sync::Once::new();
    EVERY_CALL_SITE_ENABLED.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let (subscriber, captured) = subscriber();
    Logs { captured, _guard: tracing::subscriber::set_default(subscriber) }
}

/// A subscriber writing every event as a JSON line, and what it wrote:
/// for a test that installs it itself (process-wide, say).
pub fn subscriber() -> (impl tracing::Subscriber + Send + Sync, Captured) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    (subscriber, Captured { lines })
}

/// The lines a [`subscriber`] wrote.
pub struct Captured {
    lines: Arc<Mutex<Vec<u8>>>,
}

impl Captured {
    /// Every event so far; `fields` holds the message and the fields.
    pub fn events(&self) -> Vec<Value> {
        let bytes = self.lines.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}")))
            .collect()
    }
}

impl Logs {
    pub fn events(&self) -> Vec<Value> {
        self.captured.events()
    }

    /// The fields of every event, in order.
    pub fn fields(&self) -> Vec<Value> {
        self.events().into_iter().map(|mut event| event["fields"].take()).collect()
    }

    /// The fields of the first event that has all of these.
    pub fn find(&self, fields: &[(&str, &str)]) -> Option<Value> {
        self.fields().into_iter().find(|found| fields.iter().all(|(name, value)| found[*name] == *value))
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
