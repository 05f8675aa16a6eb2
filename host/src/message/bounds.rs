//! How much a plugin may hand the host.
//!
//! Everything a plugin writes is untrusted: a header it adds, a var, a
//! reply, a fan-out call. Unbounded, such values reached `http`'s own hard
//! limits (which panic) or made the host do unbounded work outside the
//! plugin's CPU budget. So headers are held to the server's limits for
//! clients (a plugin cannot build a request or response the server would
//! refuse from a client), and every other list has a fixed bound here.

use std::fmt::Write as _;

use http::HeaderMap;
use http::header::{Entry, HeaderName, HeaderValue};
use http::uri::PathAndQuery;

use super::MessageError;
pub(crate) use crate::fields::field_bytes;
use crate::fields::header_bytes;

/// Vars one request carries. Plugins share a handful (the user, a rate-limit
/// report); a plugin inventing names per request gets no more.
pub(crate) const MAX_VARS: usize = 64;
/// Names and values of one request's vars together.
pub(crate) const MAX_VARS_BYTES: usize = 64 << 10;
/// Calls in one `fetch-all`. One client request must not become an
/// unbounded number of upstream requests; `aggregate` already stops a
/// `for_each` at 64 items, and a wave may hold a few such parts.
pub(crate) const MAX_FETCHES: usize = 256;
/// Longest method a plugin may set or send (the longest registered one,
/// `UPDATEREDIRECTREF`, has 17 letters).
pub(crate) const MAX_METHOD_BYTES: usize = 32;
/// Longest log message a plugin may write; the rest is cut.
pub(crate) const MAX_LOG_BYTES: usize = 8 << 10;
/// Longest key a plugin may use in the shared state store.
pub(crate) const MAX_STATE_KEY_BYTES: usize = 1 << 10;
/// Largest value a plugin may keep in the shared state store.
pub(crate) const MAX_STATE_VALUE_BYTES: usize = 1 << 20;
/// How much of a plugin's value an error message repeats.
const SHOWN_BYTES: usize = 64;

/// The server's limits, as they apply to what plugins write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Header fields of a request or response.
    pub max_headers: usize,
    /// Header names and values, counted as the server counts a client's.
    pub max_header_bytes: usize,
    /// A request's path and query.
    pub max_uri_bytes: usize,
    /// A request body a plugin sets, and the bodies of one `fetch-all`
    /// together.
    pub max_body_bytes: u64,
}

impl Bounds {
    /// Checks a list of fields a plugin built whole (a reply's, a fan-out
    /// call's) before any goes into a map.
    pub(crate) fn check_fields<'a>(
        &self,
        fields: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), MessageError> {
        if fields.len() > self.max_headers {
            return Err(MessageError::TooManyHeaders(self.max_headers));
        }
        self.check_header_bytes(fields.map(|(name, value)| name.len() + value.len() + 4).sum())
    }

    /// A writer of one batch of header writes.
    pub(crate) fn writer(&self) -> FieldWriter<'_> {
        FieldWriter { bounds: self, grown: 0 }
    }

    pub(crate) fn check_header_bytes(&self, bytes: usize) -> Result<(), MessageError> {
        if bytes > self.max_header_bytes {
            return Err(MessageError::HeadersTooLarge { bytes, limit: self.max_header_bytes });
        }
        Ok(())
    }

    /// Checks the length of a request target a plugin built.
    pub(crate) fn check_uri(&self, len: usize) -> Result<(), MessageError> {
        if len > self.max_uri_bytes {
            return Err(MessageError::UriTooLong { len, limit: self.max_uri_bytes });
        }
        Ok(())
    }

    pub(crate) fn check_body(&self, len: u64) -> Result<(), MessageError> {
        if len > self.max_body_bytes {
            return Err(MessageError::BodyTooLarge { len, limit: self.max_body_bytes });
        }
        Ok(())
    }

    /// The largest batch of edits (`apply`, or a call's returned writes):
    /// room for rewriting every header twice over and every var, with the
    /// encoding's nine bytes per edit. More is no plugin's honest work, and
    /// each edit costs the host time outside the plugin's budget.
    pub(crate) fn max_edits_bytes(&self) -> usize {
        self.max_header_bytes.saturating_mul(4).saturating_add(MAX_VARS_BYTES).saturating_add(self.max_headers * 64)
    }

    pub(crate) fn check_edits(&self, len: usize) -> Result<(), MessageError> {
        let limit = self.max_edits_bytes();
        if len > limit {
            return Err(MessageError::EditsTooLarge { len, limit });
        }
        Ok(())
    }
}

/// Writes a plugin's header edits to one map, within the bounds.
///
/// A write that adds a field to headers already at `max_headers` is
/// refused at once (a set replacing a name that is there adds none). The
/// size is measured once, after the batch, and only if the batch grew it:
/// each write keeps count of the bytes it added and removed, so headers
/// already over the limit (a client's request at the limit, with the
/// forwarding headers the gateway adds) can still be edited, but not grown.
pub(crate) struct FieldWriter<'b> {
    bounds: &'b Bounds,
    /// Bytes the writes added, less those they removed.
    grown: i64,
}

