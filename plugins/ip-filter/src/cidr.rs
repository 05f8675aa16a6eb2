//! CIDR lists, parsed once at configure time into masks.

use std::net::{IpAddr, Ipv6Addr};

/// Address blocks, by family. An IPv4-mapped IPv6 block
/// (`::ffff:10.0.0.0/104`) is kept as the IPv4 block it means, since
/// client addresses are compared in their canonical form.
#[derive(Debug, Default)]
pub struct Cidrs {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Cidrs {
    /// `field` names the list in errors, which quote the bad entry.
    pub fn parse(field: &str, entries: &[String]) -> Result<Self, String> {
        let mut cidrs = Cidrs::default();
        for (i, entry) in entries.iter().enumerate() {
            cidrs.push(entry).map_err(|why| format!("{field}[{i}]: `{}` {why}", shown(entry)))?;
        }
        Ok(cidrs)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// `ip` must be canonical (see [`canonical`]).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                self.v4.iter().any(|&(net, mask)| ip & mask == net)
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                self.v6.iter().any(|&(net, mask)| ip & mask == net)
            }
        }
    }

    fn push(&mut self, entry: &str) -> Result<(), &'static str> {
        let (addr, len) = match entry.split_once('/') {
            Some((addr, len)) => {
                let len = (!len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) && len.len() <= 3)
                    .then(|| len.parse::<u32>().ok())
                    .flatten()
                    .ok_or("has a prefix length that is not a number")?;
                (addr, Some(len))
            }
            None => (entry, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| "is not an IPv4 or IPv6 address or CIDR")?;
        match ip {
            IpAddr::V4(v4) => self.push_v4(u32::from(v4), len.unwrap_or(32)),
            IpAddr::V6(v6) => {
                let len = len.unwrap_or(128);
                match v6.to_ipv4_mapped() {
                    Some(v4) if len >= 96 => self.push_v4(u32::from(v4), len - 96),
                    _ => self.push_v6(u128::from(v6), len),
                }
            }
        }
    }

    fn push_v4(&mut self, net: u32, len: u32) -> Result<(), &'static str> {
        if len > 32 {
            return Err("has a prefix length above 32");
        }
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        if net & !mask != 0 {
            return Err("has bits set after the prefix: write the network address (e.g. 10.0.0.0/8, not 10.0.0.1/8)");
        }
        self.v4.push((net, mask));
        Ok(())
    }

    fn push_v6(&mut self, net: u128, len: u32) -> Result<(), &'static str> {
        if len > 128 {
            return Err("has a prefix length above 128");
        }
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        if net & !mask != 0 {
            return Err("has bits set after the prefix: write the network address (e.g. 2001:db8::/32)");
        }
        self.v6.push((net, mask));
        Ok(())
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports for
/// an IPv4 client) as the IPv4 address it is, so IPv4 rules apply to it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An address as a client or proxy may write it in `X-Forwarded-For`:
/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443`.
pub fn parse_addr(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let ip = match text.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
                return None;
            }
            IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?)
        }
        None => {
            let (ip, port) = text.split_once(':')?;
            if !is_port(port) {
                return None;
            }
            IpAddr::V4(ip.parse().ok()?)
        }
    };
    Some(canonical(ip))
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Config entries are quoted in errors, cut short.
fn shown(entry: &str) -> String {
    entry.chars().take(64).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(entries: &[&str]) -> Result<Cidrs, String> {
        Cidrs::parse("allow", &entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    fn ip(text: &str) -> IpAddr {
        canonical(text.parse().unwrap())
    }

    #[test]
    fn blocks_match_their_addresses_and_no_others() {
        let c = cidrs(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "0.0.0.0/0"][..4]).unwrap();
        for yes in ["10.0.0.0", "10.255.255.255", "192.168.1.7", "2001:db8::1", "2001:db8:ffff::", "::1"] {
            assert!(c.contains(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.0", "9.255.255.255", "192.168.1.8", "2001:db9::", "::2", "::ffff:11.0.0.1"] {
            assert!(!c.contains(ip(no)), "{no}");
        }
        let all = cidrs(&["0.0.0.0/0", "::/0"]).unwrap();
        assert!(all.contains(ip("8.8.8.8")) && all.contains(ip("2001:4860::8888")));
    }

    #[test]
    fn ipv4_mapped_addresses_and_blocks_are_ipv4() {
        let c = cidrs(&["10.0.0.0/8"]).unwrap();
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let mapped = cidrs(&["::ffff:192.168.0.0/112"]).unwrap();
        assert!(mapped.contains(ip("192.168.4.5")));
        assert!(mapped.contains(ip("::ffff:192.168.4.5")));
        assert!(!mapped.contains(ip("192.169.0.1")));
    }

    #[test]
    fn bad_entries_are_named_with_the_reason() {
        let err = |entry: &str| cidrs(&["10.0.0.0/8", entry]).unwrap_err();
        assert_eq!(
            err("10.0.0.1/8"),
            "allow[1]: `10.0.0.1/8` has bits set after the prefix: write the network address (e.g. 10.0.0.0/8, not 10.0.0.1/8)"
        );
        assert!(err("10.0.0.0/33").ends_with("has a prefix length above 32"));
        assert!(err("2001:db8::/129").ends_with("has a prefix length above 128"));
        assert!(err("2001:db8::1/32").contains("bits set after the prefix"));
        for bad in [
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "host.example",
            "",
            "fe80::1%eth0",
            "10.0.0.0/00000000008",
        ] {
            let e = err(bad);
            assert!(e.starts_with("allow[1]: `"), "{bad}: {e}");
        }
        assert!(err(&"9".repeat(10_000)).len() < 200, "long entries are cut short");
    }

    #[test]
    fn forwarded_addresses_parse_with_or_without_ports() {
        assert_eq!(parse_addr("203.0.113.7"), Some(ip("203.0.113.7")));
        assert_eq!(parse_addr("203.0.113.7:5678"), Some(ip("203.0.113.7")));
        assert_eq!(parse_addr("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_addr("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_addr("::ffff:10.0.0.1"), Some(ip("10.0.0.1")));
        for bad in [
            "unknown",
            "",
            "203.0.113.7:",
            "203.0.113.7:99999",
            "[2001:db8::1]x",
            "[10.0.0.1]",
            "2001:db8::1:80:x",
            "_hidden",
        ] {
            assert_eq!(parse_addr(bad), None, "{bad}");
        }
    }
}
