//! Turning `.wasm` files into compiled components, once per content.
//!
//! Compiling a component takes tens of milliseconds; loading a precompiled
//! artifact takes a fraction of one. Artifacts are keyed by the SHA-256 of
//! the component bytes plus the engine's compatibility hash, so a changed
//! file or a new wasmtime never loads a stale artifact.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine::EngineLimits;

/// Why a plugin file could not become a component.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid wasm component: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The identity of a component's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The first 12 hex digits, enough to tell versions apart in logs.
    pub(crate) fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A compiled component and the hash of the bytes it came from. Holding it
/// keeps the in-memory cache entry alive.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub component: Arc<Component>,
    pub hash: ContentHash,
}

/// Compiles components, reusing what is still in memory (the same file used
/// by the running snapshot) or on disk (a restart).
pub(super) struct Compiler {
    engine: Engine,
    disk: Option<PathBuf>,
    engine_tag: String,
    /// The engine's sizing, which the generated code depends on.
    limits: EngineLimits,
    /// Weak so an artifact unused by every snapshot is freed.
    memory: Mutex<HashMap<ContentHash, Weak<Component>>>,
}

/// The gateway's own binary, when plugins are compiled in child processes
/// of it (see [`compile_in_child_processes`]).
static CHILD_COMPILER: OnceLock<PathBuf> = OnceLock::new();

/// Compiles plugins from now on in child processes running `exe` (the
/// `wasmgate` binary itself, which answers `exe compile-plugin`), so the
/// compiler's memory (its working sets, the code pages of Cranelift itself)
/// never stays in the gateway: compiled at start, a 5-plugin config idled
/// at 65 MB in-process against 32 MB when loaded from the artifact cache.
/// A compiler crash on a hostile file fails that compile, not the gateway.
/// Without it (a gateway embedded in tests) compiles run in-process.
pub fn compile_in_child_processes(exe: PathBuf) {
    let _ = CHILD_COMPILER.set(exe);
}

/// Compiles a component to an artifact for an engine sized by `limits`, in
/// an engine of its own that is dropped with the compiler's working memory.
pub(super) fn compile_artifact(limits: EngineLimits, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    Engine::new(&super::engine::compiling_config(limits))?.precompile_component(wasm)
}

/// What [`compile_artifact`] makes, made by `exe compile-plugin`.
fn compile_in_child(exe: &Path, limits: EngineLimits, path: &Path) -> Result<Vec<u8>, String> {
    let output = Command::new(exe)
        .arg("compile-plugin")
        .arg("--max-memory-bytes")
        .arg(limits.max_memory_bytes.to_string())
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the compiler process {}: {e}", exe.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.trim().strip_prefix("wasmgate: ").unwrap_or(stderr.trim());
        return Err(if reason.is_empty() {
            format!("the compiler process failed ({})", output.status)
        } else {
            reason.to_owned()
        });
    }
    Ok(output.stdout)
}

impl Compiler {
    pub(super) fn new(engine: Engine, limits: EngineLimits, cache_dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_tag = format!("{:016x}", hasher.finish());
        Self { engine, disk: cache_dir, engine_tag, limits, memory: Mutex::new(HashMap::new()) }
    }

    /// Reads and compiles a plugin file. Blocking: call it off the request
    /// path (`spawn_blocking`).
    pub(super) fn compile_file(&self, path: &Path) -> Result<Compiled, CompileError> {
        let bytes = std::fs::read(path).map_err(|source| CompileError::Read { path: path.to_owned(), source })?;
        let hash = ContentHash::of(&bytes);
        if let Some(component) = self.memory.lock().unwrap().get(&hash).and_then(Weak::upgrade) {
            return Ok(Compiled { component, hash });
        }
        let component = match self.load_artifact(&hash) {
            Some(component) => component,
            None => {
                let invalid = |reason: String| CompileError::Invalid { path: path.to_owned(), reason };
                let in_child = CHILD_COMPILER.get().map(|exe| compile_in_child(exe, self.limits, path));
                let loaded = match in_child {
                    Some(artifact) => self.load_new(artifact.map_err(invalid)?).or_else(|e| {
                        // The child saw other CPU features than this process
                        // does (an emulator, valgrind): compile here instead.
                        tracing::warn!(path = %path.display(), error = %e, "compiled in a child process for another host; compiling in-process");
                        self.compile_here(&bytes)
                    }),
                    None => self.compile_here(&bytes),
                };
                let (component, artifact) = loaded.map_err(|e| invalid(format!("{e:#}")))?;
                self.store_artifact(&hash, &artifact);
                component
            }
        };
        let component = Arc::new(component);
        let mut memory = self.memory.lock().unwrap();
        memory.retain(|_, weak| weak.strong_count() > 0);
        memory.insert(hash, Arc::downgrade(&component));
        Ok(Compiled { component, hash })
    }

    fn compile_here(&self, wasm: &[u8]) -> wasmtime::Result<(Component, Vec<u8>)> {
        self.load_new(compile_artifact(self.limits, wasm)?)
    }

    /// An artifact made just now, loaded, and kept for the disk cache.
    fn load_new(&self, artifact: Vec<u8>) -> wasmtime::Result<(Component, Vec<u8>)> {
        // SAFETY: the artifact was made just now by this build of wasmtime
        // for this engine's configuration; wasmtime still checks its header
        // (and the host's CPU features) and refuses a mismatch.
        let component = unsafe { Component::deserialize(&self.engine, &artifact) }?;
        Ok((component, artifact))
    }

    fn artifact_path(&self, hash: &ContentHash) -> Option<PathBuf> {
        let dir = self.disk.as_ref()?;
        Some(dir.join(format!("{hash}-{}.cwasm", self.engine_tag)))
    }

    fn load_artifact(&self, hash: &ContentHash) -> Option<Component> {
        let path = self.artifact_path(hash)?;
        // Read into memory rather than mapping the file: a mapped artifact
        // that someone truncates or rewrites in place would crash the
        // process (SIGBUS) the next time its code runs.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the file is one this compiler wrote for this engine
        // configuration (the name carries the engine's compatibility hash);
        // wasmtime still checks its header and refuses a mismatch.
        match unsafe { Component::deserialize(&self.engine, &bytes) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached artifact");
                None
            }
        }
    }

    /// Best effort: a cache that cannot be written only costs start time.
    fn store_artifact(&self, hash: &ContentHash, bytes: &[u8]) {
        let Some(path) = self.artifact_path(hash) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("artifact path has a parent"))?;
            // Write then rename, so a concurrent reader never sees half a file.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled plugin");
        }
    }
}
