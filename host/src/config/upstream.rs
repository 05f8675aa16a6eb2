//! `[upstreams.NAME]` into an [`UpstreamSpec`], a section at a time.
//! Each check reports at the key it blames and goes on, so one pass finds
//! every error.

use http::Method;
use http::uri::Authority;
use toml::Spanned;

use super::checker::Checker;
use super::error::Location;
use super::schema::{
    BalanceFile, BreakerFile, HealthFile, OutlierFile, ProtocolFile, RetriesFile, UpstreamFile, UpstreamTlsFile,
};
use crate::upstream::connect::host_name;
use crate::upstream::spec::{MAX_ATTEMPTS, MAX_WEIGHT, MIN_RESOLVE_INTERVAL};
use crate::upstream::tls::{MinVersion, TlsSettings, TlsSpec};
use crate::upstream::{
    Balance, BreakerSpec, HashOn, HealthSpec, OutlierSpec, Protocol, RetrySpec, TargetSpec, UpstreamSpec,
};

/// The upstream's checked settings, and where each of its targets was
/// written (for errors found when its names are resolved).
pub(super) fn check_upstream(
    c: &mut Checker<'_>,
    name: &str,
    up: &Spanned<UpstreamFile>,
) -> Option<(UpstreamSpec, Vec<Location>)> {
    let key = format!("upstreams.{name}");
    let u = up.get_ref();
    if u.targets.get_ref().is_empty() {
        return c.error(u.targets.span(), format!("{key}.targets"), "an upstream needs at least one target");
    }
    let mut spec = UpstreamSpec::new(name, []);
    let (targets, written) = targets(c, &key, u);
    spec.targets = targets;
    spec.timeout = c.ms(&u.timeout_ms, &format!("{key}.timeout_ms"), spec.timeout);
    spec.connect_timeout = c.ms(&u.connect_timeout_ms, &format!("{key}.connect_timeout_ms"), spec.connect_timeout);
    spec.idle_timeout = c.ms(&u.idle_timeout_ms, &format!("{key}.idle_timeout_ms"), spec.idle_timeout);
    spec.try_timeout =
        u.try_timeout_ms.as_ref().map(|_| c.ms(&u.try_timeout_ms, &format!("{key}.try_timeout_ms"), spec.timeout));
    spec.balance = balance(c, &key, u, &spec.targets);
    if let Some(list) = &u.failure_statuses {
        spec.failure_statuses = statuses(c, &format!("{key}.failure_statuses"), list);
    }
    if let Some(r) = &u.retries {
        retries(c, &format!("{key}.retries"), r, &mut spec.retry);
    }
    // Each section absent keeps its default (passive ejection is on).
    if let Some(h) = &u.health {
        spec.health = Some(health(c, &format!("{key}.health"), h));
    }
    if let Some(o) = &u.outlier {
        spec.outlier = outlier(c, &format!("{key}.outlier"), o);
    }
    if let Some(b) = &u.breaker {
        spec.breaker = Some(breaker(c, &format!("{key}.breaker"), b));
    }
    let interval_key = format!("{key}.resolve_interval_ms");
    spec.resolve_interval = c.ms(&u.resolve_interval_ms, &interval_key, spec.resolve_interval);
    if let Some(ms) = u.resolve_interval_ms.as_ref().filter(|_| spec.resolve_interval < MIN_RESOLVE_INTERVAL) {
        let min = MIN_RESOLVE_INTERVAL.as_millis();
        c.error::<()>(ms.span(), interval_key, format!("must be at least {min}, got {}", ms.get_ref()));
    }
    spec.protocol = match u.protocol.as_ref().map(|p| *p.get_ref()) {
        None | Some(ProtocolFile::Http1) => Protocol::Http1,
        Some(ProtocolFile::H2) => Protocol::H2,
    };
    if let Some(t) = u.tls.as_ref().filter(|t| t.get_ref().enabled) {
        spec.tls = tls(c, &format!("{key}.tls"), t, &spec);
    }
    Some((spec, written))
}

