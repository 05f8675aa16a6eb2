//! Headers a proxy must add, remove or pass on (RFC 9110 §7.6).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::telemetry::TraceContext;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Marks a request that arrived over TLS (in its extensions): put there by
/// the server, told upstream as `X-Forwarded-Proto: https`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientTls;

/// Headers that describe one connection, never the message. A static, not
/// a const: a const array of header names is built and dropped at every use.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// One of [`HOP_BY_HOP`], by a match on the (lower-case) text: cheaper
/// than comparing header names one by one.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers, including every header the `Connection`
/// header names. Most messages carry none: one pass over the names finds
/// that without a lookup per hop-by-hop name.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| is_hop_by_hop(name.as_str())) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The request id the client sent, or a new one (128 bits in hex, see
/// [`TraceContext::new_request_id`]).
pub(crate) fn request_id(headers: &HeaderMap, trace: &TraceContext) -> HeaderValue {
    if let Some(id) = headers.get(REQUEST_ID)
        && !id.is_empty()
        && id.len() <= 200
    {
        return id.clone();
    }
    trace.new_request_id()
}

/// The client's address as `X-Forwarded-For` writes it.
fn client_ip(client: SocketAddr) -> HeaderValue {
    match client.ip() {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(octet).as_bytes();
                text[len..len + digits.len()].copy_from_slice(digits);
                len += digits.len();
            }
            HeaderValue::from_bytes(&text[..len]).expect("an address is a valid header value")
        }
        ip => HeaderValue::try_from(ip.to_string()).expect("an address is a valid header value"),
    }
}

/// Prepares a request's headers for the upstream: hop-by-hop removed,
/// `X-Forwarded-*` and the request id set.
pub(crate) fn forward(
    headers: &mut HeaderMap,
    client: SocketAddr,
    host: Option<&HeaderValue>,
    request_id: &HeaderValue,
    tls: bool,
) {
    strip_hop_by_hop(headers);
    let ip = client_ip(client);
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => {
            let joined = format!("{prior}, {}", ip.to_str().expect("an address is text"));
            HeaderValue::try_from(joined).expect("addresses are valid header values")
        }
        _ => ip,
    };
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if tls { "https" } else { "http" }));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    headers.insert(REQUEST_ID, request_id.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_check_knows_every_hop_by_hop_name() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name.as_str()), "{name}");
        }
        assert!(!is_hop_by_hop("x-connection"));
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn appends_to_forwarded_for_and_keeps_request_id() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let trace = TraceContext::from_headers(&h);
        let id = request_id(&h, &trace);
        assert_eq!(id.len(), 32);
        assert_eq!(id.to_str().unwrap(), trace.trace_id_hex(), "a trace started here lends its id");
        forward(&mut h, "10.0.0.1:5555".parse().unwrap(), Some(&HeaderValue::from_static("api.test")), &id, false);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.1");
        let mut fresh = HeaderMap::new();
        forward(&mut fresh, "[2001:db8::1]:80".parse().unwrap(), None, &id, false);
        assert_eq!(fresh["x-forwarded-for"], "2001:db8::1");
        forward(&mut fresh, "192.168.100.254:80".parse().unwrap(), None, &id, false);
        assert_eq!(fresh["x-forwarded-for"], "2001:db8::1, 192.168.100.254");
        assert!(id.to_str().unwrap().bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
        let none = HeaderMap::new();
        assert_ne!(request_id(&none, &TraceContext::from_headers(&none)), id);
        let mut continued = HeaderMap::new();
        continued
            .insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let trace = TraceContext::from_headers(&continued);
        let (one, two) = (request_id(&continued, &trace), request_id(&continued, &trace));
        assert_ne!(one, two, "requests of a continued trace get ids of their own");
        assert_ne!(one.to_str().unwrap(), trace.trace_id_hex());
        assert_eq!(h["x-forwarded-host"], "api.test");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-request-id"], id);
        h.insert("x-request-id", HeaderValue::from_static("given"));
        assert_eq!(request_id(&h, &trace), "given");
    }
}
