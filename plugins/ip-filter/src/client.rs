//! Which address the filter judges: the connection's peer, or the address
//! the trusted proxies in front of the gateway reported.

use std::iter;
use std::net::IpAddr;

use wasmgate_sdk::Request;

use crate::cidr::{canonical, parse_addr};

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address `trusted` hops away from the gateway, in the chain
/// `X-Forwarded-For` entries + peer, counted from the right:
///
/// * the peer (the connection's address) is hop 0, and the answer when
///   `trusted` is 0: `X-Forwarded-For` is then not read at all;
/// * each trusted proxy appended the address it received the request from,
///   so hop `n` is the entry the outermost of `n` proxies wrote, the first
///   that no client can choose: entries further left are whatever the
///   client sent;
/// * a chain shorter than that (the request skipped a proxy, or one did not
///   append) gives its leftmost entry. A client can only ever add entries
///   on the left, so a short chain holds only what the peer and proxies
///   wrote, never a client-chosen address.
///
/// The gateway appends the peer's address to `X-Forwarded-For` before
/// plugins run, so the entry at the right normally *is* the peer and is
/// not counted twice; if it is not (another host), the peer is added.
///
/// `None` when the chosen entry is not an address (`unknown`, garbage
/// from a misconfigured proxy): the filter then refuses.
pub fn address(req: &Request, trusted: usize) -> Option<IpAddr> {
    let peer = canonical(req.client_ip()?);
    if trusted == 0 {
        return Some(peer);
    }
    let values = req.header_all(X_FORWARDED_FOR);
    let mut entries =
        values.iter().rev().flat_map(|value| value.rsplit(',')).map(str::trim).filter(|e| !e.is_empty()).peekable();
    if entries.peek().is_some_and(|last| parse_addr(last) == Some(peer)) {
        entries.next();
    }
    let chosen = iter::once(None).chain(entries.map(Some)).take(trusted + 1).last().flatten();
    match chosen {
        None => Some(peer),
        Some(entry) => parse_addr(entry),
    }
}
