//! Warm, configured instances of one plugin use (a plugin with one config).
//!
//! A fresh instance per call costs 20–30 µs; a reused one a few. So each
//! use keeps a pool: config is parsed once per instance (at creation), an
//! instance serves one call at a time, and one that failed in any way is
//! dropped, never reused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Resource;
use wasmtime::{Store, UpdateDeadline};

use super::Runtime;
use super::bindings::{Plugin, PluginPre, types};
use super::compile::Compiled;
use super::error::PluginError;
use super::host_impl::{InstanceState, PluginIdentity};
use super::limits::{PluginLimits, RETAIN_MEMORY_BYTES};
use super::prefetch::{self, Needs, Prefetch};
use crate::pipeline::{ExchangeError, RequestState, ResponseState};
use crate::services::HostServices;

/// How long a call waits for a busy plugin's instance before giving up
/// with 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// A plugin linked against the host API, ready to be instantiated for any
/// number of uses.
#[derive(Clone)]
pub struct Prepared {
    pre: PluginPre<InstanceState>,
    compiled: Compiled,
}

impl Prepared {
    pub(super) fn new(pre: PluginPre<InstanceState>, compiled: Compiled) -> Self {
        Self { pre, compiled }
    }

    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }
}

struct Warm {
    store: Store<InstanceState>,
    plugin: Plugin,
    /// The input of this instance's calls, its buffer kept between them.
    input: Vec<u8>,
    /// The engine-wide slot this instance occupies, freed with it.
    _slot: OwnedSemaphorePermit,
}

pub struct PluginPool {
    prepared: Prepared,
    identity: Arc<PluginIdentity>,
    services: Arc<HostServices>,
    config: String,
    limits: PluginLimits,
    needs: Needs,
    prefetch: Prefetch,
    idle: Mutex<Vec<Warm>>,
    /// Calls in flight for this use, at most `limits.max_instances`.
    busy: Semaphore,
    engine_slots: Arc<Semaphore>,
}

impl PluginPool {
    /// Creates the pool and its first instance, whose configure step
    /// validates the config: a rejected config fails here, at load time.
    pub async fn new(
        runtime: &Runtime,
        prepared: Prepared,
        identity: Arc<PluginIdentity>,
        services: Arc<HostServices>,
        config: String,
        limits: PluginLimits,
    ) -> Result<Arc<Self>, PluginError> {
        let engine_slots = runtime.slots.clone();
        let (first, needs) = instantiate(&prepared, &identity, &services, &config, &limits, &engine_slots).await?;
        let (needs, prefetch) = prefetch::read_needs(needs)
            .map_err(|reason| PluginError::Config { plugin: identity.plugin.clone(), reason })?;
        Ok(Arc::new(Self {
            prepared,
            identity,
            services,
            config,
            limits,
            needs,
            prefetch,
            idle: Mutex::new(vec![first]),
            busy: Semaphore::new(limits.max_instances.max(1) as usize),
            engine_slots,
        }))
    }

    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Configured instances waiting for a call.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    pub fn plugin(&self) -> &Arc<str> {
        &self.identity.plugin
    }

    pub fn compiled(&self) -> &Compiled {
        self.prepared.compiled()
    }

