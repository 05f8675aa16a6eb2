//! Resolving the DNS names of upstream targets (hickory's stub resolver
//! on tokio). Names are resolved when a config is loaded and again in the
//! background (`discovery`), never on the request path.
//!
//! The resolver keeps no cache of its own: each resolution asks the
//! nameservers, so a changed record is seen at the next resolution rather
//! than when a cached answer expires (resolutions are few: one per name
//! per interval). The record's TTL still counts: `discovery` resolves
//! again when it runs out, if that comes before the interval.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Hosts, TokioResolver};

use super::spec::MAX_ADDRESSES_PER_NAME;

/// One resolution's bound, retries to every nameserver included: a config
/// load waits for it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// `[dns]`, checked: where names are resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSettings {
    /// Nameservers to ask, in order; empty: the system's (`/etc/resolv.conf`,
    /// with its search domains and options).
    pub nameservers: Vec<SocketAddr>,
    /// A hosts file read before asking the nameservers, instead of the
    /// system's `/etc/hosts`.
    pub hosts_file: Option<PathBuf>,
}

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Sorted, without duplicates, at most [`MAX_ADDRESSES_PER_NAME`];
    /// never empty.
    pub addrs: Vec<IpAddr>,
    /// Addresses past the bound, left out.
    pub dropped: usize,
    /// When the shortest-lived record expires.
    pub valid_until: Instant,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    /// The nameserver answered: no such name, or no address for it.
    #[error("no address found for {0:?}")]
    NotFound(String),
    /// No answer that could be used: timeouts, unreachable nameservers,
    /// server failures.
    #[error("cannot resolve {name:?}: {reason}")]
    Failed { name: String, reason: String },
}

impl ResolveError {
    /// The `result` label of `wasmgate_dns_resolutions_total`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not-found",
            Self::Failed { .. } => "error",
        }
    }
}

/// A resolver for upstream names; clones share it.
#[derive(Clone)]
pub(crate) struct Resolver {
    inner: Arc<TokioResolver>,
}

impl Resolver {
    /// Reads the system's configuration unless `settings` names
    /// nameservers; reads the hosts file it names. The error says what
    /// could not be read.
    pub(crate) fn new(settings: &DnsSettings) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if settings.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let servers = settings.nameservers.iter().map(|addr| {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                NameServerConfig::new(addr.ip(), true, connections)
            });
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers.collect()), provider)
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        // Asking for AAAA as well would wait on the nameservers even when
        // the hosts file has the name's IPv4 addresses.
        options.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        if settings.hosts_file.is_some() {
            options.use_hosts_file = ResolveHosts::Never;
        }
        let mut resolver = builder.build().map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        if let Some(path) = &settings.hosts_file {
            let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut hosts = Hosts::default();
            hosts.read_hosts_conf(file).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            resolver.set_hosts(Arc::new(hosts));
        }
        Ok(Self { inner: Arc::new(resolver) })
    }

    /// The addresses of `name`: its A records, or its AAAA records when it
    /// has none (from the hosts file first).
    pub(crate) async fn resolve(&self, name: &str) -> Result<Resolved, ResolveError> {
        let failed = |reason: String| ResolveError::Failed { name: name.to_owned(), reason };
        let lookup = match tokio::time::timeout(LOOKUP_TIMEOUT, self.inner.lookup_ip(name)).await {
            Err(_) => return Err(failed(format!("no answer within {LOOKUP_TIMEOUT:?}"))),
            Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => {
                return Err(ResolveError::NotFound(name.to_owned()));
            }
            Ok(Err(e)) => return Err(failed(e.to_string())),
            Ok(Ok(lookup)) => lookup,
        };
        // An unspecified or multicast address names no server to connect to.
        let mut addrs: Vec<IpAddr> = lookup.iter().filter(|ip| !ip.is_unspecified() && !ip.is_multicast()).collect();
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(ResolveError::NotFound(name.to_owned()));
        }
        let dropped = addrs.len().saturating_sub(MAX_ADDRESSES_PER_NAME);
        addrs.truncate(MAX_ADDRESSES_PER_NAME);
        Ok(Resolved { addrs, dropped, valid_until: lookup.valid_until() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hosts_file_answers_without_a_nameserver() {
        let dir = std::env::temp_dir().join(format!("wasmgate-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        let many: String = (1..=70).map(|i| format!("10.1.0.{i} many.internal\n")).collect();
        let users = "10.0.0.2 users.internal\n10.0.0.1 users.internal\n0.0.0.0 users.internal\n";
        std::fs::write(&path, format!("{users}{many}")).unwrap();
        // A nameserver nothing answers on: only the hosts file can answer.
        let settings = DnsSettings { nameservers: vec!["127.0.0.1:9".parse().unwrap()], hosts_file: Some(path) };
        let resolver = Resolver::new(&settings).unwrap();
        let resolved = resolver.resolve("users.internal").await.unwrap();
        let expected: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!((resolved.addrs, resolved.dropped), (expected, 0), "sorted, 0.0.0.0 left out");
        let many = resolver.resolve("many.internal").await.unwrap();
        assert_eq!((many.addrs.len(), many.dropped), (MAX_ADDRESSES_PER_NAME, 70 - MAX_ADDRESSES_PER_NAME));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unreadable_hosts_file_is_named() {
        let nameservers = vec!["127.0.0.1:9".parse().unwrap()];
        let settings = DnsSettings { nameservers, hosts_file: Some("/nonexistent/hosts".into()) };
        let e = Resolver::new(&settings).err().unwrap();
        assert!(e.starts_with("cannot read /nonexistent/hosts: "), "{e}");
    }
}
