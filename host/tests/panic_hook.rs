//! A panic in the gateway is logged as one event through `tracing`, with
//! its message, place, thread and backtrace, so a JSON log stays JSON.
//! (Its own test binary: the hook and the subscriber are process-wide.)

use std::io::Write;
use std::sync::{Arc, Mutex};

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

#[test]
fn a_panic_is_one_json_event_with_its_backtrace() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || Sink(sink.clone())).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    wasmgate::logging::install_panic_hook();

    let doomed = std::thread::Builder::new().name("doomed".into()).spawn(|| panic!("boom at {}", 42)).unwrap();
    assert!(doomed.join().is_err());

    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {text}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(event["level"], "ERROR");
    let fields = &event["fields"];
    assert_eq!(fields["message"], "panicked: boom at 42");
    assert_eq!(fields["thread"], "doomed");
    assert!(fields["location"].as_str().unwrap().starts_with("host/tests/panic_hook.rs:"), "{fields}");
    assert!(fields["backtrace"].as_str().unwrap().contains("panic_hook"), "a captured backtrace: {fields}");
}
