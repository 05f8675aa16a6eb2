//! Warm, configured instances of one plugin use (a plugin with one config).
//!
//! A fresh instance per call costs 20–30 µs; a reused one a few. So each
//! use keeps a pool: config is parsed once per instance (at creation), an
//! instance serves one call at a time, and one that failed in any way is
//! dropped, never reused. A burst grows the pool; the instances it no
//! longer needs are dropped once they have sat idle for a while
//! ([`super::idle`]).
//!
//! Every call passes the use's breaker first, and runs under a wall-clock
//! deadline as well as its CPU budget.
//!
//! A plugin whose imports rarely wait (everything but state kept in Redis)
//! is entered with a plain function call: no fiber, no future per call. Its
//! CPU budget then traps instead of yielding, so a looping call holds its
//! worker thread for at most its `timeout_ms`, and a call that has to wait
//! (a WASI sleep) waits on its thread until its wall deadline. A use whose
//! call had to wait moves to the asynchronous path for good: its warm
//! instances are replaced by ones whose waits yield the thread. A fetch
//! (`http-client`) is the exception, as it is rare in most plugins that
//! can make one (jwt-auth refreshing its keys): the thread is handed over
//! to the runtime while it waits, and only a use that fetches again within
//! [`FETCH_SPACING`] (a fan-out on every request) moves.

use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{Func, Resource, TypedFunc};
use wasmtime::error::Context as _;
use wasmtime::{Store, UpdateDeadline};

use super::Runtime;
use super::bindings::{Plugin, PluginPre, types};
use super::breaker::{BreakerSpec, BreakerStatus, Outcome, PluginBreaker, Transition};
use super::compile::Compiled;
use super::deadline::{self, WallDeadlinePassed};
use super::error::PluginError;
use super::instance::{InstanceState, PluginIdentity, RequestHandle, ResponseHandle};
use super::limits::{PluginLimits, RETAIN_MEMORY_BYTES};
use super::prefetch::{self, Needs, Prefetch};
use super::slots::{EngineSlots, Slot};
use crate::message::{MessageError, RequestState, ResponseState};
use crate::services::HostServices;

/// How long a call waits for a busy plugin's instance before giving up
/// with 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// A direct call that fetches hands its worker thread over (tens of
/// microseconds, where the asynchronous path adds about one per call): a
/// use whose fetches come closer together than this is called
/// asynchronously instead.
const FETCH_SPACING: Duration = Duration::from_secs(10);

/// The imports of a plugin that can wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Imports {
    /// `state`, whose store may have to wait (Redis).
    pub(crate) state: bool,
    /// `http-client`, which waits on the network.
    pub(crate) network: bool,
}

/// A plugin linked against the host API, ready to be instantiated for any
/// number of uses.
#[derive(Clone)]
pub(crate) struct Prepared {
    pre: PluginPre<InstanceState>,
    /// The same plugin linked for synchronous calls, when it can be.
    sync: Option<PluginPre<InstanceState>>,
    waits_on: Imports,
    compiled: Compiled,
}

impl Prepared {
    pub(super) fn new(
        pre: PluginPre<InstanceState>,
        sync: Option<PluginPre<InstanceState>>,
        waits_on: Imports,
        compiled: Compiled,
    ) -> Self {
        Self { pre, sync, waits_on, compiled }
    }

    /// Whether this plugin, with these services, may be entered directly
    /// on this thread's runtime.
    fn may_call_directly(&self, services: &HostServices) -> bool {
        self.sync.is_some()
            && (!self.waits_on.state || services.state.answers_at_once())
            && (!self.waits_on.network || super::wait::may_block_in_place())
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }
}

struct Warm {
    store: Store<InstanceState>,
    plugin: Plugin,
    /// The exports, entered directly, of an instance linked for
    /// synchronous calls.
    direct: Option<Direct>,
    /// The input of this instance's calls, its buffer kept between them.
    input: Vec<u8>,
    /// The engine-wide slot this instance occupies, freed with it.
    _slot: Slot,
}

/// The instances waiting for a call, boxed: a lease moves one out and
/// back on every call, and a box moves as one pointer.
struct Idle {
    #[expect(clippy::vec_box, reason = "a lease moves an instance out and back per call: a box moves as a pointer")]
    warm: Vec<Box<Warm>>,
    /// The fewest instances idle at once since the last trim: that many
    /// were not needed by the traffic in between.
    low_water: usize,
}

