//! The wasm side of the SDK: everything that touches the generated bindings.
//!
//! Records that have an SDK twin (`reply`, `action`, `needs`, `decision`, the
//! outbound HTTP types) are mapped onto the SDK types in `bindings.rs`, so
//! they cross the boundary without conversion code here.

use std::thread::LocalKey;

use crate::bindings::wasmgate::plugin::{clock, http_client, log as wit_log, metrics, state, types as wit};
use crate::plugin::Slot;
use crate::types::{Headers, MessageBackend, RequestBackend, ResponseBackend};
use crate::{Action, LogLevel, Needs, Plugin, Request, Response};

/// The WIT resources have the same header and body methods under the same
/// names, but as two unrelated generated types.
macro_rules! message_backend {
    ($resource:ty) => {
        impl MessageBackend for $resource {
            fn header(&self, name: &str) -> Option<Vec<u8>> {
                <$resource>::header(self, name)
            }
            fn header_all(&self, name: &str) -> Vec<Vec<u8>> {
                <$resource>::header_all(self, name)
            }
            fn headers(&self) -> Headers {
                <$resource>::headers(self)
            }
            fn set_header(&self, name: &str, value: &[u8]) {
                <$resource>::set_header(self, name, value)
            }
            fn append_header(&self, name: &str, value: &[u8]) {
                <$resource>::append_header(self, name, value)
            }
            fn remove_header(&self, name: &str) {
                <$resource>::remove_header(self, name)
            }
            fn body(&self) -> Option<Vec<u8>> {
                <$resource>::body(self)
            }
            fn set_body(&self, body: &[u8]) {
                <$resource>::set_body(self, body)
            }
        }
    };
}

message_backend!(wit::Request);
message_backend!(wit::Response);

impl RequestBackend for wit::Request {
    fn method(&self) -> String {
        wit::Request::method(self)
    }
    fn set_method(&self, method: &str) {
        wit::Request::set_method(self, method)
    }
    fn path(&self) -> String {
        wit::Request::path(self)
    }
    fn set_path(&self, path: &str) {
        wit::Request::set_path(self, path)
    }
    fn query(&self) -> Option<String> {
        wit::Request::query(self)
    }
    fn set_query(&self, query: Option<&str>) {
        wit::Request::set_query(self, query)
    }
    fn route(&self) -> String {
        wit::Request::route(self)
    }
    fn param(&self, name: &str) -> Option<String> {
        wit::Request::param(self, name)
    }
    fn params(&self) -> Vec<(String, String)> {
        wit::Request::params(self)
    }
    fn client_addr(&self) -> String {
        wit::Request::client_addr(self)
    }
    fn request_id(&self) -> String {
        wit::Request::request_id(self)
    }
    fn get_var(&self, name: &str) -> Option<String> {
        wit::Request::get_var(self, name)
    }
    fn set_var(&self, name: &str, value: &str) {
        wit::Request::set_var(self, name, value)
    }
    fn set_response_header(&self, name: &str, value: &[u8]) {
        wit::Request::set_response_header(self, name, value)
    }
    fn append_response_header(&self, name: &str, value: &[u8]) {
        wit::Request::append_response_header(self, name, value)
    }
}

impl ResponseBackend for wit::Response {
    fn status(&self) -> u16 {
        wit::Response::status(self)
    }
    fn set_status(&self, status: u16) {
        wit::Response::set_status(self, status)
    }
}

// What `export_plugin!` expands to calls these, keeping the macro a shell.

pub fn configure<P: Plugin>(slot: &'static LocalKey<Slot<P>>, config: String) -> Result<Needs, String> {
    slot.with(|slot| slot.configure(&config))
}

pub fn on_request<P: Plugin>(slot: &'static LocalKey<Slot<P>>, req: &wit::Request) -> Action {
    slot.with(|slot| slot.on_request(&Request::new(req, req)))
}

pub fn on_response<P: Plugin>(slot: &'static LocalKey<Slot<P>>, req: &wit::Request, resp: &wit::Response) {
    slot.with(|slot| slot.on_response(&Request::new(req, req), &Response::new(resp, resp)))
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
