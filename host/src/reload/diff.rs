//! What changed between two snapshots, for the reload log line.

use std::collections::BTreeMap;
use std::fmt;

use crate::snapshot::Snapshot;

/// What a reload changed: route names and plugins (`name@hash`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Routes new in this config.
    pub routes_added: Vec<String>,
    /// Routes gone from this config.
    pub routes_removed: Vec<String>,
    /// Routes whose match, pipeline or upstream changed.
    pub routes_changed: Vec<String>,
    /// `name@hash`
    pub plugins_added: Vec<String>,
    /// `name@hash`
    pub plugins_removed: Vec<String>,
    /// `name: old → new` content hashes (or settings) changed.
    pub plugins_changed: Vec<String>,
}

impl Diff {
    pub(crate) fn between(old: &Snapshot, new: &Snapshot) -> Self {
        let mut diff = Diff::default();
        let old_routes: BTreeMap<_, _> = old.config.routes.iter().map(|r| (r.name.as_str(), r)).collect();
        let new_routes: BTreeMap<_, _> = new.config.routes.iter().map(|r| (r.name.as_str(), r)).collect();
        for (name, route) in &new_routes {
            match old_routes.get(name) {
                None => diff.routes_added.push(name.to_string()),
                Some(before) if !before.same_behaviour(&old.config.plugins, route, &new.config.plugins) => {
                    diff.routes_changed.push(name.to_string())
                }
                Some(_) => {}
            }
        }
        diff.routes_removed =
            old_routes.keys().filter(|n| !new_routes.contains_key(*n)).map(|n| n.to_string()).collect();

        let old_plugins = old.plugin_versions();
        let new_plugins = new.plugin_versions();
        for (name, (hash, spec)) in &new_plugins {
            match old_plugins.get(name) {
                None => diff.plugins_added.push(format!("{name}@{hash}")),
                Some((before, _)) if before != hash => diff.plugins_changed.push(format!("{name}: {before} → {hash}")),
                Some((_, before)) if !before.same_settings(spec) => {
                    diff.plugins_changed.push(format!("{name}@{hash}: settings"))
                }
                Some(_) => {}
            }
        }
        diff.plugins_removed = old_plugins
            .iter()
            .filter(|(n, _)| !new_plugins.contains_key(*n))
            .map(|(n, (h, _))| format!("{n}@{h}"))
            .collect();
        diff
    }

    /// The reload changed nothing (it was still applied: the files were
    /// read again).
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let parts = [
            ("routes added", &self.routes_added),
            ("routes removed", &self.routes_removed),
            ("routes changed", &self.routes_changed),
            ("plugins added", &self.plugins_added),
            ("plugins removed", &self.plugins_removed),
            ("plugins changed", &self.plugins_changed),
        ];
        let text: Vec<String> = parts
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(label, v)| format!("{label}: {}", v.join(", ")))
            .collect();
        f.write_str(&text.join("; "))
    }
}
