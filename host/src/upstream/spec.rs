//! The checked settings of one upstream, as `config::validate` builds them
//! from `[upstreams.<name>]`. Every default lives here, once.

use std::net::IpAddr;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderName, Method};

pub(crate) use super::tls::TlsSpec;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest weight a target may carry (the hash ring has a point per unit).
pub(crate) const MAX_WEIGHT: u32 = 100;
/// Most tries a request may make, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 10;
/// How often a target's DNS name is resolved again, by default.
pub(crate) const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest time between two resolutions of a name: a record's short
/// TTL or a burst of connection failures cannot make the gateway query
/// its nameservers more often.
pub(crate) const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
/// Addresses kept per name (the lowest ones): a name that resolves to
/// thousands cannot flood the balancer, the health checks or `/status`.
pub(crate) const MAX_ADDRESSES_PER_NAME: usize = 64;

/// Settings of one upstream, from the checked config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub name: String,
    pub targets: Vec<TargetSpec>,
    pub balance: Balance,
    /// The whole request, retries and backoff included (a route's own
    /// timeout replaces it).
    pub timeout: Duration,
    /// Each try; `None`: only the whole request's timeout applies.
    pub try_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    /// How long a pooled connection may sit unused before it is closed.
    pub idle_timeout: Duration,
    pub retry: RetrySpec,
    /// Active checks; off unless configured.
    pub health: Option<HealthSpec>,
    /// Passive ejection; on by default.
    pub outlier: Option<OutlierSpec>,
    /// Per-target circuit breaker; off unless configured.
    pub breaker: Option<BreakerSpec>,
    /// Answers that count as a target failure for outlier detection and
    /// breakers, besides tries that got none (connect errors, timeouts,
    /// lost connections). Empty by default: any answer, a 503 included,
    /// shows the target is alive, and one route failing must not take
    /// the target out for the others.
    pub failure_statuses: Vec<u16>,
    /// How often the DNS names among `targets` are resolved again (sooner
    /// when a record's TTL says so, never under [`MIN_RESOLVE_INTERVAL`]).
    pub resolve_interval: Duration,
    /// HTTP/1.1, or HTTP/2 (ALPN `h2` over TLS, prior knowledge without).
    pub protocol: Protocol,
    /// TLS to every target; plaintext when `None`.
    pub tls: Option<TlsSpec>,
}

/// The HTTP version spoken to an upstream's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Keep-alive connections, one request at a time each.
    #[default]
    Http1,
    /// One multiplexed connection per target (h2 over TLS, h2c without).
    H2,
}

impl UpstreamSpec {
    /// An upstream with every default: round robin, one retry.
    pub fn new(name: &str, targets: impl IntoIterator<Item = Authority>) -> Self {
        Self {
            name: name.to_owned(),
            targets: targets.into_iter().map(|addr| TargetSpec { addr, weight: 1 }).collect(),
            balance: Balance::RoundRobin,
            timeout: DEFAULT_TIMEOUT,
            try_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            retry: RetrySpec::default(),
            health: None,
            outlier: Some(OutlierSpec::default()),
            breaker: None,
            failure_statuses: Vec::new(),
            resolve_interval: DEFAULT_RESOLVE_INTERVAL,
            protocol: Protocol::Http1,
            tls: None,
        }
    }

    /// Whether any target is a DNS name.
    pub(crate) fn has_names(&self) -> bool {
        self.targets.iter().any(|t| t.name().is_some())
    }
}

/// A target as configured: an IP address and port, or a DNS name and
/// port that stands for every address the name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub addr: Authority,
    /// 1..=[`MAX_WEIGHT`]; each address of a name has this weight.
    pub weight: u32,
}

impl TargetSpec {
    /// The DNS name, when the host is not an IP address.
    pub(crate) fn name(&self) -> Option<&str> {
        let host = self.addr.host();
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        bare.parse::<IpAddr>().is_err().then_some(host)
    }
}

/// How a request's target is chosen among the available ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// In turn, weights ignored.
    RoundRobin,
    /// Smooth weighted round robin (nginx's): exact proportions, spread out.
    Weighted,
    /// Power of two random choices: the one with fewer requests in flight
    /// (relative to its weight).
    LeastRequest,
    /// Consistent hashing on a ring with virtual nodes (proportional to
    /// weight): a key keeps its target while that target is available, and
    /// only the keys of an unavailable target move.
    Hash(HashOn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// The first value of this request header; requests without it are
    /// spread round robin.
    Header(HeaderName),
    ClientIp,
}

/// When and how often a failed try is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySpec {
    /// Tries in all, the first included: 1 turns retries off.
    pub attempts: u32,
    /// Backoff before the first retry, doubling for each next one.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Retries may add this percentage of the requests of the last
    /// [`crate::upstream::retry::BUDGET_WINDOW`]...
    pub budget_percent: u32,
    /// ... plus this many retries per second, whatever the traffic.
    pub min_per_second: u32,
    /// Methods retried after the upstream may have seen the request.
    pub methods: Vec<Method>,
    /// Response statuses that are retried (for `methods` only).
    pub statuses: Vec<u16>,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            attempts: 2,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
            budget_percent: 20,
            min_per_second: 3,
            methods: vec![Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE],
            statuses: vec![502, 503, 504],
        }
    }
}

/// Active health checks: `GET path` on a fresh connection to every target
/// each interval; 2xx is a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Passes in a row that bring an unhealthy target back.
    pub healthy_threshold: u32,
    /// Failures in a row that take a healthy target out.
    pub unhealthy_threshold: u32,
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self {
            path: "/healthz".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

/// Passive outlier detection: consecutive target failures (connect
/// errors, timeouts, lost connections, `failure_statuses`) eject a target
/// for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierSpec {
    pub consecutive_failures: u32,
    /// The first ejection's length; each ejection that follows the last
    /// one within `max_ejection` doubles it.
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    /// At most this share of the targets is out at once, ejected or with
    /// an open breaker (so a bad request pattern cannot eject everything);
    /// 100 allows all.
    pub max_ejection_percent: u32,
}

impl Default for OutlierSpec {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

/// Per-target circuit breaker on consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSpec {
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets probes through.
    pub open: Duration,
    /// Probes let through while half-open; this many successes close it.
    pub half_open_probes: u32,
    /// A breaker stays closed rather than take more than this share of
    /// the targets out at once (ejected or open), as outlier ejection
    /// does; one breaker may always open, so a sole target's works.
    pub max_open_percent: u32,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        Self { failure_threshold: 5, open: Duration::from_secs(10), half_open_probes: 1, max_open_percent: 50 }
    }
}
