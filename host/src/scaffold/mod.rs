//! `wasmgate plugin new NAME [DIR]`: a plugin crate that builds outside the
//! gateway's repository and offline, with a native unit test and a config
//! that serves it.
//!
//! The crate gets its own copy of the SDK and of the WIT contract, taken
//! from this binary (`build.rs` embeds them), so its SDK dependency is a
//! path beside it: no checkout of the repository, no git or registry
//! dependency on an SDK version that may not match this gateway. It is a
//! workspace of its own, which the SDK copy joins unmodified: the
//! `[workspace.package]` and `[workspace.dependencies]` entries the SDK
//! inherits, the `[profile.plugin]` the gateway's plugins ship with and the
//! lock file are all taken from the gateway's own workspace, so the plugin
//! is built with the dependency versions the SDK was tested with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate, with a unit test and a gateway config serving
    /// it, that builds outside this repository.
    New {
        /// The crate's and the plugin's name: lowercase ASCII letters,
        /// digits, `-` and `_`, starting with a letter.
        name: String,
        /// The folder to create it in, which must be missing or empty
        /// [default: ./NAME].
        dir: Option<PathBuf>,
    },
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New { name, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            new_plugin(&name, &dir)?;
            println!("created plugin `{name}` in {}", dir.display());
            println!("next:");
            println!("  cd {}", dir.display());
            println!("  cargo test                                           # unit tests, natively");
            println!("  cargo build --profile plugin --target wasm32-wasip2  # the component");
            println!("  wasmgate run gateway.toml                            # serves on 127.0.0.1:8080");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the crate into `dir`, refusing a name cargo or the gateway config
/// would not take and a `dir` with anything in it.
pub fn new_plugin(name: &str, dir: &Path) -> anyhow::Result<()> {
    check_name(name).with_context(|| format!("{name:?} cannot be a plugin name"))?;
    let files = files(name)?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} already exists and is not empty", dir.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    }
    for (path, contents) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A name that is a cargo package name, a Rust crate name once `-` become
/// `_`, a bare TOML key (`[plugins.NAME]`) and a portable file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    const MAX: usize = 64;
    let Some(first) = name.chars().next() else { bail!("the name is empty") };
    if !first.is_ascii_lowercase() {
        bail!("it must start with a lowercase ASCII letter");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        bail!("{c:?} is not allowed: use lowercase ASCII letters, digits, `-` and `_`");
    }
    if name.len() > MAX {
        bail!("it is longer than {MAX} characters");
    }
    let crate_name = name.replace('-', "_");
    if KEYWORDS.contains(&crate_name.as_str()) {
        bail!("`{crate_name}` is a Rust keyword");
    }
    if RESERVED.contains(&crate_name.as_str()) {
        bail!("`{crate_name}` is taken by Rust's standard crates, the SDK or the platform");
    }
    Ok(())
}

/// Rust keywords, reserved ones included, as of edition 2024.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names a plugin cannot take (the standard library's, the SDK's) and
/// file names Windows reserves.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "wasmgate_sdk",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Every file of the new crate, relative to its folder.
fn files(name: &str) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let crate_name = name.replace('-', "_");
    let type_name = format!("{}Plugin", camel_case(name));
    let workspace = Workspace::from_embedded()?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{type}}", &type_name)
            .replace("{{workspace_package}}", &workspace.package)
            .replace("{{workspace_dependencies}}", &workspace.dependencies)
            .replace("{{plugin_profile}}", &workspace.plugin_profile)
            .into_bytes()
    };
    let mut files = vec![
        (PathBuf::from("Cargo.toml"), fill(include_str!("template/Cargo.toml"))),
        (PathBuf::from("Cargo.lock"), embedded::WORKSPACE_LOCK.as_bytes().to_vec()),
        (PathBuf::from("src/lib.rs"), fill(include_str!("template/lib.rs"))),
        (PathBuf::from("gateway.toml"), fill(include_str!("template/gateway.toml"))),
        (PathBuf::from("README.md"), fill(include_str!("template/README.md"))),
        (PathBuf::from(".gitignore"), fill(include_str!("template/gitignore"))),
    ];
    // The SDK finds the contract at `../wit` from its manifest, as in the
    // repository: `wasmgate-sdk/` and `wit/` keep that layout.
    for (path, contents) in embedded::SDK_FILES {
        let path = match path.strip_prefix("plugin-sdk/") {
            Some(rest) => Path::new("wasmgate-sdk").join(rest),
            None => PathBuf::from(path),
        };
        files.push((path, contents.to_vec()));
    }
    Ok(files)
}

/// `my-auth_v2` → `MyAuthV2`.
fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .flat_map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars)
        })
        .collect()
}

/// The parts of the new crate's manifest taken from the gateway's
/// workspace, as TOML lines.
struct Workspace {
    package: String,
    dependencies: String,
    plugin_profile: String,
}

