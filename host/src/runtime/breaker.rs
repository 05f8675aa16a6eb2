//! A breaker per plugin use (a plugin on one route): a plugin that keeps
//! failing in the sandbox (traps, time or memory limits) is quarantined for
//! a cool-down, and meanwhile its calls are answered at once by the route's
//! failure policy instead of running.
//!
//! ```text
//! closed ──failure_threshold failures within window──▶ open ──open elapsed──▶ half-open
//!   ▲                                                    ▲                   (one probe call)
//!   └──────────────── the probe succeeds ────────────────┼─────────────────────────┤
//!                                                        └──── the probe fails ────┘
//! ```
//!
//! Why: a plugin that loops spends its whole CPU budget on every call, and
//! many such calls at once crowd every other route off the worker threads.
//! A quarantined call costs an atomic load and an answer.
//!
//! The state is one atomic word, so the common case, a closed breaker and a
//! call that succeeds, is one load and nothing else; only failures take the
//! lock that counts them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// When a plugin use is quarantined, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSpec {
    /// Failures within `window` that open the breaker.
    pub failure_threshold: u32,
    pub window: Duration,
    /// The cool-down: how long calls are answered without running.
    pub open: Duration,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        Self { failure_threshold: 5, window: Duration::from_secs(10), open: Duration::from_secs(5) }
    }
}

/// `state` values besides "open until": milliseconds since `base`, plus one
/// so that no deadline reads as `CLOSED`.
const CLOSED: u64 = 0;
const PROBING: u64 = u64::MAX;

/// Failures counted in the current window.
struct Window {
    started_ms: u64,
    failures: u32,
}

pub(super) struct PluginBreaker {
    /// `None`: never opens.
    spec: Option<BreakerSpec>,
    base: Instant,
    state: AtomicU64,
    window: Mutex<Window>,
    opened: AtomicU64,
    short_circuited: AtomicU64,
}

/// A call the breaker let through; its outcome must be [`Admission::settle`]d.
/// Dropped unsettled (the request went away mid-call), a probe gives its
/// place to the next call.
pub(super) struct Admission<'a> {
    breaker: &'a PluginBreaker,
    probe: bool,
}

/// What a call let through came to, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    /// The plugin failed in the sandbox.
    Failure,
    /// Neither: the host refused the call work (no free instance…).
    Unknown,
}

/// A change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    Opened,
    Closed,
}

/// `/status`'s view of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct BreakerStatus {
    pub state: &'static str,
    /// Times it opened (a failed probe reopens it: counted too).
    pub opened: u64,
    /// Calls answered without running the plugin.
    pub short_circuited: u64,
}

impl PluginBreaker {
    pub(super) fn new(spec: Option<BreakerSpec>) -> Self {
        Self {
            spec,
            base: Instant::now(),
            state: AtomicU64::new(CLOSED),
            window: Mutex::new(Window { started_ms: 0, failures: 0 }),
            opened: AtomicU64::new(0),
            short_circuited: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Lets a call through, or says how long the quarantine still lasts.
    pub(super) fn admit(&self) -> Result<Admission<'_>, Duration> {
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok(Admission { breaker: self, probe: false }),
            state => self.admit_at(state, self.now_ms()),
        }
    }

    fn admit_at(&self, state: u64, now: u64) -> Result<Admission<'_>, Duration> {
        if state == CLOSED {
            return Ok(Admission { breaker: self, probe: false });
        }
        let until = state.saturating_sub(1);
        // The first call after the cool-down is the probe; the others wait
        // for its verdict.
        if state != PROBING
            && now >= until
            && self.state.compare_exchange(state, PROBING, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            return Ok(Admission { breaker: self, probe: true });
        }
        self.short_circuited.fetch_add(1, Ordering::Relaxed);
        Err(match state {
            PROBING => Duration::ZERO,
            _ => Duration::from_millis(until.saturating_sub(now)),
        })
    }

    fn open_until(&self, now: u64) -> u64 {
        let open = self.spec.map_or(0, |s| s.open.as_millis() as u64);
        now.saturating_add(open).saturating_add(1).min(PROBING - 1)
    }

    /// Counts a failure of a call let through while closed.
    fn failed_at(&self, now: u64) -> Option<Transition> {
        let spec = self.spec?;
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(window.started_ms) >= spec.window.as_millis() as u64 {
            *window = Window { started_ms: now, failures: 0 };
        }
        window.failures += 1;
        if window.failures < spec.failure_threshold {
            return None;
        }
        *window = Window { started_ms: now, failures: 0 };
        // Calls admitted before it opened may fail after: they do not
        // extend the quarantine.
        self.state
            .compare_exchange(CLOSED, self.open_until(now), Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| self.opened())
    }

    fn opened(&self) -> Transition {
        self.opened.fetch_add(1, Ordering::Relaxed);
        Transition::Opened
    }

    fn settle_at(&self, probe: bool, outcome: Outcome, now: u64) -> Option<Transition> {
        match (probe, outcome) {
            (false, Outcome::Failure) => self.failed_at(now),
            (false, _) => None,
            (true, Outcome::Success) => {
                *self.window.lock().unwrap_or_else(|e| e.into_inner()) = Window { started_ms: now, failures: 0 };
                self.state.store(CLOSED, Ordering::Release);
                Some(Transition::Closed)
            }
            (true, Outcome::Failure) => {
                self.state.store(self.open_until(now), Ordering::Release);
                Some(self.opened())
            }
            // No verdict: the next call probes again.
            (true, Outcome::Unknown) => {
                self.state.store(now.saturating_add(1), Ordering::Release);
                None
            }
        }
    }

    pub(super) fn status(&self) -> BreakerStatus {
        let state = match self.state.load(Ordering::Acquire) {
            CLOSED => "closed",
            PROBING => "half-open",
            until if self.now_ms() >= until - 1 => "half-open",
            _ => "open",
        };
        BreakerStatus {
            state,
            opened: self.opened.load(Ordering::Relaxed),
            short_circuited: self.short_circuited.load(Ordering::Relaxed),
        }
    }
}

