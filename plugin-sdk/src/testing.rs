//! A mock gateway, so a plugin's logic is unit tested with plain
//! `cargo test`: no wasm build, no running gateway.
//!
//! * [`configure`] runs the same config path as the wasm export, so config
//!   errors are testable.
//! * [`TestRequest`] and [`TestResponse`] stand in for the host's request and
//!   response; inspect them after the call through
//!   [`as_request`](TestRequest::as_request), the same view the plugin had.
//! * [`run_request`] and [`run_response`] call a plugin the way the host
//!   does, honouring its [`Needs`](crate::Needs): bodies it did not ask for
//!   are hidden, and `on_response` is skipped when not asked for.
//! * [`crate::host`] calls land in a mock host: captured logs, a settable
//!   clock, in-memory state (rate limits use the host's algorithm,
//!   [`crate::gcra`]), scripted fetches, recorded metrics.
//!
//! The mock host is per thread, and `cargo test` runs each test on its own
//! thread, so tests do not see each other's state; [`reset`] starts afresh
//! within a test.
//!
//! ```
//! use wasmgate_sdk::prelude::*;
//! use wasmgate_sdk::testing::{self, TestRequest};
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     type Config = NoConfig;
//!     fn configure(_: NoConfig) -> Result<Self, String> {
//!         Ok(Hello)
//!     }
//!     fn on_request(&self, req: &Request) -> Action {
//!         req.set_header("x-hello", "world");
//!         Action::Continue
//!     }
//! }
//!
//! let plugin: Hello = testing::configure("{}").unwrap();
//! let req = TestRequest::new("GET", "/hi");
//! assert_eq!(testing::run_request(&plugin, &req), Action::Continue);
//! assert_eq!(req.as_request().header("x-hello").as_deref(), Some("world"));
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use crate::records::{Decision, FetchError, OutboundRequest, OutboundResponse};
use crate::types::{Headers, MessageBackend, RequestBackend, ResponseBackend};
use crate::{Action, LogLevel, Plugin, Request, Response, gcra};

/// Configures `P` from a JSON string exactly as the gateway would.
pub fn configure<P: Plugin>(config: &str) -> Result<P, String> {
    crate::plugin::configure(config)
}

/// Calls `on_request` as the host does: the body is hidden unless the plugin
/// asked for it in `needs().request_body`, so a forgotten flag fails here
/// rather than in production.
pub fn run_request<P: Plugin>(plugin: &P, req: &TestRequest) -> Action {
    let needs = plugin.needs();
    req.message.buffered.set(needs.request_body);
    let action = plugin.on_request(&req.as_request());
    req.message.buffered.set(true);
    action
}

/// Calls `on_response` as the host does: only when the plugin asked for
/// `needs().response`, with the response body hidden unless it asked for
/// `response_body`, and with the request read-only (changing it panics,
/// since it has already gone upstream). Returns whether it was called.
///
/// First, like the host, it applies to `resp` the response headers the
/// request phase set (`Request::set_response_header`), whether or not
/// `on_response` is then called.
pub fn run_response<P: Plugin>(plugin: &P, req: &TestRequest, resp: &TestResponse) -> bool {
    for (name, value, append) in req.response_edits.take() {
        if append {
            resp.message.append_header(&name, &value);
        } else {
            resp.message.set_header(&name, &value);
        }
    }
    let needs = plugin.needs();
    if !needs.response {
        return false;
    }
    req.read_only.set(true);
    resp.message.buffered.set(needs.response_body);
    plugin.on_response(&req.as_request(), &resp.as_response());
    resp.message.buffered.set(true);
    req.read_only.set(false);
    true
}

/// Headers and body, shared by [`TestRequest`] and [`TestResponse`].
#[derive(Debug, Default)]
struct MockMessage {
    headers: RefCell<Headers>,
    body: RefCell<Vec<u8>>,
    /// Whether the plugin may see the body (see [`run_request`]).
    buffered: Cell<bool>,
}

impl MockMessage {
    fn new() -> Self {
        Self { buffered: Cell::new(true), ..Self::default() }
    }

    fn push(&self, name: &str, value: &[u8]) {
        // The host hands out names as the `http` crate does: lowercase.
        self.headers.borrow_mut().push((name.to_ascii_lowercase(), value.to_vec()));
    }
}

