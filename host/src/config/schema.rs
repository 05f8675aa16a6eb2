//! The config file's shape, exactly as written. Every table refuses unknown
//! keys so a typo is an error, not a silently ignored setting; fields that
//! later checks may complain about keep their position (`Spanned`).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// ```toml
/// [server]
/// [runtime]
/// [upstreams.<name>]
/// [plugins.<name>]
/// [[routes]]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub runtime: RuntimeFile,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Spanned<UpstreamFile>>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<PluginFile>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteFile>>,
}

/// ```toml
/// [server]
/// listen = ["127.0.0.1:8080"]   # addresses to accept clients on
/// max_body_bytes = 1048576      # largest body a plugin may ask to buffer
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<Vec<Spanned<String>>>,
    pub max_body_bytes: Option<u64>,
}

/// The operators' API (health, status, reload). Off unless given.
///
/// ```toml
/// [admin]
/// listen = "127.0.0.1:9901"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<Spanned<String>>,
}

/// Defaults for every plugin, and the engine's size.
///
/// ```toml
/// [runtime]
/// timeout_ms = 50          # wasm execution time per plugin call
/// memory_mb = 32           # linear memory per plugin instance
/// max_instances_per_plugin = 64
/// max_instances = 256      # all instances alive at once
/// cache_dir = ".wasmgate-cache"   # compiled artifacts; relative to this file
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    pub timeout_ms: Option<Spanned<u64>>,
    pub memory_mb: Option<Spanned<u64>>,
    pub max_instances_per_plugin: Option<Spanned<u32>>,
    pub max_instances: Option<Spanned<u32>>,
    pub cache_dir: Option<Spanned<String>>,
}

/// ```toml
/// [upstreams.users]
/// targets = ["127.0.0.1:9101", "127.0.0.1:9102"]
/// timeout_ms = 30000
/// connect_timeout_ms = 2000
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub targets: Spanned<Vec<Spanned<String>>>,
    pub timeout_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
}

/// ```toml
/// [plugins.add-header]
/// path = "../target/plugins/add_header.wasm"   # relative to this file
/// config = { request = { x-hello = "world" } } # defaults for every use
/// timeout_ms = 20
/// memory_mb = 16
/// max_instances = 32
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFile {
    pub path: Spanned<String>,
    pub config: Option<toml::Table>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub memory_mb: Option<Spanned<u64>>,
    pub max_instances: Option<Spanned<u32>>,
}

/// ```toml
/// [[routes]]
/// name = "user"
/// path = "/users/{id}"           # or: prefix = "/api"
/// methods = ["GET", "HEAD"]      # any when absent
/// hosts = ["api.example.com", "*.example.org"]   # any when absent
/// upstream = "users"             # absent: a plugin must answer
/// timeout_ms = 10000
/// max_body_bytes = 65536
/// pipeline = [
///   { plugin = "add-header", config = { request = { x-route = "user" } } },
///   { plugin = "audit", on_error = "fail-open" },
/// ]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Spanned<String>,
    pub path: Option<Spanned<String>>,
    pub prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub timeout_ms: Option<u64>,
    pub max_body_bytes: Option<u64>,
    #[serde(default)]
    pub pipeline: Vec<Spanned<PluginUseFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginUseFile {
    pub plugin: Spanned<String>,
    pub config: Option<toml::Table>,
    #[serde(default)]
    pub on_error: FailPolicy,
}

/// What a route does when one of its plugins fails (trap, timeout, memory).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailPolicy {
    /// Answer 5xx problem+json: the safe default for auth and the like.
    #[default]
    FailClosed,
    /// Skip the failed plugin and go on, for plugins that only enrich.
    FailOpen,
}
