//! State in Redis, shared by every gateway replica that uses the same
//! server and key prefix.
//!
//! A take is one script run on the server (one round trip, atomic): it
//! reads the server's clock (replicas' clocks differ), applies the GCRA's
//! comparison and stores the booking, and answers the time and the cell it
//! found; the decision itself is then [`gcra::decide`] on those two values,
//! the same function the local store and the SDK's mock host run, so the
//! backends cannot drift apart. The script needs the limit's numbers below
//! 2^53 µs to compare exactly in Lua's doubles: [`gcra::params`] refuses
//! larger ones for every backend.
//!
//! Connections: `pool_size` multiplexed connections, each pipelining every
//! caller's commands on one socket and reconnecting by itself; Redis runs
//! commands one at a time, so one connection usually suffices and more
//! only spread the socket work over more threads. Every call is bounded by
//! `timeout_ms`; a call that fails or runs past it is answered by the
//! `on_unavailable` policy (see [`super::outage`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, Script, ServerErrorKind};
use wasmgate_sdk::gcra;

use super::local::{LocalStore, MemoryBudget};

use super::outage::{OnUnavailable, Outage};
use super::{Decision, Purged, Rate, StateError};
use crate::clock;

const BACKEND: &str = "redis";

/// Longest TTL sent to Redis (about 35,000 years): Redis refuses an expiry
/// time past `i64::MAX` ms, and a plugin may ask for `u64::MAX`.
const MAX_TTL_MS: u64 = 1 << 50;

/// Keys one `SCAN` step of a purge asks Redis to look at.
const PURGE_SCAN_COUNT: u64 = 1_000;
/// How long a purge may scan before it answers with what it did: a purge
/// of a large keyspace is repeated rather than holding the admin call (and
/// a connection shared with request traffic) for minutes.
const PURGE_TIME: Duration = Duration::from_secs(10);

/// KEYS[1]: the cell. ARGV: cost × T and the tolerance in µs, then (tests
/// only) a fixed time in ms instead of the server's. Answers the time in ms,
/// the cell's tat before the take (0: none) and whether it booked the take.
const TAKE: &str = r"
local now_ms
if ARGV[3] then
  now_ms = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now = now_ms * 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local booked = math.max(tat, now) + tonumber(ARGV[1])
if booked > now + tonumber(ARGV[2]) then
  return {now_ms, tat, 0}
end
local ttl = math.ceil((booked - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', booked), 'PX', string.format('%.0f', ttl))
return {now_ms, tat, 1}
";

/// KEYS[1]: the counter. ARGV: delta, TTL in ms set when the counter is
/// made (0: gone at once). Saturates like the local store; the value is
/// answered as text, since Lua's numbers lose integers past 2^53.
const INCREMENT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[2] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  end
  return ARGV[1]
end
local r = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
  if not string.find(r.err, 'overflow') then
    return r
  end
  local bound = '9223372036854775807'
  if string.sub(ARGV[1], 1, 1) == '-' then
    bound = '-9223372036854775808'
  end
  redis.call('SET', KEYS[1], bound, 'KEEPTTL')
  return bound
end
return redis.call('GET', KEYS[1])
";

/// `[state] backend = "redis"`, checked.
#[derive(Clone, PartialEq)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` (TLS), with the password if any.
    pub url: String,
    pub key_prefix: String,
    pub pool_size: usize,
    pub timeout: Duration,
    pub on_unavailable: OnUnavailable,
}

/// Without the URL's password: configs are logged.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match redis::parse_redis_url(&self.url) {
            Some(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.url.clone(),
        };
        f.debug_struct("RedisSettings")
            .field("url", &url)
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("on_unavailable", &self.on_unavailable)
            .finish()
    }
}

impl RedisSettings {
    /// Why a URL cannot be used, without connecting.
    pub fn check_url(url: &str) -> Result<(), String> {
        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
            return Err("must start with redis:// or rediss:// (TLS)".into());
        }
        redis::Client::open(url).map(drop).map_err(|e| format!("not a Redis URL: {e}"))
    }
}

pub(crate) struct RedisStore {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    policy: OnUnavailable,
    /// Answers while Redis is away, with `on_unavailable = "local"`.
    fallback: LocalStore,
    outage: Outage,
    take: Script,
    increment: Script,
}