impl Workspace {
    fn from_embedded() -> anyhow::Result<Self> {
        let root: toml::Table = embedded::WORKSPACE_MANIFEST.parse().context("parsing the embedded Cargo.toml")?;
        let sdk_manifest = embedded::SDK_FILES
            .iter()
            .find(|(path, _)| *path == "plugin-sdk/Cargo.toml")
            .and_then(|(_, contents)| std::str::from_utf8(contents).ok())
            .context("the SDK's Cargo.toml is not embedded")?;
        let sdk: toml::Table = sdk_manifest.parse().context("parsing the embedded SDK Cargo.toml")?;

        let package_keys = inherited(sdk.get("package"));
        // The plugin itself depends on serde for `#[derive(Deserialize)]`.
        let mut dependency_names: Vec<&str> = vec!["serde"];
        for table in dependency_tables(&sdk) {
            dependency_names.extend(inherited(Some(table)));
        }
        dependency_names.sort_unstable();
        dependency_names.dedup();

        Ok(Workspace {
            package: lines(&root, &["workspace", "package"], &package_keys)?,
            dependencies: lines(&root, &["workspace", "dependencies"], &dependency_names)?,
            plugin_profile: lines(&root, &["profile", "plugin"], &[])?,
        })
    }
}

/// The keys of `table` set to `{ workspace = true }` (`key.workspace = true`).
fn inherited(table: Option<&toml::Value>) -> Vec<&str> {
    let Some(table) = table.and_then(toml::Value::as_table) else { return Vec::new() };
    table
        .iter()
        .filter(|(_, v)| v.get("workspace").and_then(toml::Value::as_bool) == Some(true))
        .map(|(k, _)| k.as_str())
        .collect()
}

/// `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`, and the
/// same under every `[target.'cfg(…)']`.
fn dependency_tables(manifest: &toml::Table) -> Vec<&toml::Value> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = manifest.get("target").and_then(toml::Value::as_table).into_iter().flat_map(|t| t.values());
    std::iter::once(manifest)
        .chain(targets.filter_map(toml::Value::as_table))
        .flat_map(|table| KINDS.iter().filter_map(|kind| table.get(*kind)))
        .collect()
}

/// `key = value` lines of the table at `path` in `root`: the given keys, or
/// all of them when none are given.
fn lines(root: &toml::Table, path: &[&str], keys: &[&str]) -> anyhow::Result<String> {
    let table = path
        .iter()
        .try_fold(root, |table, key| table.get(*key).and_then(toml::Value::as_table))
        .with_context(|| format!("the embedded Cargo.toml has no [{}]", path.join(".")))?;
    let keys: Vec<&str> = if keys.is_empty() { table.keys().map(String::as_str).collect() } else { keys.to_vec() };
    keys.iter()
        .map(|key| {
            let value = table
                .get(*key)
                .with_context(|| format!("the embedded Cargo.toml has no {key} in [{}]", path.join(".")))?;
            Ok(format!("{key} = {value}\n"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_and_the_config_take_are_accepted() {
        for name in ["hello", "my-auth", "auth_v2", "a", &"x".repeat(64)] {
            check_name(name).unwrap();
        }
    }

    #[test]
    fn other_names_are_refused_with_the_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("2fa", "start with a lowercase ASCII letter"),
            ("-x", "start with a lowercase ASCII letter"),
            ("Hello", "start with a lowercase ASCII letter"),
            ("my plugin", "' ' is not allowed"),
            ("a.b", "'.' is not allowed"),
            ("../x", "start with"),
            ("héllo", "'é' is not allowed"),
            (&"x".repeat(65), "longer than 64"),
            ("fn", "keyword"),
            ("self", "keyword"),
            ("std", "standard crates"),
            ("proc-macro", "standard crates"),
            ("wasmgate-sdk", "the SDK"),
            ("con", "platform"),
        ] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(camel_case("my-auth_v2"), "MyAuthV2");
        assert_eq!(camel_case("a"), "A");
    }

    #[test]
    fn the_manifest_inherits_what_the_sdk_needs_from_the_gateways_workspace() {
        let files = files("hello").unwrap();
        let manifest = files.iter().find(|(p, _)| p == Path::new("Cargo.toml")).unwrap();
        let manifest: toml::Table = std::str::from_utf8(&manifest.1).unwrap().parse().unwrap();
        let workspace = &manifest["workspace"];
        for dep in ["serde", "serde_json", "thiserror", "wit-bindgen"] {
            assert!(workspace["dependencies"].get(dep).is_some(), "{dep}: {workspace}");
        }
        assert_eq!(workspace["package"]["edition"].as_str(), Some("2024"));
        assert_eq!(manifest["profile"]["plugin"]["panic"].as_str(), Some("abort"));
        assert_eq!(manifest["profile"]["plugin"]["opt-level"].as_integer(), Some(3));
        // The SDK and the contract at the paths its `generate!` reads.
        assert!(files.iter().any(|(p, _)| p == Path::new("wasmgate-sdk/src/bindings.rs")));
        assert!(files.iter().any(|(p, _)| p == Path::new("wit/plugin.wit")));
    }
}
