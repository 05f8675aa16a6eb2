//! A cargo run from inside a build or a test: the outer cargo's settings
//! (target, flags, wrappers such as clippy's, the package's own variables)
//! must not leak into it. Shared with `build.rs`, which includes this file.

use std::process::Command;

/// Removes the outer cargo's variables from `cmd`'s environment, keeping
/// where cargo's home, registries and network settings are.
pub fn scrub(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_"]
            .iter()
            .any(|k| key.starts_with(k));
        let drop = (key.starts_with("CARGO_") && !keep)
            || matches!(
                &*key,
                "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "MAKEFLAGS" | "MFLAGS" | "RUSTDOCFLAGS"
            );
        if drop {
            cmd.env_remove(&*key);
        }
    }
}
