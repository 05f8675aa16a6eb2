//! Allows or denies requests by the client's address, matched against
//! IPv4 and IPv6 CIDR lists; behind proxies, by the address the trusted
//! hops of `X-Forwarded-For` give.
//!
//! The full config reference is in this crate's README. In short:
//!
//! ```toml
//! pipeline = [{ plugin = "ip-filter", config = {
//!     allow = ["10.0.0.0/8", "2001:db8::/32"], deny = ["10.66.0.0/16"], trusted_proxies = 1,
//! } }]
//! ```

mod cidr;
mod client;

use std::net::IpAddr;

use wasmgate_sdk::prelude::*;

use cidr::Cidrs;

/// More proxies than any real chain has: a bigger number is a typo.
const MAX_TRUSTED_PROXIES: u8 = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    trusted_proxies: u8,
}

#[derive(Debug)]
pub struct IpFilter {
    allow: Cidrs,
    deny: Cidrs,
    trusted_proxies: usize,
}

impl Plugin for IpFilter {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let allow = Cidrs::parse("allow", &config.allow)?;
        let deny = Cidrs::parse("deny", &config.deny)?;
        if allow.is_empty() && deny.is_empty() {
            return Err("`allow` and `deny` are both empty: the filter would let everything through".into());
        }
        if config.trusted_proxies > MAX_TRUSTED_PROXIES {
            return Err(format!("trusted_proxies: {} is more than {MAX_TRUSTED_PROXIES}", config.trusted_proxies));
        }
        Ok(IpFilter { allow, deny, trusted_proxies: usize::from(config.trusted_proxies) })
    }

    /// The client address is read on every request, and behind proxies
    /// `X-Forwarded-For` too.
    fn needs(&self) -> Needs {
        let needs = Needs::default().prefetch_client_addr();
        if self.trusted_proxies > 0 { needs.prefetch_header(client::X_FORWARDED_FOR) } else { needs }
    }

    fn on_request(&self, req: &Request) -> Action {
        let Some(ip) = client::address(req, self.trusted_proxies) else {
            log::debug("ip-filter: no usable client address");
            return refuse("the client address could not be determined");
        };
        if self.admits(ip) {
            return Action::Continue;
        }
        log::debug(format!("ip-filter: {ip} refused"));
        refuse(&format!("access from {ip} is not allowed"))
    }
}

export_plugin!(IpFilter);

impl IpFilter {
    /// Deny wins; an empty allow list allows everything not denied.
    fn admits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
    }
}

fn refuse(detail: &str) -> Action {
    Reply::problem(403, "Forbidden", detail).into()
}

#[cfg(test)]
mod tests;