impl MessageBackend for MockMessage {
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.header_all(name).into_iter().next()
    }

    fn header_all(&self, name: &str) -> Vec<Vec<u8>> {
        self.headers.borrow().iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
    }

    fn headers(&self) -> Headers {
        self.headers.borrow().clone()
    }

    fn set_header(&self, name: &str, value: &[u8]) {
        self.remove_header(name);
        self.push(name, value);
    }

    fn append_header(&self, name: &str, value: &[u8]) {
        self.push(name, value);
    }

    fn remove_header(&self, name: &str) {
        self.headers.borrow_mut().retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn body(&self) -> Option<Vec<u8>> {
        self.buffered.get().then(|| self.body.borrow().clone())
    }

    fn set_body(&self, body: &[u8]) {
        *self.body.borrow_mut() = body.to_vec();
    }
}

/// A request as the host would present it, built with chained calls.
///
/// Defaults: route `test`, client `127.0.0.1:40000`, request id
/// `test-request-id`, no headers, empty body.
#[derive(Debug)]
pub struct TestRequest {
    message: MockMessage,
    method: RefCell<String>,
    path: RefCell<String>,
    query: RefCell<Option<String>>,
    route: String,
    params: Vec<(String, String)>,
    client_addr: String,
    request_id: String,
    vars: RefCell<BTreeMap<String, String>>,
    /// `set_response_header` (false) and `append_response_header` (true)
    /// calls, for [`run_response`].
    response_edits: RefCell<Vec<(String, Vec<u8>, bool)>>,
    read_only: Cell<bool>,
}

impl TestRequest {
    /// `uri` is a path with an optional query: `/users/42?fields=name`.
    pub fn new(method: &str, uri: &str) -> Self {
        let (path, query) = match uri.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (uri, None),
        };
        Self {
            message: MockMessage::new(),
            method: RefCell::new(method.to_owned()),
            path: RefCell::new(path.to_owned()),
            query: RefCell::new(query),
            route: "test".to_owned(),
            params: Vec::new(),
            client_addr: "127.0.0.1:40000".to_owned(),
            request_id: "test-request-id".to_owned(),
            vars: RefCell::default(),
            response_edits: RefCell::default(),
            read_only: Cell::new(false),
        }
    }

    pub fn route(mut self, name: &str) -> Self {
        name.clone_into(&mut self.route);
        self
    }

    /// A `{param}` the route pattern captured.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn client_addr(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.client_addr);
        self
    }

    pub fn request_id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.request_id);
        self
    }

    /// A var set by an earlier plugin of the pipeline.
    pub fn var(self, name: &str, value: &str) -> Self {
        self.vars.borrow_mut().insert(name.to_owned(), value.to_owned());
        self
    }

    /// The plugin's view of this request; also how tests inspect it after
    /// the call.
    pub fn as_request(&self) -> Request<'_> {
        Request::new(self, self)
    }

    fn writable(&self) {
        assert!(!self.read_only.get(), "the request is read-only in the response phase: it has already gone upstream");
    }
}

impl RequestBackend for TestRequest {
    fn method(&self) -> String {
        self.method.borrow().clone()
    }

    fn set_method(&self, method: &str) {
        self.writable();
        method.clone_into(&mut self.method.borrow_mut());
    }

    fn path(&self) -> String {
        self.path.borrow().clone()
    }

    fn set_path(&self, path: &str) {
        self.writable();
        path.clone_into(&mut self.path.borrow_mut());
    }

    fn query(&self) -> Option<String> {
        self.query.borrow().clone()
    }

    fn set_query(&self, query: Option<&str>) {
        self.writable();
        *self.query.borrow_mut() = query.map(str::to_owned);
    }

    fn route(&self) -> String {
        self.route.clone()
    }

    fn param(&self, name: &str) -> Option<String> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    fn params(&self) -> Vec<(String, String)> {
        self.params.clone()
    }

    fn client_addr(&self) -> String {
        self.client_addr.clone()
    }

    fn request_id(&self) -> String {
        self.request_id.clone()
    }

    fn get_var(&self, name: &str) -> Option<String> {
        self.vars.borrow().get(name).cloned()
    }

    fn set_var(&self, name: &str, value: &str) {
        // Vars stay writable in the response phase: they are the pipeline's
        // scratch space, not part of the request sent upstream.
        self.vars.borrow_mut().insert(name.to_owned(), value.to_owned());
    }

