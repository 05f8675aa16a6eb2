//! Wall-clock time in milliseconds since the Unix epoch: reload times for
//! operators, expiry in the local state store, the `clock` import and the
//! prefetched `now`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the Unix epoch (0 on a clock set before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
