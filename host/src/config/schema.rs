//! The config file's shape, exactly as written. Every table refuses unknown
//! keys so a typo is an error, not a silently ignored setting; fields that
//! later checks may complain about keep their position (`Spanned`).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::pipeline::FailPolicy;

/// ```toml
/// plugins_dir = "plugins"   # before any table: see `PluginFile`
/// [server]
/// [runtime]
/// [state]
/// [access_log]
/// [tracing]
/// [dns]
/// [upstreams.<name>]
/// [plugins.<name>]
/// [[routes]]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    pub plugins_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub runtime: RuntimeFile,
    #[serde(default)]
    pub state: StateFile,
    #[serde(default)]
    pub access_log: AccessLogFile,
    pub tracing: Option<Spanned<TracingFile>>,
    #[serde(default)]
    pub dns: DnsFile,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Spanned<UpstreamFile>>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<PluginFile>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteFile>>,
}

/// How clients connect, and what the server refuses before routing. Every
/// key is optional; the values shown are the defaults (`tls_listen` and
/// `[server.tls]` have none). `listen`, `tls_listen` and `max_connections`
/// take effect at start; the rest, certificates included, on reload too
/// (for new connections and requests).
///
/// ```toml
/// [server]
/// listen = ["127.0.0.1:8080"]      # plaintext: HTTP/1.1, and HTTP/2 when h2c
/// tls_listen = ["0.0.0.0:8443"]    # TLS: HTTP/1.1 and HTTP/2 (ALPN); needs [server.tls]
/// h2c = true                       # HTTP/2 with prior knowledge on plaintext listeners
/// max_body_bytes = 1048576         # largest body a plugin may ask to buffer (routes may override)
/// max_request_body_bytes = 33554432  # any request body, buffered or streamed: 413 past it
/// max_uri_bytes = 8192             # request target (path and query): 414 past it
/// max_header_bytes = 32768         # header names and values together: 431 past it
/// max_headers = 100                # header fields: 431 past it
/// max_connections = 10000          # open connections per listener; more are closed at once
/// request_timeout_ms = 60000       # request head to response head; 0 = none.
///                                  # 408 if the client is still sending its body, else 504
/// header_read_timeout_ms = 10000   # TLS handshake, and each request head (HTTP/1, or an
///                                  # HTTP/2 header block) from its first byte (the first:
///                                  # from connecting); then the connection is closed
/// idle_timeout_ms = 60000          # connection with nothing in flight and no request traffic
///                                  # (HTTP/2 pings and other control frames do not count): closed
/// drain_timeout_ms = 30000         # on SIGTERM/SIGINT, time left to in-flight requests
/// workers = 4                      # threads serving traffic and running plugins; default:
///                                  # one per core, at least 2 (start only). 1: a single-threaded scheduler
/// path_params = "strip"            # `;` parameters of path segments (`/a;v=1/b`): "strip" cuts
///                                  # them off before routing, so routes, plugins and the upstream
///                                  # see `/a/b`, the path a servlet container would serve; "keep"
///                                  # forwards them (routes still match without them); "reject": 400.
///                                  # `..;` and `.;` are dot segments in every mode; `%3B` stays literal
///
///
/// The four size limits also bound what plugins build: a request body a
/// plugin sets and the bodies of one `fetch-all` together, request targets
/// of `set-path` and fan-out calls, and the headers a plugin writes to a
/// request, a response, a reply or a fan-out call.
///
/// [server.tls]
/// cert = "cert.pem"                # PEM chain, leaf first; relative to this file
/// key = "key.pem"                  # PEM private key (PKCS#8, PKCS#1 or SEC1)
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    pub listen: Option<Vec<Spanned<String>>>,
    pub tls_listen: Option<Vec<Spanned<String>>>,
    pub tls: Option<Spanned<TlsFile>>,
    pub h2c: Option<bool>,
    pub max_body_bytes: Option<u64>,
    pub max_request_body_bytes: Option<Spanned<u64>>,
    pub max_uri_bytes: Option<Spanned<u64>>,
    pub max_header_bytes: Option<Spanned<u64>>,
    pub max_headers: Option<Spanned<u64>>,
    pub max_connections: Option<Spanned<u64>>,
    pub request_timeout_ms: Option<u64>,
    pub header_read_timeout_ms: Option<Spanned<u64>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
    pub drain_timeout_ms: Option<u64>,
    pub path_params: Option<Spanned<String>>,
    pub workers: Option<Spanned<u64>>,
}