    fn set_response_header(&self, name: &str, value: &[u8]) {
        self.writable();
        self.response_edits.borrow_mut().push((name.to_owned(), value.to_vec(), false));
    }

    fn append_response_header(&self, name: &str, value: &[u8]) {
        self.writable();
        self.response_edits.borrow_mut().push((name.to_owned(), value.to_vec(), true));
    }
}

/// The read-only check applies to headers and body too, so the request's
/// message is wrapped rather than handed out directly.
impl MessageBackend for TestRequest {
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.message.header(name)
    }
    fn header_all(&self, name: &str) -> Vec<Vec<u8>> {
        self.message.header_all(name)
    }
    fn headers(&self) -> Headers {
        self.message.headers()
    }
    fn set_header(&self, name: &str, value: &[u8]) {
        self.writable();
        self.message.set_header(name, value);
    }
    fn append_header(&self, name: &str, value: &[u8]) {
        self.writable();
        self.message.append_header(name, value);
    }
    fn remove_header(&self, name: &str) {
        self.writable();
        self.message.remove_header(name);
    }
    fn body(&self) -> Option<Vec<u8>> {
        self.message.body()
    }
    fn set_body(&self, body: &[u8]) {
        self.writable();
        self.message.set_body(body);
    }
}

/// The builders both test messages have: one definition, so requests and
/// responses are built the same way.
macro_rules! message_builders {
    ($message:ty) => {
        impl $message {
            /// Appends a header, as a peer sending it twice would.
            pub fn header(self, name: &str, value: impl AsRef<[u8]>) -> Self {
                self.message.push(name, value.as_ref());
                self
            }

            /// Sets the body.
            pub fn body(self, body: impl AsRef<[u8]>) -> Self {
                self.message.set_body(body.as_ref());
                self
            }
        }
    };
}

message_builders!(TestRequest);
message_builders!(TestResponse);

/// A response as the host would present it. Defaults: no headers, empty
/// body.
#[derive(Debug)]
pub struct TestResponse {
    message: MockMessage,
    status: Cell<u16>,
    trailers: RefCell<Headers>,
}

impl TestResponse {
    pub fn new(status: u16) -> Self {
        Self { message: MockMessage::new(), status: Cell::new(status), trailers: RefCell::default() }
    }

    /// Appends a trailer, as an upstream sending it after the body would.
    /// Like the host, the plugin sees trailers only with the body it asked
    /// for.
    pub fn trailer(self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers.borrow_mut().push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// The plugin's view of this response; also how tests inspect it after
    /// the call.
    pub fn as_response(&self) -> Response<'_> {
        Response::new(&self.message, self)
    }
}

impl ResponseBackend for TestResponse {
    fn status(&self) -> u16 {
        self.status.get()
    }

    fn set_status(&self, status: u16) {
        self.status.set(status);
    }

    fn trailer(&self, name: &str) -> Option<Vec<u8>> {
        self.trailers().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    fn trailers(&self) -> Headers {
        if self.message.buffered.get() { self.trailers.borrow().clone() } else { Vec::new() }
    }

    fn set_trailers(&self, trailers: &[(String, Vec<u8>)]) {
        *self.trailers.borrow_mut() = trailers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
    }
}

/// A scripted upstream for [`on_fetch`].
type FetchHandler = Box<dyn FnMut(&OutboundRequest) -> Result<OutboundResponse, FetchError>>;

/// The wall clock starts at a fixed, realistic instant so tests are
/// reproducible: 2023-11-14T22:13:20Z.
const START_MS: u64 = 1_700_000_000_000;

struct MockHost {
    logs: Vec<(LogLevel, String)>,
    now_ms: u64,
    monotonic_ns: u64,
    state_failure: Option<String>,
    /// Rate-limit buckets: key → theoretical arrival time (µs).
    buckets: HashMap<String, u64>,
    /// Counters: key → (value, expiry in ms).
    counters: HashMap<String, (i64, u64)>,
    /// Key/value: key → (value, expiry in ms).
    kv: HashMap<String, (Vec<u8>, Option<u64>)>,
    fetch_handler: Option<FetchHandler>,
    fetches: Vec<OutboundRequest>,
    counter_metrics: BTreeMap<String, u64>,
    histogram_metrics: BTreeMap<String, Vec<f64>>,
}

impl MockHost {
    fn new() -> Self {
        Self {
            logs: Vec::new(),
            now_ms: START_MS,
            monotonic_ns: 0,
            state_failure: None,
            buckets: HashMap::new(),
            counters: HashMap::new(),
            kv: HashMap::new(),
            fetch_handler: None,
            fetches: Vec::new(),
            counter_metrics: BTreeMap::new(),
            histogram_metrics: BTreeMap::new(),
        }
    }

