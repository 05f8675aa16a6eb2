//! What a plugin instance's store holds, and the host side of every import.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use wasmgate_sdk::edits::Op;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{clock, http_client, log, metrics, state, types};
use super::limits::MemoryLimiter;
use crate::pipeline::bounds::{self, Bounds, FieldWriter, MAX_LOG_BYTES, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES};
use crate::pipeline::{EditKind, ExchangeError, Headers, NameCache, RequestInfo, RequestState, ResponseState};
use crate::services::HostServices;

/// Who a plugin instance is, for logs, metrics and state key namespaces.
#[derive(Debug)]
pub struct PluginIdentity {
    pub plugin: Arc<str>,
    pub route: Arc<str>,
}

/// What the guest's `request` handle stands for: the request itself is
/// lent to the call in [`InstanceState`], not put in the resource table,
/// which would box it and copy it in and out at every call.
pub struct RequestHandle;

/// As [`RequestHandle`], for `response`.
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
pub struct InstanceState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// Epoch ticks of wasm execution left in the current call.
    pub(super) ticks_left: u64,
    pub(super) identity: Arc<PluginIdentity>,
    services: Arc<HostServices>,
    /// The request being served, so logs carry its id.
    pub(super) current: Option<Arc<RequestInfo>>,
    /// Prefix of this plugin's state keys.
    key_prefix: String,
    names: NameCache,
    lent: Lent,
    /// What this instance's writes are held to.
    bounds: Bounds,
    /// The last error the plugin logged in the current call: a panicking
    /// plugin built with the SDK logs its panic message just before it
    /// traps, and the trap says nothing of it.
    logged_error: Option<String>,
}

impl InstanceState {
    pub fn new(identity: Arc<PluginIdentity>, services: Arc<HostServices>, memory_bytes: usize) -> Self {
        let key_prefix = format!("{}:", identity.plugin);
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
        }
    }

    /// The plugin's key in the shared store, when within the bound.
    fn key(&self, key: &str) -> Result<String, String> {
        if key.len() > MAX_STATE_KEY_BYTES {
            return Err(format!("a state key takes at most {MAX_STATE_KEY_BYTES} bytes; this one has {}", key.len()));
        }
        let mut k = String::with_capacity(self.key_prefix.len() + key.len());
        k.push_str(&self.key_prefix);
        k.push_str(key);
        Ok(k)
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

    fn request(&mut self, r: &Resource<RequestHandle>) -> wasmtime::Result<&RequestState> {
        Ok(self.lent_request(r)?)
    }

    fn request_mut(&mut self, r: &Resource<RequestHandle>) -> wasmtime::Result<&mut RequestState> {
        Ok(self.lent_request(r)?.writable()?)
    }

    fn response(&mut self, r: &Resource<ResponseHandle>) -> wasmtime::Result<&ResponseState> {
        Ok(self.response_mut(r)?)
    }

    fn response_mut(&mut self, r: &Resource<ResponseHandle>) -> wasmtime::Result<&mut ResponseState> {
        self.lent.response.get(r, "response")
    }

    /// One edit of the lent request, sent alone.
    fn request_edit(&mut self, r: &Resource<RequestHandle>, op: Op, name: &[u8], value: Bytes) -> wasmtime::Result<()> {
        let req = self.lent.request.get(r, "request")?;
        let mut writer = self.bounds.writer();
        edit_request(&mut self.names, &self.bounds, &mut writer, req, op, name, value)?;
        Ok(writer.finish(&req.head.headers)?)
    }

    /// One header edit of the lent response, sent alone.
    fn response_edit(
        &mut self,
        r: &Resource<ResponseHandle>,
        op: Op,
        name: &[u8],
        value: Bytes,
    ) -> wasmtime::Result<()> {
        let resp = self.lent.response.get(r, "response")?;
        let mut writer = self.bounds.writer();
        edit_response(&mut self.names, &mut writer, resp, op, name, value)?;
        Ok(writer.finish(&resp.head.headers)?)
    }

    /// The writes a call returned, applied to the request it was lent.
    pub(super) fn apply_to_request(&mut self, req: &mut RequestState, edits: Vec<u8>) -> Result<(), ExchangeError> {
        request_edits(&mut self.names, &self.bounds, req, edits)
    }

    /// The header edits an on-response call returned.
    pub(super) fn apply_to_response(&mut self, resp: &mut ResponseState, edits: Vec<u8>) -> Result<(), ExchangeError> {
        response_edits(&mut self.names, &self.bounds, resp, edits)
    }
}

