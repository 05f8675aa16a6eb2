//! What a remote state store does while it cannot reach its server, and
//! how an outage is reported: one line when it starts, one when it ends,
//! and a count of the calls answered by the policy, never a line per
//! request (a busy gateway would bury its log under them).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `[state] on_unavailable`: how calls are answered while the backend is
/// unreachable or slower than its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnavailable {
    /// Every take is allowed (as by a fresh bucket), increments count from
    /// zero, reads find nothing and writes are dropped.
    FailOpen,
    /// The plugin call fails and the request is answered 503.
    FailClosed,
    /// This replica's own memory answers: per-replica limits until the
    /// backend is back (then the shared ones resume where they were).
    /// The default: limits still hold, if per replica.
    #[default]
    Local,
}

impl OnUnavailable {
    pub const NAMES: [(&str, Self); 3] =
        [("fail-open", Self::FailOpen), ("fail-closed", Self::FailClosed), ("local", Self::Local)];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, p)| *p == self).map_or("?", |(n, _)| n)
    }
}

/// Whether the backend is down, and how often the policy answered.
#[derive(Default)]
pub(crate) struct Outage {
    down: AtomicBool,
    answered: AtomicU64,
    outages: AtomicU64,
}

impl Outage {
    /// A call failed: counted, and logged if it starts an outage.
    pub(crate) fn failed(&self, backend: &str, policy: OnUnavailable, error: &dyn std::fmt::Display) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::AcqRel) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                backend,
                on_unavailable = policy.name(),
                %error,
                "state backend unavailable; answering by on_unavailable until it is back"
            );
        }
    }

    /// A call succeeded: logged if it ends an outage.
    pub(crate) fn succeeded(&self, backend: &str) {
        // A load first: the usual case (no outage) writes nothing shared.
        if self.down.load(Ordering::Acquire) && self.down.swap(false, Ordering::AcqRel) {
            let answered = self.answered.load(Ordering::Relaxed);
            tracing::warn!(backend, answered_by_policy = answered, "state backend available again");
        }
    }

    /// Calls answered by the policy since start (for metrics).
    pub(crate) fn answered_by_policy(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Outages begun since start.
    pub(crate) fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_counted_once_and_calls_each_time() {
        let o = Outage::default();
        o.succeeded("redis");
        for _ in 0..3 {
            o.failed("redis", OnUnavailable::Local, &"refused");
        }
        o.succeeded("redis");
        o.failed("redis", OnUnavailable::Local, &"refused");
        assert_eq!((o.outages(), o.answered_by_policy()), (2, 4));
    }

    #[test]
    fn policies_have_names() {
        for (name, policy) in OnUnavailable::NAMES {
            assert_eq!(OnUnavailable::from_name(name), Some(policy));
            assert_eq!(policy.name(), name);
        }
        assert_eq!(OnUnavailable::from_name("open"), None);
    }
}
