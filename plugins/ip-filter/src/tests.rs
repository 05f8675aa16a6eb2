use serde_json::{Value, json};
use wasmgate_sdk::testing::{self, TestRequest};

use super::*;

fn plugin(config: Value) -> IpFilter {
    testing::configure(&config.to_string()).unwrap()
}

fn config_error(config: Value) -> String {
    testing::configure::<IpFilter>(&config.to_string()).unwrap_err()
}

/// A request from `peer` (`ip:port` or `[ipv6]:port`).
fn from(peer: &str) -> TestRequest {
    TestRequest::new("GET", "/").client_addr(peer)
}

/// `X-Forwarded-For` as the gateway hands it to plugins: whatever arrived,
/// with the peer's address appended (host/src/proxy_headers.rs).
fn forwarded(peer: &str, arrived: &str) -> TestRequest {
    let ip = peer.rsplit_once(':').unwrap().0.trim_matches(['[', ']']);
    let xff = if arrived.is_empty() { ip.to_owned() } else { format!("{arrived}, {ip}") };
    from(peer).header("x-forwarded-for", xff)
}

/// `None` when let through, else the 403's detail.
fn verdict(plugin: &IpFilter, req: &TestRequest) -> Option<String> {
    match testing::run_request(plugin, req) {
        Action::Continue => None,
        Action::Respond(reply) => {
            assert_eq!(reply.status, 403);
            assert_eq!(reply.header_value("content-type"), Some(&b"application/problem+json"[..]));
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            Some(body["detail"].as_str().unwrap().to_owned())
        }
    }
}

fn passes(plugin: &IpFilter, req: &TestRequest) -> bool {
    verdict(plugin, req).is_none()
}

#[test]
fn an_allow_list_lets_only_its_blocks_through() {
    let plugin = plugin(json!({"allow": ["10.0.0.0/8", "2001:db8::/32"]}));
    assert!(passes(&plugin, &from("10.20.30.40:5000")));
    assert!(passes(&plugin, &from("[2001:db8:1::7]:443")));
    assert_eq!(verdict(&plugin, &from("11.0.0.1:5000")).as_deref(), Some("access from 11.0.0.1 is not allowed"));
    assert_eq!(verdict(&plugin, &from("[2001:db9::1]:443")).as_deref(), Some("access from 2001:db9::1 is not allowed"));
}

#[test]
fn deny_wins_over_allow_and_an_empty_allow_list_allows_the_rest() {
    let both = plugin(json!({"allow": ["10.0.0.0/8"], "deny": ["10.66.0.0/16", "10.0.0.1"]}));
    assert!(passes(&both, &from("10.65.0.1:1")));
    assert!(!passes(&both, &from("10.66.0.1:1")));
    assert!(!passes(&both, &from("10.0.0.1:1")));

    let deny_only = plugin(json!({"deny": ["192.0.2.0/24", "2001:db8:bad::/48"]}));
    assert!(passes(&deny_only, &from("198.51.100.1:1")));
    assert!(passes(&deny_only, &from("[2001:db8:600d::1]:1")));
    assert!(!passes(&deny_only, &from("192.0.2.200:1")));
    assert!(!passes(&deny_only, &from("[2001:db8:bad:1::]:1")));
}

#[test]
fn an_ipv4_mapped_client_matches_ipv4_rules() {
    let plugin = plugin(json!({"allow": ["10.0.0.0/8"], "deny": ["10.9.9.9"]}));
    assert!(passes(&plugin, &from("[::ffff:10.1.2.3]:5000")));
    assert_eq!(
        verdict(&plugin, &from("[::ffff:10.9.9.9]:5000")).as_deref(),
        Some("access from 10.9.9.9 is not allowed")
    );
    assert!(!passes(&plugin, &from("[::ffff:11.1.2.3]:5000")));
}

#[test]
fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let plugin = plugin(json!({"allow": ["10.0.0.0/8"]}));
    assert!(!passes(&plugin, &forwarded("203.0.113.5:1", "10.0.0.1")));
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", "203.0.113.5")));
    assert_eq!(plugin.needs(), Needs::default().prefetch_client_addr());
}

#[test]
fn one_trusted_proxy_gives_the_address_it_appended_whatever_the_client_sent() {
    // The load balancer at 10.0.0.2 appends the address it got the request
    // from; the gateway appends the balancer's.
    let plugin = plugin(json!({"allow": ["198.51.100.0/24"], "trusted_proxies": 1}));
    let lb = "10.0.0.2:40000";
    assert!(passes(&plugin, &forwarded(lb, "198.51.100.7")));
    assert!(!passes(&plugin, &forwarded(lb, "203.0.113.9")));
    // The client sends an allowed address of its own: the balancer appends
    // the real one after it, and that is the one judged.
    assert_eq!(
        verdict(&plugin, &forwarded(lb, "198.51.100.7, 203.0.113.9")).as_deref(),
        Some("access from 203.0.113.9 is not allowed")
    );
    assert!(!passes(&plugin, &forwarded(lb, "198.51.100.7,198.51.100.8 , 203.0.113.9")));
    assert_eq!(plugin.needs(), Needs::default().prefetch_client_addr().prefetch_header("x-forwarded-for"));
}