/// The TLS settings, their files read now (on every load and reload).
fn tls(c: &mut Checker<'_>, tkey: &str, t: &Spanned<UpstreamTlsFile>, spec: &UpstreamSpec) -> Option<TlsSpec> {
    let file = &t.get_ref().settings;
    let span = t.span();
    let path = |p: &Option<String>| p.as_ref().map(|p| c.files.base.join(p));
    let mut settings = TlsSettings {
        server_name: file.server_name.clone(),
        ca_file: path(&file.ca_file),
        client_cert: None,
        min_version: None,
        insecure_skip_verify: file.insecure_skip_verify.unwrap_or(false),
    };
    match (path(&file.client_cert_file), path(&file.client_key_file)) {
        (Some(cert), Some(key)) => settings.client_cert = Some((cert, key)),
        (None, None) => {}
        (Some(_), None) => return c.error(span, format!("{tkey}.client_key_file"), "client_cert_file needs it too"),
        (None, Some(_)) => return c.error(span, format!("{tkey}.client_cert_file"), "client_key_file needs it too"),
    }
    settings.min_version = match file.min_version.as_deref() {
        None | Some("1.2") => Some(MinVersion::Tls12),
        Some("1.3") => Some(MinVersion::Tls13),
        Some(other) => {
            return c.error(span, format!("{tkey}.min_version"), format!("{other:?}: expected \"1.2\" or \"1.3\""));
        }
    };
    if settings.server_name.is_none()
        && let Some(bad) = spec.targets.iter().find(|t| host_name(&t.addr).is_none())
    {
        let message = format!("target {} has no host usable as a TLS server name: set server_name", bad.addr);
        return c.error(span, format!("{tkey}.server_name"), message);
    }
    let alpn: &[&[u8]] = match spec.protocol {
        Protocol::Http1 => &[b"http/1.1"],
        Protocol::H2 => &[b"h2"],
    };
    let loaded = match TlsSpec::load(&settings, alpn) {
        Ok(loaded) => loaded,
        Err(e) => return c.error(span, format!("{tkey}.{}", e.key), e.message),
    };
    for path in loaded.paths() {
        if !c.files.read.iter().any(|p| p == path) {
            c.files.read.push(path.to_owned());
        }
    }
    if loaded.insecure_skip_verify {
        tracing::warn!(upstream = %spec.name, "{tkey}.insecure_skip_verify: upstream certificates are NOT verified");
    }
    Some(loaded)
}

/// The targets that parse, with where each was written; each bad one is
/// reported.
fn targets(c: &mut Checker<'_>, key: &str, u: &UpstreamFile) -> (Vec<TargetSpec>, Vec<Location>) {
    let mut targets = Vec::new();
    let mut written = Vec::new();
    for (i, t) in u.targets.get_ref().iter().enumerate() {
        let tkey = format!("{key}.targets[{i}]");
        let file = t.get_ref();
        let addr = file.addr.parse::<Authority>().ok().filter(|a| a.port().is_some() && !a.as_str().contains('@'));
        let Some(addr) = addr else {
            c.error::<()>(t.span(), tkey, format!("{:?} is not a host:port target", file.addr));
            continue;
        };
        let weight = file.weight.unwrap_or(1);
        if !(1..=MAX_WEIGHT).contains(&weight) {
            c.error::<()>(t.span(), tkey, format!("weight must be 1 to {MAX_WEIGHT}, got {weight}"));
            continue;
        }
        let target = TargetSpec { addr, weight };
        if let Some(name) = target.name().filter(|n| !is_dns_name(n)) {
            c.error::<()>(t.span(), tkey, format!("{name:?} is neither an IP address nor a DNS name"));
            continue;
        }
        written.push(c.map.locate(t.span(), tkey));
        targets.push(target);
    }
    (targets, written)
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63
/// characters, 253 at most in all (a final dot allowed).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// The balancer, with `hash_on` for `hash`.
fn balance(c: &mut Checker<'_>, key: &str, u: &UpstreamFile, targets: &[TargetSpec]) -> Balance {
    let hash_on = u.hash_on.as_ref().and_then(|h| {
        let text = h.get_ref();
        let parsed = match text.split_once(':') {
            _ if text == "client-ip" => Some(HashOn::ClientIp),
            Some(("header", name)) => http::HeaderName::from_bytes(name.trim().as_bytes()).ok().map(HashOn::Header),
            _ => None,
        };
        parsed.or_else(|| {
            c.error(
                h.span(),
                format!("{key}.hash_on"),
                format!("{text:?}: expected \"client-ip\" or \"header:<name>\""),
            )
        })
    });
    let chosen = u.balance.as_ref().map(|b| *b.get_ref());
    let balance = match chosen {
        None | Some(BalanceFile::RoundRobin) => Balance::RoundRobin,
        Some(BalanceFile::Weighted) => Balance::Weighted,
        Some(BalanceFile::LeastRequest) => Balance::LeastRequest,
        Some(BalanceFile::Hash) => Balance::Hash(hash_on.clone().unwrap_or(HashOn::ClientIp)),
    };
    if let (Some(h), false) = (&u.hash_on, chosen == Some(BalanceFile::Hash)) {
        c.error::<()>(h.span(), format!("{key}.hash_on"), "hash_on needs balance = \"hash\"");
    }
    if balance == Balance::RoundRobin && targets.iter().any(|t| t.weight != 1) {
        let span = u.balance.as_ref().map_or(u.targets.span(), |b| b.span());
        c.error::<()>(span, format!("{key}.balance"), "round-robin ignores weights: use balance = \"weighted\"");
    }

    balance
}

fn retries(c: &mut Checker<'_>, rkey: &str, r: &Spanned<RetriesFile>, retry: &mut RetrySpec) {
    let file = r.get_ref();
    retry.attempts = c.positive(&file.attempts, &format!("{rkey}.attempts"), retry.attempts);
    if retry.attempts > MAX_ATTEMPTS {
        let span = file.attempts.as_ref().map_or(r.span(), |a| a.span());
        c.error::<()>(span, format!("{rkey}.attempts"), format!("at most {MAX_ATTEMPTS} tries"));
    }
    retry.backoff = c.ms(&file.backoff_ms, &format!("{rkey}.backoff_ms"), retry.backoff);
    retry.max_backoff = c.ms(&file.max_backoff_ms, &format!("{rkey}.max_backoff_ms"), retry.max_backoff);
    if retry.max_backoff < retry.backoff {
        c.error::<()>(r.span(), format!("{rkey}.max_backoff_ms"), "must not be less than backoff_ms");
    }
    if let Some(p) = &file.budget_percent {
        retry.budget_percent = *p.get_ref();
    }
    retry.min_per_second = file.min_per_second.unwrap_or(retry.min_per_second);
    if let Some(methods) = &file.methods {
        retry.methods = methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()).ok().or_else(|| {
                    c.error(
                        m.span(),
                        format!("{rkey}.methods[{i}]"),
                        format!("{:?} is not an HTTP method", m.get_ref()),
                    )
                })
            })
            .collect();
    }
    if let Some(list) = &file.statuses {
        retry.statuses = statuses(c, &format!("{rkey}.statuses"), list);
    }
}

