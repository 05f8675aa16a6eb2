//! The targets an upstream balances over at one moment, and the balancer
//! made for them. A configured IP address is one target; a DNS name is one
//! target per address it resolved to, so the set changes when an answer
//! does. It is replaced whole: a request works on the set it started with
//! (its retries' choices are indices into it), and a target that left the
//! set lives on while requests still hold it, which lets them finish.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::uri::Authority;

use super::balance::Balancer;
use super::spec::UpstreamSpec;
use super::target::Target;
use crate::telemetry::UpstreamMetrics;

/// The addresses each DNS name resolved to last, by name.
pub(crate) type Addresses = BTreeMap<Arc<str>, Vec<IpAddr>>;

pub(crate) struct Members {
    pub targets: Vec<Arc<Target>>,
    pub balancer: Balancer,
    /// What the names' targets were made from.
    pub addresses: Addresses,
}

impl Members {
    /// The targets of `spec` with the names' `addresses` (a name without
    /// any has no target). A target of `previous` that is the same address
    /// of the same name (or configured address) with the same weight is
    /// carried over with its state; the others start fresh.
    pub(crate) fn new(
        spec: &UpstreamSpec,
        addresses: Addresses,
        previous: &[Arc<Target>],
        metrics: &UpstreamMetrics,
    ) -> Self {
        let mut targets: Vec<Arc<Target>> = Vec::new();
        for configured in &spec.targets {
            let name = configured.name();
            let port = configured.addr.port_u16().unwrap_or_default();
            let addrs: Vec<Authority> = match name {
                None => vec![configured.addr.clone()],
                Some(name) => addresses.get(name).into_iter().flatten().filter_map(|ip| authority(*ip, port)).collect(),
            };
            for addr in addrs {
                let same = previous.iter().find(|old| old.is(&addr, configured.weight, name));
                let target = same.cloned().unwrap_or_else(|| {
                    let metrics = metrics.target(addr.as_str());
                    Arc::new(Target::new(addr, configured.weight, name.map(Arc::from), spec, metrics))
                });
                targets.push(target);
            }
        }
        let weighted: Vec<(&str, u32)> = targets.iter().map(|t| (t.addr.as_str(), t.weight)).collect();
        Self { balancer: Balancer::new(&spec.balance, &weighted), targets, addresses }
    }
}

/// `ip:port` (`[ip]:port` for IPv6) as an authority (which it always is).
fn authority(ip: IpAddr, port: u16) -> Option<Authority> {
    SocketAddr::new(ip, port).to_string().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn addresses(name: &str, ips: &[&str]) -> Addresses {
        [(Arc::from(name), ips.iter().map(|ip| ip.parse().unwrap()).collect())].into_iter().collect()
    }

    #[test]
    fn a_name_is_a_target_per_address_and_staying_ones_keep_their_state() {
        let spec = UpstreamSpec::new("u", ["users.internal:8080".parse().unwrap(), "10.0.0.9:80".parse().unwrap()]);
        let metrics = Metrics::default().upstream("u");
        let first = Members::new(&spec, addresses("users.internal", &["10.0.0.1", "::1"]), &[], &metrics);
        let addrs: Vec<&str> = first.targets.iter().map(|t| t.addr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.1:8080", "[::1]:8080", "10.0.0.9:80"]);
        assert_eq!(first.targets[0].name.as_deref(), Some("users.internal"));
        assert_eq!(first.targets[2].name, None);

        first.targets[0].set_healthy(false);
        let second =
            Members::new(&spec, addresses("users.internal", &["10.0.0.1", "10.0.0.2"]), &first.targets, &metrics);
        let addrs: Vec<&str> = second.targets.iter().map(|t| t.addr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.9:80"]);
        assert!(Arc::ptr_eq(&first.targets[0], &second.targets[0]), "the staying address keeps its state");
        assert!(!second.targets[0].is_healthy());
        assert!(Arc::ptr_eq(&first.targets[2], &second.targets[2]));
        assert!(second.targets[1].is_healthy(), "a new address starts fresh");

        let none = Members::new(&spec, Addresses::new(), &second.targets, &metrics);
        assert_eq!(none.targets.len(), 1, "a name without addresses has no target");
    }
}
