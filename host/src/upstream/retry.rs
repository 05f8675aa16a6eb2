//! When a failed try may be tried again, how long to wait first, and the
//! budget that keeps retries from multiplying an outage.
//!
//! The rules, most important first:
//! - Never more than `attempts` tries, never past the request's deadline.
//! - The upstream never saw a request whose connection could not be made,
//!   nor processed one whose HTTP/2 stream it refused (`REFUSED_STREAM`):
//!   any method is retried after a **connect failure** or a **refused
//!   stream**, as long as the body can be sent again.
//! - After the upstream may have seen the request (a retried status, a
//!   per-try timeout, a connection lost while waiting), only the configured
//!   (idempotent) methods are retried, and only with a body that is held in
//!   memory (empty, or buffered because a plugin read it).
//! - A streamed body is only replayable while nobody has read from it: it
//!   can follow a connect failure, never anything else.
//! - Each retry takes a token from the upstream's [`RetryBudget`]; none left,
//!   no retry.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::spec::RetrySpec;

/// How far back the budget looks at requests.
pub(crate) const BUDGET_WINDOW: Duration = Duration::from_secs(10);
const SLOTS: usize = 10;
const SLOT: Duration = Duration::from_secs(BUDGET_WINDOW.as_secs() / SLOTS as u64);

/// Why a try did not succeed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// No connection: the upstream never saw the request.
    Connect,
    /// The upstream refused the HTTP/2 stream before processing it.
    Refused,
    /// An answer with one of the retried statuses.
    Status,
    /// The per-try timeout (not the request's deadline) ran out.
    TryTimeout,
    /// The connection broke after the request may have been sent.
    Broken,
}

/// Whether the request may be tried again after `failed`, body and method
/// considered (budget and attempts aside).
pub(crate) fn retryable(failed: Failed, idempotent: bool, body: BodyReplay) -> bool {
    match failed {
        Failed::Connect | Failed::Refused => body != BodyReplay::Gone,
        Failed::Status | Failed::TryTimeout | Failed::Broken => idempotent && body == BodyReplay::InMemory,
    }
}

/// Whether the request's body can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyReplay {
    /// Empty or buffered: as often as needed.
    InMemory,
    /// A stream nobody has read from yet.
    Unread,
    /// A stream that was (or may have been) read.
    Gone,
}

/// The wait before retry number `retry` (1 for the first retry): the
/// backoff doubling from `backoff` up to `max_backoff`, half of it random
/// ("equal jitter"), so retries of many clients do not come in waves.
/// `random` is in `[0, 1)`.
pub(crate) fn backoff(spec: &RetrySpec, retry: u32, random: f64) -> Duration {
    let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    let full = spec.backoff.saturating_mul(factor).min(spec.max_backoff);
    full / 2 + (full / 2).mul_f64(random.clamp(0.0, 1.0))
}

/// Retries may add at most `percent` % of the requests of the last
/// [`BUDGET_WINDOW`], plus a reserve of `min_per_second` retries per second
/// (a bucket that holds at most one second's worth), so that a quiet
/// upstream can still retry while a failing busy one cannot multiply its
/// load. Like Finagle's and linkerd's retry budgets.
///
/// Over any stretch of `t` seconds, retries ≤ `percent`% × requests of the
/// window + `min_per_second` × (1 + `t`).
#[derive(Debug)]
pub(crate) struct RetryBudget {
    percent: u64,
    min_per_second: f64,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    start: Instant,
    /// Index (seconds since `start`) of the newest slot.
    newest: u64,
    requests: [u64; SLOTS],
    retries: [u64; SLOTS],
    reserve: f64,
    refilled: Instant,
}

impl RetryBudget {
    pub(crate) fn new(percent: u32, min_per_second: u32, now: Instant) -> Self {
        Self {
            percent: percent.into(),
            min_per_second: min_per_second.into(),
            state: Mutex::new(BudgetState {
                start: now,
                newest: 0,
                requests: [0; SLOTS],
                retries: [0; SLOTS],
                reserve: min_per_second.into(),
                refilled: now,
            }),
        }
    }

    /// Counts a request (not its retries).
    pub(crate) fn deposit(&self, now: Instant) {
        let mut s = self.state.lock().expect("budget lock");
        let slot = s.advance(now);
        s.requests[slot] += 1;
    }

