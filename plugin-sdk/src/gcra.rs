//! The rate-limit algorithm behind [`state::take`](crate::host::state::take),
//! as one pure function.
//!
//! It lives here, not in the gateway, so that the mock host of
//! [`crate::testing`] and the gateway's state backends (local memory and
//! Redis) answer exactly alike: a plugin's unit tests then predict production
//! behaviour. The gateway may depend on this crate natively and call
//! [`decide`] (the Redis backend books in a script and decides with
//! [`decide`] on what the script read), keeping the same arithmetic.
//!
//! # The generic cell rate algorithm (GCRA)
//!
//! A bucket is one number per key: the *theoretical arrival time* `tat`, the
//! instant at which the bucket would be empty again if no more events came.
//! A missing key is `tat = 0` (a full bucket). All times are in
//! microseconds so that uneven rates (3 per second) do not drift.
//!
//! With `now` the current time, and
//!
//! * `T = ceil(window / limit)`, the emission interval: one event per `T`
//!   keeps exactly to the rate (rounded up so the rate is never exceeded);
//! * `tau = T × burst`, the tolerance: how far ahead of `now` the bucket may
//!   be booked, i.e. how many events may arrive at once;
//!
//! a take of `cost` events computes
//!
//! * `start = max(tat, now)` (an idle bucket does not bank more than `tau`),
//! * `new_tat = start + cost × T`,
//! * `allowed = new_tat − now ≤ tau`.
//!
//! When allowed, `new_tat` is stored; when refused nothing changes, and the
//! caller may retry after `retry_after = new_tat − now − tau`. After the
//! decision, with `booked` the stored `tat`:
//!
//! * `remaining = floor((now + tau − booked) / T)`: events of cost 1 still
//!   allowed right now;
//! * `reset = booked − now`: time until the bucket is full again.
//!
//! Millisecond outputs are rounded up, so a client that waits `retry_after`
//! or `reset` is never refused for being a microsecond early.
//!
//! Example: 10 per second with a burst of 10 gives `T = 100 ms` and
//! `tau = 1 s`. At `t = 0` ten takes pass (the tenth books `tat = 1 s`) and
//! the eleventh is refused with `retry_after = 100 ms`; at `t = 100 ms`
//! exactly one more passes.
//!
//! A cost of 0 takes nothing and reports the current state. A backend stores
//! the returned `tat` with a time-to-live of `reset_ms`: once that passes, a
//! missing key means the same thing.
//!
//! The tolerance is bounded by [`MAX_TOLERANCE_US`] (about 142 years): then
//! every time involved stays below 2^53 µs, which a Redis script computes
//! exactly in its double-precision numbers, so its decisions are the same.

use crate::records::Decision;

const US_PER_MS: u64 = 1_000;

/// The largest tolerance (`T × burst`) a limit may have, in microseconds.
pub const MAX_TOLERANCE_US: u64 = 1 << 52;

/// A limit's emission interval `T` and tolerance `tau`, in microseconds, and
/// the `cost × T` a take adds; checked as [`decide`] checks them.
pub fn params(limit: u64, window_ms: u64, burst: u64, cost: u64) -> Result<(u64, u64, u64), String> {
    if limit == 0 || window_ms == 0 || burst == 0 {
        return Err(format!(
            "rate limit needs a limit, window and burst of at least 1 \
             (got limit {limit}, window {window_ms} ms, burst {burst})"
        ));
    }
    if cost > burst {
        return Err(format!("a cost of {cost} exceeds the burst of {burst} and could never be allowed"));
    }
    let interval = window_ms.saturating_mul(US_PER_MS).div_ceil(limit);
    let tolerance = interval.saturating_mul(burst);
    if tolerance > MAX_TOLERANCE_US {
        return Err(format!(
            "a window of {window_ms} ms with a burst of {burst} of {limit} books more than \
             {} years ahead",
            MAX_TOLERANCE_US / US_PER_MS / 1_000 / 86_400 / 365
        ));
    }
    // cost <= burst: no overflow.
    Ok((interval, tolerance, cost * interval))
}

