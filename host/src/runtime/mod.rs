//! The plugin runtime: one wasmtime engine, compiled components, and warm
//! pools of configured instances that serve plugin calls under hard CPU and
//! memory budgets.

mod bindings;
mod breaker;
mod compile;
mod deadline;
mod engine;
mod error;
mod fanout;
mod host;
mod idle;
mod instance;
mod limits;
mod pool;
mod prefetch;
mod slots;
mod sync_wasi;
mod wait;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::error::Context as _;

pub(crate) use bindings::types::{Action, Reply};
pub(crate) use breaker::BreakerSpec;
pub use compile::compile_in_child_processes;
pub(crate) use compile::{CompileError, Compiled, ContentHash};
pub(crate) use engine::EngineLimits;
pub(crate) use error::PluginError;
pub(crate) use instance::PluginIdentity;
pub(crate) use limits::PluginLimits;
use pool::Imports;
pub(crate) use pool::{PluginPool, Prepared};
pub(crate) use prefetch::Needs;

use bindings::PluginPre;
use instance::InstanceState;

/// The version of `wit/plugin.wit` the host is built from.
pub(crate) const CONTRACT_VERSION: &str = "0.2.1";

/// The contract version an import names, when the host cannot serve it: a
/// plugin built against another version fails to link with a message
/// about a missing resource implementation, which says nothing of the
/// cause. An earlier patch of our minor version is served (a new patch
/// only adds, and wasmtime links `@0.2.0` imports to `@0.2.1` by semver).
fn foreign_contract(import: &str) -> Option<&str> {
    let (_, version) = import.strip_prefix("wasmgate:plugin/")?.split_once('@')?;
    let (ours, patch) = CONTRACT_VERSION.rsplit_once('.')?;
    let compatible = version
        .strip_prefix(ours)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|theirs| Some(theirs.parse::<u32>().ok()? <= patch.parse::<u32>().ok()?));
    (compatible != Some(true)).then_some(version)
}

/// Shared by every snapshot: compiled artifacts and instance slots outlive
/// reloads.
pub(crate) struct Runtime {
    linker: Linker<InstanceState>,
    /// Links the plugins whose imports never suspend for synchronous calls.
    sync_linker: Linker<InstanceState>,
    compiler: Arc<compile::Compiler>,
    /// Engine-wide instance slots.
    slots: Arc<slots::EngineSlots>,
    /// Every live pool, trimmed when idle.
    pools: Arc<idle::Pools>,
    trimmer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(trimmer) = &self.trimmer {
            trimmer.abort();
        }
    }
}

impl Runtime {
    /// Inside a tokio runtime, also starts the task that trims idle pools.
    pub(crate) fn new(limits: EngineLimits, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let engine = engine::build_engine(limits)?;
        let linker = engine::build_linker(&engine)?;
        let sync_linker = engine::build_sync_linker(&engine)?;
        let slots = slots::EngineSlots::new(limits.max_instances);
        let pools = Arc::new(idle::Pools::default());
        let trimmer = idle::spawn_trimmer(Arc::downgrade(&pools), Arc::downgrade(&slots), limits.instance_idle);
        Ok(Arc::new(Self {
            compiler: Arc::new(compile::Compiler::new(engine.clone(), limits, cache_dir)),
            linker,
            sync_linker,
            slots,
            pools,
            trimmer,
        }))
    }

    /// Compiles (or loads from cache) a plugin file off the async workers.
    async fn compile(&self, path: PathBuf) -> Result<Compiled, CompileError> {
        let compiler = self.compiler.clone();
        tokio::task::spawn_blocking(move || compiler.compile_file(&path)).await.expect("compile task does not panic")
    }

    /// Compiles (or loads) every plugin file of a config at once, then
    /// hands the compiler's working memory back: Cranelift's allocations
    /// are freed when a compile ends, but glibc keeps the pages in its
    /// arenas, and a cold start stayed 90 MB above a warm one for good.
    pub(crate) async fn compile_all(
        &self,
        paths: impl Iterator<Item = PathBuf>,
    ) -> Vec<Result<Compiled, CompileError>> {
        let compiled = futures_util::future::join_all(paths.map(|path| self.compile(path))).await;
        let _ = tokio::task::spawn_blocking(idle::release_heap).await;
        compiled
    }

    /// Links a compiled plugin against the host API once, so instances are
    /// created without re-resolving imports.
    pub(crate) fn prepare(&self, compiled: Compiled) -> anyhow::Result<Prepared> {
        let engine = self.linker.engine();
        let component_type = compiled.component.component_type();
        if let Some(other) = component_type.imports(engine).find_map(|(name, _)| foreign_contract(name)) {
            anyhow::bail!(
                "the plugin was built for wasmgate:plugin@{other}, this gateway runs @{CONTRACT_VERSION} plugins: \
                 rebuild it against the current wasmgate-sdk"
            );
        }
        let pre = self
            .linker
            .instantiate_pre(&compiled.component)
            .context("the component does not fit the wasmgate:plugin world")?;
        let pre = PluginPre::new(pre).context("the component does not export the wasmgate:plugin world")?;
        // Whatever does not link here (the filesystem, sockets)
        // keeps the plugin on the asynchronous path.
        let sync = self.sync_linker.instantiate_pre(&compiled.component).ok().and_then(|pre| PluginPre::new(pre).ok());
        let imports = |interface: &str| {
            component_type
                .imports(engine)
                .any(|(name, _)| name.strip_prefix("wasmgate:plugin/").is_some_and(|n| n.starts_with(interface)))
        };
        let waits_on = Imports { state: imports("state@"), network: imports("http-client@") };
        Ok(Prepared::new(pre, sync, waits_on, compiled))
    }
}

/// The artifact `wasmgate compile-plugin` writes: the component at `path`
/// compiled for an engine whose plugins may take up to `max_memory_bytes`
/// (the one setting of `[runtime]` the generated code depends on).
pub fn compile_plugin(max_memory_bytes: usize, path: &std::path::Path) -> Result<Vec<u8>, String> {
    let wasm = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let limits = EngineLimits { max_memory_bytes, ..EngineLimits::default() };
    // Only the reason: the gateway that asked names the file.
    compile::compile_artifact(limits, &wasm).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_version_is_the_wit_packages() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(wit.contains(&format!("package wasmgate:plugin@{CONTRACT_VERSION};")));
    }

    #[test]
    fn imports_of_another_contract_version_are_named() {
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.1.0"), Some("0.1.0"));
        assert_eq!(foreign_contract(&format!("wasmgate:plugin/log@{CONTRACT_VERSION}")), None);
        assert_eq!(foreign_contract("wasi:io/streams@0.2.6"), None);
        // Earlier patches of the minor version are served, later ones not.
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.2.0"), None);
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.2.2"), Some("0.2.2"));
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.3.0"), Some("0.3.0"));
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.20.1"), Some("0.20.1"));
        assert_eq!(foreign_contract("wasmgate:plugin/types@0.2.x"), Some("0.2.x"));
    }
}
