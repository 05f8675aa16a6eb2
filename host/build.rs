//! Embeds the plugin SDK's sources, the WIT contract and the workspace's
//! manifest and lock file into the binary, for `wasmgate plugin new`: a
//! scaffolded plugin gets its own copy of the SDK, so it builds outside this
//! repository with no network for the SDK itself.
//!
//! The files are listed here rather than by hand so that a file added to the
//! SDK is embedded too; cargo reruns this script when anything in those
//! folders changes, and `include_bytes!` rebuilds the binary when a file's
//! contents do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ is inside the workspace").to_owned();
    let mut files = Vec::new();
    for dir in ["plugin-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        collect(&root.join(dir), &mut files);
    }
    files.sort();

    let mut out = String::from("/// The SDK and the WIT contract: (path from the workspace root, contents).\n");
    out.push_str("pub const SDK_FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("collected below the root");
        let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        writeln!(out, "    ({relative:?}, include_bytes!({:?})),", file.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    for (name, file) in [("WORKSPACE_MANIFEST", "Cargo.toml"), ("WORKSPACE_LOCK", "Cargo.lock")] {
        let path = root.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "/// The workspace's `{file}`.\npub const {name}: &str = include_str!({:?});",
            path.display().to_string()
        )
        .unwrap();
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("embedded.rs"), out).expect("writing embedded.rs");
}

/// Every file below `dir` but hidden ones (editor swap files, `.git`) and
/// build output.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("reading a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
