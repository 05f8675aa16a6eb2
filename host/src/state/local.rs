//! In-process state: sharded maps under short mutexes, held to a memory
//! budget. Exact within one gateway process; Redis extends that to a fleet.
//!
//! Without a bound, a client that asks for distinct URLs through a cache,
//! or presents distinct keys to a rate limiter, grows the store until the
//! process dies. So every entry is counted (key, value and a fixed
//! overhead, [`ENTRY_OVERHEAD`]) and a write that would pass the budget
//! first evicts: an expired entry if a sample finds one, else the least
//! recently used of the sample (Redis's approximated LRU, with its sample
//! of 5: constant work per write whatever the store holds).
//!
//! Values (`get`/`set`) and rate-limit cells and counters have budgets of
//! their own, so a flood of cached responses cannot evict the cells that
//! limit the flood, and a flood of limiter keys cannot empty a cache.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

use indexmap::IndexMap;
use indexmap::map::{RawEntryApiV1, raw_entry_v1::RawEntryMut};

use super::{Decision, Rate, StateError};
use crate::clock;

const SHARDS: usize = 16;
/// Expired entries are swept from a shard every this many writes to it, so
/// memory stays bounded by live keys without a background task.
const SWEEP_EVERY: u32 = 1024;
/// What an entry costs beyond its key and value bytes: its slot in the
/// map (hash, key and value headers, expiry, recency), its index, and the
/// allocator's headers of the key and value. Measured by filling a 128 MiB
/// budget with 60-byte keys: resident memory grew by 1.04 times the count
/// with 16-byte values (627,000 entries), 1.01 times with 100-byte and
/// 1 KiB ones.
pub(crate) const ENTRY_OVERHEAD: usize = 128;
/// Entries a write samples to choose the one it evicts.
const EVICTION_SAMPLE: usize = 5;

/// `[state] max_memory_bytes` and `counter_memory_bytes`, checked: what
/// the local store may hold, counted as the sum of its entries' keys,
/// values and [`ENTRY_OVERHEAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Values (`get`/`set`).
    pub values: usize,
    /// Rate-limit cells and counters.
    pub counters: usize,
}

impl MemoryBudget {
    pub const DEFAULT_TOTAL: usize = 256 << 20;
    /// Smallest total: each of the 16 shards of each class keeps room for
    /// entries of a few KiB.
    pub const MIN_TOTAL: usize = 1 << 20;
    /// Smallest share of either class.
    pub const MIN_CLASS: usize = 64 << 10;

    /// `total` bytes, `counters` of them for cells and counters (a quarter
    /// when not given).
    pub fn split(total: usize, counters: Option<usize>) -> Self {
        let counters = counters.unwrap_or(total / 4);
        Self { values: total.saturating_sub(counters), counters }
    }

    pub fn total(self) -> usize {
        self.values + self.counters
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        Self::split(Self::DEFAULT_TOTAL, None)
    }
}

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

    fn cost(&self, key: &str) -> usize {
        let value = match self {
            Entry::Value { bytes, .. } => bytes.len(),
            Entry::Cell { .. } | Entry::Counter { .. } => 0,
        };
        key.len() + value + ENTRY_OVERHEAD
    }
}

/// A key with its hash, computed once per operation: the hash picks the
/// shard and then finds the entry within it (SipHash, keyed per process,
/// so clients cannot aim keys at one bucket).
#[derive(Clone, Copy)]
struct Hashed<'a> {
    key: &'a str,
    hash: u64,
}

impl Hashed<'_> {
    /// Bits the shard's own table does not index by (it uses the low bits
    /// for the bucket and the top seven for its tags).
    fn shard(self) -> usize {
        (self.hash >> 32) as usize % SHARDS
    }
}

struct Slot {
    entry: Entry,
    /// The shard's clock when last read or written: the eviction order.
    used: u64,
}

struct Shard {
    /// Looked up and filled by [`Hashed`] only; the hasher (the store's)
    /// is there so that any other lookup would agree.
    entries: IndexMap<String, Slot, RandomState>,
    /// What the entries cost, by [`Entry::cost`].
    bytes: usize,
    budget: usize,
    clock: u64,
    writes: u32,
    evicted: u64,
}

impl Shard {
    fn new(budget: usize, hasher: RandomState) -> Self {
        Self { entries: IndexMap::with_hasher(hasher), bytes: 0, budget, clock: 0, writes: 0, evicted: 0 }
    }

