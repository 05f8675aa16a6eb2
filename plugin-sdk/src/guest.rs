//! The wasm side of the SDK: everything that touches the generated bindings.
//!
//! Records that have an SDK twin (`reply`, `action`, `needs`, `decision`, the
//! outbound HTTP types) are mapped onto the SDK types in `bindings.rs`, so
//! they cross the boundary without conversion code here.

use std::cell::{Cell, OnceCell, RefCell};
use std::sync::Once;
use std::thread::LocalKey;

use crate::bindings::wasmgate::plugin::{clock, http_client, log as wit_log, metrics, state, types as wit};
use crate::edits::{self, Op};
use crate::input::Input;
use crate::plugin::Slot;
use crate::types::{Headers, MessageBackend, RequestBackend, ResponseBackend};
use crate::{Action, LogLevel, Needs, Plugin, Request, Response};

/// A WIT resource seen through what came with the call, with its writes
/// gathered into one buffer: the buffer goes back with the call's result,
/// or to `apply` before a read that must see it. A call into the host costs
/// more than most values or edits it carries, and plugins mostly read first
/// and write after.
struct Batched<'a, R> {
    resource: &'a R,
    /// In the encoding of `crate::edits`.
    edits: RefCell<Vec<u8>>,
    /// What came with the call, and the names its entries answer for.
    input: Option<Input<'a>>,
    needs: &'a Needs,
    /// Whether the prefetched headers and vars are still the host's: not
    /// once the plugin has written anything.
    fresh: Cell<bool>,
}

impl<'a, R> Batched<'a, R> {
    fn new(resource: &'a R, input: Option<Input<'a>>, needs: &'a Needs) -> Self {
        Self { resource, edits: RefCell::new(Vec::new()), input, needs, fresh: Cell::new(true) }
    }

    fn push(&self, op: Op, name: &str, value: &[u8]) {
        self.fresh.set(false);
        let mut edits = self.edits.borrow_mut();
        if edits.capacity() == 0 {
            // Room for a plugin's usual writes in one allocation.
            edits.reserve(256);
        }
        edits::push(&mut edits, op, name, value);
    }

    /// The prefetched input, while nothing the plugin wrote can differ from it.
    fn prefetched(&self) -> Option<&Input<'a>> {
        self.input.as_ref().filter(|_| self.fresh.get())
    }

    /// Every value of a prefetched header; `None` when the header was not
    /// asked for (or the plugin has written since).
    fn prefetched_header(&self, name: &str) -> Option<impl Iterator<Item = &'a [u8]> + use<'a, R>> {
        let input = self.prefetched()?;
        let index = self.needs.prefetch_headers.iter().position(|n| n.eq_ignore_ascii_case(name))?;
        Some(input.headers(index as u16))
    }

    /// A prefetched var: `Some(None)` when asked for and unset.
    fn prefetched_var(&self, name: &str) -> Option<Option<&'a [u8]>> {
        let input = self.prefetched()?;
        let index = self.needs.prefetch_vars.iter().position(|n| n == name)?;
        Some(input.var(index as u16))
    }

    /// The writes not sent yet, for the call's result.
    fn into_edits(self) -> Vec<u8> {
        self.edits.into_inner()
    }
}

/// The same header and body methods under the same names, on two unrelated
/// generated types.
macro_rules! batched_message {
    ($resource:ty) => {
        impl Batched<'_, $resource> {
            /// Sends the gathered writes.
            fn flush(&self) {
                let mut edits = self.edits.borrow_mut();
                if !edits.is_empty() {
                    self.resource.apply(&edits);
                    edits.clear();
                }
            }

            /// A write that goes to the host at once.
            fn write_through(&self) -> &$resource {
                self.flush();
                self.fresh.set(false);
                self.resource
            }
        }

        impl MessageBackend for Batched<'_, $resource> {
            fn header(&self, name: &str) -> Option<Vec<u8>> {
                if let Some(mut values) = self.prefetched_header(name) {
                    return values.next().map(<[u8]>::to_vec);
                }
                self.flush();
                self.resource.header(name)
            }
            fn header_all(&self, name: &str) -> Vec<Vec<u8>> {
                if let Some(values) = self.prefetched_header(name) {
                    return values.map(<[u8]>::to_vec).collect();
                }
                self.flush();
                self.resource.header_all(name)
            }
            fn headers(&self) -> Headers {
                self.flush();
                self.resource.headers()
            }
            fn set_header(&self, name: &str, value: &[u8]) {
                self.push(Op::SetHeader, name, value);
            }
            fn append_header(&self, name: &str, value: &[u8]) {
                self.push(Op::AppendHeader, name, value);
            }
            fn remove_header(&self, name: &str) {
                self.push(Op::RemoveHeader, name, b"");
            }
            fn body(&self) -> Option<Vec<u8>> {
                self.flush();
                self.resource.body()
            }
            fn set_body(&self, body: &[u8]) {
                self.write_through().set_body(body)
            }
        }
    };
}