/// A list of 4xx and 5xx statuses; each other one is reported.
fn statuses(c: &mut Checker<'_>, key: &str, list: &[Spanned<u16>]) -> Vec<u16> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let status = *s.get_ref();
            (400..=599)
                .contains(&status)
                .then_some(status)
                .or_else(|| c.error(s.span(), format!("{key}[{i}]"), format!("{status} is not a 4xx or 5xx status")))
        })
        .collect()
}

fn health(c: &mut Checker<'_>, hkey: &str, h: &Spanned<HealthFile>) -> HealthSpec {
    let file = h.get_ref();
    let mut health = HealthSpec::default();
    if let Some(path) = &file.path {
        let text = path.get_ref();
        if text.starts_with('/') && text.parse::<http::uri::PathAndQuery>().is_ok() {
            health.path = text.clone();
        } else {
            c.error::<()>(path.span(), format!("{hkey}.path"), format!("{text:?} is not a path starting with /"));
        }
    }
    health.interval = c.ms(&file.interval_ms, &format!("{hkey}.interval_ms"), health.interval);
    health.timeout = c.ms(&file.timeout_ms, &format!("{hkey}.timeout_ms"), health.timeout);
    health.healthy_threshold =
        c.positive(&file.healthy_threshold, &format!("{hkey}.healthy_threshold"), health.healthy_threshold);
    health.unhealthy_threshold =
        c.positive(&file.unhealthy_threshold, &format!("{hkey}.unhealthy_threshold"), health.unhealthy_threshold);
    health
}

/// `None` when the section turns ejection off.
fn outlier(c: &mut Checker<'_>, okey: &str, o: &Spanned<OutlierFile>) -> Option<OutlierSpec> {
    let file = o.get_ref();
    let mut outlier = OutlierSpec::default();
    outlier.consecutive_failures =
        c.positive(&file.consecutive_failures, &format!("{okey}.consecutive_failures"), outlier.consecutive_failures);
    outlier.base_ejection = c.ms(&file.base_ejection_ms, &format!("{okey}.base_ejection_ms"), outlier.base_ejection);
    outlier.max_ejection = c.ms(&file.max_ejection_ms, &format!("{okey}.max_ejection_ms"), outlier.max_ejection);
    if outlier.max_ejection < outlier.base_ejection {
        c.error::<()>(o.span(), format!("{okey}.max_ejection_ms"), "must not be less than base_ejection_ms");
    }
    if let Some(p) = &file.max_ejection_percent {
        outlier.max_ejection_percent = *p.get_ref();
        if outlier.max_ejection_percent > 100 {
            c.error::<()>(p.span(), format!("{okey}.max_ejection_percent"), "must be 0 to 100");
        }
    }
    file.enabled.unwrap_or(true).then_some(outlier)
}

fn breaker(c: &mut Checker<'_>, bkey: &str, b: &Spanned<BreakerFile>) -> BreakerSpec {
    let file = b.get_ref();
    let mut breaker = BreakerSpec::default();
    breaker.failure_threshold =
        c.positive(&file.failure_threshold, &format!("{bkey}.failure_threshold"), breaker.failure_threshold);
    breaker.open = c.ms(&file.open_ms, &format!("{bkey}.open_ms"), breaker.open);
    breaker.half_open_probes =
        c.positive(&file.half_open_probes, &format!("{bkey}.half_open_probes"), breaker.half_open_probes);
    if let Some(p) = &file.max_open_percent {
        breaker.max_open_percent = *p.get_ref();
        if breaker.max_open_percent > 100 {
            c.error::<()>(p.span(), format!("{bkey}.max_open_percent"), "must be 0 to 100");
        }
    }
    breaker
}

#[cfg(test)]
mod tests;
