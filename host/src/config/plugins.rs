//! The plugins of a config: `[plugins.NAME]` entries and the `NAME.wasm`
//! files of `plugins_dir`, merged into one list in which each plugin says
//! where it came from. The folder is read each time the config is, so a
//! reload sees what was dropped in or removed since.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Spanned;

use super::checker::Checker;
use super::error::Location;
use super::schema::PluginFile;
use crate::runtime::{BreakerSpec, PluginLimits};

/// A plugin as the checked config holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    pub name: String,
    /// Resolved against the config file's folder.
    pub path: PathBuf,
    pub config: toml::Table,
    pub limits: PluginLimits,
    /// `None`: never quarantined.
    pub breaker: Option<BreakerSpec>,
    /// An entry, the plugins folder, or both.
    pub origin: PluginOrigin,
    /// The entry's `path`, the entry, or `plugins_dir` for a plugin found
    /// there without one: where its compile errors point.
    pub at: Location,
}

impl PluginSpec {
    /// Equal but for where it was written.
    pub fn same_settings(&self, other: &Self) -> bool {
        (&self.name, &self.path, &self.config, &self.limits, &self.breaker)
            == (&other.name, &other.path, &other.config, &other.limits, &other.breaker)
    }
}

/// Where a plugin came from, as `/status` and `wasmgate check` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginOrigin {
    /// `[plugins.NAME]` with a `path`: `config`.
    Config,
    /// `NAME.wasm` in `plugins_dir`, with the default settings:
    /// `plugins_dir`.
    Folder,
    /// `NAME.wasm` in `plugins_dir`, with settings from `[plugins.NAME]`:
    /// `plugins_dir+config`.
    FolderWithSettings,
}

impl PluginOrigin {
    /// As `/status` and `wasmgate check` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Folder => "plugins_dir",
            Self::FolderWithSettings => "plugins_dir+config",
        }
    }
}

impl Serialize for PluginOrigin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What a plugin without settings of its own gets: `[runtime]`'s limits
/// and breaker, and the largest memory the engine allows.
pub(super) struct PluginDefaults {
    pub limits: PluginLimits,
    pub breaker: (bool, BreakerSpec),
    pub max_memory_bytes: usize,
}

/// The plugin files found in `plugins_dir`, by name.
struct Folder {
    path: PathBuf,
    files: BTreeMap<String, PathBuf>,
}