/// A batch of edits to a request, in order; its headers are measured once,
/// at the end.
fn request_edits(
    names: &mut NameCache,
    bounds: &Bounds,
    req: &mut RequestState,
    edits: Vec<u8>,
) -> Result<(), ExchangeError> {
    let mut writer = bounds.writer();
    each_edit(edits, bounds, |op, name, value| edit_request(names, bounds, &mut writer, req, op, name, value))?;
    writer.finish(&req.head.headers)
}

/// A batch of header edits to a response, as [`request_edits`].
fn response_edits(
    names: &mut NameCache,
    bounds: &Bounds,
    resp: &mut ResponseState,
    edits: Vec<u8>,
) -> Result<(), ExchangeError> {
    let mut writer = bounds.writer();
    each_edit(edits, bounds, |op, name, value| edit_response(names, &mut writer, resp, op, name, value))?;
    writer.finish(&resp.head.headers)
}

/// One edit of a request. The value is shared bytes, so a header value is
/// never copied again.
fn edit_request(
    names: &mut NameCache,
    bounds: &Bounds,
    writer: &mut FieldWriter<'_>,
    req: &mut RequestState,
    op: Op,
    name: &[u8],
    value: Bytes,
) -> Result<(), ExchangeError> {
    match op {
        // Vars stay writable in the response phase: they are scratch space.
        Op::SetVar => {
            let name = String::from_utf8(name.to_vec())
                .map_err(|e| ExchangeError::VarName(bounds::shown(&String::from_utf8_lossy(e.as_bytes()))))?;
            let value = String::from_utf8(value.to_vec()).map_err(|_| ExchangeError::VarValue(bounds::shown(&name)))?;
            req.set_var(name, value)?;
        }
        // Removing a name that cannot exist is nothing to fail over.
        Op::RemoveHeader => {
            let name = names.name(name).ok();
            let req = req.writable()?;
            if let Some(name) = name {
                writer.remove(&mut req.head.headers, &name);
            }
        }
        Op::SetHeader | Op::AppendHeader | Op::SetResponseHeader | Op::AppendResponseHeader => {
            let (name, value) = names.field(name, value)?;
            let req = req.writable()?;
            match op {
                Op::SetHeader => writer.set(&mut req.head.headers, name, value)?,
                Op::AppendHeader => writer.append(&mut req.head.headers, name, value)?,
                Op::SetResponseHeader => req.response_edits.push(EditKind::Set, name, value, bounds)?,
                _ => req.response_edits.push(EditKind::Append, name, value, bounds)?,
            }
        }
    }
    Ok(())
}

/// One header edit of a response.
fn edit_response(
    names: &mut NameCache,
    writer: &mut FieldWriter<'_>,
    resp: &mut ResponseState,
    op: Op,
    name: &[u8],
    value: Bytes,
) -> Result<(), ExchangeError> {
    match op {
        Op::RemoveHeader => {
            if let Ok(name) = names.name(name) {
                writer.remove(&mut resp.head.headers, &name);
            }
        }
        Op::SetHeader => {
            let (name, value) = names.field(name, value)?;
            writer.set(&mut resp.head.headers, name, value)?;
        }
        Op::AppendHeader => {
            let (name, value) = names.field(name, value)?;
            writer.append(&mut resp.head.headers, name, value)?;
        }
        Op::SetResponseHeader | Op::AppendResponseHeader | Op::SetVar => return Err(ExchangeError::NotResponseEdit),
    }
    Ok(())
}

