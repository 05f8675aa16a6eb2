//! In-process state: sharded maps under short mutexes. Exact within one
//! gateway process; Redis extends that to a fleet.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

use super::{Decision, Rate, StateError};
use crate::clock;

const SHARDS: usize = 16;
/// Expired entries are swept from a shard every this many writes to it, so
/// memory stays bounded by live keys without a background task.
const SWEEP_EVERY: u32 = 1024;

enum Entry {
    Cell { tat_us: u64, expires: Instant },
    Counter { value: i64, expires: Instant },
    Value { bytes: Vec<u8>, expires: Option<Instant> },
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        match self {
            Entry::Cell { expires, .. } | Entry::Counter { expires, .. } => *expires <= now,
            Entry::Value { expires, .. } => expires.is_some_and(|e| e <= now),
        }
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<String, Entry>,
    writes: u32,
}

impl Shard {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| e.expired(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: &str, entry: Entry, now: Instant) {
        self.writes += 1;
        if self.writes >= SWEEP_EVERY {
            self.writes = 0;
            self.entries.retain(|_, e| !e.expired(now));
        }
        self.entries.insert(key.to_owned(), entry);
    }
}

pub(crate) struct LocalStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for LocalStore {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), hasher: RandomState::new() }
    }
}

fn after_ms(now: Instant, ms: u64) -> Instant {
    now + std::time::Duration::from_millis(ms)
}

impl LocalStore {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[self.hasher.hash_one(key) as usize % SHARDS].lock().unwrap()
    }

    /// The cell is updated where it lies: one lookup, and no new key
    /// allocated, for a key that was seen before (the usual case).
    pub(crate) fn take(&self, key: &str, rate: Rate) -> Result<Decision, StateError> {
        self.take_at(clock::now_ms(), key, rate)
    }

    /// `take` at a given wall-clock time: tests compare backends with it.
    pub(super) fn take_at(&self, now_ms: u64, key: &str, rate: Rate) -> Result<Decision, StateError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some(entry) = shard.entries.get_mut(key)
            && let Entry::Cell { tat_us, expires } = entry
            && *expires > now
        {
            let (decision, tat) = rate.decide(now_ms, *tat_us)?;
            if decision.allowed {
                (*tat_us, *expires) = (tat, after_ms(now, decision.reset_ms + 1));
            }
            return Ok(decision);
        }
        let (decision, tat_us) = rate.decide(now_ms, 0)?;
        if decision.allowed {
            let expires = after_ms(now, decision.reset_ms + 1);
            shard.insert(key, Entry::Cell { tat_us, expires }, now);
        }
        Ok(decision)
    }

    pub(crate) fn increment(&self, key: &str, delta: i64, ttl_ms: u64) -> i64 {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some(Entry::Counter { value, .. }) = shard.live(key, now) {
            // Saturating: an overflow would panic under the shard's lock.
            *value = value.saturating_add(delta);
            return *value;
        }
        let expires = after_ms(now, ttl_ms);
        shard.insert(key, Entry::Counter { value: delta, expires }, now);
        delta
    }

    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.shard(key).live(key, Instant::now()) {
            Some(Entry::Value { bytes, .. }) => Some(bytes.clone()),
            _ => None,
        }
    }

    pub(crate) fn set(&self, key: &str, bytes: Vec<u8>, ttl_ms: Option<u64>) {
        let now = Instant::now();
        let expires = ttl_ms.map(|ms| after_ms(now, ms));
        self.shard(key).insert(key, Entry::Value { bytes, expires }, now);
    }

    pub(crate) fn delete(&self, key: &str) {
        self.shard(key).entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_values_expire() {
        let s = LocalStore::default();
        assert_eq!(s.increment("c", 2, 60_000), 2);
        assert_eq!(s.increment("c", 3, 60_000), 5);
        s.set("k", b"v".to_vec(), Some(0));
        assert_eq!(s.get("k"), None, "a zero TTL expires at once");
        s.set("k", b"v".to_vec(), None);
        assert_eq!(s.get("k").as_deref(), Some(&b"v"[..]));
        s.delete("k");
        assert_eq!(s.get("k"), None);
    }

    #[test]
    fn counters_saturate_and_long_ttls_are_kept() {
        let s = LocalStore::default();
        assert_eq!(s.increment("c", i64::MAX, u64::MAX), i64::MAX);
        assert_eq!(s.increment("c", 1, u64::MAX), i64::MAX);
        assert_eq!(s.increment("d", i64::MIN, 60_000), i64::MIN);
        assert_eq!(s.increment("d", -1, 60_000), i64::MIN);
        s.set("k", b"v".to_vec(), Some(u64::MAX));
        assert_eq!(s.get("k").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn take_counts_per_key() {
        let s = LocalStore::default();
        let allowed = (0..8).filter(|_| s.take("a", Rate::per(5, 60_000, 5)).unwrap().allowed).count();
        assert_eq!(allowed, 5);
        assert!(s.take("b", Rate::per(5, 60_000, 5)).unwrap().allowed);
    }
}
