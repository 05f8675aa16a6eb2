//! A panic in the gateway is logged as one event through `tracing`, with
//! its message, place, thread and backtrace, so a JSON log stays JSON.
//! (Its own test binary: the hook and the subscriber are process-wide.)

#[test]
fn a_panic_is_one_json_event_with_its_backtrace() {
    let (subscriber, captured) = wasmgate_testbed::logs::subscriber();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    wasmgate::install_panic_hook();

    let doomed = std::thread::Builder::new().name("doomed".into()).spawn(|| panic!("boom at {}", 42)).unwrap();
    assert!(doomed.join().is_err());

    // Every line parsed as JSON, and there is one.
    let events = captured.events();
    assert_eq!(events.len(), 1, "one event: {events:?}");
    let event = &events[0];
    assert_eq!(event["level"], "ERROR");
    let fields = &event["fields"];
    assert_eq!(fields["message"], "panicked: boom at 42");
    assert_eq!(fields["thread"], "doomed");
    assert!(fields["location"].as_str().unwrap().starts_with("host/tests/panic_hook.rs:"), "{fields}");
    assert!(fields["backtrace"].as_str().unwrap().contains("panic_hook"), "a captured backtrace: {fields}");
}
