//! One target of an upstream and everything known about it: its pool,
//! requests in flight, active health, outlier ejection and breaker state.
//! A target is one address: a configured DNS name stands for one target
//! per address it resolves to.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::uri::Authority;

use super::breaker::{Breaker, Permit};
use super::connect::Connector;
use super::outlier::Outlier;
use super::pool::Pool;
use super::spec::UpstreamSpec;
use crate::telemetry::TargetMetrics;

pub(crate) struct Target {
    /// An IP address and port.
    pub addr: Authority,
    pub weight: u32,
    /// The DNS name it was resolved from, if any.
    pub name: Option<Arc<str>>,
    pub pool: Pool,
    /// Its tries, by outcome.
    pub metrics: TargetMetrics,
    in_flight: AtomicUsize,
    /// Set by the active health checker; true without one.
    healthy: AtomicBool,
    passive: Mutex<Passive>,
}

pub(crate) struct Passive {
    pub outlier: Option<Outlier>,
    pub breaker: Option<Breaker>,
}

/// Why a target takes no request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    Unhealthy,
    Ejected(Duration),
    /// Its circuit breaker is open for this long (zero: half-open, probes
    /// in flight).
    Open(Duration),
}

impl Target {
    pub(crate) fn new(
        addr: Authority,
        weight: u32,
        name: Option<Arc<str>>,
        upstream: &UpstreamSpec,
        metrics: TargetMetrics,
    ) -> Self {
        Self {
            pool: Pool::new(
                Connector::new(addr.clone(), name.as_deref(), upstream.connect_timeout, upstream.tls.as_ref()),
                upstream.protocol,
                upstream.idle_timeout,
            ),
            addr,
            weight,
            name,
            metrics,
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            passive: Mutex::new(Passive {
                outlier: upstream.outlier.clone().map(Outlier::new),
                breaker: upstream.breaker.clone().map(Breaker::new),
            }),
        }
    }

    /// Whether it is the one `addr` (of `name`, with `weight`) stands for.
    pub(crate) fn is(&self, addr: &Authority, weight: u32, name: Option<&str>) -> bool {
        self.addr == *addr && self.weight == weight && self.name.as_deref() == name
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub(crate) fn passive(&self) -> MutexGuard<'_, Passive> {
        self.passive.lock().expect("target state lock")
    }

    /// `None` when the target takes requests now.
    pub(crate) fn blocked(&self, now: Instant) -> Option<Blocked> {
        if !self.healthy.load(Ordering::Relaxed) {
            return Some(Blocked::Unhealthy);
        }
        let p = self.passive();
        if let Some(d) = p.outlier.as_ref().and_then(|o| o.ejected_for(now)) {
            return Some(Blocked::Ejected(d));
        }
        p.breaker.as_ref().and_then(|b| b.blocked_for(now)).map(Blocked::Open)
    }

    /// Whether passive checks have taken it out: ejected, or its breaker
    /// not closed. What the caps on both count.
    pub(crate) fn taken_out(&self, now: Instant) -> bool {
        let p = self.passive();
        p.outlier.as_ref().is_some_and(|o| o.is_ejected(now)) || p.breaker.as_ref().is_some_and(|b| !b.is_closed())
    }

    /// Lets one request through to this target, if it still may.
    pub(crate) fn acquire(self: &Arc<Self>, now: Instant) -> Option<Attempt> {
        if !self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        let permit = {
            let mut p = self.passive();
            if p.outlier.as_ref().is_some_and(|o| o.ejected_for(now).is_some()) {
                return None;
            }
            match &mut p.breaker {
                Some(b) if b.blocked_for(now).is_some() => return None,
                Some(b) => Some(b.acquire(now)?),
                None => None,
            }
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Attempt { target: self.clone(), permit, in_flight: Some(InFlight(self.clone())) })
    }
}

/// One try on a target, from the choice to the outcome. Dropped without an
/// outcome (the client went away), it frees its breaker probe.
pub(crate) struct Attempt {
    pub target: Arc<Target>,
    permit: Option<Permit>,
    in_flight: Option<InFlight>,
}

impl Attempt {
    /// The breaker permit, to report the outcome with (taken once).
    pub(crate) fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take()
    }

    /// The in-flight count, to keep up while a response body is read.
    pub(crate) fn take_in_flight(&mut self) -> Option<InFlight> {
        self.in_flight.take()
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take()
            && let Some(b) = &mut self.target.passive().breaker
        {
            b.record(permit, None, Instant::now());
        }
    }
}

/// Counts a request as in flight to its target while alive.
pub(crate) struct InFlight(Arc<Target>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::spec::BreakerSpec;

    #[tokio::test]
    async fn an_abandoned_attempt_frees_its_probe_and_in_flight_count() {
        let mut spec = UpstreamSpec::new("u", ["127.0.0.1:1".parse().unwrap()]);
        spec.breaker =
            Some(BreakerSpec { failure_threshold: 1, open: Duration::from_secs(1), ..BreakerSpec::default() });
        let metrics = crate::telemetry::Metrics::default().upstream("u").target("127.0.0.1:1");
        let target = Arc::new(Target::new(spec.targets[0].addr.clone(), 1, None, &spec, metrics));
        let t0 = Instant::now();
        let mut a = target.acquire(t0).unwrap();
        let permit = a.take_permit().unwrap();
        target.passive().breaker.as_mut().unwrap().record(permit, Some(false), t0);
        drop(a);
        assert_eq!(target.in_flight(), 0);
        assert_eq!(target.blocked(t0), Some(Blocked::Open(Duration::from_secs(1))));

        let t1 = t0 + Duration::from_secs(1);
        let probe = target.acquire(t1).unwrap();
        assert_eq!(target.in_flight(), 1);
        assert!(target.acquire(t1).is_none(), "one probe at a time");
        drop(probe);
        assert!(target.acquire(t1).is_some(), "the abandoned probe's place is free again");

        target.set_healthy(false);
        assert_eq!(target.blocked(t1), Some(Blocked::Unhealthy));
    }
}
