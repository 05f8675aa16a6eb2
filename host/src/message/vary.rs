//! `Vary` is a set of field names (RFC 9110 §12.5.5): a plugin appending
//! one the response already varies on adds nothing but a repeat. It
//! happens whenever a plugin that always varies on a field (cors on
//! `Origin`) runs before one that replays a stored answer (a cache hit
//! whose stored `Vary` came from that same plugin on the miss).

use http::header::{HeaderMap, HeaderName, HeaderValue, VARY};

/// What of `value` to append to the response's field `name`: for any field
/// but `Vary`, all of it; for `Vary`, the names not listed yet, or nothing
/// when every name is (or the response varies on `*`, which covers every
/// name). A value that is not text names nothing this can compare, and is
/// appended as it is.
pub(super) fn to_append(headers: &HeaderMap, name: &HeaderName, value: HeaderValue) -> Option<HeaderValue> {
    if *name != VARY {
        return Some(value);
    }
    let Ok(text) = value.to_str() else { return Some(value) };
    let listed: Vec<&str> = headers.get_all(VARY).iter().flat_map(names).collect();
    if listed.is_empty() {
        return Some(value);
    }
    if listed.contains(&"*") {
        return None;
    }
    let asked: Vec<&str> = split(text).collect();
    let new: Vec<&str> = asked.iter().copied().filter(|n| !listed.iter().any(|l| l.eq_ignore_ascii_case(n))).collect();
    match new.len() {
        0 => None,
        n if n == asked.len() => Some(value),
        _ => HeaderValue::from_str(&new.join(", ")).ok(),
    }
}

/// The field names of one `Vary` value; none when it is not text.
fn names(value: &HeaderValue) -> impl Iterator<Item = &str> {
    split(value.to_str().unwrap_or_default())
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|n| !n.is_empty())
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
        to_append(headers, &VARY, HeaderValue::from_static(value)).map(|v| v.to_str().unwrap().to_owned())
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
        assert_eq!(to_append(&vary(&["Origin"]), &VARY, opaque.clone()), Some(opaque), "not text: kept as sent");
        let other = HeaderName::from_static("x-other");
        let origin = HeaderValue::from_static("Origin");
        assert_eq!(to_append(&vary(&["Origin"]), &other, origin.clone()), Some(origin), "other fields: all of it");
    }
}