pub(crate) struct PluginPool {
    prepared: Prepared,
    identity: Arc<PluginIdentity>,
    services: Arc<HostServices>,
    config: String,
    limits: PluginLimits,
    needs: Needs,
    prefetch: Prefetch,
    idle: Mutex<Idle>,
    /// Calls in flight for this use, at most `limits.max_instances`.
    busy: Semaphore,
    engine_slots: Arc<EngineSlots>,
    breaker: PluginBreaker,
    /// Calls are entered directly (see the module docs); cleared for good
    /// once one had to wait.
    direct: AtomicBool,
    /// When a direct call last fetched.
    last_fetch: Mutex<Option<Instant>>,
}

impl PluginPool {
    /// Creates the pool and its first instance, whose configure step
    /// validates the config: a rejected config fails here, at load time.
    pub(crate) async fn new(
        runtime: &Runtime,
        prepared: Prepared,
        identity: Arc<PluginIdentity>,
        services: Arc<HostServices>,
        config: String,
        limits: PluginLimits,
        breaker: Option<BreakerSpec>,
    ) -> Result<Arc<Self>, PluginError> {
        let engine_slots = runtime.slots.clone();
        let direct = prepared.may_call_directly(&services);
        let (first, needs) =
            instantiate(&prepared, direct, &identity, &services, &config, &limits, &engine_slots).await?;
        let direct = first.direct.is_some();
        let (needs, prefetch) = prefetch::read_needs(needs)
            .map_err(|reason| PluginError::Config { plugin: identity.plugin.clone(), reason })?;
        let pool = Arc::new(Self {
            prepared,
            identity,
            services,
            config,
            limits,
            needs,
            prefetch,
            idle: Mutex::new(Idle { warm: vec![first], low_water: 1 }),
            busy: Semaphore::new(limits.max_instances.max(1) as usize),
            engine_slots,
            breaker: PluginBreaker::new(breaker),
            direct: AtomicBool::new(direct),
            last_fetch: Mutex::new(None),
        });
        runtime.pools.register(&pool);
        Ok(pool)
    }

    pub(crate) fn needs(&self) -> Needs {
        self.needs
    }

    /// Configured instances waiting for a call.
    pub(crate) fn idle_instances(&self) -> usize {
        self.idle.lock().unwrap().warm.len()
    }

    /// Calls in flight, each on an instance of its own.
    pub(crate) fn busy_instances(&self) -> usize {
        (self.limits.max_instances.max(1) as usize).saturating_sub(self.busy.available_permits())
    }