/// `[server.tls]`: the certificate TLS listeners present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// The operators' API (health, status, reload, metrics). Off unless given.
/// Anyone who reaches it can read the config's shape and trigger reloads:
/// keep it on loopback, or set a token.
///
/// ```toml
/// [admin]
/// listen = "127.0.0.1:9901"
/// token = "s3cret-and-long"   # when set, every endpoint but /healthz and /readyz needs
///                             # `Authorization: Bearer <token>` (401 otherwise); printable
///                             # ASCII without spaces, 16 to 256 characters. Takes effect on reload
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminFile {
    pub listen: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
}

/// One line per answered request, written off the request path. On by
/// default: JSON on stdout with `--log-format json`, a readable line
/// otherwise. Lines the writer cannot keep up with are dropped and counted
/// (`wasmgate_access_log_dropped_total`), never waited for.
///
/// ```toml
/// [access_log]
/// enabled = true               # false: no access log
/// path = "/var/log/wasmgate/access.log"  # default: stdout. Appended to; reopened on
///                              # SIGUSR1 (rotate by renaming, then signal)
/// format = "json"              # "json" (one object a line) or "combined" (Apache's combined
///                              # format, then the gateway's own fields); default: json with
///                              # --log-format json, else combined
/// ```
/// Read at start; a reload that changes it warns that a restart is needed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessLogFile {
    pub enabled: Option<bool>,
    pub path: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
}

/// Spans exported to an OpenTelemetry collector over OTLP/HTTP (protobuf):
/// a server span per request, a span per plugin call and a client span per
/// upstream try. Off without an endpoint; export never holds a request up.
///
/// ```toml
/// [tracing]
/// otlp_endpoint = "http://127.0.0.1:4318/v1/traces"  # the collector's traces URL (required)
/// sample_ratio = 1.0            # share of the traces the gateway starts that are exported;
///                               # a continued trace follows its parent's sampled flag
/// service_name = "wasmgate"     # the spans' `service.name`
/// ```
/// Read at start; a reload that changes it warns that a restart is needed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TracingFile {
    pub otlp_endpoint: Spanned<String>,
    pub sample_ratio: Option<Spanned<f64>>,
    pub service_name: Option<Spanned<String>>,
}

/// Defaults for every plugin, the engine's size, and how long a reload may
/// take. The values shown are the defaults (`cache_dir` has none).
/// `max_instances`, `instance_idle_ms` and `cache_dir` take effect at
/// start; the rest on reload too.
///
/// ```toml
/// [runtime]
/// timeout_ms = 50          # wasm execution (CPU) time per plugin call
/// wall_timeout_ms = 10000  # wall-clock time per plugin call: wasm, host calls, sleeps,
///                          # fan-out waits; at least timeout_ms. Above aggregate's
///                          # default deadline_ms (5000): a longer deadline needs more
/// configure_timeout_ms = 5000  # wall-clock time to create and configure one instance
/// memory_mb = 32           # linear memory per plugin instance
/// max_instances_per_plugin = 64
/// max_instances = 256      # all instances alive at once
/// instance_idle_ms = 10000 # warm instances no call needed for this long are dropped
/// reload_timeout_ms = 30000  # a reload still running after this is abandoned
/// cache_dir = ".wasmgate-cache"   # compiled artifacts; relative to this file
///
/// [runtime.breaker]        # per plugin use (a plugin on a route)
/// enabled = true
/// failure_threshold = 5    # traps and time or memory limits within window_ms open it:
/// window_ms = 10000        # its calls are answered by on_error without running
/// open_ms = 5000           # then one probe call decides: closed again, or open again
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuntimeFile {
    pub timeout_ms: Option<Spanned<u64>>,
    pub wall_timeout_ms: Option<Spanned<u64>>,
    pub configure_timeout_ms: Option<Spanned<u64>>,
    pub memory_mb: Option<Spanned<u64>>,
    pub max_instances_per_plugin: Option<Spanned<u32>>,
    pub max_instances: Option<Spanned<u32>>,
    pub instance_idle_ms: Option<Spanned<u64>>,
    pub reload_timeout_ms: Option<Spanned<u64>>,
    pub cache_dir: Option<Spanned<String>>,
    pub breaker: Option<PluginBreakerFile>,
}

