//! The generic cell rate algorithm, as pure arithmetic on one stored value
//! (the theoretical arrival time), so every backend applies the same rule
//! atomically: in a mutex here, in a Lua script in Redis.
//!
//! With `T = window / limit` (the interval one event "costs") and burst
//! tolerance `τ = T × burst`: an event of cost `c` arriving at `now` is
//! allowed when `max(tat, now) + c·T − now ≤ τ`, and then becomes the new
//! `tat`. So a fresh key allows exactly `burst` events at once, then one
//! more every `T`.

use super::StateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_ms: u64,
    pub retry_after_ms: u64,
}

/// Decides one `take` at time `now_ms` for a key whose stored theoretical
/// arrival time is `tat_ms` (or `None` for a fresh key). Returns the
/// decision and the `tat` to store.
pub fn decide(
    now_ms: f64,
    tat_ms: Option<f64>,
    limit: u64,
    window_ms: u64,
    burst: u64,
    cost: u64,
) -> Result<(Decision, f64), StateError> {
    if limit == 0 {
        return Err(StateError::InvalidLimit("limit must be at least 1"));
    }
    if window_ms == 0 {
        return Err(StateError::InvalidLimit("window must be at least 1 ms"));
    }
    let burst = burst.max(1);
    let interval = window_ms as f64 / limit as f64;
    let tolerance = interval * burst as f64;
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + interval * cost as f64;
    let remaining_after = |tat: f64| ((tolerance - (tat - now_ms)) / interval).floor().max(0.0) as u64;
    if new_tat - now_ms > tolerance + 1e-9 {
        let decision = Decision {
            allowed: false,
            limit,
            remaining: remaining_after(tat),
            reset_ms: (tat - now_ms).ceil() as u64,
            retry_after_ms: (new_tat - now_ms - tolerance).ceil() as u64,
        };
        return Ok((decision, tat));
    }
    let decision = Decision {
        allowed: true,
        limit,
        remaining: remaining_after(new_tat),
        reset_ms: (new_tat - now_ms).ceil() as u64,
        retry_after_ms: 0,
    };
    Ok((decision, new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_key_allows_exactly_the_burst_then_one_per_interval() {
        let mut tat = None;
        for i in 0..10 {
            let (d, t) = decide(0.0, tat, 10, 1000, 10, 1).unwrap();
            assert!(d.allowed, "event {i}");
            assert_eq!(d.remaining, 9 - i);
            tat = Some(t);
        }
        let (d, t) = decide(0.0, tat, 10, 1000, 10, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 100);
        assert_eq!(d.reset_ms, 1000);
        assert_eq!(t, tat.unwrap(), "a refusal stores nothing new");
        let (d, _) = decide(100.0, tat, 10, 1000, 10, 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn zero_limit_is_an_error() {
        assert!(decide(0.0, None, 0, 1000, 1, 1).is_err());
        assert!(decide(0.0, None, 1, 0, 1, 1).is_err());
    }
}