/// A name a file in `plugins_dir` may give a plugin: it ends up in state
/// keys, metric labels and log lines, so nothing that needs quoting.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Checker<'_> {
    /// Every plugin of the config, by name; and `plugins_dir` resolved
    /// against the config's folder.
    pub(super) fn plugins(
        &mut self,
        dir: Option<&Spanned<String>>,
        entries: &BTreeMap<String, Spanned<PluginFile>>,
        base: &Path,
        defaults: &PluginDefaults,
    ) -> (Option<PathBuf>, Vec<PluginSpec>) {
        let folder = dir.map(|d| self.read_folder(d, base));
        let mut plugins = Vec::new();
        for (name, p) in entries {
            let key = format!("plugins.{name}");
            let pf = p.get_ref();
            let in_folder = folder.as_ref().and_then(|f| f.files.get(name));
            let (path, origin, at) = match (&pf.path, &folder) {
                (Some(given), _) => {
                    let path = base.join(given.get_ref());
                    let at = self.map.locate(given.span(), format!("{key}.path"));
                    match in_folder {
                        Some(found) if same_file(found, &path) => (path, PluginOrigin::FolderWithSettings, at),
                        Some(found) => {
                            self.error::<()>(
                                given.span(),
                                format!("{key}.path"),
                                format!(
                                    "plugin {name:?} is given twice: by this path ({}) and by plugins_dir ({}); \
                                     remove one, or drop `path` to give the folder's file these settings",
                                    path.display(),
                                    found.display()
                                ),
                            );
                            // Kept, so routes naming it are not also told it is unknown.
                            (path, PluginOrigin::Config, at)
                        }
                        None => (path, PluginOrigin::Config, at),
                    }
                }
                (None, Some(folder)) => {
                    let path = folder.path.join(format!("{name}.wasm"));
                    if in_folder.is_none() {
                        self.error::<()>(
                            p.span(),
                            key.clone(),
                            format!("no plugin file {} (plugins_dir has no {name}.wasm)", path.display()),
                        );
                    }
                    (path, PluginOrigin::FolderWithSettings, self.map.locate(p.span(), key.clone()))
                }
                (None, None) => {
                    self.error::<()>(p.span(), key, "needs a `path` (or plugins_dir holding the plugin's file)");
                    continue;
                }
            };
            let (limits, breaker) = self.plugin_settings(Some(p), &key, defaults);
            plugins.push(PluginSpec {
                name: name.clone(),
                path,
                config: pf.config.clone().unwrap_or_default(),
                limits,
                breaker,
                origin,
                at,
            });
        }
        if let (Some(folder), Some(dir)) = (&folder, dir) {
            for (name, path) in folder.files.iter().filter(|(name, _)| !entries.contains_key(*name)) {
                let (limits, breaker) = self.plugin_settings(None, "", defaults);
                plugins.push(PluginSpec {
                    name: name.clone(),
                    path: path.clone(),
                    config: toml::Table::new(),
                    limits,
                    breaker,
                    origin: PluginOrigin::Folder,
                    at: self.map.locate(dir.span(), "plugins_dir"),
                });
            }
        }
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        (folder.map(|f| f.path), plugins)
    }

    /// The `*.wasm` files directly in `plugins_dir`; an unreadable folder
    /// or a file that cannot name a plugin is an error.
    fn read_folder(&mut self, dir: &Spanned<String>, base: &Path) -> Folder {
        let path = base.join(dir.get_ref());
        let mut files = BTreeMap::new();
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) => {
                self.error::<()>(dir.span(), "plugins_dir", format!("cannot read folder {}: {e}", path.display()));
                return Folder { path, files };
            }
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let lossy = file_name.to_string_lossy();
            let Some(stem) = lossy.strip_suffix(".wasm") else {
                continue;
            };
            let file = entry.path();
            if stem.starts_with('.') || !file.is_file() {
                continue;
            }
            if file_name.to_str().is_none() || !valid_name(stem) {
                self.error::<()>(
                    dir.span(),
                    "plugins_dir",
                    format!(
                        "{}: a plugin file's name (before .wasm) takes 1 to 64 ASCII letters, digits, '-' and '_'",
                        file.display()
                    ),
                );
                continue;
            }
            files.insert(stem.to_owned(), file);
        }
        Folder { path, files }
    }

    /// A plugin's limits and breaker: its entry's keys over the defaults.
    fn plugin_settings(
        &mut self,
        entry: Option<&Spanned<PluginFile>>,
        key: &str,
        defaults: &PluginDefaults,
    ) -> (PluginLimits, Option<BreakerSpec>) {
        let Some(p) = entry else {
            let (on, breaker) = defaults.breaker;
            return (defaults.limits, on.then_some(breaker));
        };
        let pf = p.get_ref();
        let d = defaults.limits;
        let limits = PluginLimits {
            timeout: self.ms(&pf.timeout_ms, &format!("{key}.timeout_ms"), d.timeout),
            wall_timeout: self.ms(&pf.wall_timeout_ms, &format!("{key}.wall_timeout_ms"), d.wall_timeout),
            configure_timeout: self.ms(
                &pf.configure_timeout_ms,
                &format!("{key}.configure_timeout_ms"),
                d.configure_timeout,
            ),
            memory_bytes: pf
                .memory_mb
                .as_ref()
                .map(|_| (self.positive(&pf.memory_mb, &format!("{key}.memory_mb"), 1) << 20) as usize)
                .unwrap_or(d.memory_bytes),
            max_instances: pf
                .max_instances
                .as_ref()
                .map(|_| self.positive(&pf.max_instances, &format!("{key}.max_instances"), 1))
                .unwrap_or(d.max_instances),
        };
        if limits.memory_bytes > defaults.max_memory_bytes {
            let span = pf.memory_mb.as_ref().map(|m| m.span()).unwrap_or(p.span());
            self.error::<()>(
                span,
                format!("{key}.memory_mb"),
                format!("at most {} MiB", defaults.max_memory_bytes >> 20),
            );
        }
        self.wall_covers_cpu(&limits, &pf.wall_timeout_ms, &pf.timeout_ms, key);
        let (on, breaker) = self.breaker(&pf.breaker, &format!("{key}.breaker"), defaults.breaker);
        (limits, on.then_some(breaker))
    }
}

/// Whether two paths name one file: as written (`plugins/a.wasm` and
/// `./plugins/a.wasm`), or through links, when both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).ok().map(|p| p.components().collect::<PathBuf>());
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => absolute(a) == absolute(b),
    }
}