/// Where upstream targets given as DNS names are resolved. By default the
/// system's resolver configuration (`/etc/resolv.conf`: nameservers,
/// search domains, options) and `/etc/hosts`. Takes effect on reload too:
/// names are then resolved again.
///
/// ```toml
/// [dns]
/// nameservers = ["10.0.0.2:53", "[fd00::2]:53"]  # ask these (UDP; TCP for truncated answers)
///                                                # instead of the system's; port 53 if none
/// hosts_file = "hosts"                           # read before the nameservers, instead of
///                                                # /etc/hosts; relative to this file; read
///                                                # again on reload, which then resolves
///                                                # every name again
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DnsFile {
    pub nameservers: Option<Vec<Spanned<String>>>,
    pub hosts_file: Option<Spanned<String>>,
}

/// Where the plugins' `state` import (rate-limit cells, counters, key/value
/// with TTL) is kept. The values shown are the defaults, except `backend`
/// (default "local": this process's memory) and `url` (none). Takes effect
/// at start.
///
/// ```toml
/// [state]
/// max_memory_bytes = 268435456  # local memory (and Redis's "local" fallback), counted as
///                               # key + value + 128 bytes per entry; past it, writes evict
///                               # (least recently used of a sample). At least 1 MiB
/// counter_memory_bytes = 67108864  # the part of it for rate-limit cells and counters
///                                  # (default a quarter); values get the rest
/// backend = "redis"          # shared by every gateway with the same url and key_prefix
/// url = "redis://:secret@10.0.0.5:6379/0"  # redis:// or rediss:// (TLS); password in the URL
/// key_prefix = "wasmgate:"   # before every key, so gateways can share a Redis with others
/// pool_size = 1              # multiplexed connections (1..=64): each pipelines every
///                            # request's commands; more only spread socket work
/// timeout_ms = 100           # per command, connecting included; past it: on_unavailable
/// on_unavailable = "local"   # Redis unreachable or too slow: "local" answers from this
///                            # replica's memory (per-replica limits), "fail-open" allows
///                            # every take and reads nothing, "fail-closed" answers 503.
///                            # Logged once per outage and once on recovery
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateFile {
    pub backend: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub key_prefix: Option<String>,
    pub pool_size: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub on_unavailable: Option<Spanned<String>>,
    pub max_memory_bytes: Option<Spanned<u64>>,
    pub counter_memory_bytes: Option<Spanned<u64>>,
}

/// `[runtime.breaker]` and `[plugins.<name>.breaker]`: a plugin's keys
/// override `[runtime.breaker]`'s one by one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginBreakerFile {
    pub enabled: Option<bool>,
    pub failure_threshold: Option<Spanned<u32>>,
    pub window_ms: Option<Spanned<u64>>,
    pub open_ms: Option<Spanned<u64>>,
}

