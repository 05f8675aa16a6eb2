//! Shared state behind the plugins' `state` import: rate-limit cells,
//! counters and a key/value store with TTL.

mod local;

pub use local::LocalStore;
/// The rate-limit algorithm is the SDK's, so a plugin's unit tests against
/// the SDK's mock host predict exactly what the gateway does.
pub use wasmgate_sdk::host::state::Decision;

/// Why a state operation failed (a remote backend being unreachable, say).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid rate limit: {0}")]
    InvalidLimit(String),
}

/// The backends, as an enum: the set is closed and the calls are hot.
pub enum StateStore {
    Local(LocalStore),
}

impl StateStore {
    pub fn local() -> Self {
        Self::Local(LocalStore::default())
    }

    pub async fn take(
        &self,
        key: &str,
        limit: u64,
        window_ms: u64,
        burst: u64,
        cost: u64,
    ) -> Result<Decision, StateError> {
        match self {
            Self::Local(s) => s.take(key, limit, window_ms, burst, cost),
        }
    }

    pub async fn increment(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, StateError> {
        match self {
            Self::Local(s) => Ok(s.increment(key, delta, ttl_ms)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Self::Local(s) => Ok(s.get(key)),
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), StateError> {
        match self {
            Self::Local(s) => {
                s.set(key, value, ttl_ms);
                Ok(())
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StateError> {
        match self {
            Self::Local(s) => {
                s.delete(key);
                Ok(())
            }
        }
    }
}
