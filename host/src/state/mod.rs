//! Shared state behind the plugins' `state` import: rate-limit cells,
//! counters and a key/value store with TTL, in this process's memory or in
//! Redis (shared by every replica).

mod local;
pub(crate) mod outage;
mod redis;

pub(crate) use local::{LocalStore, MemoryBudget};
pub(crate) use outage::OnUnavailable;
pub(crate) use redis::{RedisSettings, RedisStore};
/// The rate-limit algorithm is the SDK's, so a plugin's unit tests against
/// the SDK's mock host predict exactly what the gateway does.
pub(crate) use wasmgate_sdk::host::state::Decision;

/// One `take`'s limit: `limit` events per `window_ms`, bursts of up to
/// `burst`, `cost` events taken at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub(crate) limit: u64,
    pub(crate) window_ms: u64,
    pub(crate) burst: u64,
    pub(crate) cost: u64,
}

impl Rate {
    /// The decision for a cell whose theoretical arrival time is `tat_us`
    /// (0: a new cell), and the cell's next one when allowed.
    fn decide(self, now_ms: u64, tat_us: u64) -> Result<(Decision, u64), StateError> {
        wasmgate_sdk::gcra::decide(now_ms, tat_us, self.limit, self.window_ms, self.burst, self.cost)
            .map_err(StateError::InvalidLimit)
    }
}

#[cfg(test)]
impl Rate {
    /// `limit` per `window_ms`, bursts of `burst`, one event at a time.
    pub(crate) fn per(limit: u64, window_ms: u64, burst: u64) -> Self {
        Self { limit, window_ms, burst, cost: 1 }
    }
}

/// The start of every key of `plugin`'s in the store: plugins share one
/// store, each in its own namespace.
pub(crate) fn namespace(plugin: &str) -> String {
    format!("{plugin}:")
}

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("invalid rate limit: {0}")]
    InvalidLimit(String),
    /// The backend is unreachable or too slow, and the policy is
    /// fail-closed: the request is refused with 503, whatever the plugin
    /// would do with an error.
    #[error("shared state is unavailable: {0}")]
    Unavailable(String),
    /// The backend answered the call with an error.
    #[error("state backend error: {0}")]
    Backend(String),
    /// The host refused the call (a key or value out of bounds).
    #[error("{0}")]
    Refused(String),
}

impl From<String> for StateError {
    fn from(reason: String) -> Self {
        Self::Refused(reason)
    }
}

/// What a plugin call fails with when the backend is unavailable and the
/// policy is fail-closed: the request is answered 503.
#[derive(Debug, thiserror::Error)]
#[error("shared state is unavailable: {0}")]
pub(crate) struct Unavailable(pub String);

/// How a `state` import answers a store's result: the plugin is told of
/// most errors; under fail-closed an outage fails the call instead, whatever
/// the plugin would do with an error.
pub(crate) fn answer<T>(result: Result<T, StateError>) -> wasmtime::Result<Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(StateError::Unavailable(reason)) => Err(Unavailable(reason).into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// `[state]`, checked: which backend the `state` import uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StateSettings {
    #[default]
    Local,
    Redis(RedisSettings),
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Purged {
    pub deleted: u64,
    /// False when the scan stopped at its bound with keys possibly left:
    /// purge again.
    pub complete: bool,
}

/// The backends, as an enum: the set is closed and the calls are hot.
pub(crate) enum StateStore {
    Local(LocalStore),
    Redis(RedisStore),
}

impl StateStore {
    /// The store `[state]` asks for, the local memory (Redis's fallback
    /// too) held to `budget`; needs a Tokio runtime for Redis, which is
    /// connected on first use.
    pub(crate) fn new(settings: &StateSettings, budget: MemoryBudget) -> Result<Self, String> {
        Ok(match settings {
            StateSettings::Local => Self::Local(LocalStore::new(budget)),
            StateSettings::Redis(redis) => Self::Redis(RedisStore::new(redis, budget)?),
        })
    }

    /// Whether every call answers at once, never waiting on the network.
    pub(crate) fn answers_at_once(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// The backend, outages begun since start and calls answered by the
    /// `on_unavailable` policy meanwhile (zeros with the local backend,
    /// which is always available), and what the local memory holds of
    /// values and of cells and counters against their budgets (with Redis:
    /// what its `local` fallback holds), for `/status`.
    pub(crate) fn status(&self) -> serde_json::Value {
        let (backend, local, outages, answered) = match self {
            Self::Local(s) => ("local", s, 0, 0),
            Self::Redis(s) => ("redis", s.fallback(), s.outage().outages(), s.outage().answered_by_policy()),
        };
        let (values, counters) = local.usage();
        serde_json::json!({
            "backend": backend,
            "outages": outages,
            "answered_by_policy": answered,
            "memory": {"values": values, "counters": counters},
        })
    }

    /// Drops the values, cells and counters whose key starts with `prefix`
    /// (the plugin's namespace included): how many, and whether all were
    /// reached (Redis is scanned within a bound, see
    /// [`RedisStore::purge`]).
    pub(crate) async fn purge(&self, prefix: &str) -> Result<Purged, StateError> {
        match self {
            Self::Local(s) => Ok(Purged { deleted: s.purge(prefix), complete: true }),
            Self::Redis(s) => s.purge(prefix).await,
        }
    }

    pub(crate) async fn take(&self, key: &str, rate: Rate) -> Result<Decision, StateError> {
        match self {
            Self::Local(s) => s.take(key, rate),
            Self::Redis(s) => s.take(key, rate).await,
        }
    }

    pub(crate) async fn increment(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, StateError> {
        match self {
            Self::Local(s) => s.increment(key, delta, ttl_ms),
            Self::Redis(s) => s.increment(key, delta, ttl_ms).await,
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Self::Local(s) => Ok(s.get(key)),
            Self::Redis(s) => s.get(key).await,
        }
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), StateError> {
        match self {
            Self::Local(s) => s.set(key, value, ttl_ms),
            Self::Redis(s) => s.set(key, value, ttl_ms).await,
        }
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StateError> {
        match self {
            Self::Local(s) => {
                s.delete(key);
                Ok(())
            }
            Self::Redis(s) => s.delete(key).await,
        }
    }
}