/// An upstream service: its targets, how one is chosen, and how failures
/// are handled. Only `targets` is required; the other values shown are the
/// defaults, except `balance` (default "round-robin", which refuses
/// weights) and those that are off unless given: `try_timeout_ms`,
/// `[health]`, `[breaker]`.
///
/// A target whose host is not an IP address is a DNS name (see `[dns]`):
/// it is resolved when the config is loaded (a name that does not resolve
/// then is an error) and stands for one target per address (its A
/// records, or AAAA records when it has none; at most 64), each balanced,
/// checked, ejected and broken on its own, with the name's weight. Names
/// are resolved again in the background every `resolve_interval_ms`
/// (sooner when the records' TTL runs out, and soon after a connection to
/// one of the name's addresses fails; never more than once a second):
/// targets come and go without a reload, those that stay keep their
/// state, removed ones finish their requests. A name that stops resolving
/// keeps its last addresses.
///
/// ```toml
/// [upstreams.users]
/// targets = ["127.0.0.1:9101", { addr = "127.0.0.1:9102", weight = 3 }]  # weight 1..=100, default 1
/// # targets = ["users.internal:8080", "10.0.0.5:8080"]  # a DNS name and an address
/// resolve_interval_ms = 30000 # with DNS names: at least 1000
/// balance = "weighted"        # | "round-robin" | "least-request" | "hash"
/// # hash_on = "client-ip"     # with balance = "hash" only: | "header:x-user-id"
/// timeout_ms = 30000          # whole request, retries included; a route's timeout_ms replaces it
/// try_timeout_ms = 5000       # each try (default: only timeout_ms)
/// connect_timeout_ms = 2000
/// idle_timeout_ms = 90000     # pooled keep-alive connections unused this long are closed
/// failure_statuses = []       # answers that count as a target failure for outlier detection
///                             # and breakers, besides tries with no answer (connect errors,
///                             # timeouts, connections lost); e.g. [502, 504]. By default an
///                             # answer, a 503 from the application included, shows the
///                             # target is alive: one failing route must not close the others
/// protocol = "http1"          # | "h2": HTTP/2, one multiplexed connection per target; by ALPN
///                             # over TLS, with prior knowledge (h2c) without TLS. gRPC needs "h2"
/// tls = false                 # true: TLS, verified against the system's trust store, with the
///                             # target's host as the name; or the [upstreams.users.tls] table
///
/// # TLS to the targets (`tls = true` is this table with every default).
/// # The files (relative to this file) are read again on every reload; one
/// # that cannot be read or parsed is a config error.
/// [upstreams.users.tls]
/// server_name = "users.internal"  # SNI and the name the certificate must hold (default: target host)
/// ca_file = "certs/ca.pem"        # PEM bundle to verify against (default: the system's trust store)
/// client_cert_file = "certs/gw.pem"  # mutual TLS: the chain the gateway presents, leaf first...
/// client_key_file = "certs/gw.key"   # ...and its key (both or neither)
/// min_version = "1.2"             # | "1.3"
/// insecure_skip_verify = false    # true accepts any certificate for any name: for tests only,
///                                 # logged as a warning at every load
///
/// # Retries (or inline: retries = { attempts = 3, budget_percent = 10 }).
/// # After a connect failure or an HTTP/2 stream the upstream refused
/// # (REFUSED_STREAM: nothing processed) any method is retried; after a retried status,
/// # a per-try timeout or a lost connection, only `methods`, and only with
/// # an empty or buffered body. Each retry prefers a target not tried yet.
/// [upstreams.users.retries]
/// attempts = 2                # tries in all, the first included (1: no retries)
/// backoff_ms = 25             # before the first retry, doubling, half of it random
/// max_backoff_ms = 250
/// budget_percent = 20         # retries add at most 20% of the last 10 s of requests...
/// min_per_second = 3          # ...plus 3 per second
/// methods = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
/// statuses = [502, 503, 504]
///
/// [upstreams.users.health]    # active checks: GET path, 2xx passes
/// path = "/healthz"
/// interval_ms = 5000
/// timeout_ms = 1000
/// healthy_threshold = 2       # passes in a row to bring a target back
/// unhealthy_threshold = 3     # failures in a row to take it out
///
/// [upstreams.users.outlier]   # passive: on by default
/// enabled = true
/// consecutive_failures = 5    # target failures (see failure_statuses) in a row eject it...
/// base_ejection_ms = 10000    # ...for this long, doubling on each ejection that follows
/// max_ejection_ms = 300000    # the last within this long, up to this long
/// max_ejection_percent = 50   # never more than this share of the targets out at once
///                             # (ejected or with an open breaker)
///
/// [upstreams.users.breaker]   # per target
/// failure_threshold = 5       # failures in a row open it: requests fail fast (503)
/// open_ms = 10000             # then half-open: probes go through
/// half_open_probes = 1        # this many successes close it, a failure reopens it
/// max_open_percent = 50       # breakers stay closed rather than take more than this share
///                             # of the targets out at once (ejected or open); one may
///                             # always open, so a sole target's breaker works
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpstreamFile {
    pub targets: Spanned<Vec<Spanned<TargetFile>>>,
    pub balance: Option<Spanned<BalanceFile>>,
    pub hash_on: Option<Spanned<String>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub try_timeout_ms: Option<Spanned<u64>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
    pub failure_statuses: Option<Vec<Spanned<u16>>>,
    pub retries: Option<Spanned<RetriesFile>>,
    pub health: Option<Spanned<HealthFile>>,
    pub outlier: Option<Spanned<OutlierFile>>,
    pub breaker: Option<Spanned<BreakerFile>>,
    pub resolve_interval_ms: Option<Spanned<u64>>,
    pub protocol: Option<Spanned<ProtocolFile>>,
    pub tls: Option<Spanned<UpstreamTlsFile>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProtocolFile {
    Http1,
    H2,
}

/// `tls = true | false`, or the `[upstreams.<name>.tls]` table (TLS on).
#[derive(Debug, Default)]
pub(super) struct UpstreamTlsFile {
    pub enabled: bool,
    pub settings: UpstreamTlsTable,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpstreamTlsTable {
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    pub min_version: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

impl<'de> Deserialize<'de> for UpstreamTlsFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UpstreamTlsFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or a table of TLS settings")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<UpstreamTlsFile, E> {
                Ok(UpstreamTlsFile { enabled: v, settings: UpstreamTlsTable::default() })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<UpstreamTlsFile, A::Error> {
                let settings = UpstreamTlsTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(UpstreamTlsFile { enabled: true, settings })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A target: `"host:port"`, or `{ addr = "host:port", weight = 3 }`.
#[derive(Debug)]
pub(super) struct TargetFile {
    pub addr: String,
    pub weight: Option<u32>,
}

impl<'de> Deserialize<'de> for TargetFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Weighted {
            addr: String,
            weight: Option<u32>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TargetFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a \"host:port\" string or { addr = \"host:port\", weight = N }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TargetFile, E> {
                Ok(TargetFile { addr: v.to_owned(), weight: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TargetFile, A::Error> {
                let w = Weighted::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TargetFile { addr: w.addr, weight: w.weight })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum BalanceFile {
    RoundRobin,
    Weighted,
    LeastRequest,
    Hash,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetriesFile {
    pub attempts: Option<Spanned<u32>>,
    pub backoff_ms: Option<Spanned<u64>>,
    pub max_backoff_ms: Option<Spanned<u64>>,
    pub budget_percent: Option<Spanned<u32>>,
    pub min_per_second: Option<u32>,
    pub methods: Option<Vec<Spanned<String>>>,
    pub statuses: Option<Vec<Spanned<u16>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthFile {
    pub path: Option<Spanned<String>>,
    pub interval_ms: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub healthy_threshold: Option<Spanned<u32>>,
    pub unhealthy_threshold: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutlierFile {
    pub enabled: Option<bool>,
    pub consecutive_failures: Option<Spanned<u32>>,
    pub base_ejection_ms: Option<Spanned<u64>>,
    pub max_ejection_ms: Option<Spanned<u64>>,
    pub max_ejection_percent: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BreakerFile {
    pub failure_threshold: Option<Spanned<u32>>,
    pub open_ms: Option<Spanned<u64>>,
    pub half_open_probes: Option<Spanned<u32>>,
    pub max_open_percent: Option<Spanned<u32>>,
}

/// A plugin component. The limits default to `[runtime]`'s.
///
/// Plugins come from two places. `plugins_dir` (a top-level key, relative
/// to this file; no folder unless given) makes every `NAME.wasm` directly
/// in that folder the plugin `NAME` (ASCII letters, digits, `-`, `_`;
/// files whose name starts with `.` are skipped), with no entry needed:
/// dropping a file in loads it, replacing it reloads it, removing it
/// unloads it (a reload that fails while a route still names it). An entry
/// `[plugins.NAME]` then gives it settings: without `path` it is the
/// folder's `NAME.wasm` (an error while that file is missing); with a
/// `path` elsewhere it is that file, and the folder may not also hold a
/// `NAME.wasm`: one name from two files is an error (remove one, or drop
/// `path` to give the folder's file these settings).
///
/// ```toml
/// [plugins.add-header]
/// path = "../target/plugins/add_header.wasm"   # relative to this file; default with
///                                              # plugins_dir: "<plugins_dir>/add-header.wasm"
/// config = { request = { x-hello = "world" } } # defaults for every use
/// timeout_ms = 20
/// wall_timeout_ms = 200
/// configure_timeout_ms = 1000
/// memory_mb = 16
/// max_instances = 32
/// breaker = { failure_threshold = 3, open_ms = 30000 }   # over [runtime.breaker]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginFile {
    pub path: Option<Spanned<String>>,
    pub config: Option<toml::Table>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub wall_timeout_ms: Option<Spanned<u64>>,
    pub configure_timeout_ms: Option<Spanned<u64>>,
    pub memory_mb: Option<Spanned<u64>>,
    pub max_instances: Option<Spanned<u32>>,
    pub breaker: Option<PluginBreakerFile>,
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
pub(super) struct RouteFile {
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
pub(super) struct PluginUseFile {
    pub plugin: Spanned<String>,
    pub config: Option<toml::Table>,
    #[serde(default)]
    pub on_error: FailPolicy,
}