    /// How calls enter the plugin: `direct` (a function call) or `async`.
    pub(crate) fn call_path(&self) -> &'static str {
        match self.direct.load(Ordering::Relaxed) {
            true => "direct",
            false => "async",
        }
    }

    pub(crate) fn plugin(&self) -> &Arc<str> {
        &self.identity.plugin
    }

    pub(crate) fn breaker(&self) -> BreakerStatus {
        self.breaker.status()
    }

    /// Drops the idle instances no call needed since the last trim, keeping
    /// one warm; returns how many were dropped.
    pub(super) fn trim(&self) -> usize {
        let surplus = {
            let mut idle = self.idle.lock().unwrap();
            let surplus = idle.low_water.min(idle.warm.len().saturating_sub(1));
            // The least recently used are at the bottom of the stack.
            let surplus: Vec<Box<Warm>> = idle.warm.drain(..surplus).collect();
            idle.low_water = idle.warm.len();
            surplus
        };
        surplus.len()
    }

    /// `started`: the caller's clock read just before the call (see
    /// [`Self::within_deadline`]).
    pub(crate) async fn on_request(
        &self,
        req: Box<RequestState>,
        started: Instant,
    ) -> (Box<RequestState>, Result<types::Action, PluginError>) {
        let admission = match self.breaker.admit() {
            Ok(admission) => admission,
            Err(retry_after) => return (req, Err(self.quarantined(retry_after))),
        };
        let (req, result) = self.call_on_request(req, started).await;
        self.settle(admission, &result);
        (req, result)
    }

    async fn call_on_request(
        &self,
        req: Box<RequestState>,
        started: Instant,
    ) -> (Box<RequestState>, Result<types::Action, PluginError>) {
        let mut lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return (req, Err(e)),
        };
        let started = lease.started(started);
        let warm = lease.warm();
        begin_call(warm, &self.limits, &req, started);
        let input = self.prefetch.write(&mut warm.input, &req);
        let handle = warm.store.data_mut().lend_request(req);
        let borrow = Resource::new_borrow(handle.rep());
        let result = match &warm.direct {
            Some(direct) => direct.on_request(&mut warm.store, borrow, input),
            None => {
                let call = pin!(warm.plugin.call_on_request(&mut warm.store, borrow, input));
                self.within_deadline(started, call).await
            }
        };
        self.note_waits(warm);
        let data = warm.store.data_mut();
        let mut req = data.take_request(handle);
        // The writes the call returned land before its action is taken.
        let result = result.map(|(action, edits)| data.apply_to_request(&mut req, edits).map(|()| action));
        (req, lease.finish(result, self))
    }

    /// `started`: as for [`Self::on_request`].
    pub(crate) async fn on_response(
        &self,
        req: Box<RequestState>,
        resp: Box<ResponseState>,
        started: Instant,
    ) -> (Box<RequestState>, Box<ResponseState>, Result<(), PluginError>) {
        let admission = match self.breaker.admit() {
            Ok(admission) => admission,
            Err(retry_after) => return (req, resp, Err(self.quarantined(retry_after))),
        };
        let (req, resp, result) = self.call_on_response(req, resp, started).await;
        self.settle(admission, &result);
        (req, resp, result)
    }

    async fn call_on_response(
        &self,
        req: Box<RequestState>,
        resp: Box<ResponseState>,
        started: Instant,
    ) -> (Box<RequestState>, Box<ResponseState>, Result<(), PluginError>) {
        let mut lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return (req, resp, Err(e)),
        };
        let started = lease.started(started);
        let warm = lease.warm();
        begin_call(warm, &self.limits, &req, started);
        let input = self.prefetch.write(&mut warm.input, &req);
        let data = warm.store.data_mut();
        let (req_handle, resp_handle) = (data.lend_request(req), data.lend_response(resp));
        let borrows = (Resource::new_borrow(req_handle.rep()), Resource::new_borrow(resp_handle.rep()));
        let result = match &warm.direct {
            Some(direct) => direct.on_response(&mut warm.store, borrows, input),
            None => {
                let call = pin!(warm.plugin.call_on_response(&mut warm.store, borrows.0, borrows.1, input));
                self.within_deadline(started, call).await
            }
        };
        self.note_waits(warm);
        let data = warm.store.data_mut();
        let (mut resp, req) = (data.take_response(resp_handle), data.take_request(req_handle));
        let result = result.map(|edits| data.apply_to_response(&mut resp, edits));
        (req, resp, lease.finish(result, self))
    }

    /// Moves the use to the asynchronous path once a direct call waited,
    /// or fetched soon after another had.
    fn note_waits(&self, warm: &Warm) {
        let wait = &warm.store.data().wait;
        if warm.direct.is_none() || !(wait.waited || wait.fetched) {
            return;
        }
        if wait.waited {
            return self.go_async("plugin waited in a call");
        }
        let now = Instant::now();
        let last = self.last_fetch.lock().unwrap().replace(now);
        if last.is_some_and(|last| now.saturating_duration_since(last) < FETCH_SPACING) {
            self.go_async("plugin fetches often");
        }
    }

    fn go_async(&self, why: &str) {
        if self.direct.swap(false, Ordering::Relaxed) {
            let (plugin, route) = (&*self.identity.plugin, &*self.identity.route);
            tracing::info!(plugin, route, "{why}: its calls now run asynchronously");
        }
    }

    /// A call into the guest, cut at the use's wall-clock limit from
    /// `started`. The unwound instance is then dropped like any that failed.
    /// `started` is the pipeline's read that times the call (and ended the
    /// one before it), so a call that waits for nothing reads no clock here.
    async fn within_deadline<T>(
        &self,
        started: Instant,
        call: Pin<&mut impl Future<Output = wasmtime::Result<T>>>,
    ) -> wasmtime::Result<T> {
        let within = deadline::within(started, self.limits.wall_timeout, call).await;
        within.unwrap_or_else(|| Err(WallDeadlinePassed.into()))
    }

    /// Tells the breaker how the call went, and the logs when that opened
    /// or closed it.
    fn settle<T>(&self, admission: super::breaker::Admission<'_>, result: &Result<T, PluginError>) {
        let outcome = match result {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_sandbox_failure() => Outcome::Failure,
            Err(_) => Outcome::Unknown,
        };
        let (plugin, route) = (&*self.identity.plugin, &*self.identity.route);
        match admission.settle(outcome) {
            Some(Transition::Opened) => tracing::warn!(
                plugin,
                route,
                error = %result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                "plugin quarantined after repeated failures: its calls are answered by the route's failure policy"
            ),
            Some(Transition::Closed) => {
                tracing::info!(plugin, route, "plugin out of quarantine: its probe call succeeded")
            }
            None => {}
        }
    }

    fn quarantined(&self, retry_after: Duration) -> PluginError {
        PluginError::Quarantined { plugin: self.identity.plugin.clone(), retry_after }
    }

    /// Waits for a free call slot, then takes a warm instance or makes one.
    async fn lease(&self) -> Result<Lease<'_>, PluginError> {
        // A free slot is the common case: take it without arming a timer.
        let (permit, mut waited) = match self.busy.try_acquire() {
            Ok(permit) => (permit, false),
            Err(_) => {
                let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.busy.acquire())
                    .await
                    .map_err(|_| self.overloaded())?
                    .expect("the pool's semaphore is never closed");
                (permit, true)
            }
        };
        let direct = self.direct.load(Ordering::Relaxed);
        let idle = {
            let mut idle = self.idle.lock().unwrap();
            let warm = idle.warm.pop();
            idle.low_water = idle.low_water.min(idle.warm.len());
            warm
        };
        // A direct instance of a use that moved to the asynchronous path
        // is replaced (the others follow as they are leased).
        let warm = match idle {
            Some(warm) if warm.direct.is_some() <= direct => warm,
            _ => {
                waited = true;
                // Boxed: a pool grows rarely, and every call's future
                // would otherwise carry instantiation's.
                let (warm, _) = Box::pin(instantiate(
                    &self.prepared,
                    direct,
                    &self.identity,
                    &self.services,
                    &self.config,
                    &self.limits,
                    &self.engine_slots,
                ))
                .await?;
                if direct && warm.direct.is_none() {
                    self.go_async("plugin waited while configuring");
                }
                warm
            }
        };
        Ok(Lease { warm: Some(warm), waited, _permit: permit })
    }

    fn overloaded(&self) -> PluginError {
        PluginError::Overloaded { plugin: self.identity.plugin.clone() }
    }
}

