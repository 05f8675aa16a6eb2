//! The plugin runtime: one wasmtime engine, compiled components, and warm
//! pools of configured instances that serve plugin calls under hard CPU and
//! memory budgets.

mod bindings;
mod compile;
mod engine;
mod error;
mod fanout;
mod host_impl;
mod limits;
mod pool;
mod prefetch;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;

pub use bindings::types::{Action, Reply};
pub use compile::{CompileError, Compiled, ContentHash};
pub use engine::EngineLimits;
pub use error::PluginError;
pub use host_impl::PluginIdentity;
pub use limits::{EPOCH_TICK, PluginLimits};
pub use pool::{PluginPool, Prepared};
pub use prefetch::Needs;

use bindings::PluginPre;
use host_impl::InstanceState;

/// Shared by every snapshot: compiled artifacts and instance slots outlive
/// reloads.
pub struct Runtime {
    linker: Linker<InstanceState>,
    compiler: Arc<compile::Compiler>,
    /// Engine-wide instance slots; the pooling allocator fails outright when
    /// it runs out, so every instance first takes a permit here.
    slots: Arc<Semaphore>,
    limits: EngineLimits,
}

impl Runtime {
    pub fn new(limits: EngineLimits, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let engine = engine::build_engine(limits)?;
        let linker = engine::build_linker(&engine)?;
        Ok(Arc::new(Self {
            compiler: Arc::new(compile::Compiler::new(engine.clone(), cache_dir)),
            linker,
            slots: Arc::new(Semaphore::new(limits.max_instances as usize)),
            limits,
        }))
    }

    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Compiles (or loads from cache) a plugin file off the async workers.
    pub async fn compile(&self, path: PathBuf) -> Result<Compiled, CompileError> {
        let compiler = self.compiler.clone();
        tokio::task::spawn_blocking(move || compiler.compile_file(&path)).await.expect("compile task does not panic")
    }

    /// Links a compiled plugin against the host API once, so instances are
    /// created without re-resolving imports.
    pub fn prepare(&self, compiled: Compiled) -> anyhow::Result<Prepared> {
        let pre = self
            .linker
            .instantiate_pre(&compiled.component)
            .context("the component does not fit the wasmgate:plugin world")?;
        let pre = PluginPre::new(pre).context("the component does not export the wasmgate:plugin world")?;
        Ok(Prepared::new(pre, compiled))
    }
}
