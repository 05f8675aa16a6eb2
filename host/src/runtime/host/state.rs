//! `state`: the shared store (rate limits, counters, values), each
//! plugin in its own key namespace.

use crate::message::bounds::{MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES};
use wasmtime::component::Linker;

use crate::runtime::CONTRACT_VERSION;
use crate::runtime::bindings::state;
use crate::runtime::instance::InstanceState;

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
                let d = store.take(&key?, crate::state::Rate { limit, window_ms, burst, cost }).await?;
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

impl InstanceState {
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
}

/// `state` for the synchronous call path: the same functions, each run to
/// its end on the calling thread. Only a local store is linked this way,
/// and it answers at once; a store that waits (Redis) keeps its plugins on
/// the asynchronous path.
pub(in crate::runtime) fn add_sync_to_linker(l: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    let mut state = l.instance(&format!("wasmgate:plugin/state@{CONTRACT_VERSION}"))?;
    macro_rules! here {
        ($name:literal, $method:ident($($arg:ident: $ty:ty),*)) => {
            state.func_wrap($name, |mut cx, ($($arg,)*): ($($ty,)*)| {
                let out = cx.data_mut().here(false, async |s| state::Host::$method(s, $($arg),*).await);
                Ok((out??,))
            })?
        };
    }
    here!("take", take(key: String, limit: u64, window_ms: u64, burst: u64, cost: u64));
    here!("increment", increment(key: String, delta: i64, ttl_ms: u64));
    here!("get", get(key: String));
    here!("set", set(key: String, value: Vec<u8>, ttl_ms: Option<u64>));
    here!("delete", delete(key: String));
    Ok(())
}
