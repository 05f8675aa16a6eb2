//! Wall-clock deadlines for plugin calls and configure steps.
//!
//! The epoch budget counts wasm execution only. A plugin that sleeps (a
//! WASI clock wait, `std::thread::sleep`) or waits on the host spends none
//! of it, and would hold its instance, and its request, until the client or
//! the request timeout gave up; in `configure` it would hold a reload or
//! `wasmgate check` forever. Dropping the call's future at the deadline
//! unwinds the guest, whose instance is then discarded like any that failed.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Raised in place of the call's own error when its deadline passed, so
/// the pool classifies it as [`super::PluginError::WallTimeout`].
#[derive(Debug, thiserror::Error)]
#[error("wall-clock deadline passed")]
pub(super) struct WallDeadlinePassed;

/// Runs `work` until `limit` after `started`; `None` when the limit passed
/// first (and `work` was dropped).
///
/// Most plugin calls finish in their first poll, never waiting on anything:
/// the timer is armed only for work that had to wait, so the common call
/// pays for neither a timer registration nor a clock read. `started` is
/// the caller's own read: the pipeline reads the clock between two calls
/// anyway, to time them. `work` comes pinned where the caller made it: a
/// plugin call's future is large, and each move into a future around it
/// copied it once more per call.
pub(super) async fn within<F: Future>(started: Instant, limit: Duration, mut work: Pin<&mut F>) -> Option<F::Output> {
    if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
        return Some(out);
    }
    tokio::time::timeout_at(tokio::time::Instant::from_std(started) + limit, work).await.ok()
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test]
    async fn ready_work_needs_no_timer() {
        assert_eq!(within(Instant::now(), Duration::ZERO, pin!(async { 7 })).await, Some(7));
    }

    #[tokio::test]
    async fn waiting_work_is_cut_at_the_deadline() {
        let forever = std::future::pending::<()>();
        assert_eq!(within(Instant::now(), Duration::from_millis(20), pin!(forever)).await, None);
        let short = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within(Instant::now(), Duration::from_secs(60), pin!(short)).await, Some(()));
    }

    #[tokio::test]
    async fn the_deadline_counts_from_the_callers_start() {
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        // Waits 1 ms from now: done well within 20 ms from now, but not
        // before 20 ms from `started`, already past.
        let short = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within(started, Duration::from_millis(20), pin!(short)).await, None);
    }
}