    fn state(&self) -> Result<(), String> {
        self.state_failure.clone().map_or(Ok(()), Err)
    }
}

thread_local! {
    static HOST: RefCell<MockHost> = RefCell::new(MockHost::new());
}

fn with_host<T>(f: impl FnOnce(&mut MockHost) -> T) -> T {
    HOST.with(|host| f(&mut host.borrow_mut()))
}

/// Forgets everything: logs, clock, state, fetch script and metrics.
pub fn reset() {
    with_host(|host| *host = MockHost::new());
}

/// Every line logged so far, in order.
pub fn logs() -> Vec<(LogLevel, String)> {
    with_host(|host| host.logs.clone())
}

/// The wall clock, as [`clock::now_ms`](crate::host::clock::now_ms) sees it.
pub fn now_ms() -> u64 {
    with_host(|host| host.now_ms)
}

/// Moves the wall clock only, as an NTP step would; the monotonic clock is
/// left alone.
pub fn set_now_ms(now_ms: u64) {
    with_host(|host| host.now_ms = now_ms);
}

/// Lets time pass: both clocks move, and TTLs and rate limits see it.
pub fn advance_ms(ms: u64) {
    with_host(|host| {
        host.now_ms += ms;
        host.monotonic_ns += ms * 1_000_000;
    });
}

/// Makes every [`state`](crate::host::state) call fail with `error` (as a
/// failing state backend would) until called with `None`, to test fail-open or
/// fail-closed behaviour.
pub fn fail_state(error: Option<&str>) {
    with_host(|host| host.state_failure = error.map(str::to_owned));
}

/// Scripts the upstreams: `handler` answers every outbound call. Without
/// one, calls fail as `unavailable`.
pub fn on_fetch(handler: impl FnMut(&OutboundRequest) -> Result<OutboundResponse, FetchError> + 'static) {
    with_host(|host| host.fetch_handler = Some(Box::new(handler)));
}

/// Every outbound call made so far, in order.
pub fn fetches() -> Vec<OutboundRequest> {
    with_host(|host| host.fetches.clone())
}

/// Total added to a counter metric (0 if never touched).
pub fn counter(name: &str) -> u64 {
    with_host(|host| host.counter_metrics.get(name).copied().unwrap_or(0))
}

/// Every value observed by a histogram metric, in order.
pub fn histogram(name: &str) -> Vec<f64> {
    with_host(|host| host.histogram_metrics.get(name).cloned().unwrap_or_default())
}

/// The mock behind [`crate::host`], with the same signatures as the wasm
/// imports.
pub(crate) mod imports {
    use super::*;

    pub fn log(level: LogLevel, message: &str) {
        with_host(|host| host.logs.push((level, message.to_owned())));
    }

    pub fn now_ms() -> u64 {
        with_host(|host| host.now_ms)
    }

    pub fn monotonic_ns() -> u64 {
        with_host(|host| host.monotonic_ns)
    }

    pub fn take(key: &str, limit: u64, window_ms: u64, burst: u64, cost: u64) -> Result<Decision, String> {
        with_host(|host| {
            host.state()?;
            let tat = host.buckets.get(key).copied().unwrap_or(0);
            let (decision, tat) = gcra::decide(host.now_ms, tat, limit, window_ms, burst, cost)?;
            host.buckets.insert(key.to_owned(), tat);
            Ok(decision)
        })
    }

    pub fn increment(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        with_host(|host| {
            host.state()?;
            let now = host.now_ms;
            let counter = host
                .counters
                .entry(key.to_owned())
                .and_modify(|counter| {
                    if counter.1 <= now {
                        *counter = (0, now.saturating_add(ttl_ms));
                    }
                })
                .or_insert((0, now.saturating_add(ttl_ms)));
            counter.0 = counter.0.saturating_add(delta);
            Ok(counter.0)
        })
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        with_host(|host| {
            host.state()?;
            let now = host.now_ms;
            Ok(host
                .kv
                .get(key)
                .filter(|(_, expiry)| expiry.is_none_or(|expiry| expiry > now))
                .map(|(value, _)| value.clone()))
        })
    }

    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), String> {
        with_host(|host| {
            host.state()?;
            let expiry = ttl_ms.map(|ttl| host.now_ms.saturating_add(ttl));
            host.kv.insert(key.to_owned(), (value.to_vec(), expiry));
            Ok(())
        })
    }

