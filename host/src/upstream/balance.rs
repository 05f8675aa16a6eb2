//! Choosing a target among the available ones. The caller says which
//! targets are eligible (available, and not yet tried by this request when
//! there is another) and how loaded each is; the balancer only chooses.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::HeaderMap;

use super::spec::{Balance, HashOn};

/// Points on the hash ring per unit of weight.
const VIRTUAL_NODES: u32 = 100;

#[derive(Debug)]
pub(crate) struct Balancer {
    weights: Vec<u32>,
    next: AtomicUsize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    RoundRobin,
    Weighted(Mutex<Vec<i64>>),
    LeastRequest,
    Hash { on: HashOn, ring: HashRing },
}

impl Balancer {
    /// `targets`: each target's address (names its ring points) and weight.
    pub(crate) fn new(balance: &Balance, targets: &[(&str, u32)]) -> Self {
        let weights: Vec<u32> = targets.iter().map(|(_, w)| (*w).max(1)).collect();
        let kind = match balance {
            Balance::RoundRobin => Kind::RoundRobin,
            Balance::Weighted => Kind::Weighted(Mutex::new(vec![0; targets.len()])),
            Balance::LeastRequest => Kind::LeastRequest,
            Balance::Hash(on) => Kind::Hash { on: on.clone(), ring: HashRing::new(targets) },
        };
        Self { weights, next: AtomicUsize::new(0), kind }
    }

    /// The hash key of a request, for hash balancing.
    pub(crate) fn key(&self, headers: &HeaderMap, client: Option<IpAddr>) -> Option<u64> {
        let Kind::Hash { on, .. } = &self.kind else {
            return None;
        };
        match on {
            HashOn::Header(name) => headers.get(name).map(|v| hash(v.as_bytes())),
            HashOn::ClientIp => client.map(|ip| match ip {
                IpAddr::V4(v4) => hash(&v4.octets()),
                IpAddr::V6(v6) => hash(&v6.octets()),
            }),
        }
    }

    /// One of the eligible targets, or `None` when there is none.
    /// `load(i)`: requests in flight to target `i`.
    pub(crate) fn pick(&self, eligible: &[bool], load: impl Fn(usize) -> usize, key: Option<u64>) -> Option<usize> {
        if !eligible.iter().any(|e| *e) {
            return None;
        }
        match &self.kind {
            Kind::RoundRobin => Some(self.round_robin(eligible)),
            Kind::Weighted(current) => {
                Some(smooth_weighted(&mut current.lock().expect("balancer lock"), &self.weights, eligible))
            }
            Kind::LeastRequest => Some(self.least_request(eligible, load)),
            Kind::Hash { ring, .. } => match key {
                Some(key) => ring.lookup(key, eligible),
                None => Some(self.round_robin(eligible)),
            },
        }
    }

    /// In turn among the eligible (so that none gets the share of one that
    /// is out).
    fn round_robin(&self, eligible: &[bool]) -> usize {
        let count = eligible.iter().filter(|e| **e).count();
        // No choice (often a retry's): the turn is not used up.
        let nth = if count == 1 { 0 } else { self.next.fetch_add(1, Ordering::Relaxed) % count };
        (0..eligible.len()).filter(|&i| eligible[i]).nth(nth).expect("one is eligible")
    }

    /// Power of two random choices: of two distinct random eligible targets,
    /// the one with fewer requests in flight per unit of weight.
    fn least_request(&self, eligible: &[bool], load: impl Fn(usize) -> usize) -> usize {
        let candidates: Vec<usize> = (0..eligible.len()).filter(|&i| eligible[i]).collect();
        if candidates.len() == 1 {
            return candidates[0];
        }
        let a = fastrand::usize(..candidates.len());
        let b = (a + 1 + fastrand::usize(..candidates.len() - 1)) % candidates.len();
        let (a, b) = (candidates[a], candidates[b]);
        // load(a) / weight(a) vs load(b) / weight(b), without division.
        let cost = |i: usize, other: usize| load(i) as u64 * u64::from(self.weights[other]);
        match cost(a, b).cmp(&cost(b, a)) {
            std::cmp::Ordering::Less => a,
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal if fastrand::bool() => a,
            std::cmp::Ordering::Equal => b,
        }
    }
}

