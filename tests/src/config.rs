//! Gateway configs for tests, built as values and written out by the `toml`
//! crate: a test names its plugins, upstreams and routes, and plugin configs
//! are `serde_json::json!` values, so route templates such as
//! `/users/{id}` are written as they read in a config file, with no
//! `format!` escaping.
//!
//! ```text
//! let toml = GatewayConfig::new()
//!     .plugin("transform", TRANSFORM)
//!     .upstream("up", &up)
//!     .route(Route::path("user", "/users/{id}").upstream("up").stage("transform", json!({
//!         "request": {"path": {"template": "/internal/users/{id}"}},
//!     })))
//!     .to_string();
//! ```
//!
//! Tests that assert on the line numbers of config errors keep writing their
//! TOML by hand: the layout this writes is the `toml` crate's.

use std::fmt;

use serde_json::Value;
use toml::Table;

use crate::upstream::TestUpstream;

/// A whole config file.
#[derive(Clone, Debug, Default)]
pub struct GatewayConfig {
    top: Table,
    routes: Vec<toml::Value>,
}

impl GatewayConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// A top-level table such as `[server]` or `[runtime]`, from a JSON
    /// object.
    pub fn section(mut self, name: &str, settings: Value) -> Self {
        self.top.insert(name.into(), table(settings).into());
        self
    }

    /// `[plugins.<name>]` loading the component at `path`.
    pub fn plugin(self, name: &str, path: &str) -> Self {
        self.plugin_with(name, path, Value::Null)
    }

    /// `[plugins.<name>]` with more settings than its path (`timeout_ms`,
    /// `memory_mb`…), given as a JSON object.
    pub fn plugin_with(mut self, name: &str, path: &str, settings: Value) -> Self {
        let mut plugin = table(settings);
        plugin.insert("path".into(), path.into());
        section(&mut self.top, "plugins").insert(name.into(), plugin.into());
        self
    }

    /// `[upstreams.<name>]` targeting a test service.
    pub fn upstream(self, name: &str, up: &TestUpstream) -> Self {
        self.upstream_at(name, &up.target())
    }

    /// `[upstreams.<name>]` targeting `host:port`.
    pub fn upstream_at(self, name: &str, target: &str) -> Self {
        self.upstream_with(name, serde_json::json!({ "targets": [target] }))
    }

    /// `[upstreams.<name>]` with every setting given (`targets`, `retries`,
    /// `outlier`…), as a JSON object.
    pub fn upstream_with(mut self, name: &str, settings: Value) -> Self {
        section(&mut self.top, "upstreams").insert(name.into(), table(settings).into());
        self
    }

    /// A `[[routes]]` entry, after those added before it.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route.0.into());
        self
    }
}

impl fmt::Display for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut file = self.top.clone();
        if !self.routes.is_empty() {
            file.insert("routes".into(), self.routes.clone().into());
        }
        f.write_str(&toml::to_string(&file).map_err(|_| fmt::Error)?)
    }
}

/// Every path proxied to upstream `name`, given whole (`targets`,
/// `balance`, `health`…) as a JSON object.
pub fn proxy_all(name: &str, upstream: Value) -> GatewayConfig {
    GatewayConfig::new().upstream_with(name, upstream).route(Route::prefix("all", "/").upstream(name))
}

/// One `[[routes]]` entry.
#[derive(Clone, Debug)]
pub struct Route(Table);

impl Route {
    /// A route matching the path pattern `path` (`/users/{id}`).
    pub fn path(name: &str, path: &str) -> Self {
        Self::matching(name, "path", path)
    }

    /// A route matching every path under `prefix`.
    pub fn prefix(name: &str, prefix: &str) -> Self {
        Self::matching(name, "prefix", prefix)
    }

    fn matching(name: &str, key: &str, pattern: &str) -> Self {
        let mut route = Table::new();
        route.insert("name".into(), name.into());
        route.insert(key.into(), pattern.into());
        Self(route)
    }

    /// Forwards to upstream `name` after the pipeline.
    pub fn upstream(self, name: &str) -> Self {
        self.set("upstream", name)
    }

    /// Any other route setting (`methods`, `max_body_bytes`…).
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Appends plugin `plugin` to the pipeline with `config` (a JSON
    /// object, or `Value::Null` for none).
    pub fn stage(self, plugin: &str, config: Value) -> Self {
        let settings = if config.is_null() { Value::Null } else { serde_json::json!({ "config": config }) };
        self.stage_with(plugin, settings)
    }

    /// Appends plugin `plugin` with stage settings beside its `config`
    /// (`on_error`…), as one JSON object.
    pub fn stage_with(mut self, plugin: &str, settings: Value) -> Self {
        let mut stage = table(settings);
        stage.insert("plugin".into(), plugin.into());
        match self.0.entry("pipeline").or_insert_with(|| toml::Value::Array(Vec::new())) {
            toml::Value::Array(stages) => stages.push(stage.into()),
            other => panic!("`pipeline` was set to {other}"),
        }
        self
    }
}

/// The table a JSON object (or `null`) stands for in TOML.
fn table(value: Value) -> Table {
    match value {
        Value::Null => Table::new(),
        Value::Object(_) => Table::try_from(&value).unwrap_or_else(|e| panic!("{value} has no TOML form: {e}")),
        other => panic!("a table was expected, not {other}"),
    }
}

/// The top-level table `key`, created on first use.
fn section<'a>(top: &'a mut Table, key: &str) -> &'a mut Table {
    match top.entry(key).or_insert_with(|| Table::new().into()) {
        toml::Value::Table(t) => t,
        other => panic!("`{key}` was set to {other}"),
    }
}