impl Admission<'_> {
    /// Records the call's outcome; a closed breaker's successful call does
    /// nothing at all.
    pub(super) fn settle(self, outcome: Outcome) -> Option<Transition> {
        let this = std::mem::ManuallyDrop::new(self);
        match (this.probe, outcome) {
            (false, Outcome::Success | Outcome::Unknown) => None,
            (probe, outcome) => this.breaker.settle_at(probe, outcome, this.breaker.now_ms()),
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.settle_at(true, Outcome::Unknown, self.breaker.now_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> PluginBreaker {
        PluginBreaker::new(Some(BreakerSpec {
            failure_threshold: threshold,
            window: Duration::from_millis(1000),
            open: Duration::from_millis(500),
        }))
    }

    /// Admits a call at `now` and settles it with `outcome`.
    fn call(b: &PluginBreaker, now: u64, outcome: Outcome) -> Result<Option<Transition>, Duration> {
        let state = b.state.load(Ordering::Acquire);
        let admission = b.admit_at(state, now)?;
        let probe = admission.probe;
        std::mem::forget(admission);
        Ok(b.settle_at(probe, outcome, now))
    }

    #[test]
    fn opens_after_threshold_failures_within_the_window_only() {
        let b = breaker(3);
        assert_eq!(call(&b, 0, Outcome::Failure), Ok(None));
        assert_eq!(call(&b, 10, Outcome::Failure), Ok(None));
        // The window has passed: counting starts again.
        assert_eq!(call(&b, 1500, Outcome::Failure), Ok(None));
        assert_eq!(call(&b, 1600, Outcome::Success), Ok(None), "successes do not reset a window");
        assert_eq!(call(&b, 1700, Outcome::Failure), Ok(None));
        assert_eq!(call(&b, 1800, Outcome::Failure), Ok(Some(Transition::Opened)));
        assert_eq!(call(&b, 1900, Outcome::Success), Err(Duration::from_millis(400)));
        let status = b.status();
        assert_eq!((status.opened, status.short_circuited), (1, 1));
    }

    #[test]
    fn one_probe_after_the_cool_down_decides() {
        let b = breaker(1);
        assert_eq!(call(&b, 0, Outcome::Failure), Ok(Some(Transition::Opened)));
        assert_eq!(call(&b, 499, Outcome::Success), Err(Duration::from_millis(1)));
        let probe = b.admit_at(b.state.load(Ordering::Acquire), 500).expect("the probe");
        assert!(probe.probe);
        assert_eq!(b.admit_at(PROBING, 501).err(), Some(Duration::ZERO), "one probe at a time");
        assert_eq!(b.status().state, "half-open");
        assert_eq!(b.settle_at(true, Outcome::Failure, 600), Some(Transition::Opened));
        std::mem::forget(probe);
        assert_eq!(call(&b, 1099, Outcome::Success), Err(Duration::from_millis(1)), "a full cool-down again");
        assert_eq!(call(&b, 1100, Outcome::Success), Ok(Some(Transition::Closed)));
        assert_eq!(call(&b, 1101, Outcome::Success), Ok(None));
        assert_eq!(b.status(), BreakerStatus { state: "closed", opened: 2, short_circuited: 3 });
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let b = breaker(1);
        call(&b, 0, Outcome::Failure).unwrap();
        let probe = b.admit_at(b.state.load(Ordering::Acquire), 600).expect("the probe");
        drop(probe);
        let next = b.admit_at(b.state.load(Ordering::Acquire), b.now_ms()).expect("probes again");
        assert!(next.probe);
    }

    #[test]
    fn late_failures_do_not_extend_the_quarantine() {
        let b = breaker(1);
        let early = b.admit().expect("closed");
        call(&b, 0, Outcome::Failure).unwrap();
        let opened_until = b.state.load(Ordering::Acquire);
        assert_eq!(b.settle_at(early.probe, Outcome::Failure, 300), None);
        std::mem::forget(early);
        assert_eq!(b.state.load(Ordering::Acquire), opened_until);
    }

    #[test]
    fn without_a_spec_it_never_opens() {
        let b = PluginBreaker::new(None);
        for now in 0..100 {
            assert_eq!(call(&b, now, Outcome::Failure), Ok(None));
        }
        assert_eq!(b.status(), BreakerStatus { state: "closed", opened: 0, short_circuited: 0 });
    }
}
