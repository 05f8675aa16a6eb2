//! Waiting inside a synchronous plugin call.
//!
//! A plugin entered without a fiber cannot be suspended: when one of its
//! imports has to wait (a WASI sleep, a stream not ready), the wait happens
//! on the calling thread. It is bounded by the call's wall-clock deadline,
//! and it is noted, so the pool moves that plugin use to the asynchronous
//! path, where waits yield the thread instead ([`super::pool`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::deadline::WallDeadlinePassed;

/// How often a wait re-checks what it waits on. The futures waited on here
/// are clocks of our own ([`SleepUntil`]) and streams that are always
/// ready in the sandbox, so nothing needs a wake-up sooner.
const RECHECK: Duration = Duration::from_millis(1);

/// Raised by a wait in a configure step entered directly: configure runs
/// under a reload that is abandoned by dropping its future, which a thread
/// blocked here would ignore. The instance is made asynchronous instead.
#[derive(Debug, thiserror::Error)]
#[error("a directly entered configure step had to wait")]
pub(super) struct MustWait;

/// The current synchronous call's deadline and whether it had to wait.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CallWait {
    /// When the call in progress must be over.
    pub(super) deadline: Option<Instant>,
    /// The call waited on something that was not ready at once.
    pub(super) waited: bool,
    /// The call waited on the network ([`Self::block`]).
    pub(super) fetched: bool,
    /// Whether a wait may block the thread (a call) or fails at once
    /// ([`MustWait`], a configure step).
    may_block: bool,
}

impl CallWait {
    /// Starts a call that must end within `limit` of `started`.
    pub(super) fn start(&mut self, started: Instant, limit: Duration) {
        *self = Self { deadline: started.checked_add(limit), may_block: true, ..Self::default() };
    }

    /// Starts a configure step, which must not block the thread.
    pub(super) fn start_configure(&mut self) {
        *self = Self::default();
    }

    /// Whether a configure step (not a call) is in progress.
    pub(super) fn configuring(&self) -> bool {
        !self.may_block
    }

    /// Whether the call's deadline has passed (none set: never).
    pub(super) fn passed(&self) -> bool {
        self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Runs `work` to completion on this thread, at most until the deadline.
    /// The common case, work that is ready at once, costs one poll.
    pub(super) fn here<F: Future>(&mut self, work: F) -> wasmtime::Result<F::Output> {
        let mut work = pin!(work);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = work.as_mut().poll(&mut cx) {
                return Ok(out);
            }
            self.waited = true;
            if !self.may_block {
                return Err(MustWait.into());
            }
            let now = Instant::now();
            let left = match self.deadline {
                Some(deadline) if deadline > now => deadline - now,
                _ => return Err(WallDeadlinePassed.into()),
            };
            std::thread::sleep(left.min(RECHECK));
        }
    }

    /// Runs `work`, which waits on the network, to completion at most until
    /// the deadline, with this worker thread handed over: Tokio moves the
    /// thread's other tasks to another worker while this one blocks, and
    /// `work`'s sockets and timers are driven by the runtime as usual. Only
    /// possible on a multi-threaded runtime; a pool enters a plugin that
    /// may fetch directly only there ([`may_block_in_place`]).
    pub(super) fn block<F: Future>(&mut self, work: F) -> wasmtime::Result<F::Output> {
        if !self.may_block {
            self.waited = true;
            return Err(MustWait.into());
        }
        if !may_block_in_place() {
            return Err(wasmtime::Error::msg("a direct call cannot wait on the network on this runtime"));
        }
        self.fetched = true;
        let deadline = self.deadline;
        let runtime = tokio::runtime::Handle::current();
        let out = tokio::task::block_in_place(|| {
            runtime.block_on(async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.ok(),
                    None => Some(work.await),
                }
            })
        });
        out.ok_or_else(|| WallDeadlinePassed.into())
    }
}

/// Whether this thread may block in place ([`CallWait::block`]): a worker
/// of a multi-threaded Tokio runtime (a current-thread runtime has no
/// other thread to hand its tasks to).
pub(super) fn may_block_in_place() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// A monotonic-clock subscription that needs no timer driver: a thread
/// that waits here is the one that would drive Tokio's timers.
pub(super) struct SleepUntil(pub(super) Option<Instant>);

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for SleepUntil {
    async fn ready(&mut self) {
        let until = self.0;
        std::future::poll_fn(|_| match until {
            Some(until) if Instant::now() >= until => Poll::Ready(()),
            _ => Poll::Pending,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_work_is_not_a_wait() {
        let mut wait = CallWait::default();
        wait.start(Instant::now(), Duration::ZERO);
        assert_eq!(wait.here(async { 7 }).unwrap(), 7);
        assert!(!wait.waited);
    }

    #[test]
    fn a_wait_ends_when_its_work_is_ready_or_at_the_deadline() {
        let mut wait = CallWait::default();
        wait.start(Instant::now(), Duration::from_secs(60));
        let mut sleep = SleepUntil(Some(Instant::now() + Duration::from_millis(5)));
        wait.here(wasmtime_wasi::p2::Pollable::ready(&mut sleep)).unwrap();
        assert!(wait.waited);

        wait.start(Instant::now(), Duration::from_millis(20));
        let mut never = SleepUntil(None);
        let err = wait.here(wasmtime_wasi::p2::Pollable::ready(&mut never)).unwrap_err();
        assert!(err.is::<WallDeadlinePassed>());
        assert!(wait.passed());
    }

    #[test]
    fn a_network_wait_needs_a_worker_of_a_multi_threaded_runtime_and_ends_at_the_deadline() {
        let mut wait = CallWait::default();
        wait.start(Instant::now(), Duration::from_secs(60));
        assert!(wait.block(async { 7 }).is_err(), "outside a runtime");
        let on_one_thread = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(on_one_thread.block_on(async { wait.block(async { 7 }) }).is_err());
        assert!(!wait.fetched);

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (ready, late) = runtime
            .block_on(runtime.spawn(async move {
                let ready = wait.block(async { 7 }).unwrap();
                assert!(wait.fetched && !wait.waited, "a fetch is not a wait");
                wait.start(Instant::now(), Duration::from_millis(20));
                let late = wait.block(tokio::time::sleep(Duration::from_secs(60))).unwrap_err();
                (ready, late)
            }))
            .unwrap();
        assert_eq!(ready, 7);
        assert!(late.is::<WallDeadlinePassed>());

        wait.start_configure();
        assert!(wait.block(async { 7 }).unwrap_err().is::<MustWait>(), "a configure step never blocks");
    }

    #[test]
    fn a_configure_step_never_blocks() {
        let mut wait = CallWait::default();
        wait.start_configure();
        assert_eq!(wait.here(async { 7 }).unwrap(), 7);
        let mut never = SleepUntil(None);
        let err = wait.here(wasmtime_wasi::p2::Pollable::ready(&mut never)).unwrap_err();
        assert!(err.is::<MustWait>());
        assert!(wait.waited);
    }
}