impl RedisStore {
    /// Connects lazily: a gateway starts while Redis is down (the policy
    /// answers until it is up), and each connection reconnects by itself.
    /// Needs a Tokio runtime.
    pub(crate) fn new(settings: &RedisSettings, fallback: MemoryBudget) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|e| format!("state.url: {e}"))?;
        // One attempt per call: a call waits for no retry schedule, and the
        // next call tries again.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout));
        let connections = (0..settings.pool_size.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<RedisResult<_>>()
            .map_err(|e| format!("state: {e}"))?;
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            policy: settings.on_unavailable,
            fallback: LocalStore::new(fallback),
            outage: Outage::default(),
            take: Script::new(TAKE),
            increment: Script::new(INCREMENT),
        })
    }

    pub(crate) fn outage(&self) -> &Outage {
        &self.outage
    }

    /// What answers while Redis is away, with `on_unavailable = "local"`.
    pub(crate) fn fallback(&self) -> &LocalStore {
        &self.fallback
    }

    fn connection(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].clone()
    }

    /// Cells, counters and values apart, so that one kind is never read as
    /// another.
    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    /// Runs one call within the timeout; `Unavailable` when Redis did not
    /// answer it.
    async fn attempt<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T, StateError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if !unavailable(&e) => Err(StateError::Backend(e.to_string())),
            Ok(Err(e)) => Err(StateError::Unavailable(e.to_string())),
            Err(_) => Err(StateError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Runs one call within the timeout. `None`: Redis did not answer, and
    /// the policy lets the caller answer in its stead.
    async fn call<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<Option<T>, StateError> {
        let error = match self.attempt(call).await {
            Ok(value) => {
                self.outage.succeeded(BACKEND);
                return Ok(Some(value));
            }
            Err(StateError::Unavailable(error)) => error,
            Err(e) => return Err(e),
        };
        self.outage.failed(BACKEND, self.policy, &error);
        match self.policy {
            OnUnavailable::FailClosed => Err(StateError::Unavailable(error)),
            OnUnavailable::FailOpen | OnUnavailable::Local => Ok(None),
        }
    }

    pub(crate) async fn take(&self, key: &str, rate: Rate) -> Result<Decision, StateError> {
        self.take_at(None, key, rate).await
    }

    /// `now_ms`: a fixed time instead of the server's, for tests that
    /// compare backends call by call.
    async fn take_at(&self, now_ms: Option<u64>, key: &str, rate: Rate) -> Result<Decision, StateError> {
        let (_, tolerance, cost_us) =
            gcra::params(rate.limit, rate.window_ms, rate.burst, rate.cost).map_err(StateError::InvalidLimit)?;
        let mut invocation = self.take.key(self.key("t", key));
        invocation.arg(cost_us).arg(tolerance);
        if let Some(now_ms) = now_ms {
            invocation.arg(now_ms);
        }
        let mut connection = self.connection();
        let found = self.call(invocation.invoke_async::<(u64, u64, bool)>(&mut connection)).await?;
        let (now_ms, tat, booked) = match found {
            Some(found) => found,
            None if self.policy == OnUnavailable::Local => {
                return self.fallback.take(key, rate);
            }
            // Fail-open: what a fresh bucket would answer.
            None => (now_ms.unwrap_or_else(clock::now_ms), 0, true),
        };
        let (decision, _) = rate.decide(now_ms, tat)?;
        if decision.allowed != booked {
            // Cannot happen while the script and `decide` agree; if they
            // ever did not, the stored cell is the truth.
            return Err(StateError::Backend(format!("the take script booked {booked}, the GCRA says {decision:?}")));
        }
        Ok(decision)
    }

    pub(crate) async fn increment(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, StateError> {
        let mut invocation = self.increment.key(self.key("c", key));
        invocation.arg(delta).arg(ttl_ms.min(MAX_TTL_MS));
        let mut connection = self.connection();
        match self.call(invocation.invoke_async::<i64>(&mut connection)).await? {
            Some(value) => Ok(value),
            None if self.policy == OnUnavailable::Local => self.fallback.increment(key, delta, ttl_ms),
            None => Ok(delta),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let mut connection = self.connection();
        let mut get = redis::cmd("GET");
        get.arg(self.key("v", key));
        match self.call(get.query_async::<Option<Vec<u8>>>(&mut connection)).await? {
            Some(value) => Ok(value),
            None if self.policy == OnUnavailable::Local => Ok(self.fallback.get(key)),
            None => Ok(None),
        }
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), StateError> {
        let mut cmd = match ttl_ms {
            // Redis refuses a TTL of 0; the local store's entry is gone at once.
            Some(0) => redis::cmd("DEL"),
            _ => redis::cmd("SET"),
        };
        cmd.arg(self.key("v", key));
        if ttl_ms != Some(0) {
            cmd.arg(value.as_slice());
        }
        if let Some(ttl) = ttl_ms.filter(|ttl| *ttl > 0) {
            cmd.arg("PX").arg(ttl.min(MAX_TTL_MS));
        }
        let mut connection = self.connection();
        match self.call(cmd.exec_async(&mut connection)).await? {
            None if self.policy == OnUnavailable::Local => self.fallback.set(key, value, ttl_ms),
            _ => Ok(()),
        }
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StateError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key("t", key)).arg(self.key("c", key)).arg(self.key("v", key));
        let mut connection = self.connection();
        if self.call(cmd.exec_async(&mut connection)).await?.is_none() && self.policy == OnUnavailable::Local {
            self.fallback.delete(key);
        }
        Ok(())
    }

    /// `SCAN`s for the cells, counters and values under `prefix` and
    /// `UNLINK`s them (freed in Redis's background), a step of
    /// [`PURGE_SCAN_COUNT`] keys at a time, for at most [`PURGE_TIME`];
    /// the local fallback's are dropped too. An unreachable Redis is an
    /// error whatever `on_unavailable` says: nothing was purged.
    pub(crate) async fn purge(&self, prefix: &str) -> Result<Purged, StateError> {
        let pattern = format!("{}[tcv]:{}*", glob_escape(&self.prefix), glob_escape(prefix));
        let mut deleted = self.fallback.purge(prefix);
        let deadline = tokio::time::Instant::now() + PURGE_TIME;
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(PURGE_SCAN_COUNT);
            let (next, keys) = self.attempt(scan.query_async::<(u64, Vec<Vec<u8>>)>(&mut self.connection())).await?;
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(keys);
                deleted += self.attempt(unlink.query_async::<u64>(&mut self.connection())).await?;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(Purged { deleted, complete: true });
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Purged { deleted, complete: false });
            }
        }
    }
}

