//! Upstream targets named by DNS, resolved through a nameserver the test
//! controls (`TestDns`): a name stands for one target per address, and
//! follows its answers while traffic runs, without a reload and without a
//! failed request; a name that stops resolving keeps its addresses; a
//! refused connection makes the gateway ask again; a reload takes the
//! addresses over (with their targets' state) without asking unless `[dns]`
//! changed; a hosts file answers first and is read again on reload; a name
//! that does not resolve at load is a config error.
//!
//! The services listen on the same port of 127.0.0.1 and 127.0.0.2
//! (Linux routes all of 127/8 to the loopback interface): a name's
//! addresses share the port written with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use wasmgate_testbed::dns::TestDns;
use wasmgate_testbed::gateway::refused;
use wasmgate_testbed::scrape::Scrape;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream, eventually};

const NAME: &str = "users.wasmgate.test";

/// Services named `a` and `b` on 127.0.0.1 and 127.0.0.2, one port.
async fn services_on_one_port(delay: Duration) -> (TestUpstream, TestUpstream, u16) {
    let service = |name: &'static str| move |_: &_| Answer::new(200, name).delay(delay);
    for _ in 0..20 {
        let a = TestUpstream::start_on("127.0.0.1:0".parse().unwrap(), service("a")).await;
        let port = a.addr.port();
        // The port may be taken on 127.0.0.2: try another.
        if tokio::net::TcpListener::bind(("127.0.0.2", port)).await.is_ok() {
            let b = TestUpstream::start_on(format!("127.0.0.2:{port}").parse().unwrap(), service("b")).await;
            return (a, b, port);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// A gateway on `dns` with upstream `users` of `targets` (TOML strings)
/// and `settings`, the route to it.
fn config(dns: &TestDns, targets: &str, settings: &str) -> String {
    format!(
        r#"{}
[upstreams.users]
targets = [{targets}]
{settings}

[[routes]]
name = "all"
prefix = "/"
upstream = "users"
"#,
        dns.section()
    )
}

/// The name on `port`, resolved again every `resolve_interval_ms`.
fn named(dns: &TestDns, port: u16, resolve_interval_ms: u64) -> String {
    config(dns, &format!("\"{NAME}:{port}\""), &format!("resolve_interval_ms = {resolve_interval_ms}"))
}

/// `/status`'s targets of upstream `users`: address and name.
async fn targets(gw: &TestGateway) -> Vec<(String, String)> {
    let status = gw.admin.get("/status").await.json();
    let targets = status["upstreams"]["users"].as_array().cloned().unwrap_or_default();
    let text = |t: &serde_json::Value, key: &str| t[key].as_str().unwrap_or_default().to_owned();
    targets.iter().map(|t| (text(t, "addr"), text(t, "name"))).collect()
}

fn pair(addr: &str, port: u16) -> (String, String) {
    (format!("{addr}:{port}"), NAME.to_owned())
}

async fn resolutions(gw: &TestGateway, result: &str) -> f64 {
    let scrape = Scrape::parse(&gw.admin.get("/metrics").await.text());
    let labels = [("upstream", "users"), ("name", NAME), ("result", result)];
    scrape.value("wasmgate_dns_resolutions_total", &labels).unwrap_or(0.0)
}

#[tokio::test]
async fn a_name_follows_its_answers_while_traffic_runs_without_a_failed_request() {
    let dns = TestDns::start().await;
    // Requests take a while, so some are in flight when 127.0.0.2 leaves.
    let (a, b, port) = services_on_one_port(Duration::from_millis(20)).await;
    dns.set(NAME, &["127.0.0.1", "127.0.0.2"]);
    let gw = TestGateway::start(&named(&dns, port, 1000)).await;
    assert_eq!(targets(&gw).await, [pair("127.0.0.1", port), pair("127.0.0.2", port)]);

    for _ in 0..10 {
        assert_eq!(gw.client.get("/").await.status, 200);
    }
    assert_eq!((a.count(), b.count()), (5, 5), "round robin over both addresses");

    // Traffic from four clients at once while the answer changes.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (client, stop, sent, failed) = (gw.client.clone(), stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let reply = client.get("/").await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if reply.status != 200 {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    eventually("traffic reaches 127.0.0.2", || async { b.count() > 5 }).await;
    dns.set(NAME, &["127.0.0.1"]);
    eventually("/status shows one target", || async { targets(&gw).await == [pair("127.0.0.1", port)] }).await;
    // Whatever was in flight to 127.0.0.2 has finished by now or soon.
    let b_before = {
        let mut last = b.count();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if b.count() == last {
                break last;
            }
            last = b.count();
        }
    };
    let a_before = a.count();
    eventually("more traffic", || async { a.count() > a_before + 40 }).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    assert_eq!(failed.load(Ordering::SeqCst), 0, "of {} requests", sent.load(Ordering::SeqCst));
    assert_eq!(b.count(), b_before, "the removed address got no more traffic");
    assert!(resolutions(&gw, "ok").await >= 2.0, "at load and after");

    // And back: the address returns as a fresh target.
    dns.set(NAME, &["127.0.0.1", "127.0.0.2"]);
    eventually("/status shows both targets", || async { targets(&gw).await.len() == 2 }).await;
    for _ in 0..10 {
        assert_eq!(gw.client.get("/").await.status, 200);
    }
    assert_eq!(b.count(), b_before + 5);
}

#[tokio::test]
async fn a_name_that_stops_resolving_keeps_its_last_addresses() {
    let dns = TestDns::start().await;
    let (a, _b, port) = services_on_one_port(Duration::ZERO).await;
    dns.set(NAME, &["127.0.0.1"]);
    let gw = TestGateway::start(&named(&dns, port, 1000)).await;
    assert_eq!(gw.client.get("/").await.text(), "a");

    dns.remove(NAME);
    eventually("two failed resolutions", || async { resolutions(&gw, "not-found").await >= 2.0 }).await;
    assert_eq!(targets(&gw).await, [pair("127.0.0.1", port)]);
    assert_eq!(gw.client.get("/").await.text(), "a");
    assert_eq!(a.count(), 2);

    dns.set(NAME, &["127.0.0.2"]);
    eventually("the new address", || async { targets(&gw).await == [pair("127.0.0.2", port)] }).await;
    assert_eq!(gw.client.get("/").await.text(), "b");
}

#[tokio::test]
async fn a_refused_connection_resolves_the_name_again() {
    let dns = TestDns::start().await;
    let (a, b, port) = services_on_one_port(Duration::ZERO).await;
    // 127.0.0.2 goes away; the name's answer moved to 127.0.0.1 already.
    drop(b);
    dns.set(NAME, &["127.0.0.2"]);
    // A minute between resolutions: only the failure can trigger one.
    let gw = TestGateway::start(&named(&dns, port, 60_000)).await;
    dns.set(NAME, &["127.0.0.1"]);
    let asked = dns.queries(NAME);
    assert!(asked > 0);

    assert_eq!(gw.client.get("/").await.status, 502, "refused by 127.0.0.2");
    eventually("the name is asked again", || async { dns.queries(NAME) > asked }).await;
    eventually("requests reach 127.0.0.1", || async { gw.client.get("/").await.status == 200 }).await;
    assert_eq!(targets(&gw).await, [pair("127.0.0.1", port)]);
    assert!(a.count() >= 1);
}

#[tokio::test]
async fn a_reload_takes_the_addresses_over_unless_the_nameservers_changed() {
    let dns = TestDns::start().await;
    let (_a, b, port) = services_on_one_port(Duration::ZERO).await;
    drop(b);
    dns.set(NAME, &["127.0.0.1", "127.0.0.2"]);
    let with_timeout = |dns: &TestDns, timeout_ms: u32| {
        let settings = format!(
            "resolve_interval_ms = 60000\ntimeout_ms = {timeout_ms}\nretries = {{ attempts = 1 }}\n\
             outlier = {{ consecutive_failures = 1, base_ejection_ms = 60000 }}"
        );
        config(dns, &format!("\"{NAME}:{port}\""), &settings)
    };
    let gw = TestGateway::start(&with_timeout(&dns, 30_000)).await;
    let path = gw.config_dir().join("gateway.toml");
    let asked = dns.queries(NAME);
    let statuses = [gw.client.get("/").await.status, gw.client.get("/").await.status];
    assert_eq!(statuses, [200, 502], "round robin: the second goes to the closed 127.0.0.2");
    let state = |gw: &TestGateway| {
        let admin = gw.admin.clone();
        async move {
            let status = admin.get("/status").await.json();
            let targets = status["upstreams"]["users"].as_array().cloned().unwrap_or_default();
            targets.iter().map(|t| format!("{} {}", t["addr"], t["state"]).replace('"', "")).collect::<Vec<_>>()
        }
    };
    let ejected = [format!("127.0.0.1:{port} up"), format!("127.0.0.2:{port} ejected")];
    assert_eq!(state(&gw).await, ejected);
    // The refused connection had the name asked again (same answer).
    eventually("the name is asked again", || async { dns.queries(NAME) > asked }).await;
    let asked = dns.queries(NAME);

    std::fs::write(&path, with_timeout(&dns, 20_000)).unwrap();
    let reply = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(state(&gw).await, ejected, "the targets and their state are carried over");
    assert_eq!(dns.queries(NAME), asked, "without asking the nameserver");

    let other = TestDns::start().await;
    other.set(NAME, &["127.0.0.1"]);
    std::fs::write(&path, with_timeout(&other, 20_000)).unwrap();
    let reply = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(state(&gw).await, [format!("127.0.0.1:{port} up")], "resolved again through the new nameserver");
    assert!(other.queries(NAME) > 0, "the new nameserver was asked");
}

#[tokio::test]
async fn a_hosts_file_answers_first_and_is_read_again_on_reload() {
    let (_a, _b, port) = services_on_one_port(Duration::ZERO).await;
    // The nameserver knows nothing: only the hosts file can answer.
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 {NAME}\n")).unwrap();
    let with_hosts = format!("[dns]\nhosts_file = \"{}\"\n", hosts.display());
    let toml = named(&dns, port, 60_000).replace("[dns]\n", &with_hosts);
    let gw = TestGateway::start(&toml).await;
    assert_eq!(targets(&gw).await, [pair("127.0.0.1", port)]);
    assert_eq!(gw.client.get("/").await.text(), "a");

    std::fs::write(&hosts, format!("127.0.0.2 {NAME}\n")).unwrap();
    let reply = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(targets(&gw).await, [pair("127.0.0.2", port)]);
    assert_eq!(gw.client.get("/").await.text(), "b");
    assert_eq!(dns.queries(NAME), 0);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_at_load_is_a_config_error() {
    let dns = TestDns::start().await;
    dns.set(NAME, &["127.0.0.1"]);
    let toml = config(&dns, &format!("\"127.0.0.1:1\", \"nobody.wasmgate.test:80\", \"{NAME}:80\""), "");
    let (errors, path) = refused(&toml).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let expected = format!("{path}:5:27: upstreams.users.targets[1]: no address found for \"nobody.wasmgate.test\"");
    assert_eq!(errors[0], expected);
}
