//! Waiting for what happens in the background (file events, reloads,
//! breakers, trimmed pools) without timing assertions.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it holds; panics after 20 s, naming
/// `what`.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting until {what}");
}