/// nginx's smooth weighted round robin over the eligible targets: each
/// pick raises every eligible target's current weight by its weight and
/// takes the highest, which then pays back the total.
fn smooth_weighted(current: &mut [i64], weights: &[u32], eligible: &[bool]) -> usize {
    let mut total = 0;
    let mut best: Option<usize> = None;
    for i in (0..weights.len()).filter(|&i| eligible[i]) {
        current[i] += i64::from(weights[i]);
        total += i64::from(weights[i]);
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let best = best.expect("one is eligible");
    current[best] -= total;
    best
}

/// A consistent-hash ring with `VIRTUAL_NODES` points per unit of weight.
/// A key belongs to the first point at or after its hash (clockwise); when
/// that point's target is not eligible, the walk goes on to the next, so
/// only the keys of unavailable targets move, and they come back with it.
#[derive(Debug)]
pub(crate) struct HashRing {
    points: Vec<(u64, usize)>,
}

impl HashRing {
    pub(crate) fn new(targets: &[(&str, u32)]) -> Self {
        let mut points = Vec::new();
        for (i, (addr, weight)) in targets.iter().enumerate() {
            for v in 0..weight.max(&1) * VIRTUAL_NODES {
                points.push((hash(format!("{addr}#{v}").as_bytes()), i));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    pub(crate) fn lookup(&self, key: u64, eligible: &[bool]) -> Option<usize> {
        let start = self.points.partition_point(|(h, _)| *h < key);
        let n = self.points.len();
        (0..n).map(|k| self.points[(start + k) % n].1).find(|&i| eligible[i])
    }
}

/// FNV-1a with a final mix (MurmurHash3's): stable across builds and
/// processes, so gateways agree on where a key goes.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRS: [&str; 4] = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];

    fn targets(weights: &[u32]) -> Vec<(&'static str, u32)> {
        ADDRS.iter().copied().zip(weights.iter().copied()).collect()
    }

    fn counts(b: &Balancer, eligible: &[bool], n: usize) -> Vec<usize> {
        let mut counts = vec![0; eligible.len()];
        for _ in 0..n {
            counts[b.pick(eligible, |_| 0, None).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_skips_what_is_not_eligible() {
        let b = Balancer::new(&Balance::RoundRobin, &targets(&[1, 1, 1]));
        assert_eq!(counts(&b, &[true, true, true], 9), [3, 3, 3]);
        assert_eq!(counts(&b, &[true, false, true], 10), [5, 0, 5]);
        assert_eq!(b.pick(&[false, false, false], |_| 0, None), None);
    }

    #[test]
    fn smooth_weighted_is_exact_and_spread() {
        let b = Balancer::new(&Balance::Weighted, &targets(&[1, 3]));
        let order: Vec<usize> = (0..8).map(|_| b.pick(&[true, true], |_| 0, None).unwrap()).collect();
        assert_eq!(order.iter().filter(|&&i| i == 1).count(), 6);
        assert!(order.windows(2).all(|w| w != [0, 0]), "never twice the light one in a row: {order:?}");
        let b = Balancer::new(&Balance::Weighted, &targets(&[5, 1, 2]));
        assert_eq!(counts(&b, &[true, false, true], 70), [50, 0, 20]);
    }

    #[test]
    fn least_request_prefers_the_less_loaded() {
        let b = Balancer::new(&Balance::LeastRequest, &targets(&[1, 1]));
        for _ in 0..100 {
            assert_eq!(b.pick(&[true, true], |i| [5, 1][i], None), Some(1));
        }
        // Weighted: 4 in flight on weight 4 is lighter than 2 on weight 1.
        let b = Balancer::new(&Balance::LeastRequest, &targets(&[4, 1]));
        for _ in 0..100 {
            assert_eq!(b.pick(&[true, true], |i| [4, 2][i], None), Some(0));
        }
        assert_eq!(b.pick(&[false, true], |i| [0, 9][i], None), Some(1));
        // Among three, the most loaded is never chosen (it loses any pair).
        let b = Balancer::new(&Balance::LeastRequest, &targets(&[1, 1, 1]));
        for _ in 0..100 {
            assert_ne!(b.pick(&[true, true, true], |i| [0, 9, 1][i], None), Some(1));
        }
    }

    #[test]
    fn the_ring_moves_only_the_keys_of_an_unavailable_target() {
        let ring = HashRing::new(&targets(&[1, 1, 1, 1]));
        let all = [true; 4];
        let without_2 = [true, true, false, true];
        let mut per_target = [0; 4];
        for k in 0..4000u32 {
            let key = hash(format!("user-{k}").as_bytes());
            let before = ring.lookup(key, &all).unwrap();
            let after = ring.lookup(key, &without_2).unwrap();
            per_target[before] += 1;
            if before == 2 {
                assert_ne!(after, 2);
            } else {
                assert_eq!(before, after, "key {k} moved though its target stayed");
            }
        }
        for count in per_target {
            assert!((700..1300).contains(&count), "uneven ring: {per_target:?}");
        }
        assert_eq!(ring.lookup(1, &[false; 4]), None);
    }

    #[test]
    fn ring_points_follow_weights() {
        let ring = HashRing::new(&targets(&[1, 3]));
        let mut per_target = [0; 2];
        for k in 0..4000u32 {
            per_target[ring.lookup(hash(&k.to_le_bytes()), &[true, true]).unwrap()] += 1;
        }
        assert!((700..1300).contains(&per_target[0]), "{per_target:?}");
    }

    #[test]
    fn hash_keys_come_from_the_header_or_the_client() {
        let by_header =
            Balancer::new(&Balance::Hash(HashOn::Header(http::HeaderName::from_static("x-user"))), &targets(&[1, 1]));
        let mut headers = HeaderMap::new();
        assert_eq!(by_header.key(&headers, None), None);
        headers.insert("x-user", "ann".parse().unwrap());
        assert_eq!(by_header.key(&headers, None), Some(hash(b"ann")));
        let by_ip = Balancer::new(&Balance::Hash(HashOn::ClientIp), &targets(&[1, 1]));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(by_ip.key(&headers, Some(ip)), Some(hash(&[192, 0, 2, 7])));
        assert_eq!(Balancer::new(&Balance::RoundRobin, &targets(&[1])).key(&headers, Some(ip)), None);
    }

    #[test]
    fn the_hash_is_stable() {
        // Changing it moves every key of every deployment: keep this value.
        assert_eq!(hash(b"wasmgate"), 0x9ba9_67e1_8c1d_9397);
        assert_ne!(hash(b"a"), hash(b"b"));
    }
}
