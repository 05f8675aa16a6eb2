//! A per-target circuit breaker on consecutive failures.
//!
//! ```text
//! closed ──failure_threshold failures in a row──▶ open ──open elapsed──▶ half-open
//!   ▲                                              ▲                      │
//!   └──────── half_open_probes successes ──────────┼──────────────────────┤
//!                                                  └────── a failure ─────┘
//! ```
//! Closed lets everything through and counts consecutive failures (a
//! success resets the count). Open lets nothing through. Half-open lets at
//! most `half_open_probes` requests through at once; as many successes close
//! the breaker, one failure opens it again for another `open` period.
//!
//! Pure: the clock is a parameter, so the tests drive time.

use std::time::{Duration, Instant};

use super::spec::BreakerSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

/// What a request that passed the breaker holds until its outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Passed a closed breaker.
    Normal,
    /// One of the half-open probes.
    Probe,
}

/// A change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Opened,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    spec: BreakerSpec,
    state: State,
}

impl Breaker {
    pub(crate) fn new(spec: BreakerSpec) -> Self {
        Self { spec, state: State::Closed { failures: 0 } }
    }

    /// Whether [`Self::acquire`] would succeed now.
    pub(crate) fn admits(&self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } => now >= until,
            State::HalfOpen { in_flight, successes } => in_flight + successes < self.spec.half_open_probes,
        }
    }

    /// How long until the breaker lets a request through again, when it
    /// does not now.
    pub(crate) fn blocked_for(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            // Waiting for the probes in flight: they answer within a try.
            _ if !self.admits(now) => Some(Duration::ZERO),
            _ => None,
        }
    }

    /// Lets one request through, if the state allows.
    pub(crate) fn acquire(&mut self, now: Instant) -> Option<Permit> {
        match self.state {
            State::Closed { .. } => Some(Permit::Normal),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { in_flight: 1, successes: 0 };
                Some(Permit::Probe)
            }
            State::Open { .. } => None,
            State::HalfOpen { in_flight, successes } if in_flight + successes < self.spec.half_open_probes => {
                self.state = State::HalfOpen { in_flight: in_flight + 1, successes };
                Some(Permit::Probe)
            }
            State::HalfOpen { .. } => None,
        }
    }

    /// The outcome of a request let through with `permit`: `Some(true)`
    /// success, `Some(false)` failure, `None` abandoned (the client went
    /// away) which only frees a probe's place.
    pub(crate) fn record(&mut self, permit: Permit, outcome: Option<bool>, now: Instant) -> Option<Transition> {
        self.record_capped(permit, outcome, now, false)
    }

    /// [`Self::record`]; with `capped` (too many targets are out already)
    /// a closed breaker stays closed past its threshold, and opens on the
    /// next failure once the cap allows.
    pub(crate) fn record_capped(
        &mut self,
        permit: Permit,
        outcome: Option<bool>,
        now: Instant,
        capped: bool,
    ) -> Option<Transition> {
        match (self.state, permit, outcome) {
            (State::HalfOpen { in_flight, successes }, Permit::Probe, outcome) => {
                let in_flight = in_flight.saturating_sub(1);
                match outcome {
                    None => {
                        self.state = State::HalfOpen { in_flight, successes };
                        None
                    }
                    Some(true) if successes + 1 >= self.spec.half_open_probes => {
                        self.state = State::Closed { failures: 0 };
                        Some(Transition::Closed)
                    }
                    Some(true) => {
                        self.state = State::HalfOpen { in_flight, successes: successes + 1 };
                        None
                    }
                    Some(false) => self.open(now),
                }
            }
            (State::Closed { .. }, _, Some(true)) => {
                self.state = State::Closed { failures: 0 };
                None
            }
            (State::Closed { failures }, _, Some(false)) if failures + 1 >= self.spec.failure_threshold && !capped => {
                self.open(now)
            }
            (State::Closed { failures }, _, Some(false)) => {
                self.state = State::Closed { failures: failures.saturating_add(1) };
                None
            }
            // Requests let through before the breaker opened (or while it
            // was closed, finishing during half-open) do not move it.
            _ => None,
        }
    }

    fn open(&mut self, now: Instant) -> Option<Transition> {
        self.state = State::Open { until: now + self.spec.open };
        Some(Transition::Opened)
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed { .. })
    }

    /// `closed`, `open`, or `half-open` (probes let through, or the next
    /// request will be one), for operators.
    pub(crate) fn state_name(&self, now: Instant) -> &'static str {
        match self.state {
            State::Closed { .. } => "closed",
            State::Open { until } if now < until => "open",
            _ => "half-open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, probes: u32) -> Breaker {
        Breaker::new(BreakerSpec {
            failure_threshold: threshold,
            open: Duration::from_secs(5),
            half_open_probes: probes,
            max_open_percent: 50,
        })
    }

    fn fail(b: &mut Breaker, now: Instant) -> Option<Transition> {
        let permit = b.acquire(now).expect("admitted");
        b.record(permit, Some(false), now)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = breaker(3, 1);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), None);
        let p = b.acquire(t0).unwrap();
        assert_eq!(b.record(p, Some(true), t0), None, "a success resets the count");
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), Some(Transition::Opened));
        assert!(!b.admits(t0));
        assert_eq!(b.acquire(t0), None);
        assert_eq!(b.blocked_for(t0), Some(Duration::from_secs(5)));
        assert_eq!(b.blocked_for(t0 + Duration::from_secs(2)), Some(Duration::from_secs(3)));
    }

    #[test]
    fn half_open_lets_probes_through_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = breaker(1, 2);
        assert_eq!(fail(&mut b, t0), Some(Transition::Opened));
        let later = t0 + Duration::from_secs(5);
        assert!(b.admits(later));
        let p1 = b.acquire(later).unwrap();
        let p2 = b.acquire(later).unwrap();
        assert_eq!((p1, p2), (Permit::Probe, Permit::Probe));
        assert_eq!(b.acquire(later), None, "only half_open_probes at once");
        assert_eq!(b.blocked_for(later), Some(Duration::ZERO));
        assert_eq!(b.record(p1, Some(true), later), None);
        assert_eq!(b.acquire(later), None, "the success still counts towards the probes");
        assert_eq!(b.record(p2, Some(true), later), Some(Transition::Closed));
        assert!(b.is_closed());
        assert_eq!(b.acquire(later), Some(Permit::Normal));
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_period() {
        let t0 = Instant::now();
        let mut b = breaker(1, 1);
        fail(&mut b, t0);
        let t1 = t0 + Duration::from_secs(6);
        let p = b.acquire(t1).unwrap();
        assert_eq!(b.record(p, Some(false), t1), Some(Transition::Opened));
        assert!(!b.admits(t1 + Duration::from_secs(4)));
        assert!(b.admits(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn an_abandoned_probe_frees_its_place() {
        let t0 = Instant::now();
        let mut b = breaker(1, 1);
        fail(&mut b, t0);
        let t1 = t0 + Duration::from_secs(5);
        let p = b.acquire(t1).unwrap();
        assert_eq!(b.acquire(t1), None);
        assert_eq!(b.record(p, None, t1), None);
        assert_eq!(b.acquire(t1), Some(Permit::Probe));
    }

    #[test]
    fn a_capped_breaker_stays_closed_until_the_cap_allows() {
        let t0 = Instant::now();
        let mut b = breaker(2, 1);
        for _ in 0..3 {
            let p = b.acquire(t0).unwrap();
            assert_eq!(b.record_capped(p, Some(false), t0, true), None);
        }
        assert_eq!(b.state_name(t0), "closed");
        let p = b.acquire(t0).unwrap();
        assert_eq!(b.record_capped(p, Some(false), t0, false), Some(Transition::Opened));
        assert_eq!(b.state_name(t0), "open");
        assert_eq!(b.state_name(t0 + Duration::from_secs(5)), "half-open");
    }

    #[test]
    fn late_results_of_normal_requests_do_not_move_an_open_breaker() {
        let t0 = Instant::now();
        let mut b = breaker(2, 1);
        let early = b.acquire(t0).unwrap();
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.record(early, Some(true), t0), None);
        assert!(!b.admits(t0), "still open");
    }
}