/// An instance on loan to one call. Dropped without `finish` (the request
/// was cancelled mid-call), the instance is discarded with it.
struct Lease<'a> {
    warm: Option<Box<Warm>>,
    /// The call waited for its slot or its instance to be made.
    waited: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// When the call's wall-clock deadline starts: at the caller's
    /// `started`, or now when the lease had to wait, whose time (up to the
    /// queue timeout, or an instance's creation under its own deadline)
    /// is not the plugin's to spend.
    fn started(&self, started: Instant) -> Instant {
        if self.waited { Instant::now() } else { started }
    }

    fn warm(&mut self) -> &mut Warm {
        self.warm.as_mut().expect("lease holds an instance until finished")
    }

    /// Ends the call: `result` is the call's (a trap, a timeout…) wrapping
    /// the host's verdict on the writes it returned. An instance whose call
    /// failed is dropped; one whose writes were refused did nothing wrong
    /// in the sandbox and goes back to the pool.
    fn finish<T>(
        mut self,
        result: wasmtime::Result<Result<T, MessageError>>,
        pool: &PluginPool,
    ) -> Result<T, PluginError> {
        let mut warm = self.warm.take().expect("lease finished once");
        warm.store.data_mut().current = None;
        match result {
            Ok(outcome) => {
                if warm.store.data().limiter.peak() <= RETAIN_MEMORY_BYTES {
                    pool.idle.lock().unwrap().warm.push(warm);
                }
                outcome.map_err(|e| PluginError::Write { plugin: pool.identity.plugin.clone(), reason: e.to_string() })
            }
            // A trapped instance cannot be entered again; drop it.
            Err(e) => Err(PluginError::from_call(&pool.identity.plugin, &pool.limits, e)
                .after_logging(warm.store.data_mut().take_logged_error())),
        }
    }
}

fn begin_call(warm: &mut Warm, limits: &PluginLimits, req: &RequestState, started: Instant) {
    let data = warm.store.data_mut();
    data.ticks_left = limits.ticks();
    data.current = Some(req.info.clone());
    // An asynchronous call's deadline is its future's (`within_deadline`).
    if warm.direct.is_some() {
        data.wait.start(started, limits.wall_timeout);
    }
    warm.store.set_epoch_deadline(1);
}

type OnRequest<'a> = TypedFunc<(Resource<RequestHandle>, Option<&'a [u8]>), ((types::Action, Vec<u8>),)>;
type OnResponse<'a> = TypedFunc<(Resource<RequestHandle>, Resource<ResponseHandle>, Option<&'a [u8]>), (Vec<u8>,)>;

/// The call exports of an instance, entered with a plain function call.
struct Direct {
    on_request: Func,
    on_response: Func,
}

