//! Keeping an upstream's DNS names resolved: a background task per
//! upstream with names resolves them again every `resolve_interval` (or
//! when the shortest record TTL runs out, if sooner), and soon after a
//! target of a name refused a connection (its address may be gone). When
//! an answer changes, the upstream's target set is replaced, without a
//! reload: addresses that stay keep their targets and state, new ones get
//! fresh targets, and removed ones drain (requests on them finish).
//!
//! A name that stops resolving (no answer, no such name, no address)
//! keeps its last addresses: a DNS outage must not empty an upstream that
//! still works. The outage is logged once when it starts and once when
//! it ends. Resolutions are at least [`MIN_RESOLVE_INTERVAL`] apart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::members::{Addresses, Members};
use super::resolve::{ResolveError, Resolved, Resolver};
use super::spec::{MIN_RESOLVE_INTERVAL, UpstreamSpec};
use crate::telemetry::UpstreamMetrics;

/// Resolves `name`, counting the result; says when addresses were left
/// out for the bound.
pub(crate) async fn resolve(
    resolver: &Resolver,
    upstream: &str,
    name: &str,
    metrics: &UpstreamMetrics,
) -> Result<Resolved, ResolveError> {
    let result = resolver.resolve(name).await;
    metrics.record_resolution(name, result.as_ref().map_or_else(ResolveError::kind, |_| "ok"));
    if let Ok(r) = &result
        && r.dropped > 0
    {
        tracing::warn!(
            upstream,
            name,
            kept = r.addrs.len(),
            dropped = r.dropped,
            "too many addresses: the lowest are kept"
        );
    }
    result
}

/// The names among an upstream's targets, once each.
pub(crate) fn names(spec: &UpstreamSpec) -> BTreeSet<Arc<str>> {
    spec.targets.iter().filter_map(|t| t.name()).map(Arc::from).collect()
}

/// What the task works with.
pub(crate) struct Discovery {
    pub upstream: Arc<str>,
    pub spec: UpstreamSpec,
    pub resolver: Resolver,
    pub members: Arc<ArcSwap<Members>>,
    pub metrics: Arc<UpstreamMetrics>,
    /// Asks for a resolution soon (a connection to a name's target failed).
    pub poke: Arc<Notify>,
}

impl Discovery {
    /// Starts the task (needs a tokio runtime); the first resolution is
    /// due after `first`.
    pub(crate) fn spawn(self, first: Duration) -> Option<AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(self.run(first)).abort_handle())
    }

    async fn run(self, first: Duration) {
        let names = names(&self.spec);
        let mut failing: BTreeSet<Arc<str>> = BTreeSet::new();
        let mut last = Instant::now();
        let mut next = last + first.max(MIN_RESOLVE_INTERVAL);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.poke.notified() => {
                    tokio::time::sleep_until(last + MIN_RESOLVE_INTERVAL).await;
                }
            }
            let expires = self.refresh(&names, &mut failing).await;
            last = Instant::now();
            let ttl = expires.map_or(self.spec.resolve_interval, |e| e.saturating_duration_since(last));
            next = last + ttl.clamp(MIN_RESOLVE_INTERVAL, self.spec.resolve_interval.max(MIN_RESOLVE_INTERVAL));
        }
    }

    /// Resolves every name and swaps a new target set in if an answer
    /// changed. Returns when the first answer's records expire.
    async fn refresh(&self, names: &BTreeSet<Arc<str>>, failing: &mut BTreeSet<Arc<str>>) -> Option<Instant> {
        let lookups = names.iter().map(|name| resolve(&self.resolver, &self.upstream, name, &self.metrics));
        let results = futures_util::future::join_all(lookups).await;
        let current = self.members.load_full();
        let mut addresses: Addresses = current.addresses.clone();
        let mut expires: Option<Instant> = None;
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(resolved) => {
                    if failing.remove(name) {
                        tracing::info!(upstream = %self.upstream, %name, "name resolves again");
                    }
                    let valid_until = Instant::from_std(resolved.valid_until);
                    expires = Some(expires.map_or(valid_until, |e| e.min(valid_until)));
                    addresses.insert(name.clone(), resolved.addrs);
                }
                Err(error) => {
                    if failing.insert(name.clone()) {
                        let kept = addresses.get(name).map_or(0, Vec::len);
                        tracing::warn!(upstream = %self.upstream, %name, %error, kept, "name does not resolve: keeping its last addresses");
                    }
                }
            }
        }
        if addresses != current.addresses {
            for (name, addrs) in &addresses {
                if current.addresses.get(name) != Some(addrs) {
                    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                    tracing::info!(upstream = %self.upstream, %name, addresses = %addrs.join(" "), "name resolves to new addresses");
                }
            }
            let members = Members::new(&self.spec, addresses, &current.targets, &self.metrics);
            self.members.store(Arc::new(members));
        }
        expires
    }
}
