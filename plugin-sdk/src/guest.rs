//! The wasm side of the SDK: everything that touches the generated bindings.
//!
//! Records that have an SDK twin (`reply`, `action`, `needs`, `decision`, the
//! outbound HTTP types) are mapped onto the SDK types in `bindings.rs`, so
//! they cross the boundary without conversion code here.

use std::cell::{OnceCell, RefCell};
use std::thread::LocalKey;

use crate::bindings::wasmgate::plugin::{clock, http_client, log as wit_log, metrics, state, types as wit};
use crate::edits::{self, Op};
use crate::plugin::Slot;
use crate::types::{Headers, MessageBackend, RequestBackend, ResponseBackend};
use crate::{Action, LogLevel, Needs, Plugin, Request, Response};

/// A WIT resource whose writes are gathered and sent in one `apply` call:
/// at the end of the plugin call, or before the next read, so a plugin
/// still reads what it wrote. A call into the host costs more than the
/// edit it carries, and plugins mostly read first and write after.
struct Batched<'a, R> {
    resource: &'a R,
    /// In the encoding of `crate::edits`.
    edits: RefCell<Vec<u8>>,
}

thread_local! {
    /// The edit buffers of the current call, kept between calls so the
    /// steady state allocates nothing for them.
    static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

impl<'a, R> Batched<'a, R> {
    fn new(resource: &'a R) -> Self {
        let buffer = BUFFERS.with_borrow_mut(|spare| spare.pop()).unwrap_or_else(|| Vec::with_capacity(256));
        Self { resource, edits: RefCell::new(buffer) }
    }

    fn push(&self, op: Op, name: &str, value: &[u8]) {
        edits::push(&mut self.edits.borrow_mut(), op, name, value);
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
        }

        impl MessageBackend for Batched<'_, $resource> {
            fn header(&self, name: &str) -> Option<Vec<u8>> {
                self.flush();
                self.resource.header(name)
            }
            fn header_all(&self, name: &str) -> Vec<Vec<u8>> {
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
                self.flush();
                self.resource.set_body(body)
            }
        }
    };
}

batched_message!(wit::Request);
batched_message!(wit::Response);

impl<R> Drop for Batched<'_, R> {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(self.edits.get_mut());
        buffer.clear();
        BUFFERS.with_borrow_mut(|spare| spare.push(buffer));
    }
}

thread_local! {
    /// The route a plugin use serves never changes: every instance belongs
    /// to one route's pipeline.
    static ROUTE: OnceCell<String> = const { OnceCell::new() };
}

impl RequestBackend for Batched<'_, wit::Request> {
    fn method(&self) -> String {
        self.flush();
        self.resource.method()
    }
    fn set_method(&self, method: &str) {
        self.flush();
        self.resource.set_method(method)
    }
    fn path(&self) -> String {
        self.flush();
        self.resource.path()
    }
    fn set_path(&self, path: &str) {
        self.flush();
        self.resource.set_path(path)
    }
    fn query(&self) -> Option<String> {
        self.flush();
        self.resource.query()
    }
    fn set_query(&self, query: Option<&str>) {
        self.flush();
        self.resource.set_query(query)
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
        self.resource.client_addr()
    }
    fn request_id(&self) -> String {
        self.resource.request_id()
    }
    fn get_var(&self, name: &str) -> Option<String> {
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
        self.resource.set_status(status)
    }
}

// What `export_plugin!` expands to calls these, keeping the macro a shell.

pub fn configure<P: Plugin>(slot: &'static LocalKey<Slot<P>>, config: String) -> Result<Needs, String> {
    slot.with(|slot| slot.configure(&config))
}

pub fn on_request<P: Plugin>(slot: &'static LocalKey<Slot<P>>, req: &wit::Request) -> Action {
    let req = Batched::new(req);
    let action = slot.with(|slot| slot.on_request(&Request::new(&req, &req)));
    req.flush();
    action
}

pub fn on_response<P: Plugin>(slot: &'static LocalKey<Slot<P>>, req: &wit::Request, resp: &wit::Response) {
    let (req, resp) = (Batched::new(req), Batched::new(resp));
    slot.with(|slot| slot.on_response(&Request::new(&req, &req), &Response::new(&resp, &resp)));
    req.flush();
    resp.flush();
}

/// The host imports behind [`crate::host`], with the same signatures as the
/// mock host's.
pub(crate) mod imports {
    use super::*;
    use crate::host::http::{FetchError, OutboundRequest, OutboundResponse};
    use crate::host::state::Decision;

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

    pub fn now_ms() -> u64 {
        clock::now_ms()
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