impl Direct {
    /// Looks the exports up and checks their types once per instance.
    fn new(store: &mut Store<InstanceState>, instance: &wasmtime::component::Instance) -> wasmtime::Result<Self> {
        let mut export = |name| instance.get_func(&mut *store, name).with_context(|| format!("no export `{name}`"));
        let (on_request, on_response) = (export("on-request")?, export("on-response")?);
        on_request.typed::<(Resource<RequestHandle>, Option<&[u8]>), ((types::Action, Vec<u8>),)>(&*store)?;
        on_response.typed::<(Resource<RequestHandle>, Resource<ResponseHandle>, Option<&[u8]>), (Vec<u8>,)>(&*store)?;
        Ok(Self { on_request, on_response })
    }

    fn on_request(
        &self,
        store: &mut Store<InstanceState>,
        req: Resource<RequestHandle>,
        input: Option<&[u8]>,
    ) -> wasmtime::Result<(types::Action, Vec<u8>)> {
        // SAFETY: `new` checked the export against exactly these types.
        let func = unsafe { OnRequest::new_unchecked(self.on_request) };
        Ok(func.call(store, (req, input))?.0)
    }

    fn on_response(
        &self,
        store: &mut Store<InstanceState>,
        (req, resp): (Resource<RequestHandle>, Resource<ResponseHandle>),
        input: Option<&[u8]>,
    ) -> wasmtime::Result<Vec<u8>> {
        // SAFETY: as in `on_request`.
        let func = unsafe { OnResponse::new_unchecked(self.on_response) };
        Ok(func.call(store, (req, resp, input))?.0)
    }
}

/// Creates and configures an instance, within the plugin's configure
/// deadline: on the request path (a pool growing) as at load time. A
/// direct instance whose configure step had to wait
/// ([`super::wait::MustWait`]) is made again, asynchronously.
async fn instantiate(
    prepared: &Prepared,
    direct: bool,
    identity: &Arc<PluginIdentity>,
    services: &Arc<HostServices>,
    config: &str,
    limits: &PluginLimits,
    engine_slots: &Arc<EngineSlots>,
) -> Result<(Box<Warm>, types::Needs), PluginError> {
    let mut try_direct = direct;
    loop {
        let slot = engine_slots.take().ok_or_else(|| PluginError::Overloaded { plugin: identity.plugin.clone() })?;
        let (pre, direct) = match (&prepared.sync, try_direct) {
            (Some(sync), true) => (sync, true),
            _ => (&prepared.pre, false),
        };
        let engine = pre.engine();
        let state = InstanceState::new(identity.clone(), services.clone(), limits.memory_bytes);
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // Each tick of wasm execution costs one tick of budget. Between ticks
        // an asynchronous call yields so a busy plugin shares its worker
        // thread; a direct one cannot, and ends at its wall deadline here.
        // Configure steps are entered asynchronously either way (a reload that
        // passes its deadline drops them), and a direct instance's imports fail
        // a wait there at once rather than block.
        store.epoch_deadline_callback(move |mut ctx| {
            let data = ctx.data_mut();
            data.ticks_left = data.ticks_left.saturating_sub(1);
            Ok(match (data.ticks_left, direct) {
                (0, _) => UpdateDeadline::Interrupt,
                // A configure step runs asynchronously on either path.
                (_, false) => UpdateDeadline::Yield(1),
                (_, true) if data.wait.configuring() => UpdateDeadline::Yield(1),
                (_, true) if data.wait.passed() => return Err(WallDeadlinePassed.into()),
                (_, true) => UpdateDeadline::Continue(1),
            })
        });
        store.data_mut().ticks_left = limits.ticks();
        store.data_mut().wait.start_configure();
        store.set_epoch_deadline(1);

        let fail = |e| PluginError::from_call(&identity.plugin, limits, e);
        let configure = async {
            let instance = pre.instance_pre().instantiate_async(&mut store).await.map_err(fail)?;
            let plugin = Plugin::new(&mut store, &instance).map_err(fail)?;
            let direct = match direct {
                true => Some(Direct::new(&mut store, &instance).map_err(fail)?),
                false => None,
            };
            let needs = plugin
                .call_configure(&mut store, config)
                .await
                .map_err(fail)?
                .map_err(|reason| PluginError::Config { plugin: identity.plugin.clone(), reason })?;
            Ok((plugin, direct, needs))
        };
        let made =
            deadline::within(Instant::now(), limits.configure_timeout, pin!(configure)).await.unwrap_or_else(|| {
                Err(PluginError::ConfigureTimeout { plugin: identity.plugin.clone(), limit: limits.configure_timeout })
            });
        if direct && store.data().wait.waited {
            try_direct = false;
            continue;
        }
        let (plugin, direct, needs) = made?;
        return Ok((Box::new(Warm { store, plugin, direct, input: Vec::new(), _slot: slot }), needs));
    }
}
