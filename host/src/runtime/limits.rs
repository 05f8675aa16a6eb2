//! Per-call CPU, wall-clock and memory budgets.
//!
//! CPU time is counted in epoch ticks of wasm execution: a plugin waiting on
//! a fan-out call is not burning CPU, so the ticks it spends in the host
//! count once. Between ticks the plugin yields to the executor, so a looping
//! plugin shares the worker thread instead of holding it.
//!
//! Waiting spends no ticks, so ticks alone cannot end a plugin that sleeps
//! (a WASI sleep, `std::thread::sleep`) or keeps calling the host: every
//! call and every configure step also has a wall-clock deadline
//! ([`super::deadline`]).

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// How often the engine's epoch advances. Budgets are rounded up to it.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The budget of one plugin's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Wasm execution time allowed per call.
    pub timeout: Duration,
    /// Wall-clock time allowed per call, from its start to its result: wasm,
    /// host calls and sleeps alike.
    pub wall_timeout: Duration,
    /// Wall-clock time allowed to create one instance and configure it.
    pub configure_timeout: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Warm instances kept for this plugin use: the concurrency it can serve.
    pub max_instances: u32,
}

impl PluginLimits {
    /// The timeout in epoch ticks, at least one.
    pub fn ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_millis();
        (self.timeout.as_millis().div_ceil(tick)).max(1) as u64
    }
}

/// Raised by the limiter so the pool can tell a memory-limit hit from any
/// other trap without parsing messages.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {desired})")]
pub(super) struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

/// Caps linear memory and turns a refused growth into a trap: a plugin
/// whose allocator sees `memory.grow` fail would abort anyway, and a trap
/// with a typed cause gives a clearer error.
pub(super) struct MemoryLimiter {
    limit: usize,
    /// The largest size any memory of the instance has grown to.
    peak: usize,
}

impl MemoryLimiter {
    pub(super) fn new(limit: usize) -> Self {
        Self { limit, peak: 0 }
    }

    pub(super) fn peak(&self) -> usize {
        self.peak
    }
}

/// Linear memory never shrinks, so an instance that once served a large
/// request keeps that memory while it waits in the warm pool. Past this size
/// it is dropped after its call instead, and a lean one is made when needed:
/// warm pools stay small even after bursts of big bodies.
pub(super) const RETAIN_MEMORY_BYTES: usize = 8 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded { limit: self.limit, desired }.into());
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up_and_never_reach_zero() {
        let limits = |ms| PluginLimits {
            timeout: Duration::from_millis(ms),
            wall_timeout: Duration::from_secs(1),
            configure_timeout: Duration::from_secs(1),
            memory_bytes: 0,
            max_instances: 1,
        };
        assert_eq!(limits(0).ticks(), 1);
        assert_eq!(limits(10).ticks(), 1);
        assert_eq!(limits(11).ticks(), 2);
        assert_eq!(limits(250).ticks(), 25);
    }
}