#[test]
fn a_chain_shorter_than_the_trusted_hops_gives_its_leftmost_address() {
    let plugin = plugin(json!({"allow": ["198.51.100.0/24"], "trusted_proxies": 2}));
    // Two proxies: CDN (appends the client), then balancer (appends the CDN).
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", "198.51.100.7, 172.16.0.9")));
    assert!(!passes(&plugin, &forwarded("10.0.0.2:1", "198.51.100.7, 203.0.113.9, 172.16.0.9")));
    // Only one hop reported: its entry, never something further left.
    assert_eq!(
        verdict(&plugin, &forwarded("10.0.0.2:1", "172.16.0.9")).as_deref(),
        Some("access from 172.16.0.9 is not allowed")
    );
    // No hop reported: the peer itself.
    assert!(passes(&plugin, &forwarded("198.51.100.50:1", "")));
    assert!(passes(&plugin, &from("198.51.100.50:1")), "no header at all");
}

#[test]
fn the_peer_is_counted_once_whether_or_not_the_host_appended_it() {
    let plugin = plugin(json!({"allow": ["198.51.100.0/24"], "trusted_proxies": 1}));
    // Without the host's entry the peer is added: the same answers.
    assert!(passes(&plugin, &from("10.0.0.2:1").header("x-forwarded-for", "198.51.100.7")));
    assert!(!passes(&plugin, &from("10.0.0.2:1").header("x-forwarded-for", "198.51.100.7, 203.0.113.9")));
    // Several header lines read as one list, in order.
    let split =
        from("10.0.0.2:1").header("x-forwarded-for", "198.51.100.7").header("x-forwarded-for", "203.0.113.9, 10.0.0.2");
    assert!(!passes(&plugin, &split));
    // Ports, brackets and the IPv4-mapped form, as proxies write them.
    assert!(passes(&plugin, &forwarded("[2001:db8::2]:1", "[::ffff:198.51.100.7]:5555")));
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", "198.51.100.7:5555")));
}

#[test]
fn ipv6_chains_work_like_ipv4_ones() {
    let plugin = plugin(json!({"allow": ["2001:db8:aa::/48"], "deny": ["2001:db8:aa:bad::/64"], "trusted_proxies": 1}));
    let lb = "[fd00::2]:40000";
    assert!(passes(&plugin, &forwarded(lb, "2001:db8:aa:1::5")));
    assert!(!passes(&plugin, &forwarded(lb, "2001:db8:aa:bad::5")));
    assert!(!passes(&plugin, &forwarded(lb, "2001:db8:aa:1::5, 2001:db8:bb::1")));
}

#[test]
fn a_chosen_entry_that_is_no_address_is_refused() {
    let plugin = plugin(json!({"deny": ["192.0.2.0/24"], "trusted_proxies": 1}));
    for junk in ["unknown", "_gateway", "198.51.100.7:99999", "[::1"] {
        assert_eq!(
            verdict(&plugin, &forwarded("10.0.0.2:1", junk)).as_deref(),
            Some("the client address could not be determined"),
            "{junk}"
        );
    }
    // Junk further left than the trusted hops is never looked at.
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", "unknown, 198.51.100.7")));
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", " , ,198.51.100.7,")), "empty entries are skipped");
}

#[test]
fn a_huge_forwarded_for_is_read_from_the_right_only() {
    let plugin = plugin(json!({"allow": ["198.51.100.0/24"], "trusted_proxies": 3}));
    let spoof = "198.51.100.1, ".repeat(50_000);
    let req = forwarded("10.0.0.2:1", &format!("{spoof}203.0.113.1, 10.0.0.4, 10.0.0.3"));
    assert_eq!(verdict(&plugin, &req).as_deref(), Some("access from 203.0.113.1 is not allowed"));
    let junk = "x".repeat(256 * 1024);
    assert!(passes(&plugin, &forwarded("10.0.0.2:1", &format!("{junk}, 198.51.100.9, 10.0.0.4, 10.0.0.3"))));
}

#[test]
fn bad_configs_name_the_entry() {
    assert_eq!(
        config_error(json!({"allow": ["10.0.0.0/8", "10.0.0.0/40"]})),
        "allow[1]: `10.0.0.0/40` has a prefix length above 32"
    );
    assert_eq!(
        config_error(json!({"deny": ["2001:db8::/32", "2001:db8::g/64"]})),
        "deny[1]: `2001:db8::g/64` is not an IPv4 or IPv6 address or CIDR"
    );
    assert!(config_error(json!({"allow": ["192.168.1.1/24"]})).contains("bits set after the prefix"));
    assert!(config_error(json!({})).contains("both empty"));
    assert!(config_error(json!({"deny": ["10.0.0.0/8"], "trusted_proxies": 33})).contains("more than 32"));
    assert!(config_error(json!({"deny": ["10.0.0.0/8"], "trusted_proxies": -1})).contains("trusted_proxies"));
    assert!(config_error(json!({"deny": ["10.0.0.0/8"], "trusted_hops": 1})).contains("unknown field `trusted_hops`"));
}