    fn index_of(&self, key: Hashed<'_>) -> Option<usize> {
        self.entries.raw_entry_v1().index_from_hash(key.hash, |k| k == key.key)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The live entry at `key`, marked used; an expired one is dropped.
    fn live(&mut self, key: Hashed<'_>, now: Instant) -> Option<&mut Entry> {
        let i = self.index_of(key)?;
        if self.entries[i].entry.expired(now) {
            self.remove_index(i);
            return None;
        }
        let used = self.tick();
        let slot = &mut self.entries[i];
        slot.used = used;
        Some(&mut slot.entry)
    }

    fn remove_index(&mut self, i: usize) {
        if let Some((key, slot)) = self.entries.swap_remove_index(i) {
            self.bytes = self.bytes.saturating_sub(slot.entry.cost(&key));
        }
    }

    fn remove(&mut self, key: Hashed<'_>) {
        if let Some(i) = self.index_of(key) {
            self.remove_index(i);
        }
    }

    /// Stores `entry` at `key`, evicting what it takes to stay within the
    /// budget. Refused when the entry alone is larger than the shard's
    /// budget (the key's old entry is then gone too: a failed write leaves
    /// no stale value behind).
    fn insert(&mut self, key: Hashed<'_>, entry: Entry, now: Instant) -> Result<(), StateError> {
        self.remove(key);
        let cost = entry.cost(key.key);
        if cost > self.budget {
            return Err(StateError::Refused(format!(
                "an entry of {cost} bytes does not fit the state store's budget ({} bytes per shard: \
                 raise [state] max_memory_bytes)",
                self.budget
            )));
        }
        self.writes += 1;
        if self.writes >= SWEEP_EVERY {
            self.writes = 0;
            self.drop_where(|_, entry| entry.expired(now));
        }
        while self.bytes + cost > self.budget {
            if !self.evict_one(now) {
                // Nothing left to evict: whatever the count says, the
                // shard holds nothing (a count that drifted must not stop
                // writes, or loop here).
                self.bytes = 0;
                break;
            }
        }
        let used = self.tick();
        self.bytes += cost;
        let slot = Slot { entry, used };
        match self.entries.raw_entry_mut_v1().from_hash(key.hash, |k| k == key.key) {
            RawEntryMut::Vacant(vacant) => _ = vacant.insert_hashed_nocheck(key.hash, key.key.to_owned(), slot),
            // Removed above; kept whole rather than assumed.
            RawEntryMut::Occupied(mut occupied) => _ = occupied.insert(slot),
        }
        Ok(())
    }

    /// Drops one entry: the first expired one of a random sample, or else
    /// the sample's least recently used; false when there is none.
    fn evict_one(&mut self, now: Instant) -> bool {
        let len = self.entries.len();
        if len == 0 {
            return false;
        }
        let mut victim = fastrand::usize(..len);
        for _ in 0..EVICTION_SAMPLE.min(len) {
            let i = fastrand::usize(..len);
            if self.entries[i].entry.expired(now) {
                self.remove_index(i);
                return true;
            }
            if self.entries[i].used < self.entries[victim].used {
                victim = i;
            }
        }
        self.remove_index(victim);
        self.evicted += 1;
        true
    }

    /// Drops every entry `doomed` picks; how many.
    fn drop_where(&mut self, mut doomed: impl FnMut(&str, &Entry) -> bool) -> u64 {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|key, slot| {
            let drop = doomed(key, &slot.entry);
            if drop {
                freed += slot.entry.cost(key);
            }
            !drop
        });
        self.bytes = self.bytes.saturating_sub(freed);
        (before - self.entries.len()) as u64
    }
}

/// One class of entries (values, or cells and counters) in shards.
struct Shards {
    shards: Vec<Mutex<Shard>>,
}

impl Shards {
    fn new(budget: usize, hasher: &RandomState) -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(budget / SHARDS, hasher.clone()))).collect() }
    }

    fn get(&self, key: Hashed<'_>) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[key.shard()].lock().unwrap()
    }

    fn usage(&self) -> Usage {
        self.shards.iter().fold(Usage::default(), |sum, shard| {
            let shard = shard.lock().unwrap();
            Usage {
                bytes: sum.bytes + shard.bytes,
                budget: sum.budget + shard.budget,
                entries: sum.entries + shard.entries.len(),
                evicted: sum.evicted + shard.evicted,
            }
        })
    }

    fn purge(&self, prefix: &str) -> u64 {
        self.shards.iter().map(|shard| shard.lock().unwrap().drop_where(|key, _| key.starts_with(prefix))).sum()
    }
}

/// What one class of entries holds, for `/status`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Usage {
    /// Counted as the budget counts (key, value and overhead).
    pub bytes: usize,
    pub budget: usize,
    pub entries: usize,
    /// Entries evicted to make room since start (expired ones not counted).
    pub evicted: u64,
}

