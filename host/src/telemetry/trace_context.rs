//! W3C Trace Context (`traceparent`, `tracestate`): a request's incoming
//! trace is continued when its header is valid, otherwise a new one is
//! started; the gateway's own span is the parent of what it sends
//! upstream, and the response carries it back to the client.
//!
//! Parsing follows the spec's rules for version `00` strictly (lengths,
//! lowercase hex, all-zero ids invalid, `-` separators); a header that
//! breaks any of them is ignored, as the spec asks, and a new trace starts.
//! A later version may append fields after the flags; those are accepted
//! and ignored, version `ff` never is.

use bytes::Bytes;
use http::HeaderValue;
use http::header::{HeaderMap, HeaderName};

pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `tracestate` longer than this is not passed on: the spec lets a
/// vendor truncate, and a list this long is an attack, not a trace.
const MAX_TRACESTATE_BYTES: usize = 512;

/// Flag bit 0: the caller recorded this trace.
pub(crate) const SAMPLED: u8 = 0x01;

/// One request's place in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub trace_id: [u8; 16],
    /// The gateway's span for this request.
    pub span_id: [u8; 8],
    /// The caller's span, when the trace was continued.
    pub parent_id: Option<[u8; 8]>,
    pub flags: u8,
    /// The caller's `tracestate`, passed on unchanged.
    pub state: Option<HeaderValue>,
    /// `traceparent` naming the gateway's span, made once: the upstream
    /// request and the response both carry it.
    traceparent: HeaderValue,
    /// Its text: a trace started here lends its id to the request id.
    text: Bytes,
}

impl TraceContext {
    /// Continues the trace of a valid `traceparent`, or starts one.
    /// A started trace is sampled: the gateway has no reason to tell the
    /// next hop not to record it.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        // More than one `traceparent`: which to trust is unclear, so none.
        let mut all = headers.get_all(&TRACEPARENT).iter();
        let parent = match (all.next(), all.next()) {
            (Some(one), None) => one.to_str().ok().and_then(Parent::parse),
            _ => None,
        };
        let (trace_id, parent_id, flags, state) = match parent {
            Some(parent) => {
                let state = headers.get(&TRACESTATE).filter(|s| s.len() <= MAX_TRACESTATE_BYTES).cloned();
                (parent.trace_id, Some(parent.span_id), parent.flags & SAMPLED, state)
            }
            None => (new_trace_id(), None, SAMPLED, None),
        };
        let span_id = new_span_id();
        let text = traceparent_text(&trace_id, &span_id, flags);
        let traceparent = crate::fields::ascii_value(text.clone());
        Self { trace_id, span_id, parent_id, flags, state, traceparent, text }
    }

    /// An id for a request that came without one: the trace id when the
    /// trace started here (one id to search the logs and the traces by,
    /// and one value less to make), else a random one (a continued trace
    /// spans many requests).
    pub(crate) fn new_request_id(&self) -> HeaderValue {
        match self.parent_id {
            None => crate::fields::ascii_value(self.text.slice(3..35)),
            Some(_) => {
                let mut hex = [0u8; 32];
                crate::fields::hex_into(&fastrand::u128(..).to_be_bytes(), &mut hex);
                crate::fields::ascii_value(Bytes::copy_from_slice(&hex))
            }
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub(crate) fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub(crate) fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }

    /// `traceparent` naming the gateway's span: for the upstream request
    /// (whose parent it is) and the response.
    pub(crate) fn traceparent(&self) -> HeaderValue {
        self.traceparent.clone()
    }

    /// Sets `traceparent` (and the caller's `tracestate`) on a request the
    /// gateway sends on, replacing what the client sent.
    pub(crate) fn propagate(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.traceparent());
        headers.remove(&TRACESTATE);
        if let Some(state) = &self.state {
            headers.insert(TRACESTATE.clone(), state.clone());
        }
    }
}

/// `00-<trace id>-<span id>-<flags>`, written in place: made for every
/// request, so no pass checks the digits it has just written.
///
/// Shared from the start, in one allocation with its count: the upstream
/// request, the response and a request id cut from it each take a clone,
/// and a `Bytes` copied into a `Vec` allocates its shared count on the
/// first clone, on top of the buffer.
fn traceparent_text(trace_id: &[u8; 16], span_id: &[u8; 8], flags: u8) -> Bytes {
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    crate::fields::hex_into(trace_id, &mut text[3..35]);
    crate::fields::hex_into(span_id, &mut text[36..52]);
    crate::fields::hex_into(&[flags], &mut text[53..55]);
    Bytes::from_owner(text)
}

