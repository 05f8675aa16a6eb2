//! Upstream services: a request goes to one of an upstream's targets,
//! chosen by the balancer among those that take traffic, and is tried
//! again (elsewhere, when there is elsewhere) when that is safe and the
//! budget allows.
//!
//! - [`spec`]: the checked settings and their defaults
//! - [`balance`]: round robin, smooth weighted, least request (P2C), hash ring
//! - [`health`]: active checks, a background task per upstream
//! - [`outlier`]: passive ejection on consecutive failures
//! - [`breaker`]: per-target circuit breaker
//! - [`retry`]: which failures are retried, backoff, retry budget
//! - [`pool`]: each target's keep-alive connections
//! - [`connect`]: a new connection to a target, TCP or TLS
//! - [`tls`]: the TLS client settings of an upstream
//! - [`roundtrip`]: one request and response on a connection (HTTP/1.1)
//! - [`h2`]: HTTP/2 upstreams: a shared multiplexed connection per target
//! - [`client`]: replayable bodies, tracked responses
//! - `failure`: why a try got no response, and what that means
//! - [`target`]: a target's state, and one try on it
//! - [`members`]: the targets balanced over now (a DNS name is one per
//!   address)
//! - [`resolve`], [`discovery`]: resolving target names, at load and
//!   again in the background
//!
//! A reload builds new upstreams from the new config, but what is known of
//! the targets survives it: an upstream whose settings did not change is
//! kept whole (its retry budget too), and in one that did, each target
//! whose own settings did not change (address, weight, connection
//! timeouts, health checks, outlier detection, breaker) is carried over
//! with its health, ejection, breaker, requests in flight and pooled
//! connections. Only new or changed targets start fresh (and healthy).
//! The same holds when a DNS name's addresses change between reloads
//! (see [`discovery`]). A reload resolves only names it has no addresses
//! for yet: one that cannot be resolved then is a config error.
//!
//! A target takes traffic when it is healthy (or unchecked), not ejected,
//! and its breaker lets the request through. When none does, the request
//! fails at once with [`UpstreamError::NoTarget`] (503 with `Retry-After`)
//! without contacting anyone.

pub(crate) mod balance;
pub(crate) mod breaker;
pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod discovery;
mod error;
mod failure;
pub(crate) mod h2;
pub(crate) mod health;
pub(crate) mod members;
pub(crate) mod outbound;
pub(crate) mod outlier;
pub(crate) mod pool;
pub(crate) mod resolve;
pub(crate) mod retry;
pub(crate) mod roundtrip;
pub(crate) mod spec;
pub(crate) mod target;
pub(crate) mod tls;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::uri::Authority;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

pub(crate) use client::Payload;
pub(crate) use error::UpstreamError;
pub(crate) use resolve::DnsSettings;
pub(crate) use spec::{
    Balance, BreakerSpec, HashOn, HealthSpec, OutlierSpec, Protocol, RetrySpec, TargetSpec, UpstreamSpec,
};

use self::breaker::Transition;
use self::client::{Replay, Tracked};
use self::discovery::Discovery;
use self::failure::{ClientFailure, classify, error_chain};
use self::members::{Addresses, Members};
use self::resolve::Resolver;
use self::retry::{Failed, RetryBudget, backoff, retryable};
use self::roundtrip::Outbound;
use self::target::{Attempt, Blocked, Target};
use crate::body::Body;
use crate::telemetry::{Metrics, Tries, Try, UpstreamMetrics, UpstreamOutcome};

/// Per-request settings of [`Upstream::send_with`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendOptions {
    /// The whole request's deadline, retries included; the upstream's
    /// `timeout` when `None`.
    pub timeout: Option<Duration>,
    /// The client's address, for `hash_on = "client-ip"`.
    pub client_ip: Option<IpAddr>,
}

/// One target as [`Upstream::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct TargetStatus {
    pub addr: String,
    /// The DNS name it is an address of, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub weight: u32,
    pub in_flight: usize,
    /// `up`, or the first reason it takes no traffic: `unhealthy`,
    /// `ejected` or `circuit-open`. The fields below show each.
    pub state: &'static str,
    /// `healthy`, `unhealthy`, or `unchecked` (no active checks).
    pub health: &'static str,
    /// Milliseconds of ejection left, when ejected.
    pub ejected_ms: Option<u64>,
    /// `closed`, `open`, `half-open`, or `off` (no breaker).
    pub breaker: &'static str,
}