batched_message!(wit::Request);
batched_message!(wit::Response);

thread_local! {
    /// The route a plugin use serves never changes: every instance belongs
    /// to one route's pipeline.
    static ROUTE: OnceCell<String> = const { OnceCell::new() };

    /// The wall clock the host sent with the current call, if inside one.
    static CALL_NOW_MS: Cell<Option<u64>> = const { Cell::new(None) };
}

impl RequestBackend for Batched<'_, wit::Request> {
    fn method(&self) -> String {
        self.flush();
        self.resource.method()
    }
    fn set_method(&self, method: &str) {
        self.write_through().set_method(method)
    }
    fn path(&self) -> String {
        self.flush();
        self.resource.path()
    }
    fn set_path(&self, path: &str) {
        self.write_through().set_path(path)
    }
    fn query(&self) -> Option<String> {
        self.flush();
        self.resource.query()
    }
    fn set_query(&self, query: Option<&str>) {
        self.write_through().set_query(query)
    }
    fn route(&self) -> String {
        ROUTE.with(|route| route.get_or_init(|| self.resource.route()).clone())
    }
    fn param(&self, name: &str) -> Option<String> {
        self.resource.param(name)
    }
    fn params(&self) -> Vec<(String, String)> {
        self.resource.params()
    }
    fn client_addr(&self) -> String {
        match &self.input {
            Some(input) if self.needs.prefetch_client_addr => text(input.client_addr),
            _ => self.resource.client_addr(),
        }
    }
    fn request_id(&self) -> String {
        match &self.input {
            Some(input) if self.needs.prefetch_request_id => text(input.request_id),
            _ => self.resource.request_id(),
        }
    }
    fn get_var(&self, name: &str) -> Option<String> {
        if let Some(value) = self.prefetched_var(name) {
            return value.map(text);
        }
        self.flush();
        self.resource.get_var(name)
    }
    fn set_var(&self, name: &str, value: &str) {
        self.push(Op::SetVar, name, value.as_bytes());
    }
    fn set_response_header(&self, name: &str, value: &[u8]) {
        self.push(Op::SetResponseHeader, name, value);
    }
    fn append_response_header(&self, name: &str, value: &[u8]) {
        self.push(Op::AppendResponseHeader, name, value);
    }
}

impl ResponseBackend for Batched<'_, wit::Response> {
    fn status(&self) -> u16 {
        self.resource.status()
    }
    fn set_status(&self, status: u16) {
        self.write_through().set_status(status)
    }
    fn trailer(&self, name: &str) -> Option<Vec<u8>> {
        self.resource.trailer(name)
    }
    fn trailers(&self) -> Headers {
        self.resource.trailers()
    }
    fn set_trailers(&self, trailers: &[(String, Vec<u8>)]) {
        self.write_through().set_trailers(trailers)
    }
}

/// Text the host sent: always UTF-8 (vars are checked when set, request
/// ids and addresses are ASCII), so the lossy path is never taken.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

// What `export_plugin!` expands to calls these, keeping the macro a shell.

pub fn configure<P: Plugin>(slot: &'static LocalKey<Slot<P>>, config: String) -> Result<Needs, String> {
    report_panics();
    slot.with(|slot| slot.configure(&config))
}