/// Runs `f` on each edit of an `apply` buffer, in order: its name as the
/// bytes sent (checked where it is used: as a header name or a var name),
/// its value a slice of the one shared buffer.
fn each_edit(
    edits: Vec<u8>,
    bounds: &Bounds,
    mut f: impl FnMut(Op, &[u8], Bytes) -> Result<(), ExchangeError>,
) -> Result<(), ExchangeError> {
    if edits.is_empty() {
        return Ok(());
    }
    bounds.check_edits(edits.len())?;
    let shared = Bytes::from(edits);
    for edit in wasmgate_sdk::edits::decode(&shared) {
        let edit = edit.map_err(|e| ExchangeError::Edits(e.0))?;
        f(edit.op, edit.name, shared.slice(edit.value_at..edit.value_at + edit.value.len()))?;
    }
    Ok(())
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for InstanceState {}

impl types::HostRequest for InstanceState {
    fn method(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.head.method.as_str().to_owned())
    }

    fn set_method(&mut self, r: Resource<RequestHandle>, method: String) -> wasmtime::Result<()> {
        let parsed = bounds::method(&method)?;
        self.request_mut(&r)?.head.method = parsed;
        Ok(())
    }

    fn path(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.path().to_owned())
    }

    fn set_path(&mut self, r: Resource<RequestHandle>, path: String) -> wasmtime::Result<()> {
        let bounds = self.bounds;
        let req = self.request_mut(&r)?;
        let query = req.query().map(str::to_owned);
        req.set_path_and_query(&path, query.as_deref(), &bounds)?;
        Ok(())
    }

    fn query(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.query().map(str::to_owned))
    }

    fn set_query(&mut self, r: Resource<RequestHandle>, query: Option<String>) -> wasmtime::Result<()> {
        let bounds = self.bounds;
        let req = self.request_mut(&r)?;
        let path = req.path().to_owned();
        req.set_path_and_query(&path, query.as_deref(), &bounds)?;
        Ok(())
    }

    fn header(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(Headers::first(&self.request(&r)?.head.headers, &name))
    }

    fn header_all(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        Ok(Headers::all(&self.request(&r)?.head.headers, &name))
    }

    fn headers(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        Ok(Headers::list(&self.request(&r)?.head.headers))
    }

    fn set_header(&mut self, r: Resource<RequestHandle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::SetHeader, name.as_bytes(), value.into())
    }

    fn append_header(&mut self, r: Resource<RequestHandle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::AppendHeader, name.as_bytes(), value.into())
    }

    fn remove_header(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::RemoveHeader, name.as_bytes(), Bytes::new())
    }

    fn body(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.request(&r)?.body.as_ref().map(|b| b.to_vec()))
    }

    fn set_body(&mut self, r: Resource<RequestHandle>, body: Vec<u8>) -> wasmtime::Result<()> {
        self.bounds.check_body(body.len() as u64)?;
        self.request_mut(&r)?.body = Some(body.into());
        Ok(())
    }

    fn route(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.info.route.to_string())
    }

    fn param(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Option<String>> {
        let info = &self.request(&r)?.info;
        Ok(info.params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
    }

    fn params(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.info.params.clone())
    }

    fn client_addr(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.info.client_addr.to_string())
    }

    fn request_id(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(String::from_utf8_lossy(self.request(&r)?.info.request_id.as_bytes()).into_owned())
    }

    fn get_var(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.var(&name).map(str::to_owned))
    }

    fn set_var(&mut self, r: Resource<RequestHandle>, name: String, value: String) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::SetVar, name.as_bytes(), value.into())
    }

    fn set_response_header(
        &mut self,
        r: Resource<RequestHandle>,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::SetResponseHeader, name.as_bytes(), value.into())
    }

    fn append_response_header(
        &mut self,
        r: Resource<RequestHandle>,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.request_edit(&r, Op::AppendResponseHeader, name.as_bytes(), value.into())
    }

    fn apply(&mut self, r: Resource<RequestHandle>, edits: Vec<u8>) -> wasmtime::Result<()> {
        let req = self.lent.request.get(&r, "request")?;
        Ok(request_edits(&mut self.names, &self.bounds, req, edits)?)
    }

    /// The host lends requests as borrows and takes them back itself; a
    /// guest never owns one, so there is nothing to free here.
    fn drop(&mut self, _r: Resource<RequestHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl types::HostResponse for InstanceState {
    fn status(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<u16> {
        Ok(self.response(&r)?.head.status.as_u16())
    }

    fn set_status(&mut self, r: Resource<ResponseHandle>, status: u16) -> wasmtime::Result<()> {
        let status = bounds::final_status(status)?;
        self.response_mut(&r)?.head.status = status;
        Ok(())
    }

    fn header(&mut self, r: Resource<ResponseHandle>, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(Headers::first(&self.response(&r)?.head.headers, &name))
    }

    fn header_all(&mut self, r: Resource<ResponseHandle>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        Ok(Headers::all(&self.response(&r)?.head.headers, &name))
    }

    fn headers(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        Ok(Headers::list(&self.response(&r)?.head.headers))
    }

    fn set_header(&mut self, r: Resource<ResponseHandle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.response_edit(&r, Op::SetHeader, name.as_bytes(), value.into())
    }

    fn append_header(&mut self, r: Resource<ResponseHandle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.response_edit(&r, Op::AppendHeader, name.as_bytes(), value.into())
    }

    fn remove_header(&mut self, r: Resource<ResponseHandle>, name: String) -> wasmtime::Result<()> {
        self.response_edit(&r, Op::RemoveHeader, name.as_bytes(), Bytes::new())
    }

    fn apply(&mut self, r: Resource<ResponseHandle>, edits: Vec<u8>) -> wasmtime::Result<()> {
        let resp = self.lent.response.get(&r, "response")?;
        Ok(response_edits(&mut self.names, &self.bounds, resp, edits)?)
    }

    fn body(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.response(&r)?.body.as_ref().map(|b| b.to_vec()))
    }

    fn set_body(&mut self, r: Resource<ResponseHandle>, body: Vec<u8>) -> wasmtime::Result<()> {
        self.response_mut(&r)?.body = Some(body.into());
        Ok(())
    }

    fn drop(&mut self, _r: Resource<ResponseHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl log::Host for InstanceState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let message = bounds::printable(bounds::cut(message, MAX_LOG_BYTES));
        if level == log::Level::Error {
            self.logged_error = Some(message.clone());
        }
        let plugin = &*self.identity.plugin;
        let route = &*self.identity.route;
        let request_id = self
            .current
            .as_ref()
            .map(|info| String::from_utf8_lossy(info.request_id.as_bytes()).into_owned())
            .unwrap_or_default();
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "wasmgate::plugin", plugin, route, request_id, "{message}")
            };
        }
        match level {
            log::Level::Trace => emit!(trace),
            log::Level::Debug => emit!(debug),
            log::Level::Info => emit!(info),
            log::Level::Warn => emit!(warn),
            log::Level::Error => emit!(error),
        }
        Ok(())
    }
}

