//! Config loading: file text → file shape (serde) → checked [`Config`].
//! Building the live snapshot (compiling and configuring plugins) is
//! `snapshot`'s job; `wasmgate check` runs both.

mod checker;
mod error;
mod plugins;
mod schema;
mod upstream;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub(crate) use error::{Location, SourceMap};
pub(crate) use plugins::PluginSpec;
pub use validate::Config;
pub(crate) use validate::{AccessLogFormat, AccessLogSettings};

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
    parse(path, &text)
}

/// The `plugins_dir` the config file names now, resolved, whether or not
/// the rest of it is valid: what the reload watcher also watches while a
/// config that failed to load waits for a plugin file.
pub(crate) fn plugins_dir_on_disk(path: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let dir = table.get("plugins_dir")?.as_str()?;
    Some(path.parent().unwrap_or(Path::new(".")).join(dir))
}

/// Checks config text as if read from `path` (which locates relative plugin
/// paths and names the file in errors).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let map = SourceMap::new(path, text);
    let file: schema::ConfigFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let key =
            text.get(span.clone()).and_then(|s| s.lines().next()).map(|s| s.trim().to_owned()).unwrap_or_default();
        ConfigErrors::Invalid(vec![ConfigError { at: map.locate(span, key), message: e.message().trim().to_owned() }])
    })?;
    validate::check(file, &map).map_err(ConfigErrors::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("gw.toml"), text) {
            Ok(_) => vec![],
            Err(e) => e.errors().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = errors("[server]\nlisen = [\"127.0.0.1:1\"]\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("gw.toml:2:1: lisen: unknown field `lisen`"), "{e:?}");
    }

    #[test]
    fn tracing_needs_an_http_endpoint_and_a_ratio_from_0_to_1() {
        let config =
            parse(Path::new("gw.toml"), "[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/v1/traces\"\n").unwrap();
        let tracing = config.tracing.expect("[tracing] is on");
        assert_eq!((tracing.sample_ratio, tracing.service_name.as_str()), (1.0, "wasmgate"));
        assert_eq!(tracing.endpoint.to_string(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(parse(Path::new("gw.toml"), "").unwrap().tracing, None, "off by default");
        let e =
            errors("[tracing]\notlp_endpoint = \"grpc://collector:4317\"\nsample_ratio = 1.5\nservice_name = \"\"\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("gw.toml:2:17: tracing.otlp_endpoint: \"grpc://collector:4317\": expected an http:// URL"),
            "{e:?}"
        );
        assert!(e[1].starts_with("gw.toml:3:16: tracing.sample_ratio: 1.5: expected 0 to 1"), "{e:?}");
        assert!(e[2].starts_with("gw.toml:4:16: tracing.service_name: 1 to 256 bytes"), "{e:?}");
        let missing = errors("[tracing]\nsample_ratio = 0.5\n");
        assert!(missing[0].contains("missing field `otlp_endpoint`"), "{missing:?}");
    }

    #[test]
    fn path_params_takes_one_of_three_modes() {
        use crate::normalize::PathParams;
        let mode = |text: &str| parse(Path::new("gw.toml"), text).unwrap().server.path_params;
        assert_eq!(mode(""), PathParams::Strip, "the default");
        assert_eq!(mode("[server]\npath_params = \"keep\"\n"), PathParams::Keep);
        assert_eq!(mode("[server]\npath_params = \"reject\"\n"), PathParams::Reject);
        let e = errors("[server]\npath_params = \"drop\"\n");
        assert_eq!(e, ["gw.toml:2:15: server.path_params: \"drop\" is not one of \"strip\", \"keep\", \"reject\""]);
    }

    #[test]
    fn state_is_local_unless_redis_is_given_with_a_url() {
        use crate::state::{OnUnavailable, StateSettings};
        use std::time::Duration;
        let state = |text: &str| parse(Path::new("gw.toml"), text).unwrap().state;
        assert_eq!(state(""), StateSettings::Local);
        let StateSettings::Redis(redis) = state(
            "[state]\nbackend = \"redis\"\nurl = \"rediss://:pw@r:6380/1\"\ntimeout_ms = 20\n\
             on_unavailable = \"fail-closed\"\npool_size = 4\n",
        ) else {
            panic!("redis expected");
        };
        assert_eq!((redis.key_prefix.as_str(), redis.pool_size), ("wasmgate:", 4));
        assert_eq!((redis.timeout, redis.on_unavailable), (Duration::from_millis(20), OnUnavailable::FailClosed));
        assert!(!format!("{redis:?}").contains("pw"), "the password is not logged: {redis:?}");

        let e = errors("[state]\nbackend = \"memcached\"\n");
        assert_eq!(e, ["gw.toml:2:11: state.backend: \"memcached\" is not one of \"local\", \"redis\""]);
        let e = errors("[state]\nbackend = \"redis\"\n");
        assert_eq!(e, ["gw.toml:2:11: state.backend: backend = \"redis\" needs a url"]);
        let e = errors("[state]\nurl = \"redis://r\"\n");
        assert_eq!(e, ["gw.toml:2:7: state.url: only backend = \"redis\" takes a url"]);
        let e = errors("[state]\nbackend = \"redis\"\nurl = \"http://r\"\npool_size = 65\non_unavailable = \"open\"\n");
        assert_eq!(
            e,
            [
                "gw.toml:5:18: state.on_unavailable: \"open\" is not one of \"fail-open\", \"fail-closed\", \"local\"",
                "gw.toml:3:7: state.url: must start with redis:// or rediss:// (TLS)",
                "gw.toml:4:13: state.pool_size: at most 64",
            ]
        );
        let e = errors("[state]\nbackend = \"redis\"\nurl = \"redis://r\"\npool_size = 65\ntimeout_ms = 0\n");
        assert_eq!(
            e,
            [
                "gw.toml:5:14: state.timeout_ms: must be greater than 0, got 0",
                "gw.toml:4:13: state.pool_size: at most 64"
            ]
        );
    }

    #[test]
    fn state_memory_defaults_to_256_mib_a_quarter_for_counters_and_is_checked() {
        use crate::state::MemoryBudget;
        let memory = |text: &str| parse(Path::new("gw.toml"), text).unwrap().state_memory;
        assert_eq!(memory(""), MemoryBudget { values: 192 << 20, counters: 64 << 20 });
        assert_eq!(
            memory("[state]\nmax_memory_bytes = 4194304\n"),
            MemoryBudget { values: 3 << 20, counters: 1 << 20 }
        );
        let split = memory("[state]\nmax_memory_bytes = 4194304\ncounter_memory_bytes = 65536\n");
        assert_eq!(split, MemoryBudget { values: (4 << 20) - (64 << 10), counters: 64 << 10 });
        let e = errors("[state]\nmax_memory_bytes = 1000\n");
        assert_eq!(e, ["gw.toml:2:20: state.max_memory_bytes: at least 1048576 (1 MiB), got 1000"]);
        let e = errors("[state]\nmax_memory_bytes = 1048576\ncounter_memory_bytes = 1048576\n");
        assert_eq!(
            e,
            ["gw.toml:3:24: state.counter_memory_bytes: must leave at least 65536 bytes to each of counters \
              and values of max_memory_bytes = 1048576, got 1048576"]
        );
    }

    #[test]
    fn bad_toml_names_the_line() {
        let e = errors("[server]\nlisten = [\n");
        assert!(e[0].starts_with("gw.toml:"), "{e:?}");
    }

    #[test]
    fn reference_errors_are_all_reported() {
        let text = r#"
[upstreams.users]
targets = ["127.0.0.1:9"]

[plugins.hdr]
path = "hdr.wasm"

[[routes]]
name = "a"
path = "/a"
upstream = "userz"

[[routes]]
name = "b"
prefix = "/b"
upstream = "users"
pipeline = [{ plugin = "nope" }]
"#;
        let e = errors(text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("gw.toml:11:12: routes[0].upstream: unknown upstream \"userz\" (defined: users)"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("gw.toml:17:24: routes[1].pipeline[0].plugin: unknown plugin \"nope\" (defined: hdr)"),
            "{e:?}"
        );
    }

    #[test]
    fn file_tables_embed_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), "PEM TEXT").unwrap();
        let text = r#"
[plugins.p]
path = "p.wasm"
config = { keys = [{ pem = { "$file" = "key.pem" } }] }
[[routes]]
name = "r"
path = "/"
pipeline = [{ plugin = "p" }, { plugin = "p", config = { other = { "$file" = "missing.pem" } } }]
"#;
        let path = dir.path().join("gw.toml");
        let errors = match parse(&path, text) {
            Err(e) => e.errors().iter().map(ToString::to_string).collect::<Vec<_>>(),
            Ok(_) => panic!("missing.pem must be an error"),
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("routes[0].pipeline[1].config: cannot read"), "{errors:?}");
        assert!(errors[0].contains("missing.pem"), "{errors:?}");

        let config = parse(&path, &text.replace("missing.pem", "key.pem")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&config.routes[0].pipeline[0].config_json).unwrap();
        assert_eq!(json, serde_json::json!({"keys": [{"pem": "PEM TEXT"}]}));
        assert_eq!(config.embedded_files, vec![dir.path().join("key.pem")]);
    }

    #[test]
    fn route_config_merges_over_plugin_defaults() {
        let text = r#"
[upstreams.u]
targets = ["127.0.0.1:9"]
[plugins.p]
path = "p.wasm"
config = { a = 1, nested = { x = 1, y = 2 } }
[[routes]]
name = "r"
path = "/"
upstream = "u"
pipeline = [{ plugin = "p", config = { nested = { y = 3 }, b = "z" } }]
"#;
        let config = parse(Path::new("dir/gw.toml"), text).unwrap();
        let json: serde_json::Value = serde_json::from_str(&config.routes[0].pipeline[0].config_json).unwrap();
        assert_eq!(json, serde_json::json!({"a": 1, "b": "z", "nested": {"x": 1, "y": 3}}));
        assert_eq!(config.plugins[0].path, Path::new("dir/p.wasm"));
    }
}