/// One named upstream service with its targets.
pub(crate) struct Upstream {
    name: Arc<str>,
    /// What it was built from, to tell what a reload changed.
    spec: UpstreamSpec,
    /// The targets now; replaced whole when a name's addresses change.
    members: Arc<ArcSwap<Members>>,
    /// Wakes the re-resolution of names early; `None` without names.
    rediscover: Option<Arc<Notify>>,
    budget: RetryBudget,
    retry: RetrySpec,
    timeout: Duration,
    try_timeout: Option<Duration>,
    connect_timeout: Duration,
    max_ejection_percent: usize,
    /// How long an unhealthy target takes to come back at best.
    recheck: Duration,
    /// Serialises decisions that take a target out (ejection, opening a
    /// breaker): the caps look at every target.
    taking_out: Mutex<()>,
    /// Background tasks: health checks, closing idle connections,
    /// resolving names again.
    tasks: Vec<AbortHandle>,
    /// Tries and retries, resolved when the snapshot was built.
    metrics: Arc<UpstreamMetrics>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Upstream {
    /// Builds the upstream and, when configured, starts its health checks
    /// (which stop when it is dropped).
    #[cfg(test)]
    pub(crate) fn new(spec: &UpstreamSpec, metrics: &Metrics) -> Self {
        Self::carrying(spec, metrics, None, Addresses::new(), None)
    }

    /// Builds the upstream, keeping the targets of `previous` (the same
    /// upstream in the config before a reload) whose settings did not
    /// change. `addresses`: each DNS name's, resolved already; with
    /// names, `discovery`'s resolver resolves them again, first after its
    /// delay.
    fn carrying(
        spec: &UpstreamSpec,
        metrics: &Metrics,
        previous: Option<&Upstream>,
        addresses: Addresses,
        discovery: Option<(Resolver, Duration)>,
    ) -> Self {
        let name: Arc<str> = spec.name.as_str().into();
        let metrics = Arc::new(metrics.upstream(&spec.name));
        let kept = previous.filter(|p| same_target_settings(&p.spec, spec)).map(|p| p.members.load_full());
        let members = Members::new(spec, addresses, kept.as_ref().map_or(&[], |m| &m.targets[..]), &metrics);
        let members = Arc::new(ArcSwap::from_pointee(members));
        let health = spec.health.clone().and_then(|h| health::spawn(name.clone(), members.clone(), h));
        let sweeper = spawn_sweeper(members.clone(), spec.idle_timeout);
        let rediscover = discovery.filter(|_| spec.has_names()).map(|(resolver, first)| {
            let poke = Arc::new(Notify::new());
            let discovery = Discovery {
                upstream: name.clone(),
                spec: spec.clone(),
                resolver,
                members: members.clone(),
                metrics: metrics.clone(),
                poke: poke.clone(),
            };
            (poke, discovery.spawn(first))
        });
        let (rediscover, discovery) = rediscover.unzip();
        Self {
            members,
            rediscover,
            budget: RetryBudget::new(spec.retry.budget_percent, spec.retry.min_per_second, Instant::now()),
            retry: spec.retry.clone(),
            timeout: spec.timeout,
            try_timeout: spec.try_timeout,
            connect_timeout: spec.connect_timeout,
            max_ejection_percent: spec.outlier.as_ref().map_or(100, |o| o.max_ejection_percent as usize),
            recheck: spec.health.as_ref().map_or(Duration::from_secs(1), |h| h.interval * h.healthy_threshold),
            taking_out: Mutex::new(()),
            tasks: health.into_iter().chain(sweeper).chain(discovery.flatten()).collect(),
            metrics,
            name,
            spec: spec.clone(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Each target's state now, for operators.
    pub(crate) fn status(&self) -> Vec<TargetStatus> {
        let now = Instant::now();
        let members = self.members.load();
        members
            .targets
            .iter()
            .map(|t| {
                let state = match t.blocked(now) {
                    None => "up",
                    Some(Blocked::Unhealthy) => "unhealthy",
                    Some(Blocked::Ejected(_)) => "ejected",
                    Some(Blocked::Open(_)) => "circuit-open",
                };
                let health = match (&self.spec.health, t.is_healthy()) {
                    (None, _) => "unchecked",
                    (Some(_), true) => "healthy",
                    (Some(_), false) => "unhealthy",
                };
                let passive = t.passive();
                let ejected = passive.outlier.as_ref().and_then(|o| o.ejected_for(now));
                TargetStatus {
                    addr: t.addr.to_string(),
                    name: t.name.as_deref().map(str::to_owned),
                    weight: t.weight,
                    in_flight: t.in_flight(),
                    state,
                    health,
                    ejected_ms: ejected.map(|d| d.as_millis() as u64),
                    breaker: passive.breaker.as_ref().map_or("off", |b| b.state_name(now)),
                }
            })
            .collect()
    }

    /// Sends a request (its URI is rewritten to the chosen target, keeping
    /// path and query) and waits for the response head, within
    /// `opts.timeout` (the upstream's when `None`). A response with a retried status is returned as it is once retries
    /// are over; the errors are for requests that got no response. `tries`
    /// learns what the tries came to, whatever the result.
    pub(crate) async fn send_with(
        &self,
        req: http::Request<Payload>,
        opts: SendOptions,
        tries: &mut Tries,
    ) -> Result<http::Response<Body>, UpstreamError> {
        let start = Instant::now();
        let total = opts.timeout.unwrap_or(self.timeout);
        let deadline = start + total;
        let (head, payload) = req.into_parts();
        let pq = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
        // This request's targets, whatever DNS answers come meanwhile.
        let members = self.members.load_full();
        let key = members.balancer.key(&head.headers, opts.client_ip);
        let idempotent = self.retry.methods.contains(&head.method);
        let mut replay = Replay::new(payload);
        self.budget.deposit(start);

        let mut tried = Tried::default();
        let mut attempts: u32 = 0;
        let mut last: Option<Result<http::Response<Body>, UpstreamError>> = None;
        let mut now = start;
        loop {
            let (index, mut attempt) = match self.choose(&members, tried.as_slice(), key, now) {
                Ok(chosen) => chosen,
                Err(e) => return last.unwrap_or(Err(e)),
            };
            tried.push(index);
            let Some((body, slot)) = replay.lend() else {
                return last.expect("only replayable bodies are tried again");
            };
            let target = attempt.target.clone();
            let remaining = deadline.saturating_duration_since(now);
            let (limit, per_try) = match self.try_timeout {
                Some(t) if t < remaining => (t, true),
                _ => (remaining, false),
            };
            let outbound = Outbound { method: &head.method, target: pq, headers: &head.headers, at: now };
            let until = tokio::time::Instant::from_std(now + limit);
            let sent = tokio::time::timeout_at(until, roundtrip::send(&target.pool, &outbound, body)).await;
            self.record_try(&target, &sent, now, start, tries);

            let (failed, result) = match sent {
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    self.report(&members, &mut attempt, !self.spec.failure_statuses.contains(&status.as_u16()), now);
                    let guard = attempt.take_in_flight();
                    let resp = resp.map(|inner| Tracked { inner, _guard: guard }.boxed());
                    if !self.retry.statuses.contains(&status.as_u16()) {
                        return Ok(resp);
                    }
                    (Failed::Status, Ok(resp))
                }
                Ok(Err(e)) => {
                    self.report(&members, &mut attempt, false, now);
                    if let failure::ClientError::Tls(_) = e {
                        // Why a certificate did not verify is for the operator.
                        tracing::warn!(upstream = %self.name, target = %target.addr, error = %error_chain(&e), "TLS to the upstream failed");
                    } else {
                        tracing::debug!(upstream = %self.name, target = %target.addr, error = %error_chain(&e), "try failed");
                    }
                    match classify(&e) {
                        ClientFailure::Connect { timed_out, reason } => {
                            replay.reclaim(slot);
                            self.maybe_moved(&target);
                            let error = if timed_out {
                                self.timed_out(&target.addr, self.connect_timeout)
                            } else {
                                self.unavailable(&target.addr, reason)
                            };
                            (Failed::Connect, Err(error))
                        }
                        ClientFailure::Refused => {
                            // A body the stream never read is sent again.
                            replay.reclaim(slot);
                            (Failed::Refused, Err(self.unavailable(&target.addr, "HTTP/2 stream refused")))
                        }
                        ClientFailure::Broken { reason } => {
                            (Failed::Broken, Err(self.unavailable(&target.addr, reason)))
                        }
                    }
                }
                Err(_) => {
                    self.report(&members, &mut attempt, false, now);
                    if !per_try {
                        // The request's own deadline: nothing is left for a retry.
                        return Err(UpstreamError::Timeout {
                            upstream: self.name.clone(),
                            target: None,
                            timeout: total,
                        });
                    }
                    (Failed::TryTimeout, Err(self.timed_out(&target.addr, limit)))
                }
            };
            drop(attempt);

            attempts += 1;
            let tries = attempts;
            if tries >= self.retry.attempts || !retryable(failed, idempotent, replay.state()) {
                return result;
            }
            let wait = backoff(&self.retry, tries, fastrand::f64());
            now = Instant::now();
            if now + wait >= deadline {
                return result;
            }
            if !self.budget.withdraw(now) {
                tracing::debug!(upstream = %self.name, "retry budget exhausted");
                return result;
            }
            tracing::debug!(upstream = %self.name, target = %target.addr, ?failed, ?wait, "retrying");
            self.metrics.record_retry();
            last = Some(result);
            tokio::time::sleep(wait).await;
            now = Instant::now();
        }
    }

    /// A connection to `target` failed: if it is an address of a name,
    /// the name may have moved, so it is resolved again soon.
    fn maybe_moved(&self, target: &Target) {
        if let (Some(_), Some(poke)) = (&target.name, &self.rediscover) {
            poke.notify_one();
        }
    }

    /// Counts one try by outcome, and tells `tries` about it.
    fn record_try<T>(
        &self,
        target: &Target,
        sent: &Result<Result<http::Response<T>, failure::ClientError>, tokio::time::error::Elapsed>,
        tried_at: Instant,
        start: Instant,
        tries: &mut Tries,
    ) {
        let now = Instant::now();
        let outcome = match sent {
            Ok(Ok(resp)) => UpstreamOutcome::Status(resp.status().as_u16()),
            Ok(Err(e)) => failure::outcome(e),
            Err(_) => UpstreamOutcome::Timeout,
        };
        self.metrics.record_try(&target.metrics, outcome, now.saturating_duration_since(tried_at));
        tries.attempts += 1;
        tries.target = Some(target.addr.clone());
        tries.status = match outcome {
            UpstreamOutcome::Status(code) => Some(code),
            _ => None,
        };
        tries.elapsed = now.saturating_duration_since(start);
        if tries.keep_each {
            let elapsed = now.saturating_duration_since(tried_at);
            tries.each.push(Try { target: target.addr.clone(), started: tried_at, elapsed, outcome });
        }
    }

    /// A target for the next try: an available one not tried yet by this
    /// request, or any available one when every one was tried.
    fn choose(
        &self,
        members: &Members,
        tried: &[usize],
        key: Option<u64>,
        now: Instant,
    ) -> Result<(usize, Attempt), UpstreamError> {
        let targets = &members.targets;
        if let [only] = &targets[..] {
            return only.acquire(now).map(|attempt| (0, attempt)).ok_or_else(|| self.no_target(targets, now));
        }
        let n = targets.len();
        // Flags on the stack for the usual handful of targets.
        let (mut small, mut large) = ([false; 2 * SMALL_UPSTREAM], Vec::new());
        let flags = if n <= SMALL_UPSTREAM {
            &mut small[..2 * n]
        } else {
            large.resize(2 * n, false);
            &mut large[..]
        };
        let (available, eligible) = flags.split_at_mut(n);
        for (i, t) in targets.iter().enumerate() {
            available[i] = t.blocked(now).is_none();
            eligible[i] = available[i] && !tried.contains(&i);
        }
        if !eligible.contains(&true) {
            eligible.copy_from_slice(available);
        }
        while let Some(i) = members.balancer.pick(eligible, |i| targets[i].in_flight(), key) {
            if let Some(attempt) = targets[i].acquire(now) {
                return Ok((i, attempt));
            }
            eligible[i] = false;
        }
        Err(self.no_target(targets, now))
    }

    /// No target takes the request (an empty set, which resolution never
    /// leaves, reads as unavailable targets too).
    fn no_target(&self, targets: &[Arc<Target>], now: Instant) -> UpstreamError {
        let blocked: Vec<Blocked> = targets.iter().filter_map(|t| t.blocked(now)).collect();
        let all_open = !blocked.is_empty() && blocked.iter().all(|b| matches!(b, Blocked::Open(_)));
        let retry_after = blocked
            .iter()
            .map(|b| match b {
                Blocked::Unhealthy => self.recheck,
                Blocked::Ejected(d) | Blocked::Open(d) => *d,
            })
            .min()
            .unwrap_or(Duration::ZERO);
        let reason = if all_open { "circuit breaker open" } else { "every target is unhealthy or ejected" };
        UpstreamError::NoTarget { upstream: self.name.clone(), reason, retry_after }
    }

    /// Feeds a try's outcome to the target's breaker and outlier detection.
    /// A success without a breaker to tell takes the try's start as the
    /// time (it only resets counts); anything else reads the clock. A
    /// failure may take the target out: that decision is made one at a
    /// time, against the caps on targets out at once.
    fn report(&self, members: &Members, attempt: &mut Attempt, ok: bool, tried_at: Instant) {
        let targets = &members.targets;
        let target = attempt.target.clone();
        let permit = attempt.take_permit();
        let now = if ok && permit.is_none() { tried_at } else { Instant::now() };
        let _one_at_a_time = (!ok).then(|| self.taking_out.lock().expect("take-out lock"));
        let others_out = if ok { 0 } else { others_out(targets, &target, now) };
        let breaker_cap = self.spec.breaker.as_ref().map_or(100, |b| b.max_open_percent as usize);
        let capped = (others_out + 1) > (targets.len() * breaker_cap / 100).max(1);
        let (transition, eject) = {
            let mut passive = target.passive();
            let transition = match (&mut passive.breaker, permit) {
                (Some(b), Some(permit)) => b.record_capped(permit, Some(ok), now, capped),
                _ => None,
            };
            (transition, passive.outlier.as_mut().is_some_and(|o| o.record(ok, now)))
        };
        match transition {
            Some(Transition::Opened) => {
                tracing::warn!(upstream = %self.name, target = %target.addr, "circuit breaker opened");
                target.pool.reset();
            }
            Some(Transition::Closed) => {
                tracing::info!(upstream = %self.name, target = %target.addr, "circuit breaker closed");
            }
            None if capped && !ok => {
                tracing::debug!(upstream = %self.name, target = %target.addr, "breaker kept closed: too many targets are out");
            }
            None => {}
        }
        if eject {
            self.eject(targets.len(), &target, now, others_out);
        }
    }

    /// `target`, one of `count`, failed enough to be ejected.
    fn eject(&self, count: usize, target: &Arc<Target>, now: Instant, others_out: usize) {
        if (others_out + 1) * 100 > count * self.max_ejection_percent {
            tracing::debug!(upstream = %self.name, target = %target.addr, "not ejected: too many targets are out");
            return;
        }
        let Some(length) = target.passive().outlier.as_mut().map(|o| o.eject(now)) else {
            return;
        };
        tracing::warn!(upstream = %self.name, target = %target.addr, ?length, "target ejected after consecutive failures");
        target.pool.reset();
    }

    fn timed_out(&self, target: &Authority, timeout: Duration) -> UpstreamError {
        UpstreamError::Timeout { upstream: self.name.clone(), target: Some(target.clone()), timeout }
    }

    fn unavailable(&self, target: &Authority, reason: &str) -> UpstreamError {
        UpstreamError::Unavailable { upstream: self.name.clone(), target: target.clone(), reason: reason.to_owned() }
    }
}

/// Targets other than `target` that passive checks have taken out.
fn others_out(targets: &[Arc<Target>], target: &Arc<Target>, now: Instant) -> usize {
    targets.iter().filter(|t| !Arc::ptr_eq(t, target) && t.taken_out(now)).count()
}

/// Targets an upstream chooses among without touching the heap.
const SMALL_UPSTREAM: usize = 32;

/// The targets a request has tried, in order.
#[derive(Default)]
struct Tried {
    targets: [usize; spec::MAX_ATTEMPTS as usize],
    len: usize,
}

impl Tried {
    /// Past `MAX_ATTEMPTS` (which the config does not allow) the oldest
    /// tries are forgotten rather than the request failed.
    fn push(&mut self, target: usize) {
        if self.len == self.targets.len() {
            self.targets.rotate_left(1);
            self.len -= 1;
        }
        self.targets[self.len] = target;
        self.len += 1;
    }

    fn as_slice(&self) -> &[usize] {
        &self.targets[..self.len]
    }
}

/// Closes pooled connections idle past `idle_timeout` (a little late at
/// most), whether or not requests come; stops with the upstream. A target
/// that left the set is not swept: its pool closes with it.
fn spawn_sweeper(members: Arc<ArcSwap<Members>>, idle_timeout: Duration) -> Option<AbortHandle> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let every = (idle_timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let task = runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            members.load().targets.iter().for_each(|t| t.pool.sweep());
        }
    });
    Some(task.abort_handle())
}

