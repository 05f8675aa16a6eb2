//! What a plugin instance's store holds: who the plugin is, the services
//! its imports reach, and the request and response lent to the call in
//! progress. The imports themselves are in `host/`, one file per
//! interface of the contract; the edits they make are methods of the
//! message states (`message::edit`).

use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::MemoryLimiter;
use super::wait::CallWait;
use crate::message::bounds::Bounds;
use crate::message::{Edit, Edits, MessageError, NameCache, RequestInfo, RequestState, ResponseState};
use crate::services::{HostServices, SeriesHandles};

/// Who a plugin instance is, for logs, metrics and state key namespaces.
#[derive(Debug)]
pub(crate) struct PluginIdentity {
    pub plugin: Arc<str>,
    pub route: Arc<str>,
}

/// What the guest's `request` handle stands for: the request itself is
/// lent to the call in [`InstanceState`], not put in the resource table,
/// which would box it and copy it in and out at every call.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct RequestHandle;

/// As [`RequestHandle`], for `response`.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct ResponseHandle;

/// The request and response lent to the current call.
#[derive(Default)]
struct Lent {
    request: Loan<RequestState>,
    response: Loan<ResponseState>,
}

/// One value lent to the current call, with the handle it was lent under.
struct Loan<T>(Option<(u32, Box<T>)>);

impl<T> Default for Loan<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Loan<T> {
    /// Lends `value` under a new handle pointing at `marker`.
    fn lend<M: Send + 'static>(&mut self, table: &mut ResourceTable, marker: M, value: Box<T>) -> Resource<M> {
        let handle = table.push(marker).expect("a marker always finds room in the resource table");
        self.0 = Some((handle.rep(), value));
        handle
    }

    /// Takes the value back after the call.
    fn take<M: 'static>(&mut self, table: &mut ResourceTable, handle: Resource<M>) -> Box<T> {
        let _ = table.delete(handle);
        self.0.take().expect("a value was lent to this call").1
    }

    /// The lent value, if `r` is the handle it was lent under.
    fn get<M: 'static>(&mut self, r: &Resource<M>, what: &str) -> wasmtime::Result<&mut T> {
        match &mut self.0 {
            Some((rep, value)) if *rep == r.rep() => Ok(value),
            _ => Err(wasmtime::Error::msg(format!("the {what} handle is not the current call's"))),
        }
    }
}

/// The data of one plugin instance's store.
pub(super) struct InstanceState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// Epoch ticks of wasm execution left in the current call.
    pub(super) ticks_left: u64,
    pub(super) identity: Arc<PluginIdentity>,
    pub(super) services: Arc<HostServices>,
    /// The request being served, so logs carry its id.
    pub(super) current: Option<Arc<RequestInfo>>,
    /// Prefix of this plugin's state keys.
    pub(super) key_prefix: String,
    names: NameCache,
    lent: Lent,
    /// What this instance's writes are held to.
    pub(super) bounds: Bounds,
    /// The last error the plugin logged in the current call: a panicking
    /// plugin built with the SDK logs its panic message just before it
    /// traps, and the trap says nothing of it.
    pub(super) logged_error: Option<String>,
    /// The plugin-defined metric series this instance records into.
    pub(super) series: SeriesHandles,
    /// The deadline of a call entered synchronously, for the waits its
    /// imports make on this thread.
    pub(super) wait: CallWait,
}

impl InstanceState {
    pub(super) fn new(identity: Arc<PluginIdentity>, services: Arc<HostServices>, memory_bytes: usize) -> Self {
        let key_prefix = crate::state::namespace(&identity.plugin);
        let bounds = services.bounds;
        Self {
            // No preopens, no environment, no sockets: a plugin reaches the
            // world only through the gateway's own imports.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            ticks_left: 0,
            identity,
            services,
            current: None,
            key_prefix,
            names: NameCache::default(),
            lent: Lent::default(),
            bounds,
            logged_error: None,
            series: SeriesHandles::default(),
            wait: CallWait::default(),
        }
    }

    /// Runs an import's `work` to its end on this thread, within the
    /// current call's deadline (the synchronous call path); `network`:
    /// `work` waits on sockets, and the thread is handed over while it
    /// does ([`CallWait::block`]).
    pub(super) fn here<R>(&mut self, network: bool, work: impl AsyncFnOnce(&mut Self) -> R) -> wasmtime::Result<R> {
        let mut wait = self.wait;
        let out = match network {
            false => wait.here(work(self)),
            true => wait.block(work(self)),
        };
        self.wait = wait;
        out
    }

    /// Lends the request to the call about to start.
    pub(super) fn lend_request(&mut self, req: Box<RequestState>) -> Resource<RequestHandle> {
        self.logged_error = None;
        self.lent.request.lend(&mut self.table, RequestHandle, req)
    }

    /// The last error the plugin logged in the call that just ended.
    pub(super) fn take_logged_error(&mut self) -> Option<String> {
        self.logged_error.take()
    }

    /// Takes the request back after the call.
    pub(super) fn take_request(&mut self, handle: Resource<RequestHandle>) -> Box<RequestState> {
        self.lent.request.take(&mut self.table, handle)
    }

    pub(super) fn lend_response(&mut self, resp: Box<ResponseState>) -> Resource<ResponseHandle> {
        self.lent.response.lend(&mut self.table, ResponseHandle, resp)
    }

    pub(super) fn take_response(&mut self, handle: Resource<ResponseHandle>) -> Box<ResponseState> {
        self.lent.response.take(&mut self.table, handle)
    }

    fn lent_request(&mut self, r: &Resource<RequestHandle>) -> wasmtime::Result<&mut RequestState> {
        self.lent.request.get(r, "request")
    }

    pub(super) fn request(&mut self, r: &Resource<RequestHandle>) -> wasmtime::Result<&RequestState> {
        Ok(self.lent_request(r)?)
    }

    pub(super) fn request_mut(&mut self, r: &Resource<RequestHandle>) -> wasmtime::Result<&mut RequestState> {
        Ok(self.lent_request(r)?.writable()?)
    }

    pub(super) fn response(&mut self, r: &Resource<ResponseHandle>) -> wasmtime::Result<&ResponseState> {
        Ok(self.response_mut(r)?)
    }

    pub(super) fn response_mut(&mut self, r: &Resource<ResponseHandle>) -> wasmtime::Result<&mut ResponseState> {
        self.lent.response.get(r, "response")
    }

    /// Edits of the lent request: one from an accessor, or an `apply`.
    pub(super) fn edit_request(&mut self, r: &Resource<RequestHandle>, edits: Edits) -> wasmtime::Result<()> {
        let req = self.lent.request.get(r, "request")?;
        Ok(req.apply(&mut self.names, &self.bounds, edits)?)
    }

    /// Header edits of the lent response, as [`Self::edit_request`].
    pub(super) fn edit_response(&mut self, r: &Resource<ResponseHandle>, edits: Edits) -> wasmtime::Result<()> {
        let resp = self.lent.response.get(r, "response")?;
        Ok(resp.apply(&mut self.names, &self.bounds, edits)?)
    }

    /// The writes a call returned, applied to the request it was lent.
    pub(super) fn apply_to_request(&mut self, req: &mut RequestState, edits: Vec<u8>) -> Result<(), MessageError> {
        req.apply(&mut self.names, &self.bounds, Edits::Batch(edits))
    }

    /// The header edits an on-response call returned.
    pub(super) fn apply_to_response(&mut self, resp: &mut ResponseState, edits: Vec<u8>) -> Result<(), MessageError> {
        resp.apply(&mut self.names, &self.bounds, Edits::Batch(edits))
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