pub(crate) struct LocalStore {
    values: Shards,
    counters: Shards,
    hasher: RandomState,
}

impl Default for LocalStore {
    fn default() -> Self {
        Self::new(MemoryBudget::default())
    }
}

fn after_ms(now: Instant, ms: u64) -> Instant {
    now + std::time::Duration::from_millis(ms)
}

impl LocalStore {
    pub(crate) fn new(budget: MemoryBudget) -> Self {
        let hasher = RandomState::new();
        Self { values: Shards::new(budget.values, &hasher), counters: Shards::new(budget.counters, &hasher), hasher }
    }

    fn hashed<'a>(&self, key: &'a str) -> Hashed<'a> {
        Hashed { key, hash: self.hasher.hash_one(key) }
    }

    /// Values, and cells with counters.
    pub(crate) fn usage(&self) -> (Usage, Usage) {
        (self.values.usage(), self.counters.usage())
    }

    /// The cell is updated where it lies: one lookup, and no new key
    /// allocated, for a key that was seen before (the usual case).
    pub(crate) fn take(&self, key: &str, rate: Rate) -> Result<Decision, StateError> {
        self.take_at(clock::now_ms(), key, rate)
    }

    /// `take` at a given wall-clock time: tests compare backends with it.
    pub(super) fn take_at(&self, now_ms: u64, key: &str, rate: Rate) -> Result<Decision, StateError> {
        let (now, key) = (Instant::now(), self.hashed(key));
        let mut shard = self.counters.get(key);
        if let Some(Entry::Cell { tat_us, expires }) = shard.live(key, now) {
            let (decision, tat) = rate.decide(now_ms, *tat_us)?;
            if decision.allowed {
                (*tat_us, *expires) = (tat, after_ms(now, decision.reset_ms + 1));
            }
            return Ok(decision);
        }
        let (decision, tat_us) = rate.decide(now_ms, 0)?;
        if decision.allowed {
            let expires = after_ms(now, decision.reset_ms + 1);
            shard.insert(key, Entry::Cell { tat_us, expires }, now)?;
        }
        Ok(decision)
    }

    pub(crate) fn increment(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, StateError> {
        let (now, key) = (Instant::now(), self.hashed(key));
        let mut shard = self.counters.get(key);
        if let Some(Entry::Counter { value, .. }) = shard.live(key, now) {
            // Saturating: an overflow would panic under the shard's lock.
            *value = value.saturating_add(delta);
            return Ok(*value);
        }
        let expires = after_ms(now, ttl_ms);
        shard.insert(key, Entry::Counter { value: delta, expires }, now)?;
        Ok(delta)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = self.hashed(key);
        match self.values.get(key).live(key, Instant::now()) {
            Some(Entry::Value { bytes, .. }) => Some(bytes.clone()),
            _ => None,
        }
    }

    pub(crate) fn set(&self, key: &str, bytes: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), StateError> {
        let now = Instant::now();
        let expires = ttl_ms.map(|ms| after_ms(now, ms));
        let key = self.hashed(key);
        self.values.get(key).insert(key, Entry::Value { bytes, expires }, now)
    }

    pub(crate) fn delete(&self, key: &str) {
        let key = self.hashed(key);
        self.counters.get(key).remove(key);
        self.values.get(key).remove(key);
    }

    /// Drops every value, cell and counter whose key starts with `prefix`;
    /// how many.
    pub(crate) fn purge(&self, prefix: &str) -> u64 {
        self.values.purge(prefix) + self.counters.purge(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drifted_byte_count_neither_stops_writes_nor_panics() {
        let store = LocalStore::default();
        let mut shard = Shard::new(10_000, store.hasher.clone());
        shard.bytes = 100_000;
        let value = |n| Entry::Value { bytes: vec![b'v'; n], expires: None };
        shard.insert(store.hashed("k"), value(10), Instant::now()).unwrap();
        assert_eq!(shard.entries.len(), 1);
        assert_eq!(shard.bytes, value(10).cost("k"), "the count starts again from what is held");
        shard.bytes = 0;
        shard.remove(store.hashed("k"));
        assert_eq!(shard.bytes, 0, "removing more than is counted saturates");
    }

    #[test]
    fn counters_and_values_expire() {
        let s = LocalStore::default();
        assert_eq!(s.increment("c", 2, 60_000).unwrap(), 2);
        assert_eq!(s.increment("c", 3, 60_000).unwrap(), 5);
        s.set("k", b"v".to_vec(), Some(0)).unwrap();
        assert_eq!(s.get("k"), None, "a zero TTL expires at once");
        s.set("k", b"v".to_vec(), None).unwrap();
        assert_eq!(s.get("k").as_deref(), Some(&b"v"[..]));
        s.delete("k");
        assert_eq!(s.get("k"), None);
    }

    #[test]
    fn counters_saturate_and_long_ttls_are_kept() {
        let s = LocalStore::default();
        assert_eq!(s.increment("c", i64::MAX, u64::MAX).unwrap(), i64::MAX);
        assert_eq!(s.increment("c", 1, u64::MAX).unwrap(), i64::MAX);
        assert_eq!(s.increment("d", i64::MIN, 60_000).unwrap(), i64::MIN);
        assert_eq!(s.increment("d", -1, 60_000).unwrap(), i64::MIN);
        s.set("k", b"v".to_vec(), Some(u64::MAX)).unwrap();
        assert_eq!(s.get("k").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn take_counts_per_key() {
        let s = LocalStore::default();
        let allowed = (0..8).filter(|_| s.take("a", Rate::per(5, 60_000, 5)).unwrap().allowed).count();
        assert_eq!(allowed, 5);
        assert!(s.take("b", Rate::per(5, 60_000, 5)).unwrap().allowed);
    }

    /// 100,000 distinct 1 KiB values into a 1 MiB budget: the count stays
    /// within it, entries are evicted, and a value read all along (recently
    /// used in every sample that meets it) survives.
    #[test]
    fn values_stay_within_their_budget_and_the_used_survive() {
        let budget = MemoryBudget { values: 1 << 20, counters: 64 << 10 };
        let s = LocalStore::new(budget);
        s.set("hot", b"kept".to_vec(), None).unwrap();
        for i in 0..100_000 {
            s.set(&format!("url-{i}"), vec![b'x'; 1024], Some(60_000)).unwrap();
            if i % 64 == 0 {
                assert!(s.get("hot").is_some(), "the hot value was evicted after {i} writes");
            }
        }
        let (values, counters) = s.usage();
        assert!(values.bytes <= budget.values, "{values:?}");
        assert!(values.bytes > budget.values / 2, "the budget is used: {values:?}");
        assert!(values.evicted > 90_000, "{values:?}");
        assert_eq!(counters, Usage { budget: budget.counters, ..Usage::default() }, "another budget");
        assert_eq!(s.get("hot").as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn cells_and_counters_have_a_budget_of_their_own() {
        let budget = MemoryBudget { values: 64 << 10, counters: 64 << 10 };
        let s = LocalStore::new(budget);
        assert!(s.take("limited", Rate::per(1, 60_000, 1)).unwrap().allowed);
        for i in 0..1_000 {
            s.set(&format!("v{i}"), vec![0; 512], None).unwrap();
        }
        assert!(!s.take("limited", Rate::per(1, 60_000, 1)).unwrap().allowed, "values evicted no cell");
        for i in 0..10_000 {
            s.increment(&format!("n{i}"), 1, 60_000).unwrap();
        }
        let (values, counters) = s.usage();
        assert!(counters.bytes <= budget.counters && counters.evicted > 9_000, "{counters:?}");
        assert!(values.bytes <= budget.values, "{values:?}");
    }

    #[test]
    fn a_value_larger_than_a_shard_is_refused_and_leaves_nothing_stale() {
        let s = LocalStore::new(MemoryBudget { values: 64 << 10, counters: 64 << 10 });
        s.set("big", b"old".to_vec(), None).unwrap();
        let error = s.set("big", vec![0; 8 << 10], None).unwrap_err();
        assert!(error.to_string().contains("max_memory_bytes"), "{error}");
        assert_eq!(s.get("big"), None);
        assert_eq!(s.usage().0.bytes, 0);
    }

    #[test]
    fn purge_drops_keys_by_prefix_and_their_bytes() {
        let s = LocalStore::default();
        for key in ["cache:GET a/1", "cache:GET a/2", "cache:GET b/1", "other:GET a/1"] {
            s.set(key, b"v".to_vec(), None).unwrap();
        }
        s.increment("cache:GET a/n", 1, 60_000).unwrap();
        assert_eq!(s.purge("cache:GET a/"), 3);
        assert_eq!(s.get("cache:GET a/1"), None);
        assert!(s.get("cache:GET b/1").is_some() && s.get("other:GET a/1").is_some());
        let (values, counters) = s.usage();
        assert_eq!((values.entries, counters.entries), (2, 0));
        assert_eq!(values.bytes, 2 * ENTRY_OVERHEAD + "cache:GET b/1".len() + "other:GET a/1".len() + 2);
    }
}