    pub fn delete(key: &str) -> Result<(), String> {
        with_host(|host| {
            host.state()?;
            host.kv.remove(key);
            Ok(())
        })
    }

    pub fn fetch_all(requests: &[OutboundRequest]) -> Vec<Result<OutboundResponse, FetchError>> {
        // The handler runs without the host borrowed, so it may use the host
        // API itself (log, advance the clock…).
        let mut handler = with_host(|host| {
            host.fetches.extend_from_slice(requests);
            host.fetch_handler.take()
        });
        let results = requests
            .iter()
            .map(|request| match handler.as_mut() {
                Some(handler) => handler(request),
                None => Err(FetchError::Unavailable("no upstream scripted: call testing::on_fetch".to_owned())),
            })
            .collect();
        with_host(|host| {
            if host.fetch_handler.is_none() {
                host.fetch_handler = handler;
            }
        });
        results
    }

    pub fn counter_add(name: &str, value: u64) {
        with_host(|host| *host.counter_metrics.entry(name.to_owned()).or_default() += value);
    }

    pub fn histogram_observe(name: &str, value: f64) {
        with_host(|host| {
            host.histogram_metrics.entry(name.to_owned()).or_default().push(value);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{clock, http, log, metrics, state};
    use crate::{Needs, NoConfig, Reply, Request, Response};

    #[test]
    fn logs_are_captured_in_order_and_reset_clears_everything() {
        log::info("one");
        log::error(format!("two {}", 2));
        assert_eq!(logs(), [(LogLevel::Info, "one".to_owned()), (LogLevel::Error, "two 2".to_owned())]);
        metrics::counter_add("hits", 2);
        state::set("k", "v", None).unwrap();
        advance_ms(5);

        reset();
        assert!(logs().is_empty());
        assert_eq!(counter("hits"), 0);
        assert_eq!(state::get("k").unwrap(), None);
        assert_eq!(clock::now_ms(), START_MS);
    }

    /// Reads its trailers in the response phase and drops them.
    struct TrailerReader(Needs);

    impl Plugin for TrailerReader {
        type Config = NoConfig;
        fn configure(_: NoConfig) -> Result<Self, String> {
            Ok(TrailerReader(Needs::default()))
        }
        fn needs(&self) -> Needs {
            self.0.clone()
        }
        fn on_response(&self, _req: &Request, resp: &Response) {
            let seen = resp.trailer("Grpc-Status").unwrap_or_else(|| "none".into());
            resp.set_header("x-seen", seen);
            resp.set_trailers(&[]);
        }
    }

    #[test]
    fn trailers_are_seen_with_the_body_only_and_can_be_replaced() {
        let req = TestRequest::new("GET", "/");
        let upstream = || TestResponse::new(200).body("x").trailer("grpc-status", "5").trailer("x-other", "1");
        let with_body = TrailerReader(Needs { response: true, response_body: true, ..Needs::default() });
        let resp = upstream();
        assert!(run_response(&with_body, &req, &resp));
        assert_eq!(resp.as_response().header("x-seen").as_deref(), Some("5"));
        assert_eq!(resp.as_response().trailers(), Vec::new());

        let headers_only = TrailerReader(Needs { response: true, ..Needs::default() });
        let resp = upstream();
        assert!(run_response(&headers_only, &req, &resp));
        assert_eq!(resp.as_response().header("x-seen").as_deref(), Some("none"));

        let resp = upstream();
        resp.as_response().replace_with(&Reply::new(404));
        assert_eq!(resp.as_response().trailers(), Vec::new(), "a replaced response has none");
        let resp = upstream();
        resp.as_response().set_trailers(&[("X-New".into(), b"v".to_vec())]);
        assert_eq!(resp.as_response().trailers(), [("x-new".to_owned(), b"v".to_vec())]);
    }

    #[test]
    fn the_clock_is_settable_and_advances_both_clocks() {
        assert_eq!(clock::now_ms(), START_MS);
        let start = clock::monotonic_ns();
        advance_ms(1_500);
        assert_eq!(clock::now_ms(), START_MS + 1_500);
        assert_eq!(clock::monotonic_ns() - start, 1_500_000_000);
        set_now_ms(42);
        assert_eq!(clock::now_ms(), 42);
        assert_eq!(now_ms(), 42);
        assert_eq!(clock::monotonic_ns() - start, 1_500_000_000);
    }

    #[test]
    fn take_follows_the_hosts_gcra_per_key() {
        let take = |key| state::take(key, 10, 1_000, 10, 1).unwrap();
        let allowed = (0..11).filter(|_| take("alice").allowed).count();
        assert_eq!(allowed, 10);
        let refused = take("alice");
        assert_eq!((refused.remaining, refused.retry_after_ms, refused.reset_ms), (0, 100, 1_000));
        assert!(take("bob").allowed, "keys are independent");

        advance_ms(100);
        assert!(take("alice").allowed);
        assert!(!take("alice").allowed);
        assert!(state::take("alice", 10, 1_000, 10, 11).is_err());
    }

    #[test]
    fn counters_expire_after_their_ttl() {
        assert_eq!(state::increment("quota", 1, 1_000).unwrap(), 1);
        assert_eq!(state::increment("quota", 2, 1_000).unwrap(), 3);
        advance_ms(999);
        assert_eq!(state::increment("quota", 1, 1_000).unwrap(), 4);
        advance_ms(1);
        assert_eq!(state::increment("quota", 1, 1_000).unwrap(), 1);
        assert_eq!(state::increment("quota", -5, 1_000).unwrap(), -4);
    }

    #[test]
    fn values_expire_with_the_mock_clock() {
        state::set("cached", b"body", Some(60_000)).unwrap();
        state::set("forever", "x", None).unwrap();
        advance_ms(59_999);
        assert_eq!(state::get("cached").unwrap().as_deref(), Some(&b"body"[..]));
        advance_ms(1);
        assert_eq!(state::get("cached").unwrap(), None);
        assert!(state::get("forever").unwrap().is_some());
        state::delete("forever").unwrap();
        assert_eq!(state::get("forever").unwrap(), None);
    }

    #[test]
    fn state_failures_can_be_simulated() {
        fail_state(Some("redis: connection refused"));
        assert_eq!(state::get("k").unwrap_err(), "redis: connection refused");
        assert!(state::take("k", 1, 1_000, 1, 1).is_err());
        assert!(state::increment("k", 1, 1_000).is_err());
        fail_state(None);
        assert!(state::get("k").is_ok());
    }

    #[test]
    fn fetches_are_scripted_recorded_and_fail_without_a_script() {
        let lone = http::fetch(http::OutboundRequest::get("users", "/1"));
        assert!(matches!(lone, Err(FetchError::Unavailable(_))));

        on_fetch(|req| match req.upstream.as_str() {
            "users" => {
                log::debug(format!("serving {}", req.path));
                Ok(OutboundResponse::new(200, format!(r#"{{"path":"{}"}}"#, req.path)))
            }
            "slow" => Err(FetchError::Timeout),
            other => Err(FetchError::Invalid(format!("unknown upstream `{other}`"))),
        });
        let results = http::fetch_all(&[
            OutboundRequest::get("users", "/42").header("x-request-id", "r1"),
            OutboundRequest::post("slow", "/").body("{}").timeout_ms(50),
            OutboundRequest::get("nope", "/"),
        ]);
        let first = results[0].as_ref().unwrap();
        assert_eq!(first.json::<serde_json::Value>().unwrap()["path"], "/42");
        assert_eq!(results[1], Err(FetchError::Timeout));
        assert_eq!(results[2].as_ref().unwrap_err().to_string(), "invalid: unknown upstream `nope`");

        let sent = fetches();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[1].headers, [("x-request-id".to_owned(), b"r1".to_vec())]);
        assert_eq!(sent[2].timeout_ms, Some(50));
        assert_eq!(logs(), [(LogLevel::Debug, "serving /42".to_owned())]);
    }

    #[test]
    fn metrics_are_recorded() {
        metrics::counter_add("denied", 1);
        metrics::counter_add("denied", 2);
        metrics::histogram_observe("latency", 0.5);
        metrics::histogram_observe("latency", 1.5);
        assert_eq!(counter("denied"), 3);
        assert_eq!(histogram("latency"), [0.5, 1.5]);
        assert!(histogram("other").is_empty());
    }

    struct Watcher {
        needs: Needs,
    }

    impl Plugin for Watcher {
        type Config = NoConfig;

        fn configure(_: NoConfig) -> Result<Self, String> {
            Ok(Watcher { needs: Needs::default() })
        }

        fn needs(&self) -> Needs {
            self.needs.clone()
        }

        fn on_request(&self, req: &Request) -> Action {
            let seen = req.body().map_or("hidden".to_owned(), |b| String::from_utf8(b).unwrap());
            Reply::new(200).body(seen).into()
        }

        fn on_response(&self, req: &Request, resp: &Response) {
            let seen = resp.body().map_or("hidden".to_owned(), |b| String::from_utf8(b).unwrap());
            resp.set_header("x-seen", seen);
            if req.header("x-misbehave").is_some() {
                req.set_header("x-too-late", "1");
            }
        }
    }

    fn body_of(action: Action) -> String {
        match action {
            Action::Respond(reply) => String::from_utf8(reply.body).unwrap(),
            Action::Continue => panic!("expected a reply"),
        }
    }

    #[test]
    fn run_request_shows_the_body_only_when_asked_for() {
        let req = TestRequest::new("POST", "/").body("payload");
        let mut plugin = Watcher { needs: Needs::default() };
        assert_eq!(body_of(run_request(&plugin, &req)), "hidden");
        plugin.needs.request_body = true;
        assert_eq!(body_of(run_request(&plugin, &req)), "payload");
    }

    #[test]
    fn run_response_honours_needs() {
        let req = TestRequest::new("GET", "/");
        let resp = TestResponse::new(200).body("upstream");
        let mut plugin = Watcher { needs: Needs::default() };
        assert!(!run_response(&plugin, &req, &resp));
        assert_eq!(resp.as_response().header("x-seen"), None);

        plugin.needs.response = true;
        assert!(run_response(&plugin, &req, &resp));
        assert_eq!(resp.as_response().header("x-seen").as_deref(), Some("hidden"));

        plugin.needs.response_body = true;
        assert!(run_response(&plugin, &req, &resp));
        assert_eq!(resp.as_response().header("x-seen").as_deref(), Some("upstream"));
    }

    #[test]
    fn response_headers_set_in_the_request_phase_reach_the_response_once() {
        let plugin = Watcher { needs: Needs::default() };
        let req = TestRequest::new("GET", "/");
        let view = req.as_request();
        view.set_response_header("x-limit", "10");
        view.append_response_header("vary", "x-client");
        view.set_response_header("x-limit", "9");
        let resp = TestResponse::new(200).header("x-limit", "upstream").header("vary", "accept");

        assert!(!run_response(&plugin, &req, &resp), "no response phase was asked for");
        let seen = resp.as_response();
        assert_eq!(seen.header_all("x-limit"), ["9"]);
        assert_eq!(seen.header_all("vary"), ["accept", "x-client"]);

        run_response(&plugin, &req, &resp);
        assert_eq!(resp.as_response().header_all("vary"), ["accept", "x-client"], "applied once");
    }

    #[test]
    #[should_panic(expected = "read-only in the response phase")]
    fn response_headers_cannot_be_set_from_the_response_phase() {
        let req = TestRequest::new("GET", "/");
        req.read_only.set(true);
        req.as_request().set_response_header("x-late", "1");
    }

    #[test]
    #[should_panic(expected = "read-only in the response phase")]
    fn run_response_refuses_changes_to_the_request() {
        let plugin = Watcher { needs: Needs { response: true, ..Needs::default() } };
        let req = TestRequest::new("GET", "/").header("x-misbehave", "1");
        run_response(&plugin, &req, &TestResponse::new(200));
    }

    #[test]
    fn header_names_are_stored_lowercase_like_the_host_does() {
        let req = TestRequest::new("GET", "/").header("X-Mixed-Case", "1");
        req.as_request().append_header("X-Other", "2");
        assert_eq!(
            req.as_request().headers(),
            [("x-mixed-case".to_owned(), b"1".to_vec()), ("x-other".to_owned(), b"2".to_vec())]
        );
    }
}
