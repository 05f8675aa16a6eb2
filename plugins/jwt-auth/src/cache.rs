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
//! The map is keyed by a hash of the token (foldhash, seeded from the
//! host's random source for each instance) and each entry keeps the whole
//! token, compared in full on every hit: a colliding token is only a miss,
//! never another client's grant. Hashing a token with SipHash and comparing
//! it byte by byte cost more than the rest of a cached check.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};

use foldhash::fast::FixedState;

#[derive(Debug)]
pub struct TokenCache<V> {
    capacity: usize,
    hasher: FixedState,
    /// The hash is already one: no second hashing of the key.
    entries: HashMap<u64, Entry<V>, BuildHasherDefault<Prehashed>>,
}

#[derive(Debug)]
struct Entry<V> {
    token: Box<[u8]>,
    value: V,
    /// Milliseconds since the epoch from which the token is refused
    /// (`exp` plus leeway); infinite without `exp`.
    deadline_ms: f64,
}

impl<V: Clone> TokenCache<V> {
    /// Room grows as tokens arrive, not up front: `capacity` may be far
    /// larger than what is ever used.
    pub fn new(capacity: usize) -> Self {
        let seed = RandomState::new().hash_one(0u64);
        Self { capacity, hasher: FixedState::with_seed(seed), entries: HashMap::default() }
    }

    pub fn get(&mut self, token: &[u8], now_ms: u64) -> Option<V> {
        let key = self.hasher.hash_one(token);
        let entry = self.entries.get(&key)?;
        if !same(&entry.token, token) {
            return None;
        }
        if entry.deadline_ms <= now_ms as f64 {
            self.entries.remove(&key);
            return None;
        }
        Some(entry.value.clone())
    }

    /// `deadline_ms` as in [`Entry`]; `None` for a token without `exp`. A
    /// token whose hash another holds takes its place.
    pub fn insert(&mut self, token: &[u8], value: V, deadline_ms: Option<f64>, now_ms: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let deadline_ms = deadline_ms.unwrap_or(f64::INFINITY);
        let key = self.hasher.hash_one(token);
        self.entries.insert(key, Entry { token: token.into(), value, deadline_ms });
    }

    /// Forgets every token: the keys they were verified with may be gone.
    pub fn clear(&mut self) {
        self.entries.clear();
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

/// Whether two tokens are the same, eight bytes at a time and without
/// stopping at the first difference (the time taken says nothing about
/// where two tokens differ).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((a_words, a_tail), (b_words, b_tail)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    let tail = a_tail.iter().zip(b_tail).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    let words =
        a_words.iter().zip(b_words).fold(0u64, |acc, (x, y)| acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)));
    words == 0 && tail == 0
}

/// Hands a key that is already a hash through as it is.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_dropped_at_their_deadline() {
        let mut cache = TokenCache::new(4);
        cache.insert(b"a", 1, Some(1_000.0), 0);
        cache.insert(b"b", 2, None, 0);
        assert_eq!(cache.get(b"a", 999), Some(1));
        assert_eq!(cache.get(b"a", 1_000), None);
        assert_eq!(cache.len(), 1, "the expired entry is removed, not just skipped");
        assert_eq!(cache.get(b"b", u64::MAX), Some(2));
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let mut cache = TokenCache::new(4);
        for (i, token) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let deadline = if token == "c" { 10.0 } else { 1_000.0 };
            cache.insert(token.as_bytes(), i, Some(deadline), 0);
        }
        cache.insert(b"e", 4, Some(1_000.0), 10);
        assert_eq!(cache.len(), 4, "only the expired entry made room");
        assert_eq!(cache.get(b"c", 0), None);
        assert!(["a", "b", "d", "e"].iter().all(|t| cache.get(t.as_bytes(), 10).is_some()));
    }

    #[test]
    fn tokens_match_only_in_full() {
        assert!(same(b"0123456789abcdefXYZ", b"0123456789abcdefXYZ"));
        assert!(!same(b"0123456789abcdefXYZ", b"0123456789abcdefXYz"), "the tail differs");
        assert!(!same(b"0123456789abcdefXYZ", b"0123456789abcdeFXYZ"), "a word differs");
        assert!(!same(b"abc", b"abcd"));
        let mut cache = TokenCache::new(4);
        cache.insert(b"eyJ.a.sig1", 1, None, 0);
        assert_eq!(cache.get(b"eyJ.a.sig1", 0), Some(1));
        assert_eq!(cache.get(b"eyJ.a.sig2", 0), None, "another signature is another token");
    }

    #[test]
    fn the_size_stays_within_capacity() {
        for capacity in [1, 2, 3, 4, 10, 100] {
            let mut cache = TokenCache::new(capacity);
            for i in 0..1_000 {
                cache.insert(i.to_string().as_bytes(), i, None, 0);
                assert!(cache.len() <= capacity, "{} entries in a cache of {capacity}", cache.len());
                assert_eq!(cache.get(i.to_string().as_bytes(), 0), Some(i), "the newest entry is kept");
            }
        }
        let mut cache = TokenCache::new(0);
        cache.insert(b"a", 1, None, 0);
        assert_eq!((cache.len(), cache.get(b"a", 0)), (0, None));
    }
}
