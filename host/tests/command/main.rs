//! The `wasmgate` binary as an operator runs it, in one test binary (each
//! one links wasmtime). The panic hook's test has a binary of its own
//! (`panic_hook.rs`): it installs a process-wide hook and subscriber.

mod cli;
mod logs;
mod redis_replicas;
mod scaffold;
mod server_signal;
mod startup_memory;
mod telemetry;