/// Decides one take. `tat_us` is the stored theoretical arrival time (0 for
/// a missing key); returns the decision and the `tat_us` to store.
///
/// Fails only for parameters that make no sense (zero limit, window or burst,
/// a tolerance past [`MAX_TOLERANCE_US`]) or that could never be allowed
/// (`cost > burst`): those are configuration errors, better reported than
/// answered with an eternal 429.
pub fn decide(
    now_ms: u64,
    tat_us: u64,
    limit: u64,
    window_ms: u64,
    burst: u64,
    cost: u64,
) -> Result<(Decision, u64), String> {
    let (interval, tolerance, cost_us) = params(limit, window_ms, burst, cost)?;
    let now = now_ms.saturating_mul(US_PER_MS);
    let horizon = now.saturating_add(tolerance);

    let start = tat_us.max(now);
    let new_tat = start.saturating_add(cost_us);
    let allowed = new_tat <= horizon;
    let booked = if allowed { new_tat } else { start };

    let decision = Decision {
        allowed,
        limit,
        remaining: horizon.saturating_sub(booked) / interval,
        reset_ms: (booked - now).div_ceil(US_PER_MS),
        retry_after_ms: if allowed { 0 } else { (new_tat - horizon).div_ceil(US_PER_MS) },
    };
    Ok((decision, booked))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs takes at `now_ms` against a stored tat, like a backend would.
    fn take(tat: &mut u64, now_ms: u64, cost: u64) -> Decision {
        let (decision, new_tat) = decide(now_ms, *tat, 10, 1_000, 10, cost).unwrap();
        *tat = new_tat;
        decision
    }

    #[test]
    fn ten_per_second_allows_exactly_the_burst_then_one_per_interval() {
        let mut tat = 0;
        let t0 = 1_700_000_000_000;
        for i in 0..10 {
            let d = take(&mut tat, t0, 1);
            assert!(d.allowed, "take {i} should pass");
            assert_eq!(d.remaining, 9 - i);
            assert_eq!(d.reset_ms, (i + 1) * 100);
            assert_eq!(d.retry_after_ms, 0);
            assert_eq!(d.limit, 10);
        }
        let refused = take(&mut tat, t0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_ms, 1_000);
        assert_eq!(refused.retry_after_ms, 100);

        // 99 ms later: still one millisecond short.
        let early = take(&mut tat, t0 + 99, 1);
        assert!(!early.allowed);
        assert_eq!(early.retry_after_ms, 1);

        let later = take(&mut tat, t0 + 100, 1);
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        assert_eq!(later.reset_ms, 1_000);
        assert!(!take(&mut tat, t0 + 100, 1).allowed);
    }

    #[test]
    fn an_idle_bucket_refills_completely_but_not_beyond_the_burst() {
        let mut tat = 0;
        for _ in 0..10 {
            take(&mut tat, 0, 1);
        }
        let peek = take(&mut tat, 60_000, 0);
        assert!(peek.allowed);
        assert_eq!(peek.remaining, 10);
        assert_eq!(peek.reset_ms, 0);
        assert_eq!((0..11).filter(|_| take(&mut tat, 60_000, 1).allowed).count(), 10);
    }

    #[test]
    fn a_cost_takes_several_events_and_its_retry_covers_all_of_them() {
        let mut tat = 0;
        assert!(take(&mut tat, 0, 8).allowed);
        let refused = take(&mut tat, 0, 5);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 2);
        assert_eq!(refused.retry_after_ms, 300);
        assert!(take(&mut tat, 300, 5).allowed);
    }

    #[test]
    fn uneven_rates_round_the_interval_up_and_never_exceed_the_limit() {
        // 3 per second: T = 333.334 ms.
        let (first, tat) = decide(0, 0, 3, 1_000, 1, 1).unwrap();
        assert!(first.allowed);
        assert_eq!(first.reset_ms, 334);
        let (second, _) = decide(333, tat, 3, 1_000, 1, 1).unwrap();
        assert!(!second.allowed);
        assert_eq!(second.retry_after_ms, 1);
        assert!(decide(334, tat, 3, 1_000, 1, 1).unwrap().0.allowed);
    }

    #[test]
    fn nonsensical_parameters_are_errors() {
        assert!(decide(0, 0, 0, 1_000, 1, 1).is_err());
        assert!(decide(0, 0, 1, 0, 1, 1).is_err());
        assert!(decide(0, 0, 1, 1_000, 0, 1).is_err());
        let err = decide(0, 0, 10, 1_000, 10, 11).unwrap_err();
        assert!(err.contains("exceeds the burst"), "{err}");
        let err = decide(0, 0, 1, 1 << 40, 5, 1).unwrap_err();
        assert!(err.contains("books more than 142 years ahead"), "{err}");
        assert!(decide(0, 0, 1, 1 << 40, 4, 1).is_ok(), "4 × 2^40 ms is just below 2^52 µs");
    }
}