/// A valid incoming `traceparent`.
#[derive(Debug, PartialEq, Eq)]
struct Parent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl Parent {
    /// `version-traceid-parentid-flags`, each lowercase hex of a fixed
    /// length; `None` for anything else.
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        // 2 + 1 + 32 + 1 + 16 + 1 + 2
        if bytes.len() < 55 {
            return None;
        }
        let version = hex_byte(bytes.get(0..2)?)?;
        if version == 0xff
            || bytes.get(2) != Some(&b'-')
            || bytes.get(35) != Some(&b'-')
            || bytes.get(52) != Some(&b'-')
        {
            return None;
        }
        // Version 00 is exactly 55 characters; a later one may add fields,
        // each after a dash.
        if bytes.len() > 55 && (version == 0 || bytes.get(55) != Some(&b'-')) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        decode_lower(bytes.get(3..35)?, &mut trace_id)?;
        decode_lower(bytes.get(36..52)?, &mut span_id)?;
        let flags = hex_byte(bytes.get(53..55)?)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id, flags })
    }
}

/// Lowercase hex digits only: the spec forbids uppercase.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
        _ => None,
    }
}

fn decode_lower(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = hex_byte(pair)?;
    }
    Some(())
}

/// Random, never all zero (which the spec reserves for "invalid").
fn new_trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

pub(crate) fn new_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(values: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in values {
            map.append((*name).clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_valid_parent_is_continued_with_a_new_span() {
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "congo=t61rcWkgMzE")]));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_id.map(hex::encode).as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(ctx.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(ctx.flags, SAMPLED);
        let sent = ctx.traceparent();
        let sent = sent.to_str().unwrap();
        assert_eq!(sent, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", ctx.span_id_hex()));
        assert_eq!(Parent::parse(sent).map(|p| p.span_id), Some(ctx.span_id), "what we send parses back");
        let mut out = headers(&[(&TRACESTATE, "forged=1")]);
        ctx.propagate(&mut out);
        assert_eq!(out[&TRACESTATE], "congo=t61rcWkgMzE");
        assert_eq!(out[&TRACEPARENT], sent);
    }

    #[test]
    fn the_sampled_flag_is_kept_and_other_flags_dropped() {
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, unsampled)]));
        assert_eq!(ctx.flags, 0);
        assert!(ctx.traceparent().to_str().unwrap().ends_with("-00"));
        let odd = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe";
        assert_eq!(TraceContext::from_headers(&headers(&[(&TRACEPARENT, odd)])).flags, 0);
    }

    #[test]
    fn every_broken_rule_starts_a_new_trace() {
        let hostile = [
            "",
            "00",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // version ff, and uppercase / non-hex versions
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0G-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // wrong lengths
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            // version 00 with anything after the flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            // other separators
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7+01",
            // a later version's extra field must follow a dash
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for text in hostile {
            assert_eq!(Parent::parse(text), None, "{text:?}");
        }
        let long = format!("{VALID}{}", "-a".repeat(10_000));
        assert_eq!(Parent::parse(&long), None, "version 00 is exactly 55 characters");
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, hostile[2])]));
        assert_eq!(ctx.parent_id, None);
        assert_ne!(ctx.trace_id, [0; 16]);
        assert_eq!(ctx.flags, SAMPLED);
    }

    #[test]
    fn a_later_version_with_more_fields_is_read_as_00() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parent = Parent::parse(future).unwrap();
        assert_eq!(hex::encode(parent.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, future)]));
        assert!(ctx.traceparent().to_str().unwrap().starts_with("00-"), "we send the version we speak");
    }

    #[test]
    fn two_parents_or_a_huge_tracestate_are_not_trusted() {
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, VALID), (&TRACEPARENT, other)]));
        assert_eq!(ctx.parent_id, None);
        let huge = "k=".to_owned() + &"v".repeat(MAX_TRACESTATE_BYTES);
        let ctx = TraceContext::from_headers(&headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, &huge)]));
        assert!(ctx.parent_id.is_some());
        assert_eq!(ctx.state, None);
    }

    #[test]
    fn started_traces_have_random_nonzero_ids() {
        let a = TraceContext::from_headers(&HeaderMap::new());
        let b = TraceContext::from_headers(&HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(a.trace_id_hex().len(), 32);
        assert_eq!(a.span_id_hex().len(), 16);
        assert!(a.trace_id_hex().bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }
}
