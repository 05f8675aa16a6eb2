//! Giving memory back after a burst.
//!
//! A burst grows every busy plugin use's pool up to its concurrency, and
//! each instance holds its linear memory, its fiber stack and its store.
//! Kept warm for good, a burst of 64 sleeping or large-reply requests left
//! the gateway at 608 MB long after the traffic ended. So, every
//! `instance_idle` period, each pool drops the instances that no call
//! needed during the period (keeping one warm), the pooling allocator
//! decommits their slots (see `engine.rs`), and glibc is asked to return the
//! heap the burst's bodies and stores left free in its arenas.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::pool::PluginPool;
use super::slots::EngineSlots;

/// Every live pool of every snapshot, for the trimmer.
#[derive(Default)]
pub(super) struct Pools {
    pools: Mutex<Vec<Weak<PluginPool>>>,
}

impl Pools {
    pub(super) fn register(&self, pool: &Arc<PluginPool>) {
        self.pools.lock().unwrap().push(Arc::downgrade(pool));
    }

    /// Trims every live pool and forgets the dead ones; returns the
    /// instances dropped.
    fn trim(&self) -> usize {
        let live: Vec<Arc<PluginPool>> = {
            let mut pools = self.pools.lock().unwrap();
            pools.retain(|p| p.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        live.iter().map(|pool| pool.trim()).sum()
    }
}

/// Trims pools every `every` for as long as `pools` lives.
pub(super) fn spawn_trimmer(
    pools: Weak<Pools>,
    slots: Weak<EngineSlots>,
    every: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(handle.spawn(async move {
        let mut released_before = 0;
        loop {
            tokio::time::sleep(every).await;
            let (Some(pools), Some(slots)) = (pools.upgrade(), slots.upgrade()) else {
                return;
            };
            // Dropping instances decommits their slots and `malloc_trim`
            // walks every arena under its lock: system calls, off the
            // workers.
            let round = tokio::task::spawn_blocking(move || {
                let trimmed = pools.trim();
                // Instances dropped since the last round (trimmed, failed,
                // or grown too large to keep) freed their stores and the
                // bodies they handled: worth handing back.
                let released = slots.released.load(Ordering::Relaxed);
                if released != released_before {
                    release_heap();
                }
                (trimmed, released)
            });
            let Ok((trimmed, released)) = round.await else {
                return;
            };
            if trimmed > 0 {
                tracing::debug!(instances = trimmed, "dropped idle plugin instances");
            }
            released_before = released;
        }
    }))
}

/// Returns the free memory of glibc's arenas to the system.
pub(super) fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