/// `text` matched literally by a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether an error means Redis cannot serve now (the policy answers),
/// rather than that a call was wrong (the plugin is told).
fn unavailable(e: &RedisError) -> bool {
    !matches!(
        e.kind(),
        ErrorKind::Parse
            | ErrorKind::UnexpectedReturnType
            | ErrorKind::Server(
                ServerErrorKind::ResponseError | ServerErrorKind::ExecAbort | ServerErrorKind::CrossSlot
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;
    use wasmgate_testbed::redis::TestRedis;

    fn connect(settings: &RedisSettings) -> RedisStore {
        RedisStore::new(settings, MemoryBudget::default()).unwrap()
    }

    fn settings(redis: &TestRedis, prefix: &str) -> RedisSettings {
        RedisSettings {
            url: redis.url(),
            key_prefix: prefix.into(),
            pool_size: 2,
            timeout: Duration::from_secs(5),
            on_unavailable: OnUnavailable::FailClosed,
        }
    }

    /// Redis too slow (frozen), then gone, then back empty: each policy
    /// answers within the timeout, an outage is counted once however many
    /// calls it fails, and the stores share again once Redis is back.
    #[tokio::test]
    async fn each_policy_answers_while_redis_is_away() {
        let mut server = TestRedis::start();
        let store = |server: &TestRedis, on_unavailable| {
            let timeout = Duration::from_millis(300);
            connect(&RedisSettings { on_unavailable, timeout, ..settings(server, "o:") })
        };
        let open = store(&server, OnUnavailable::FailOpen);
        let closed = store(&server, OnUnavailable::FailClosed);
        let local = store(&server, OnUnavailable::Local);
        for s in [&open, &closed, &local] {
            assert!(s.take("k", Rate::per(3, 60_000, 3)).await.unwrap().allowed);
        }
        assert!(!open.take("k", Rate::per(3, 60_000, 3)).await.unwrap().allowed, "shared while up");
        open.set("v", b"up".to_vec(), None).await.unwrap();

        server.pause();
        let slow = closed.get("v").await.unwrap_err();
        assert!(matches!(slow, StateError::Unavailable(_)), "{slow}");
        assert!(open.take("p", Rate::per(3, 60_000, 3)).await.unwrap().allowed);
        server.resume();
        recovered(&closed).await;
        recovered(&open).await;
        assert_eq!((closed.outage().outages(), open.outage().outages()), (1, 1));

        let before = (open.outage().answered_by_policy(), closed.outage().answered_by_policy());
        server.stop();
        for _ in 0..5 {
            let d = open.take("k", Rate::per(3, 60_000, 3)).await.unwrap();
            assert_eq!((d.allowed, d.remaining), (true, 2), "fail-open: a fresh bucket");
        }
        assert_eq!(open.get("v").await.unwrap(), None);
        assert_eq!(open.increment("n", 2, 60_000).await.unwrap(), 2);
        open.set("v", b"lost".to_vec(), None).await.unwrap();
        let invalid = open.take("k", Rate::per(0, 60_000, 3)).await.unwrap_err();
        assert!(matches!(invalid, StateError::InvalidLimit(_)), "checked before Redis: {invalid}");

        for error in
            [closed.take("k", Rate::per(3, 60_000, 3)).await.unwrap_err(), closed.delete("v").await.unwrap_err()]
        {
            assert!(matches!(error, StateError::Unavailable(_)), "{error}");
        }

        let mut passed = 0;
        for _ in 0..5 {
            passed += usize::from(local.take("k", Rate::per(3, 60_000, 3)).await.unwrap().allowed);
        }
        assert_eq!(passed, 3, "local: this replica's own limit");
        local.set("v", b"local".to_vec(), None).await.unwrap();
        assert_eq!(local.get("v").await.unwrap().as_deref(), Some(&b"local"[..]));
        assert_eq!(local.increment("n", 2, 60_000).await.unwrap(), 2);
        assert_eq!(local.increment("n", 2, 60_000).await.unwrap(), 4);

        assert_eq!((open.outage().outages(), open.outage().answered_by_policy() - before.0), (2, 8));
        assert_eq!((closed.outage().outages(), closed.outage().answered_by_policy() - before.1), (2, 2));
        let status = StateStore::Redis(local).status();
        assert_eq!((&status["answered_by_policy"], &status["outages"]), (&9.into(), &1.into()), "{status}");

        server.restart();
        let local = store(&server, OnUnavailable::Local);
        for s in [&open, &closed, &local] {
            recovered(s).await;
        }
        let passed = [&open, &closed, &local, &open]
            .into_iter()
            .map(|s| s.take("k", Rate::per(3, 60_000, 3)))
            .collect::<futures_util::future::JoinAll<_>>()
            .await;
        let passed = passed.into_iter().filter(|d| d.as_ref().unwrap().allowed).count();
        assert_eq!(passed, 3, "one limit again, across the stores");
        assert_eq!(closed.outage().outages(), 2, "the restart ended the second outage");
    }

    /// Calls until one reaches Redis (the first after a restart may find
    /// the old connection broken).
    async fn recovered(store: &RedisStore) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let answered = || store.outage().answered_by_policy();
        loop {
            let before = answered();
            let _ = store.get("probe").await;
            if answered() == before {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "Redis is reachable again within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The same calls at the same instants get the same decisions from
    /// both backends: bursts, refusals, costs, peeks, refills, uneven rates.
    #[tokio::test]
    async fn redis_and_local_decide_alike() {
        let server = TestRedis::start();
        let redis = connect(&settings(&server, "eq:"));
        let local = LocalStore::default();
        let t0 = clock::now_ms();
        // (ms after t0, key, limit, window, burst, cost)
        let mut calls = Vec::new();
        for i in 0..12 {
            calls.push((0, "a", 10, 60_000, 10, 1));
            calls.push((i * 3, "b", 3, 10_000, 2, i % 3));
        }
        calls.extend([
            (5_999, "a", 10, 60_000, 10, 1),
            (6_000, "a", 10, 60_000, 10, 1),
            (6_000, "a", 10, 60_000, 10, 1),
            (30_000, "a", 10, 60_000, 10, 0),
            (30_000, "a", 10, 60_000, 10, 4),
            (30_001, "a", 10, 60_000, 10, 2),
            (40_000, "c", 7, 1_000, 7, 7),
            (40_142, "c", 7, 1_000, 7, 1),
            (40_143, "c", 7, 1_000, 7, 1),
        ]);
        let mut refused = 0;
        for (i, &(at, key, limit, window_ms, burst, cost)) in calls.iter().enumerate() {
            let (now, rate) = (t0 + at, Rate { limit, window_ms, burst, cost });
            let from_redis = redis.take_at(Some(now), key, rate).await.unwrap();
            let from_local = local.take_at(now, key, rate).unwrap();
            assert_eq!(from_redis, from_local, "call {i}: {:?}", calls[i]);
            refused += usize::from(!from_redis.allowed);
        }
        assert!(refused >= 5, "the sequence exercises refusals too ({refused})");
        let error = redis.take("a", Rate { limit: 1, window_ms: 1_000, burst: 1, cost: 2 }).await.unwrap_err();
        assert!(error.to_string().contains("exceeds the burst"), "{error}");
        assert_eq!(server.command("DBSIZE"), ":3", "one cell per key");
    }

    /// Without a fixed time the server's clock decides: a bucket drained
    /// through one store is drained for another using the same server.
    #[tokio::test]
    async fn stores_on_one_server_share_cells_counters_and_values() {
        let server = TestRedis::start();
        let one = connect(&settings(&server, "shared:"));
        let two = connect(&settings(&server, "shared:"));
        let other = connect(&settings(&server, "other:"));
        for _ in 0..3 {
            assert!(one.take("k", Rate::per(3, 60_000, 3)).await.unwrap().allowed);
        }
        let refused = two.take("k", Rate::per(3, 60_000, 3)).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!(refused.retry_after_ms > 0 && refused.retry_after_ms <= 20_000, "{refused:?}");
        assert!(other.take("k", Rate::per(3, 60_000, 3)).await.unwrap().allowed, "another prefix, another cell");

        assert_eq!(one.increment("n", 2, 60_000).await.unwrap(), 2);
        assert_eq!(two.increment("n", 5, 60_000).await.unwrap(), 7);
        assert_eq!(one.increment("big", i64::MAX, u64::MAX).await.unwrap(), i64::MAX);
        assert_eq!(two.increment("big", 1, 60_000).await.unwrap(), i64::MAX, "saturates");
        assert_eq!(one.increment("low", i64::MIN, 60_000).await.unwrap(), i64::MIN);
        assert_eq!(two.increment("low", -1, 60_000).await.unwrap(), i64::MIN);
        assert_eq!(one.increment("gone", 4, 0).await.unwrap(), 4);
        assert_eq!(one.increment("gone", 4, 0).await.unwrap(), 4, "a TTL of 0 keeps nothing");

        one.set("v", b"bytes\0\xff".to_vec(), None).await.unwrap();
        assert_eq!(two.get("v").await.unwrap().as_deref(), Some(&b"bytes\0\xff"[..]));
        assert_eq!(other.get("v").await.unwrap(), None);
        two.set("v", b"x".to_vec(), Some(0)).await.unwrap();
        assert_eq!(one.get("v").await.unwrap(), None, "a TTL of 0 expires at once");
        one.set("v", b"y".to_vec(), Some(u64::MAX)).await.unwrap();
        assert_eq!(two.get("v").await.unwrap().as_deref(), Some(&b"y"[..]));
        let pttl: i64 = server.command("PTTL shared:v:v")[1..].parse().unwrap();
        assert!(pttl > 1 << 49, "a long TTL is kept as a Redis TTL ({pttl})");
        two.delete("v").await.unwrap();
        two.delete("n").await.unwrap();
        assert_eq!(one.get("v").await.unwrap(), None);
        assert_eq!(one.increment("n", 1, 60_000).await.unwrap(), 1);
    }

    /// A purge reaches every kind under the prefix, takes glob characters
    /// in the prefix literally, leaves other prefixes and gateways alone,
    /// and scans a keyspace larger than one step.
    #[tokio::test]
    async fn purge_unlinks_by_prefix_in_steps() {
        let server = TestRedis::start();
        let store = connect(&settings(&server, "p:"));
        let other = connect(&settings(&server, "q:"));
        for i in 0..2_500 {
            store.set(&format!("cache:GET h/a/{i}"), b"v".to_vec(), Some(60_000)).await.unwrap();
        }
        store.set("cache:GET h/a*", b"star".to_vec(), None).await.unwrap();
        store.set("cache:GET h/b/1", b"v".to_vec(), None).await.unwrap();
        store.increment("cache:GET h/a/n", 1, 60_000).await.unwrap();
        assert!(store.take("cache:GET h/a/t", Rate::per(3, 60_000, 3)).await.unwrap().allowed);
        other.set("cache:GET h/a/1", b"v".to_vec(), None).await.unwrap();

        let purged = store.purge("cache:GET h/a*").await.unwrap();
        assert_eq!(purged, Purged { deleted: 1, complete: true }, "`*` is literal");
        let purged = store.purge("cache:GET h/a/").await.unwrap();
        assert_eq!(purged, Purged { deleted: 2_502, complete: true });
        assert_eq!(store.get("cache:GET h/a/7").await.unwrap(), None);
        assert_eq!(store.increment("cache:GET h/a/n", 1, 60_000).await.unwrap(), 1, "the counter went too");
        assert!(store.get("cache:GET h/b/1").await.unwrap().is_some());
        assert!(other.get("cache:GET h/a/1").await.unwrap().is_some(), "another key_prefix");
    }
}