/// Whether a target's state under `old` settings still holds under `new`:
/// what it is, how it is connected to (TLS settings and the bytes of its
/// certificate files, protocol) and how its failures are judged.
fn same_target_settings(old: &UpstreamSpec, new: &UpstreamSpec) -> bool {
    old.connect_timeout == new.connect_timeout
        && old.idle_timeout == new.idle_timeout
        && old.health == new.health
        && old.outlier == new.outlier
        && old.breaker == new.breaker
        && old.protocol == new.protocol
        && old.tls == new.tls
}

/// The upstreams of one snapshot, by name.
#[derive(Default)]
pub(crate) struct Upstreams {
    by_name: HashMap<String, Arc<Upstream>>,
    /// Where names were resolved, and the resolver made for it (when some
    /// target is a name).
    dns: DnsSettings,
    resolver: Option<Resolver>,
}

/// A target's DNS name that could not be resolved while building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub upstream: String,
    /// Index in the upstream's `targets`.
    pub target: usize,
    pub reason: String,
}

impl Upstreams {
    /// Builds the upstreams of a config, resolving the names of their
    /// targets; after a reload, `previous` are those of the config before,
    /// whose state is carried over where the settings allow (see the
    /// module doc), and whose names' addresses are taken over rather than
    /// resolved again (unless `[dns]` changed or names a hosts file, which
    /// each reload reads again).
    pub(crate) async fn build(
        specs: &[UpstreamSpec],
        dns: &DnsSettings,
        metrics: &Metrics,
        previous: Option<&Upstreams>,
    ) -> Result<Self, Vec<Unresolved>> {
        let same_dns = previous.filter(|p| p.dns == *dns && dns.hosts_file.is_none());
        let unresolved = |spec: &UpstreamSpec, name: &str, reason: String| Unresolved {
            upstream: spec.name.clone(),
            target: spec.targets.iter().position(|t| t.name() == Some(name)).unwrap_or_default(),
            reason,
        };
        let resolver = match same_dns.and_then(|p| p.resolver.clone()) {
            Some(resolver) => Some(resolver),
            None if specs.iter().any(UpstreamSpec::has_names) => match Resolver::new(dns) {
                Ok(resolver) => Some(resolver),
                Err(reason) => {
                    let named = specs.iter().filter_map(|s| s.targets.iter().find_map(|t| Some((s, t.name()?))));
                    return Err(named.map(|(spec, name)| unresolved(spec, name, reason.clone())).collect());
                }
            },
            None => None,
        };

        // What each upstream starts from: kept whole, or built with the
        // addresses of its names (carried over, or resolved now).
        enum Plan<'a> {
            Keep(Arc<Upstream>),
            Build { spec: &'a UpstreamSpec, addresses: Addresses, first: Duration },
        }
        let mut plans = Vec::new();
        let mut lookups = Vec::new();
        for spec in specs {
            let old = previous.and_then(|p| p.get(&spec.name));
            if let Some(old) = old.filter(|o| o.spec == *spec && (same_dns.is_some() || !spec.has_names())) {
                plans.push(Plan::Keep(old.clone()));
                continue;
            }
            let known = old.filter(|_| same_dns.is_some()).map(|o| o.members.load().addresses.clone());
            let mut addresses = Addresses::new();
            for name in discovery::names(spec) {
                match known.as_ref().and_then(|k| k.get(&name)) {
                    Some(addrs) => {
                        addresses.insert(name, addrs.clone());
                    }
                    None => lookups.push((plans.len(), spec, name)),
                }
            }
            plans.push(Plan::Build { spec, addresses, first: spec.resolve_interval });
        }
        if let Some(resolver) = &resolver {
            let resolving = lookups.into_iter().map(|(plan, spec, name)| async move {
                let result = discovery::resolve(resolver, &spec.name, &name, &metrics.upstream(&spec.name)).await;
                (plan, name, result)
            });
            let results = futures_util::future::join_all(resolving).await;
            let mut errors = Vec::new();
            let now = Instant::now();
            for (plan, name, result) in results {
                let Plan::Build { spec, addresses, first } = &mut plans[plan] else { continue };
                match result {
                    Ok(resolved) => {
                        *first = (*first).min(resolved.valid_until.saturating_duration_since(now));
                        addresses.insert(name, resolved.addrs);
                    }
                    Err(e) => errors.push(unresolved(spec, &name, e.to_string())),
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
        }

        let by_name = plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Keep(upstream) => (upstream.spec.name.clone(), upstream),
                Plan::Build { spec, addresses, first } => {
                    let old = previous.and_then(|p| p.get(&spec.name)).map(|o| &**o);
                    let discovery = resolver.clone().map(|r| (r, first));
                    (spec.name.clone(), Arc::new(Upstream::carrying(spec, metrics, old, addresses, discovery)))
                }
            })
            .collect();
        Ok(Self { by_name, dns: dns.clone(), resolver })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name)
    }

    /// Every upstream's targets and their state, by name.
    pub(crate) fn status(&self) -> std::collections::BTreeMap<&str, Vec<TargetStatus>> {
        self.by_name.iter().map(|(name, up)| (name.as_str(), up.status())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_upstream_stops_its_health_checks() {
        let mut spec = UpstreamSpec::new("u", ["127.0.0.1:1".parse().unwrap()]);
        spec.health = Some(HealthSpec { interval: Duration::from_millis(10), ..HealthSpec::default() });
        let upstream = Upstream::new(&spec, &Metrics::default());
        let target = Arc::downgrade(&upstream.members.load().targets[0]);
        drop(upstream);
        // The task held the target: once it is gone, so is the task.
        for _ in 0..200 {
            if target.upgrade().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the health check task outlived its upstream");
    }

    #[tokio::test]
    async fn no_available_target_fails_fast_with_retry_after() {
        let mut spec = UpstreamSpec::new("u", ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()]);
        spec.breaker = Some(BreakerSpec {
            failure_threshold: 1,
            open: Duration::from_secs(3),
            max_open_percent: 100,
            ..BreakerSpec::default()
        });
        let upstream = Upstream::new(&spec, &Metrics::default());
        let req = || http::Request::new(Payload::Bytes(Default::default()));
        // Both refuse: the first try and its retry (to the other) open both breakers.
        let e = upstream.send_with(req(), SendOptions::default(), &mut Tries::default()).await.unwrap_err();
        assert_eq!(e.status(), http::StatusCode::BAD_GATEWAY, "{e}");
        let e = upstream.send_with(req(), SendOptions::default(), &mut Tries::default()).await.unwrap_err();
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert!(
            upstream.status().iter().all(|t| t.state == "circuit-open" && t.breaker == "open"),
            "{:?}",
            upstream.status()
        );
        assert_eq!(e.retry_after(), Some(3));
        assert!(e.to_string().contains("circuit breaker open"), "{e}");
    }

    #[test]
    fn open_breakers_are_capped_with_ejections() {
        let addrs = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"];
        let mut spec = UpstreamSpec::new("u", addrs.map(|a| a.parse().unwrap()));
        spec.breaker = Some(BreakerSpec { failure_threshold: 1, ..BreakerSpec::default() });
        spec.outlier =
            Some(OutlierSpec { consecutive_failures: 1, max_ejection_percent: 100, ..OutlierSpec::default() });
        let upstream = Upstream::new(&spec, &Metrics::default());
        let now = Instant::now();
        let members = upstream.members.load_full();
        for t in &members.targets {
            if let Some(mut attempt) = t.acquire(now) {
                upstream.report(&members, &mut attempt, false, now);
            }
        }
        let breakers: Vec<&str> = upstream.status().iter().map(|t| t.breaker).collect();
        assert_eq!(breakers, ["open", "open", "closed", "closed"], "50% of four targets");
        assert!(members.targets.iter().all(|t| t.taken_out(now)), "ejection's own cap is 100%");
    }

    #[test]
    fn outlier_ejection_is_capped() {
        let mut spec = UpstreamSpec::new("u", ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()]);
        spec.outlier = Some(OutlierSpec { consecutive_failures: 1, ..OutlierSpec::default() });
        let upstream = Upstream::new(&spec, &Metrics::default());
        let now = Instant::now();
        let members = upstream.members.load_full();
        for t in &members.targets {
            let mut attempt = t.acquire(now).unwrap();
            upstream.report(&members, &mut attempt, false, now);
        }
        let ejected: Vec<bool> = members.targets.iter().map(|t| t.blocked(Instant::now()).is_some()).collect();
        assert_eq!(ejected, [true, false], "50% of two targets: one");
    }
}
