//! Tokens already verified by this instance, so a client sending the same
//! token again skips the signature check and the JSON decoding (nearly all
//! of the plugin's cost).
//!
//! Entries are keyed by the whole compact token, signature included: a token
//! differing in any byte misses and is verified from scratch. A hit only
//! saves work: the caller still checks the token's `exp` and `nbf` against
//! the clock on every request. An entry past its deadline is never served,
//! and is dropped as soon as it is met: looked up, or swept when the cache
//! is full.
//!
//! std's `HashMap` hashes with a random key (seeded by the host for each
//! instance), so a client cannot craft tokens that collide with a cached
//! one to time the comparison.

use std::collections::HashMap;

#[derive(Debug)]
pub struct TokenCache<V> {
    capacity: usize,
    entries: HashMap<Box<str>, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    /// Milliseconds since the epoch from which the token is refused
    /// (`exp` plus leeway); infinite without `exp`.
    deadline_ms: f64,
}

impl<V: Clone> TokenCache<V> {
    /// Room grows as tokens arrive, not up front: `capacity` may be far
    /// larger than what is ever used.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: HashMap::new() }
    }

    pub fn get(&mut self, token: &str, now_ms: u64) -> Option<V> {
        let entry = self.entries.get(token)?;
        if entry.deadline_ms <= now_ms as f64 {
            self.entries.remove(token);
            return None;
        }
        Some(entry.value.clone())
    }

    /// `deadline_ms` as in [`Entry`]; `None` for a token without `exp`.
    pub fn insert(&mut self, token: &str, value: V, deadline_ms: Option<f64>, now_ms: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let deadline_ms = deadline_ms.unwrap_or(f64::INFINITY);
        self.entries.insert(token.into(), Entry { value, deadline_ms });
    }

    /// Drops the expired entries, then arbitrary ones until a quarter of the
    /// capacity is free: the sweep is O(capacity), and this way it runs at
    /// most once per capacity/4 insertions. Evicting arbitrary entries
    /// needs no bookkeeping per hit, and a client whose token is evicted
    /// pays one verification.
    fn make_room(&mut self, now_ms: u64) {
        let now = now_ms as f64;
        self.entries.retain(|_, entry| entry.deadline_ms > now);
        let keep = self.capacity - (self.capacity / 4).max(1);
        let mut excess = self.entries.len().saturating_sub(keep);
        self.entries.retain(|_, _| {
            let evict = excess > 0;
            excess -= usize::from(evict);
            !evict
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_dropped_at_their_deadline() {
        let mut cache = TokenCache::new(4);
        cache.insert("a", 1, Some(1_000.0), 0);
        cache.insert("b", 2, None, 0);
        assert_eq!(cache.get("a", 999), Some(1));
        assert_eq!(cache.get("a", 1_000), None);
        assert_eq!(cache.len(), 1, "the expired entry is removed, not just skipped");
        assert_eq!(cache.get("b", u64::MAX), Some(2));
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let mut cache = TokenCache::new(4);
        for (i, token) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let deadline = if token == "c" { 10.0 } else { 1_000.0 };
            cache.insert(token, i, Some(deadline), 0);
        }
        cache.insert("e", 4, Some(1_000.0), 10);
        assert_eq!(cache.len(), 4, "only the expired entry made room");
        assert_eq!(cache.get("c", 0), None);
        assert!(["a", "b", "d", "e"].iter().all(|t| cache.get(t, 10).is_some()));
    }

    #[test]
    fn the_size_stays_within_capacity() {
        for capacity in [1, 2, 3, 4, 10, 100] {
            let mut cache = TokenCache::new(capacity);
            for i in 0..1_000 {
                cache.insert(&i.to_string(), i, None, 0);
                assert!(cache.len() <= capacity, "{} entries in a cache of {capacity}", cache.len());
                assert_eq!(cache.get(&i.to_string(), 0), Some(i), "the newest entry is kept");
            }
        }
        let mut cache = TokenCache::new(0);
        cache.insert("a", 1, None, 0);
        assert_eq!((cache.len(), cache.get("a", 0)), (0, None));
    }
}