impl clock::Host for InstanceState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }

    fn monotonic_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.services.started.elapsed().as_nanos() as u64)
    }
}

// Each answers the plugin with an error when its key or value is out of
// bounds, as when the store fails; `state::answer` fails the call instead
// when the backend is down under `on_unavailable = "fail-closed"`.
impl state::Host for InstanceState {
    async fn take(
        &mut self,
        key: String,
        limit: u64,
        window_ms: u64,
        burst: u64,
        cost: u64,
    ) -> wasmtime::Result<Result<state::Decision, String>> {
        let (key, store) = (self.key(&key), &self.services.state);
        crate::state::answer(
            async move {
                let d = store.take(&key?, limit, window_ms, burst, cost).await?;
                Ok(state::Decision {
                    allowed: d.allowed,
                    limit: d.limit,
                    remaining: d.remaining,
                    reset_ms: d.reset_ms,
                    retry_after_ms: d.retry_after_ms,
                })
            }
            .await,
        )
    }

    async fn increment(&mut self, key: String, delta: i64, ttl_ms: u64) -> wasmtime::Result<Result<i64, String>> {
        let (key, store) = (self.key(&key), &self.services.state);
        crate::state::answer(async move { store.increment(&key?, delta, ttl_ms).await }.await)
    }

    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        let (key, store) = (self.key(&key), &self.services.state);
        crate::state::answer(async move { store.get(&key?).await }.await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<Result<(), String>> {
        let (key, store) = (self.key(&key), &self.services.state);
        crate::state::answer(
            async move {
                let key = key?;
                if value.len() > MAX_STATE_VALUE_BYTES {
                    let len = value.len();
                    return Err(format!(
                        "a state value takes at most {MAX_STATE_VALUE_BYTES} bytes; this one has {len}"
                    ))?;
                }
                store.set(&key, value, ttl_ms).await
            }
            .await,
        )
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        let (key, store) = (self.key(&key), &self.services.state);
        crate::state::answer(async move { store.delete(&key?).await }.await)
    }
}

impl http_client::Host for InstanceState {
    async fn fetch_all(
        &mut self,
        requests: Vec<http_client::OutboundRequest>,
    ) -> wasmtime::Result<Vec<Result<http_client::OutboundResponse, http_client::FetchError>>> {
        let request_id = self.current.as_ref().map(|info| info.request_id.clone());
        Ok(super::fanout::fetch_all(&self.services.upstreams, requests, request_id, &self.bounds).await)
    }
}

impl metrics::Host for InstanceState {
    fn counter_add(&mut self, name: String, value: u64) -> wasmtime::Result<()> {
        if !self.services.metrics.counter_add(&self.identity.plugin, &name, value) {
            self.metric_dropped(&name);
        }
        Ok(())
    }

    fn histogram_observe(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        if !self.services.metrics.histogram_observe(&self.identity.plugin, &name, value) {
            self.metric_dropped(&name);
        }
        Ok(())
    }
}

impl InstanceState {
    fn metric_dropped(&self, name: &str) {
        tracing::debug!(
            plugin = %self.identity.plugin,
            metric = %bounds::shown(name),
            "metric dropped: its name is too long or there are too many series"
        );
    }
}