    pub async fn on_request(&self, req: Box<RequestState>) -> (Box<RequestState>, Result<types::Action, PluginError>) {
        let mut lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return (req, Err(e)),
        };
        let warm = lease.warm();
        begin_call(&mut warm.store, &self.limits, &req);
        let input = self.prefetch.write(&mut warm.input, &req);
        let handle = warm.store.data_mut().lend_request(req);
        let result = warm.plugin.call_on_request(&mut warm.store, Resource::new_borrow(handle.rep()), input).await;
        let data = warm.store.data_mut();
        let mut req = data.take_request(handle);
        // The writes the call returned land before its action is taken.
        let result = result.map(|(action, edits)| data.apply_to_request(&mut req, edits).map(|()| action));
        (req, lease.finish(result, self))
    }

    pub async fn on_response(
        &self,
        req: Box<RequestState>,
        resp: Box<ResponseState>,
    ) -> (Box<RequestState>, Box<ResponseState>, Result<(), PluginError>) {
        let mut lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return (req, resp, Err(e)),
        };
        let warm = lease.warm();
        begin_call(&mut warm.store, &self.limits, &req);
        let input = self.prefetch.write(&mut warm.input, &req);
        let data = warm.store.data_mut();
        let (req_handle, resp_handle) = (data.lend_request(req), data.lend_response(resp));
        let result = warm
            .plugin
            .call_on_response(
                &mut warm.store,
                Resource::new_borrow(req_handle.rep()),
                Resource::new_borrow(resp_handle.rep()),
                input,
            )
            .await;
        let data = warm.store.data_mut();
        let (mut resp, req) = (data.take_response(resp_handle), data.take_request(req_handle));
        let result = result.map(|edits| data.apply_to_response(&mut resp, edits));
        (req, resp, lease.finish(result, self))
    }

    /// Waits for a free call slot, then takes a warm instance or makes one.
    async fn lease(&self) -> Result<Lease<'_>, PluginError> {
        // A free slot is the common case: take it without arming a timer.
        let permit = match self.busy.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(QUEUE_TIMEOUT, self.busy.acquire())
                .await
                .map_err(|_| self.overloaded())?
                .expect("the pool's semaphore is never closed"),
        };
        let idle = self.idle.lock().unwrap().pop();
        let warm = match idle {
            Some(warm) => warm,
            None => {
                let (warm, _) = instantiate(
                    &self.prepared,
                    &self.identity,
                    &self.services,
                    &self.config,
                    &self.limits,
                    &self.engine_slots,
                )
                .await?;
                warm
            }
        };
        Ok(Lease { warm: Some(warm), _permit: permit })
    }

    fn overloaded(&self) -> PluginError {
        PluginError::Overloaded { plugin: self.identity.plugin.clone() }
    }
}

/// An instance on loan to one call. Dropped without `finish` (the request
/// was cancelled mid-call), the instance is discarded with it.
struct Lease<'a> {
    warm: Option<Warm>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn warm(&mut self) -> &mut Warm {
        self.warm.as_mut().expect("lease holds an instance until finished")
    }

    /// Ends the call: `result` is the call's (a trap, a timeout…) wrapping
    /// the host's verdict on the writes it returned. An instance whose call
    /// failed is dropped; one whose writes were refused did nothing wrong
    /// in the sandbox and goes back to the pool.
    fn finish<T>(
        mut self,
        result: wasmtime::Result<Result<T, ExchangeError>>,
        pool: &PluginPool,
    ) -> Result<T, PluginError> {
        let mut warm = self.warm.take().expect("lease finished once");
        warm.store.data_mut().current = None;
        match result {
            Ok(outcome) => {
                if warm.store.data().limiter.peak() <= RETAIN_MEMORY_BYTES {
                    pool.idle.lock().unwrap().push(warm);
                }
                outcome.map_err(|e| PluginError::Write { plugin: pool.identity.plugin.clone(), reason: e.to_string() })
            }
            // A trapped instance cannot be entered again; drop it.
            Err(e) => Err(PluginError::from_call(&pool.identity.plugin, pool.limits.timeout, e)
                .after_logging(warm.store.data_mut().take_logged_error())),
        }
    }
}

fn begin_call(store: &mut Store<InstanceState>, limits: &PluginLimits, req: &RequestState) {
    let data = store.data_mut();
    data.ticks_left = limits.ticks();
    data.current = Some(req.info.clone());
    store.set_epoch_deadline(1);
}

async fn instantiate(
    prepared: &Prepared,
    identity: &Arc<PluginIdentity>,
    services: &Arc<HostServices>,
    config: &str,
    limits: &PluginLimits,
    engine_slots: &Arc<Semaphore>,
) -> Result<(Warm, types::Needs), PluginError> {
    let slot = engine_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| PluginError::Overloaded { plugin: identity.plugin.clone() })?;
    let engine = prepared.pre.engine();
    let state = InstanceState::new(identity.clone(), services.clone(), limits.memory_bytes);
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Each tick of wasm execution costs one tick of budget; between ticks the
    // guest yields so a busy plugin shares its worker thread.
    store.epoch_deadline_callback(|mut ctx| {
        let data = ctx.data_mut();
        data.ticks_left = data.ticks_left.saturating_sub(1);
        Ok(if data.ticks_left == 0 { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
    });
    store.data_mut().ticks_left = limits.ticks();
    store.set_epoch_deadline(1);

    let fail = |e| PluginError::from_call(&identity.plugin, limits.timeout, e);
    let plugin = prepared.pre.instantiate_async(&mut store).await.map_err(fail)?;
    let needs = plugin
        .call_configure(&mut store, config)
        .await
        .map_err(fail)?
        .map_err(|reason| PluginError::Config { plugin: identity.plugin.clone(), reason })?;
    Ok((Warm { store, plugin, input: Vec::new(), _slot: slot }, needs))
}