/// Sends a panic's message, with its file and line, to the gateway's log
/// before the panic becomes a trap (plugins build with `panic = "abort"`):
/// the trap alone says only "unreachable", and WASI's stderr goes nowhere.
/// Installed once per instance, when it is configured, so calls pay
/// nothing for it.
fn report_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload_as_str().unwrap_or("a panic without a message");
            let message = match info.location() {
                Some(at) => format!("panicked at {}:{}:{}: {payload}", at.file(), at.line(), at.column()),
                None => format!("panicked: {payload}"),
            };
            wit_log::log(wit_log::Level::Error, &message);
        }));
    });
}

/// Runs `f` as one call: the clock the host sent serves `clock::now_ms`
/// until it returns.
fn in_call<T>(input: Option<&Input>, f: impl FnOnce() -> T) -> T {
    CALL_NOW_MS.set(input.map(|i| i.now_ms));
    let out = f();
    CALL_NOW_MS.set(None);
    out
}

pub fn on_request<P: Plugin>(
    slot: &'static LocalKey<Slot<P>>,
    req: &wit::Request,
    input: Option<Vec<u8>>,
) -> (Action, Vec<u8>) {
    let input = input.as_deref().and_then(Input::parse);
    slot.with(|slot| {
        let needs = slot.needs();
        let req = Batched::new(req, input, &needs);
        let action = in_call(input.as_ref(), || slot.on_request(&Request::new(&req, &req)));
        (action, req.into_edits())
    })
}

pub fn on_response<P: Plugin>(
    slot: &'static LocalKey<Slot<P>>,
    req: &wit::Request,
    resp: &wit::Response,
    input: Option<Vec<u8>>,
) -> Vec<u8> {
    let input = input.as_deref().and_then(Input::parse);
    slot.with(|slot| {
        let needs = slot.needs();
        // The input holds the request's values: the response reads its own.
        let (req, resp) = (Batched::new(req, input, &needs), Batched::new(resp, None, &needs));
        in_call(input.as_ref(), || slot.on_response(&Request::new(&req, &req), &Response::new(&resp, &resp)));
        // Vars are the one thing a request takes in the response phase.
        req.flush();
        resp.into_edits()
    })
}

/// The host imports behind [`crate::host`], with the same signatures as the
/// mock host's.
pub(crate) mod imports {
    use super::*;
    use crate::records::{Decision, FetchError, OutboundRequest, OutboundResponse};

    pub fn log(level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => wit_log::Level::Trace,
            LogLevel::Debug => wit_log::Level::Debug,
            LogLevel::Info => wit_log::Level::Info,
            LogLevel::Warn => wit_log::Level::Warn,
            LogLevel::Error => wit_log::Level::Error,
        };
        wit_log::log(level, message);
    }

    /// Within a call, the clock the host sent with it: one reading per
    /// call, as proxies cache the time per event-loop turn.
    pub fn now_ms() -> u64 {
        CALL_NOW_MS.get().unwrap_or_else(clock::now_ms)
    }

    pub fn monotonic_ns() -> u64 {
        clock::monotonic_ns()
    }

    pub fn take(key: &str, limit: u64, window_ms: u64, burst: u64, cost: u64) -> Result<Decision, String> {
        state::take(key, limit, window_ms, burst, cost)
    }

    pub fn increment(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        state::increment(key, delta, ttl_ms)
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        state::get(key)
    }

    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), String> {
        state::set(key, value, ttl_ms)
    }

    pub fn delete(key: &str) -> Result<(), String> {
        state::delete(key)
    }

    pub fn fetch_all(requests: &[OutboundRequest]) -> Vec<Result<OutboundResponse, FetchError>> {
        http_client::fetch_all(requests)
    }

    pub fn counter_add(name: &str, value: u64) {
        metrics::counter_add(name, value)
    }

    pub fn histogram_observe(name: &str, value: f64) {
        metrics::histogram_observe(name, value)
    }
}

/// The plugin's allocator: see [`crate::alloc_cache`].
#[cfg(feature = "recycling-alloc")]
#[global_allocator]
static ALLOCATOR: crate::alloc_cache::Recycling<std::alloc::System> =
    crate::alloc_cache::Recycling::new(std::alloc::System);
