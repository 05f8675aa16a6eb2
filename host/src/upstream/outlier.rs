//! Passive outlier detection: a target that fails `consecutive_failures`
//! requests in a row (target failures: no answer, or one of the
//! upstream's `failure_statuses`) is ejected —
//! it gets no traffic — for a while. The ejection doubles each time the
//! target is ejected again within `max_ejection` of its last return, up to
//! `max_ejection`; a target that stays well that long starts over from
//! `base_ejection`.
//!
//! Pure: the clock is a parameter. The share of targets out at once
//! (ejected or with an open breaker) is capped by the caller, which sees
//! them all.

use std::time::{Duration, Instant};

use super::spec::OutlierSpec;

#[derive(Debug)]
pub(crate) struct Outlier {
    spec: OutlierSpec,
    failures: u32,
    ejected_until: Option<Instant>,
    /// Ejections in a row (each within `max_ejection` of the last's end).
    streak: u32,
}

impl Outlier {
    pub(crate) fn new(spec: OutlierSpec) -> Self {
        Self { spec, failures: 0, ejected_until: None, streak: 0 }
    }

    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_for(now).is_some()
    }

    pub(crate) fn ejected_for(&self, now: Instant) -> Option<Duration> {
        self.ejected_until.filter(|until| now < *until).map(|until| until - now)
    }

    /// Counts an outcome; true when the target should now be ejected.
    /// Results arriving while ejected (requests sent before) are ignored.
    pub(crate) fn record(&mut self, ok: bool, now: Instant) -> bool {
        if self.is_ejected(now) {
            return false;
        }
        if ok {
            self.failures = 0;
            return false;
        }
        self.failures += 1;
        self.failures >= self.spec.consecutive_failures
    }

    /// Ejects the target; returns for how long.
    pub(crate) fn eject(&mut self, now: Instant) -> Duration {
        let again = self.ejected_until.is_some_and(|end| now.saturating_duration_since(end) <= self.spec.max_ejection);
        self.streak = if again { self.streak.saturating_add(1) } else { 1 };
        let factor = 1u32.checked_shl(self.streak - 1).unwrap_or(u32::MAX);
        let length = self.spec.base_ejection.saturating_mul(factor).min(self.spec.max_ejection);
        self.ejected_until = Some(now + length);
        self.failures = 0;
        length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlier() -> Outlier {
        Outlier::new(OutlierSpec {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(35),
            max_ejection_percent: 100,
        })
    }

    fn fail_until_ejected(o: &mut Outlier, now: Instant) -> Duration {
        assert!(!o.record(false, now));
        assert!(!o.record(false, now));
        assert!(o.record(false, now));
        o.eject(now)
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets() {
        let t0 = Instant::now();
        let mut o = outlier();
        assert!(!o.record(false, t0));
        assert!(!o.record(false, t0));
        assert!(!o.record(true, t0));
        assert_eq!(fail_until_ejected(&mut o, t0), Duration::from_secs(10));
        assert!(o.is_ejected(t0 + Duration::from_secs(9)));
        assert_eq!(o.ejected_for(t0 + Duration::from_secs(4)), Some(Duration::from_secs(6)));
        assert!(!o.is_ejected(t0 + Duration::from_secs(10)));
        assert!(!o.record(false, t0 + Duration::from_secs(1)), "results while ejected are ignored");
    }

    #[test]
    fn repeated_ejections_grow_capped_and_decay() {
        let mut now = Instant::now();
        let mut o = outlier();
        let mut lengths = Vec::new();
        for _ in 0..4 {
            let length = fail_until_ejected(&mut o, now);
            lengths.push(length.as_secs());
            now += length + Duration::from_secs(1);
        }
        assert_eq!(lengths, [10, 20, 35, 35]);
        // Well for longer than max_ejection: back to the base.
        now += Duration::from_secs(40);
        assert_eq!(fail_until_ejected(&mut o, now), Duration::from_secs(10));
    }
}