impl FieldWriter<'_> {
    /// Replaces every value of the field with this one.
    pub(crate) fn set(
        &mut self,
        headers: &mut HeaderMap,
        name: HeaderName,
        value: HeaderValue,
    ) -> Result<(), MessageError> {
        let added = field_bytes(&name, &value);
        let full = headers.len() >= self.bounds.max_headers;
        let too_many = MessageError::TooManyHeaders(self.bounds.max_headers);
        match headers.try_entry(name).map_err(|_| too_many)? {
            Entry::Occupied(mut entry) => {
                let removed = values_bytes(entry.key(), entry.iter());
                entry.insert(value);
                self.grow(added, removed);
            }
            Entry::Vacant(_) if full => return Err(MessageError::TooManyHeaders(self.bounds.max_headers)),
            Entry::Vacant(entry) => {
                entry.try_insert(value).map_err(|_| MessageError::TooManyHeaders(self.bounds.max_headers))?;
                self.grow(added, 0);
            }
        }
        Ok(())
    }

    /// Adds a value after any there.
    pub(crate) fn append(
        &mut self,
        headers: &mut HeaderMap,
        name: HeaderName,
        value: HeaderValue,
    ) -> Result<(), MessageError> {
        let too_many = MessageError::TooManyHeaders(self.bounds.max_headers);
        if headers.len() >= self.bounds.max_headers {
            return Err(too_many);
        }
        let added = field_bytes(&name, &value);
        headers.try_append(name, value).map_err(|_| too_many)?;
        self.grow(added, 0);
        Ok(())
    }

    pub(crate) fn remove(&mut self, headers: &mut HeaderMap, name: &HeaderName) {
        if let Ok(Entry::Occupied(entry)) = headers.try_entry(name) {
            let (name, values) = entry.remove_entry_mult();
            let removed = values.map(|value| field_bytes(&name, &value)).sum();
            self.grow(0, removed);
        }
    }

    fn grow(&mut self, added: usize, removed: usize) {
        self.grown = self.grown.saturating_add(added as i64).saturating_sub(removed as i64);
    }

    /// Ends the batch: refused if it grew the headers past the size limit.
    pub(crate) fn finish(self, headers: &HeaderMap) -> Result<(), MessageError> {
        if self.grown <= 0 {
            return Ok(());
        }
        self.bounds.check_header_bytes(header_bytes(headers))
    }
}

fn values_bytes<'v>(name: &HeaderName, values: impl Iterator<Item = &'v HeaderValue>) -> usize {
    values.map(|value| field_bytes(name, value)).sum()
}

/// A status a plugin may answer with: a final one. A 1xx written as the
/// final answer leaves the client waiting for another (or, as 101, takes
/// the connection over), and HTTP has no statuses past 599.
pub(crate) fn final_status(status: u16) -> Result<http::StatusCode, MessageError> {
    match status {
        200..=599 => http::StatusCode::from_u16(status).map_err(|_| MessageError::Status(status)),
        _ => Err(MessageError::Status(status)),
    }
}

/// A method a plugin set or sends.
pub(crate) fn method(method: &str) -> Result<http::Method, MessageError> {
    if method.len() > MAX_METHOD_BYTES {
        return Err(MessageError::Method(shown(method)));
    }
    http::Method::from_bytes(method.as_bytes()).map_err(|_| MessageError::Method(shown(method)))
}

/// A path and query a plugin wrote: absolute, and only bytes a request
/// line may carry (no spaces, no line breaks).
pub(crate) fn path_and_query(text: &str) -> Result<PathAndQuery, MessageError> {
    if !text.starts_with('/') {
        return Err(MessageError::Path(shown(text)));
    }
    PathAndQuery::try_from(text).map_err(|_| MessageError::Path(shown(text)))
}

/// The start of a value a plugin sent, for an error message: the value
/// may be megabytes long.
pub(crate) fn shown(value: &str) -> String {
    let end = value.floor_char_boundary(SHOWN_BYTES);
    with_rest(value[..end].to_owned(), value.len() - end)
}

/// `text` cut to at most `max` bytes on a character boundary, saying how
/// much was left out.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    let end = text.floor_char_boundary(max);
    let rest = text.len() - end;
    text.truncate(end);
    with_rest(text, rest)
}