/// What a route's unknown plugin is told: the file it would come from
/// when there is a plugins folder, then the plugins there are.
pub(super) fn unknown_plugin(name: &str, plugins: &[PluginSpec], dir: Option<&Path>) -> String {
    let known: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
    match dir {
        Some(dir) => format!(
            "unknown plugin {name:?}: no file {} in plugins_dir and no [plugins.{name}] (defined: {known})",
            dir.join(format!("{name}.wasm")).display()
        ),
        None => format!("unknown plugin {name:?} (defined: {known})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    /// A folder with `gw.toml` (`text`) and `plugins/` holding `files`.
    fn site(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for f in files {
            std::fs::write(dir.path().join("plugins").join(f), b"\0asm").unwrap();
        }
        dir
    }

    fn check(dir: &tempfile::TempDir, text: &str) -> Result<crate::config::Config, Vec<String>> {
        parse(&dir.path().join("gw.toml"), text).map_err(|e| e.errors().iter().map(ToString::to_string).collect())
    }

    const ROUTE: &str = "[[routes]]\nname = \"r\"\npath = \"/\"\npipeline = [{ plugin = \"a\" }]\n";

    #[test]
    fn every_wasm_file_in_the_folder_is_a_plugin_and_an_entry_gives_it_settings() {
        let dir = site(&["a.wasm", "b-2_x.wasm", ".a.wasm.swp", ".hidden.wasm", "notes.txt", "a.wasm.tmp"]);
        std::fs::create_dir(dir.path().join("plugins/sub.wasm")).unwrap();
        let text = format!(
            "plugins_dir = \"plugins\"\n[plugins.a]\nconfig = {{ x = 1 }}\ntimeout_ms = 7\n\
             [plugins.c]\npath = \"elsewhere/c.wasm\"\n{ROUTE}"
        );
        let config = check(&dir, &text).unwrap();
        let found: Vec<_> = config.plugins.iter().map(|p| (p.name.as_str(), p.origin, p.path.clone())).collect();
        let folder = dir.path().join("plugins");
        assert_eq!(
            found,
            [
                ("a", PluginOrigin::FolderWithSettings, folder.join("a.wasm")),
                ("b-2_x", PluginOrigin::Folder, folder.join("b-2_x.wasm")),
                ("c", PluginOrigin::Config, dir.path().join("elsewhere/c.wasm")),
            ]
        );
        assert_eq!(config.plugins_dir, Some(folder));
        assert_eq!(config.plugins[0].limits.timeout, std::time::Duration::from_millis(7));
        assert_eq!(config.plugins[1].limits.timeout, std::time::Duration::from_millis(50), "[runtime]'s default");
        assert_eq!(config.routes[0].pipeline[0].config_json, r#"{"x":1}"#);
        let at = config.plugins[1].at.to_string();
        assert!(at.ends_with("gw.toml:1:15: plugins_dir"), "{at}");
    }

    #[test]
    fn an_entry_naming_the_folders_own_file_is_the_same_plugin() {
        let dir = site(&["a.wasm"]);
        let config =
            check(&dir, &format!("plugins_dir = \"plugins\"\n[plugins.a]\npath = \"./plugins/a.wasm\"\n{ROUTE}"))
                .unwrap();
        assert_eq!(config.plugins.len(), 1);
        assert_eq!(config.plugins[0].origin, PluginOrigin::FolderWithSettings);
    }

    #[test]
    fn one_name_from_two_files_is_an_error() {
        let dir = site(&["a.wasm"]);
        std::fs::write(dir.path().join("a.wasm"), b"").unwrap();
        let e =
            check(&dir, &format!("plugins_dir = \"plugins\"\n[plugins.a]\npath = \"a.wasm\"\n{ROUTE}")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("gw.toml:3:8: plugins.a.path: plugin \"a\" is given twice: by this path ("), "{e:?}");
        assert!(e[0].contains("plugins/a.wasm); remove one, or drop `path`"), "{e:?}");
    }

    #[test]
    fn a_missing_plugin_file_is_named() {
        let dir = site(&[]);
        let e = check(&dir, &format!("plugins_dir = \"plugins\"\n{ROUTE}")).unwrap_err();
        let missing = dir.path().join("plugins/a.wasm");
        assert_eq!(
            e,
            [format!(
                "{}:5:24: routes[0].pipeline[0].plugin: unknown plugin \"a\": no file {} in plugins_dir and no [plugins.a] (defined: none)",
                dir.path().join("gw.toml").display(),
                missing.display()
            )]
        );
        let e = check(&dir, &format!("plugins_dir = \"plugins\"\n[plugins.a]\nmemory_mb = 8\n{ROUTE}")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains(&format!("plugins.a: no plugin file {}", missing.display())), "{e:?}");
        let e = check(&dir, &format!("[plugins.a]\nmemory_mb = 8\n{ROUTE}")).unwrap_err();
        assert!(e[0].ends_with("plugins.a: needs a `path` (or plugins_dir holding the plugin's file)"), "{e:?}");
    }

    #[test]
    fn a_folder_that_cannot_be_read_or_a_file_that_cannot_name_a_plugin_is_an_error() {
        let dir = site(&["has space.wasm"]);
        let e = check(&dir, "plugins_dir = \"plugins\"\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("has space.wasm: a plugin file's name (before .wasm) takes"), "{e:?}");
        let e = check(&dir, "plugins_dir = \"nowhere\"\n").unwrap_err();
        assert!(e[0].contains("gw.toml:1:15: plugins_dir: cannot read folder "), "{e:?}");
    }
}