    /// Takes a token for one retry, if there is one.
    pub(crate) fn withdraw(&self, now: Instant) -> bool {
        let mut s = self.state.lock().expect("budget lock");
        let slot = s.advance(now);
        let requests: u64 = s.requests.iter().sum();
        let retries: u64 = s.retries.iter().sum();
        if (retries + 1) * 100 <= requests * self.percent {
            s.retries[slot] += 1;
            return true;
        }
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.reserve = (s.reserve + elapsed * self.min_per_second).min(self.min_per_second);
        s.refilled = now;
        if s.reserve >= 1.0 {
            s.reserve -= 1.0;
            true
        } else {
            false
        }
    }
}

impl BudgetState {
    /// Moves the window to `now`, clearing slots that fell out of it;
    /// returns the current slot.
    fn advance(&mut self, now: Instant) -> usize {
        let index = (now.saturating_duration_since(self.start).as_nanos() / SLOT.as_nanos()) as u64;
        if index > self.newest {
            let clear = (index - self.newest).min(SLOTS as u64);
            for k in 0..clear {
                let slot = ((index - k) % SLOTS as u64) as usize;
                self.requests[slot] = 0;
                self.retries[slot] = 0;
            }
            self.newest = index;
        }
        (self.newest % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_plus_a_reserve() {
        let t0 = Instant::now();
        let budget = RetryBudget::new(20, 3, t0);
        for _ in 0..100 {
            budget.deposit(t0);
        }
        let granted = (0..100).filter(|_| budget.withdraw(t0)).count();
        assert_eq!(granted, 20 + 3, "20% of 100 requests, and the reserve of 3");
    }

    #[test]
    fn the_reserve_refills_at_its_rate_and_holds_one_second() {
        let t0 = Instant::now();
        let budget = RetryBudget::new(0, 2, t0);
        assert!(budget.withdraw(t0));
        assert!(budget.withdraw(t0));
        assert!(!budget.withdraw(t0));
        let t1 = t0 + Duration::from_millis(500);
        assert!(budget.withdraw(t1), "half a second gives one token");
        assert!(!budget.withdraw(t1));
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| budget.withdraw(t2)).count(), 2, "capped at one second's worth");
    }

    #[test]
    fn requests_leave_the_window() {
        let t0 = Instant::now();
        let budget = RetryBudget::new(50, 0, t0);
        for _ in 0..10 {
            budget.deposit(t0);
        }
        let t1 = t0 + Duration::from_secs(9);
        assert!(budget.withdraw(t1), "still in the window");
        let t2 = t0 + BUDGET_WINDOW + Duration::from_millis(1);
        assert!(!budget.withdraw(t2), "the requests have left the window (the retry has not)");
        for _ in 0..4 {
            budget.deposit(t2);
        }
        assert!(budget.withdraw(t2), "50% of the 4 new requests, less the retry at 9 s");
        assert!(!budget.withdraw(t2));
        let t3 = t1 + BUDGET_WINDOW;
        assert!(budget.withdraw(t3), "the retry at 9 s has left too");
    }

    #[test]
    fn a_full_outage_is_bounded() {
        // Every request fails and wants a retry: over 5 s, 50 requests/s.
        let t0 = Instant::now();
        let budget = RetryBudget::new(20, 3, t0);
        let mut granted = 0;
        for ms in (0..5000).step_by(20) {
            let now = t0 + Duration::from_millis(ms);
            budget.deposit(now);
            granted += usize::from(budget.withdraw(now));
        }
        assert!(granted <= 250 / 5 + 3 * 6, "{granted}");
        assert!(granted >= 250 / 5, "{granted}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_jitter() {
        let spec = RetrySpec {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..RetrySpec::default()
        };
        assert_eq!(backoff(&spec, 1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(&spec, 1, 0.5), Duration::from_millis(75));
        assert_eq!(backoff(&spec, 2, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(&spec, 3, 0.999).as_millis(), 299);
        assert_eq!(backoff(&spec, 40, 0.0), Duration::from_millis(150), "no overflow");
    }

    #[test]
    fn which_failures_are_retried() {
        use BodyReplay::*;
        assert!(retryable(Failed::Connect, false, Unread), "POST never seen by the upstream");
        assert!(!retryable(Failed::Connect, false, Gone));
        assert!(retryable(Failed::Refused, false, InMemory), "POST whose stream was refused unprocessed");
        assert!(!retryable(Failed::Refused, false, Gone), "a streamed body already sent is gone");
        assert!(retryable(Failed::Status, true, InMemory));
        assert!(!retryable(Failed::Status, false, InMemory), "POST after a 503");
        assert!(!retryable(Failed::Status, true, Unread), "a streamed body may have been read");
        assert!(!retryable(Failed::TryTimeout, true, Gone));
        assert!(retryable(Failed::Broken, true, InMemory));
    }
}