/// `text` with its control characters (line breaks, escape codes) spelled
/// out: a plugin's text stays on one log line, and cannot recolour a
/// terminal or forge lines of its own.
pub(crate) fn printable(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn with_rest(mut text: String, rest: usize) -> String {
    if rest > 0 {
        let _ = write!(text, "… ({rest} more bytes)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds { max_headers: 3, max_header_bytes: 40, max_uri_bytes: 16, max_body_bytes: 10 }
    }

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        fields.iter().map(|(n, v)| (name(n), value(v))).collect()
    }

    fn name(name: &'static str) -> HeaderName {
        HeaderName::from_static(name)
    }

    fn value(value: &'static str) -> HeaderValue {
        HeaderValue::from_static(value)
    }

    #[test]
    fn headers_at_the_limit_take_replacements_but_no_new_fields() {
        let b = bounds();
        let mut map = headers(&[("a", "1"), ("b", "2")]);
        let mut w = b.writer();
        w.append(&mut map, name("b"), value("3")).unwrap();
        assert!(matches!(w.append(&mut map, name("c"), value("4")), Err(MessageError::TooManyHeaders(3))));
        assert!(matches!(w.set(&mut map, name("c"), value("4")), Err(MessageError::TooManyHeaders(3))));
        w.set(&mut map, name("b"), value("5")).unwrap();
        assert_eq!(map.len(), 2, "a set replaced both values of b");
        w.set(&mut map, name("c"), value("6")).unwrap();
        w.remove(&mut map, &name("a"));
        w.remove(&mut map, &name("absent"));
        w.finish(&map).unwrap();
        assert_eq!(map, headers(&[("b", "5"), ("c", "6")]));
    }

    #[test]
    fn a_batch_may_not_grow_headers_past_the_size_limit() {
        let b = bounds();
        // 1 + 16 + 4 and 1 + 14 + 4: 40 bytes, at the limit.
        let at = headers(&[("a", "0123456789abcdef"), ("b", "0123456789abcd")]);
        assert_eq!(header_bytes(&at), 40);
        let mut map = at.clone();
        let mut w = b.writer();
        w.set(&mut map, name("b"), value("0123456789abcde")).unwrap();
        assert!(matches!(w.finish(&map), Err(MessageError::HeadersTooLarge { bytes: 41, limit: 40 })));

        // Already over the limit (by what the gateway added): edits that
        // do not grow it pass, and growth does not.
        let over = headers(&[("a", "0123456789abcdef"), ("b", "0123456789abcdefghij")]);
        let mut map = over.clone();
        let mut w = b.writer();
        w.set(&mut map, name("b"), value("x")).unwrap();
        w.append(&mut map, name("c"), value("0123456789")).unwrap();
        w.finish(&map).unwrap();
        let mut map = over;
        let mut w = b.writer();
        w.append(&mut map, name("c"), value("1")).unwrap();
        assert!(w.finish(&map).is_err());
    }

    #[test]
    fn whole_field_lists_are_checked_before_use() {
        let b = bounds();
        let fields = [("a", &b"1"[..]), ("b", b"2"), ("c", b"3")];
        assert!(b.check_fields(fields.iter().copied()).is_ok());
        let four = [("a", &b"1"[..]), ("b", b"2"), ("c", b"3"), ("d", b"4")];
        assert!(matches!(b.check_fields(four.iter().copied()), Err(MessageError::TooManyHeaders(3))));
        let big = [("a", &[b'x'; 36][..])];
        assert!(matches!(b.check_fields(big.iter().copied()), Err(MessageError::HeadersTooLarge { bytes: 41, .. })));
    }

    #[test]
    fn targets_bodies_and_edit_batches_have_limits() {
        let b = bounds();
        assert!(b.check_uri(16).is_ok());
        assert!(matches!(b.check_uri(17), Err(MessageError::UriTooLong { len: 17, limit: 16 })));
        assert!(b.check_body(10).is_ok());
        assert!(b.check_body(11).is_err());
        assert_eq!(b.max_edits_bytes(), 4 * 40 + MAX_VARS_BYTES + 3 * 64);
        assert!(b.check_edits(b.max_edits_bytes()).is_ok());
        assert!(b.check_edits(b.max_edits_bytes() + 1).is_err());
    }

    #[test]
    fn only_final_statuses_are_answers() {
        for ok in [200, 204, 302, 404, 599] {
            assert_eq!(final_status(ok).unwrap().as_u16(), ok);
        }
        for bad in [0, 99, 100, 101, 199, 600, 999, 1000, u16::MAX] {
            assert!(matches!(final_status(bad), Err(MessageError::Status(s)) if s == bad), "{bad}");
        }
    }

    #[test]
    fn methods_are_tokens_of_a_sane_length() {
        assert_eq!(method("PATCH").unwrap(), http::Method::PATCH);
        assert_eq!(method("UPDATEREDIRECTREF").unwrap().as_str(), "UPDATEREDIRECTREF");
        for bad in ["", "GE T", "GET\r\n", "G\u{e9}T"] {
            assert!(method(bad).is_err(), "{bad:?}");
        }
        let long = "X".repeat(10_000);
        let Err(MessageError::Method(shown)) = method(&long) else { panic!("a 10,000-letter method") };
        assert!(shown.len() < 100, "the error repeats only the start: {shown}");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short".into(), 8), "short");
        assert_eq!(cut("ééééé".into(), 5), "éé… (6 more bytes)");
        assert_eq!(shown(&"é".repeat(100)), format!("{}… (136 more bytes)", "é".repeat(32)));
    }

    #[test]
    fn control_characters_are_spelled_out() {
        assert_eq!(printable("plain text, é".into()), "plain text, é");
        assert_eq!(printable("a\nb \u{1b}[31mred\r".into()), "a\\nb \\u{1b}[31mred\\r");
    }
}
