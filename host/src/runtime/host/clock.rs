//! `clock`: wall time and a monotonic clock for plugins.

use crate::clock;
use crate::runtime::bindings::clock as wit;
use crate::runtime::instance::InstanceState;

impl wit::Host for InstanceState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(clock::now_ms())
    }

    fn monotonic_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.services.started.elapsed().as_nanos() as u64)
    }
}
