//! `Vary` is a set of field names (RFC 9110 §12.5.5): a plugin appending
//! one the response already varies on adds nothing but a repeat. It
//! happens whenever a plugin that always varies on a field (cors on
//! `Origin`) runs before one that replays a stored answer (a cache hit
//! whose stored `Vary` came from that same plugin on the miss).

use http::header::{HeaderMap, HeaderValue, VARY};

/// What of `value` to append to the response's `Vary`: all of it, the
/// names not listed yet, or nothing when every name is (or the response
/// varies on `*`, which covers every name). A value that is not text names
/// nothing this can compare, and is appended as it is.
pub(super) fn to_append(headers: &HeaderMap, value: HeaderValue) -> Option<HeaderValue> {
    if value.to_str().is_err() {
        return Some(value);
    }
    let listed: Vec<&str> = headers.get_all(VARY).iter().flat_map(names).collect();
    if listed.is_empty() {
        return Some(value);
    }
    if listed.contains(&"*") {
        return None;
    }
    let new: Vec<&str> = names(&value).filter(|n| !listed.iter().any(|l| l.eq_ignore_ascii_case(n))).collect();
    if new.is_empty() {
        return None;
    }
    if new.len() == names(&value).count() {
        return Some(value);
    }
    HeaderValue::from_str(&new.join(", ")).ok()
}

/// The field names of one `Vary` value; none when it is not text.
fn names(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value.to_str().unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(VARY, HeaderValue::from_static(v));
        }
        headers
    }

    fn append(headers: &HeaderMap, value: &'static str) -> Option<String> {
        to_append(headers, HeaderValue::from_static(value)).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn only_names_not_listed_are_appended() {
        assert_eq!(append(&vary(&[]), "Origin").as_deref(), Some("Origin"));
        assert_eq!(append(&vary(&["Origin"]), "Origin"), None);
        assert_eq!(append(&vary(&["Accept-Encoding, origin"]), "Origin"), None, "any case, among others");
        assert_eq!(append(&vary(&["Accept-Encoding", "Origin"]), "Origin"), None, "in another line");
        assert_eq!(append(&vary(&["*"]), "Origin"), None);
        assert_eq!(append(&vary(&["Origin"]), "origin, Accept-Language").as_deref(), Some("Accept-Language"));
        assert_eq!(append(&vary(&["Accept-Encoding"]), "Origin").as_deref(), Some("Origin"));
        let opaque = HeaderValue::from_bytes(b"\xe9t\xe9").unwrap();
        assert_eq!(to_append(&vary(&["Origin"]), opaque.clone()), Some(opaque), "not text: kept as sent");
    }
}
