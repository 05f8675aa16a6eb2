//! `[upstreams.<name>]` in the config file: defaults, every setting, and
//! the mistakes it reports with their place.

use std::path::Path;
use std::time::Duration;

use http::Method;

use crate::config::{self, ConfigErrors};
use crate::upstream::{Balance, BreakerSpec, HashOn, HealthSpec, OutlierSpec, RetrySpec, UpstreamSpec};

fn parse(upstreams: &str) -> Result<Vec<UpstreamSpec>, Vec<String>> {
    match config::parse(Path::new("gw.toml"), upstreams) {
        Ok(config) => Ok(config.upstreams),
        Err(ConfigErrors::Invalid(errors)) => Err(errors.iter().map(ToString::to_string).collect()),
        Err(e) => Err(vec![e.to_string()]),
    }
}

fn errors(text: &str) -> Vec<String> {
    parse(text).expect_err("the config has mistakes")
}

/// `errors` are exactly the `expected` ones: (place, key, message).
fn assert_reported(errors: &[String], expected: &[(&str, &str, &str)]) {
    for (at, key, message) in expected {
        assert!(
            errors.iter().any(|line| line.starts_with(at) && line.contains(key) && line.contains(message)),
            "missing {at} {key}: {message} in\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn defaults() {
    let specs = parse("[upstreams.u]\ntargets = [\"127.0.0.1:9101\"]\n").unwrap();
    let expected = UpstreamSpec::new("u", ["127.0.0.1:9101".parse().unwrap()]);
    assert_eq!(specs, std::slice::from_ref(&expected));
    assert_eq!(expected.balance, Balance::RoundRobin);
    assert_eq!(expected.retry, RetrySpec::default());
    assert_eq!(expected.outlier, Some(OutlierSpec::default()), "passive ejection is on");
    assert_eq!((expected.health, expected.breaker), (None, None), "active checks and breaker are off");
}

#[test]
fn every_setting() {
    let specs = parse(
        r#"
[upstreams.users]
targets = ["127.0.0.1:9101", { addr = "127.0.0.1:9102", weight = 3 }]
balance = "hash"
hash_on = "header:X-User-Id"
timeout_ms = 5000
try_timeout_ms = 1000
connect_timeout_ms = 100
idle_timeout_ms = 2000
retries = { attempts = 3, backoff_ms = 10, max_backoff_ms = 100, budget_percent = 50, min_per_second = 1, methods = ["get", "POST"], statuses = [503] }

[upstreams.users.health]
path = "/ready"
interval_ms = 200
timeout_ms = 50
healthy_threshold = 1
unhealthy_threshold = 4

[upstreams.users.outlier]
consecutive_failures = 2
base_ejection_ms = 1000
max_ejection_ms = 8000
max_ejection_percent = 100

[upstreams.users.breaker]
failure_threshold = 7
open_ms = 3000
half_open_probes = 2

[upstreams.quiet]
targets = ["localhost:80"]
balance = "least-request"
outlier = { enabled = false }
"#,
    )
    .unwrap();
    let quiet = &specs[0];
    assert_eq!(quiet.balance, Balance::LeastRequest);
    assert_eq!(quiet.outlier, None);
    let u = &specs[1];
    assert_eq!(u.targets.iter().map(|t| t.weight).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(u.balance, Balance::Hash(HashOn::Header(http::HeaderName::from_static("x-user-id"))));
    assert_eq!(
        (u.timeout, u.try_timeout, u.connect_timeout, u.idle_timeout),
        (Duration::from_secs(5), Some(Duration::from_secs(1)), Duration::from_millis(100), Duration::from_secs(2))
    );
    assert_eq!(
        u.retry,
        RetrySpec {
            attempts: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            budget_percent: 50,
            min_per_second: 1,
            methods: vec![Method::GET, Method::POST],
            statuses: vec![503],
        }
    );
    assert_eq!(
        u.health,
        Some(HealthSpec {
            path: "/ready".into(),
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(50),
            healthy_threshold: 1,
            unhealthy_threshold: 4,
        })
    );
    assert_eq!(
        u.outlier,
        Some(OutlierSpec {
            consecutive_failures: 2,
            base_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(8),
            max_ejection_percent: 100,
        })
    );
    assert_eq!(
        u.breaker,
        Some(BreakerSpec {
            failure_threshold: 7,
            open: Duration::from_secs(3),
            half_open_probes: 2,
            max_open_percent: 50
        })
    );
}

#[test]
fn hash_defaults_to_the_client_address() {
    let specs = parse("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\nbalance = \"hash\"\n").unwrap();
    assert_eq!(specs[0].balance, Balance::Hash(HashOn::ClientIp));
}

#[test]
fn mistakes_are_reported_with_their_place() {
    let e = errors(
        r#"
[upstreams.u]
targets = [{ addr = "127.0.0.1:1", weight = 0 }, "nope", { addr = "127.0.0.1:2", weight = 2 }]
hash_on = "cookie:x"
timeout_ms = 0
retries = { attempts = 11, backoff_ms = 100, max_backoff_ms = 10, statuses = [200], methods = ["G T"] }
health = { path = "healthz" }
outlier = { max_ejection_percent = 101 }
"#,
    );
    let expect = [
        ("gw.toml:3:", "upstreams.u.targets[0]", "weight must be 1 to 100, got 0"),
        ("gw.toml:3:", "upstreams.u.targets[1]", "\"nope\" is not a host:port target"),
        ("gw.toml:4:", "upstreams.u.hash_on", "expected \"client-ip\" or \"header:<name>\""),
        ("gw.toml:4:", "upstreams.u.hash_on", "hash_on needs balance = \"hash\""),
        ("gw.toml:3:", "upstreams.u.balance", "round-robin ignores weights"),
        ("gw.toml:5:", "upstreams.u.timeout_ms", "must be greater than 0"),
        ("gw.toml:6:", "upstreams.u.retries.attempts", "at most 10 tries"),
        ("gw.toml:6:", "upstreams.u.retries.max_backoff_ms", "must not be less than backoff_ms"),
        ("gw.toml:6:", "upstreams.u.retries.methods[0]", "is not an HTTP method"),
        ("gw.toml:6:", "upstreams.u.retries.statuses[0]", "200 is not a 4xx or 5xx status"),
        ("gw.toml:7:", "upstreams.u.health.path", "is not a path starting with /"),
        ("gw.toml:8:", "upstreams.u.outlier.max_ejection_percent", "must be 0 to 100"),
    ];
    assert_reported(&e, &expect);
}

#[test]
fn unknown_keys_and_shapes_are_refused() {
    let e = errors("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\nretries = { attempt = 2 }\n");
    assert!(e[0].contains("unknown field `attempt`"), "{e:?}");
    let e = errors("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\nbalance = \"random\"\n");
    assert!(e[0].contains("unknown variant `random`"), "{e:?}");
    let e = errors("[upstreams.u]\ntargets = [7]\n");
    assert!(e[0].contains("\"host:port\" string or { addr"), "{e:?}");
    let e = errors("[upstreams.u]\ntargets = [{ addr = \"127.0.0.1:1\", wieght = 2 }]\n");
    assert!(e[0].contains("unknown field `wieght`"), "{e:?}");
    let e = errors("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\n[upstreams.u.breaker]\nopen = 5\n");
    assert!(e[0].contains("unknown field `open`"), "{e:?}");
}

#[test]
fn dns_names_and_where_they_are_resolved() {
    let text = r#"
[dns]
nameservers = ["127.0.0.1:5353", "10.0.0.2", "[::1]:53"]
hosts_file = "hosts"

[upstreams.u]
targets = ["users.internal:8080", "10.0.0.5:8080", "[::1]:80", "svc_a.ns-1.svc.cluster.local.:80"]
resolve_interval_ms = 5000
"#;
    let config = config::parse(Path::new("/etc/gw/gw.toml"), text).unwrap();
    let nameservers: Vec<String> = config.dns.nameservers.iter().map(ToString::to_string).collect();
    assert_eq!(nameservers, ["127.0.0.1:5353", "10.0.0.2:53", "[::1]:53"]);
    assert_eq!(config.dns.hosts_file.as_deref(), Some(Path::new("/etc/gw/hosts")));
    let u = &config.upstreams[0];
    let names: Vec<Option<&str>> = u.targets.iter().map(|t| t.name()).collect();
    assert_eq!(names, [Some("users.internal"), None, None, Some("svc_a.ns-1.svc.cluster.local.")]);
    assert_eq!(u.resolve_interval, Duration::from_secs(5));
    let lines: Vec<usize> = config.target_locations["u"].iter().map(|l| l.line).collect();
    assert_eq!(lines, [7; 4]);

    let defaults = parse("[upstreams.u]\ntargets = [\"users.internal:80\"]\n").unwrap();
    assert_eq!(defaults[0].resolve_interval, Duration::from_secs(30));
}

#[test]
fn bad_names_intervals_and_nameservers_are_reported() {
    let e = errors(
        r#"
[dns]
nameservers = ["resolver.local:53"]

[upstreams.u]
targets = ["user@users.internal:80", "-bad.internal:80", "a..b:80", "users.internal:80"]
resolve_interval_ms = 999
"#,
    );
    let expect = [
        ("gw.toml:3:", "dns.nameservers[0]", "\"resolver.local:53\" is not a nameserver address"),
        ("gw.toml:6:", "upstreams.u.targets[0]", "\"user@users.internal:80\" is not a host:port target"),
        ("gw.toml:6:", "upstreams.u.targets[1]", "\"-bad.internal\" is neither an IP address nor a DNS name"),
        ("gw.toml:6:", "upstreams.u.targets[2]", "\"a..b\" is neither an IP address nor a DNS name"),
        ("gw.toml:7:", "upstreams.u.resolve_interval_ms", "must be at least 1000, got 999"),
    ];
    assert_reported(&e, &expect);
}

#[test]
fn tls_and_protocol_settings_and_their_mistakes() {
    let specs = parse("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\nprotocol = \"h2\"\ntls = true\n").unwrap();
    assert_eq!(specs[0].protocol, crate::upstream::Protocol::H2);
    let tls = specs[0].tls.as_ref().expect("tls = true turns TLS on");
    assert!(!tls.insecure_skip_verify && tls.server_name.is_none(), "verified, the target's host as the name");
    let off = parse("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\ntls = false\n").unwrap();
    assert_eq!((off[0].tls.as_ref(), off[0].protocol), (None, crate::upstream::Protocol::Http1));

    let one =
        |table: &str| errors(&format!("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\n[upstreams.u.tls]\n{table}\n"));
    let e = one("client_cert_file = \"gw.pem\"");
    assert!(e[0].starts_with("gw.toml:3:") && e[0].contains("upstreams.u.tls.client_key_file"), "{e:?}");
    let e = one("min_version = \"1.1\"");
    assert!(e[0].contains("upstreams.u.tls.min_version") && e[0].contains("\"1.1\""), "{e:?}");
    let e = one("ca_file = \"/nonexistent/ca.pem\"");
    assert!(e[0].contains("upstreams.u.tls.ca_file") && e[0].contains("/nonexistent/ca.pem"), "{e:?}");
    let e = one("server_name = \"not a name\"");
    assert!(e[0].contains("upstreams.u.tls.server_name"), "{e:?}");
    let e = one("verify = false");
    assert!(e[0].contains("unknown field `verify`"), "{e:?}");
    let e = errors("[upstreams.u]\ntargets = [\"127.0.0.1:1\"]\nprotocol = \"h2c\"\n");
    assert!(e[0].contains("unknown variant `h2c`"), "{e:?}");
}
