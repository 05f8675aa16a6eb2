//! Compiles every plugin crate (`plugins/*`) and test fixture
//! (`tests/fixtures/*`) to a wasm32-wasip2 component, installing the target
//! when it is missing, and exposes their paths as constants.
//!
//! The nested cargo uses its own target dir: the outer build holds the lock
//! on the main one. Plugins are also copied to `target/plugins/` (as cargo
//! names them: `jwt_auth.wasm`), and to `target/demo-plugins/` under their
//! plugin names (`jwt-auth.wasm`), the `plugins_dir` of the demo config.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/cargo_env.rs"]
mod cargo_env;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().expect("tests/ is inside the workspace").to_owned();
    for watched in ["plugins", "plugin-sdk", "wit", "tests/fixtures", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let crates: Vec<(String, bool)> = crate_names(&root.join("plugins"))
        .into_iter()
        .map(|n| (n, false))
        .chain(crate_names(&root.join("tests/fixtures")).into_iter().map(|n| (n, true)))
        .collect();

    ensure_wasm_target();
    let target_dir = root.join("target/wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
        .arg(&target_dir);
    for (name, _) in &crates {
        cmd.args(["-p", name]);
    }
    cargo_env::scrub(&mut cmd);
    let out = cmd.output().expect("running cargo to build the plugins");
    if !out.status.success() {
        panic!("building the plugins to wasm failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    let built = target_dir.join("wasm32-wasip2/plugin");
    let dist = root.join("target/plugins");
    let by_name = root.join("target/demo-plugins");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::create_dir_all(&by_name).unwrap();
    let mut consts = String::new();
    for (name, fixture) in &crates {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let mut path = built.join(&file);
        if !fixture {
            copy_if_changed(&path, &by_name.join(format!("{name}.wasm")));
            let dest = dist.join(&file);
            copy_if_changed(&path, &dest);
            path = dest;
        }
        let ident = name.to_uppercase().replace('-', "_");
        consts.push_str(&format!(
            "/// `{name}` built as a component.\npub const {ident}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    consts.push_str(&format!(
        "/// Every plugin, as cargo names the file (`jwt_auth.wasm`).\npub const DIST_DIR: &str = {:?};\n",
        dist.display().to_string()
    ));
    consts.push_str(&format!(
        "/// Every plugin under its plugin name (`jwt-auth.wasm`): the demo's `plugins_dir`.\npub const DEMO_PLUGINS_DIR: &str = {:?};\n",
        by_name.display().to_string()
    ));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("plugins.rs"), consts).unwrap();
}

/// Package names of the crates directly below `dir`.
fn crate_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let manifest = std::fs::read_to_string(e.ok()?.path().join("Cargo.toml")).ok()?;
            manifest.lines().find_map(|l| {
                let v = l.trim().strip_prefix("name")?.trim_start().strip_prefix('=')?;
                Some(v.trim().trim_matches('"').to_owned())
            })
        })
        .collect();
    names.sort();
    names
}

fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|d| d.is_dir()) {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .expect("running rustup (needed to install the wasm32-wasip2 target)");
    assert!(status.success(), "rustup target add wasm32-wasip2 failed");
}

/// Writes through a temporary file and a rename, and only when the content
/// changed, so a watcher of the folder never sees a half-written plugin.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    if std::fs::read(to).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = to.with_extension("wasm.tmp");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}
