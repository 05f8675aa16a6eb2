//! The one wasmtime engine of the process, its epoch ticker and its linker.

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::Plugin;
use super::instance::InstanceState;
use super::limits::EPOCH_TICK;

/// Sizing of the engine, shared by every plugin of every snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Component instances alive at once across all plugins (warm pools
    /// included). The pooling allocator reserves slots for exactly this many.
    pub max_instances: u32,
    /// The largest memory limit any plugin may be given.
    pub max_memory_bytes: usize,
    /// Warm instances that no call needed for this long are dropped (each
    /// plugin use keeps one).
    pub instance_idle: Duration,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self { max_instances: 256, max_memory_bytes: 256 << 20, instance_idle: Duration::from_secs(10) }
    }
}

pub(super) fn build_engine(limits: EngineLimits) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let instances = limits.max_instances;
    // A Rust wasip2 component holds a few core instances (its module plus
    // WASI shims) and at most a couple of memories.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(limits.max_memory_bytes)
        // A slot keeps what it keeps resident for good, whether used again
        // or not: 1 MiB of linear memory per slot a burst ever touched left
        // RSS 150 MiB above idle after 128 concurrent instances. Warm pools
        // make fresh instances rare, so slots are decommitted instead (no
        // measurable change to a call that needs a fresh instance).
        .linear_memory_keep_resident(0)
        .table_keep_resident(64 << 10);
    let mut config = compiling_config(limits);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // `perf` can name plugin functions (in /tmp/perf-PID.map) when asked.
    if std::env::var_os("WASMGATE_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config).context("configuring the wasm engine")?;
    spawn_epoch_ticker(&engine);
    Ok(engine)
}

/// Everything of the engine's config that decides what code is generated,
/// so an artifact compiled under it loads into the engine (the instance
/// allocator, the one setting left out, is not part of an artifact). The
/// compiler runs in an engine of its own made from it and dropped after
/// each compile: an engine keeps its compiler's working memory for reuse,
/// and a cold start otherwise idled tens of MB above a warm one.
pub(super) fn compiling_config(limits: EngineLimits) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // No component-model async (no `async` WIT functions, streams or
        // futures in the contract): without it a call skips the concurrent
        // task machinery that wasmtime otherwise sets up around each one.
        .concurrency_support(false)
        .epoch_interruption(true)
        // Only the pooling slots' own guard pages: a smaller reservation
        // keeps many engines (tests, reload) within the address space.
        .memory_reservation(limits.max_memory_bytes as u64)
        .memory_guard_size(64 << 10)
        .async_stack_size(1 << 20)
        // Without zeroing, a pooled fiber stack is never decommitted: what
        // the host touched on it stays resident per slot ever used.
        .async_stack_zeroing(true);
    config
}

/// Advances the epoch every tick for as long as the engine lives; the
/// thread ends by itself once the last handle to the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmgate-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}

/// The linker every plugin is instantiated against: WASI (needed by any
/// Rust guest, given an empty context) and the gateway's own imports.
pub(super) fn build_linker(engine: &Engine) -> anyhow::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI")?;
    Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
        .context("linking the plugin host API")?;
    Ok(linker)
}

/// The linker of the synchronous call path: only functions that never
/// suspend, so a store instantiated from it may be entered with a plain
/// function call (no fiber). Its imports that wait do so on the calling
/// thread (see `wait`).
pub(super) fn build_sync_linker(engine: &Engine) -> anyhow::Result<Linker<InstanceState>> {
    use super::bindings::{clock, log, metrics, types};
    use wasmtime::component::HasSelf;
    let mut linker = Linker::new(engine);
    super::sync_wasi::add_to_linker(&mut linker)?;
    let l = &mut linker;
    (|| {
        types::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        log::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        clock::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        metrics::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        super::host::add_sync_state_to_linker(l)?;
        super::host::add_sync_http_client_to_linker(l)
    })()
    .context("linking the plugin host API for synchronous calls")?;
    Ok(linker)
}
