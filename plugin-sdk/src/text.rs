//! Small HTTP text rules plugins keep needing, written once.

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value
/// put into a path or query cannot add segments or parameters of its own.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (and, with `form`, `+` as a space, as query
/// strings are written); a `%` not followed by two hex digits stays as it
/// is. Bytes, since an escape may decode to anything: the caller decides
/// what invalid UTF-8 means.
pub fn percent_decode(text: &str, form: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        let escaped = if byte == b'%' { hex(i + 1).zip(hex(i + 2)) } else { None };
        match (escaped, byte) {
            (Some((hi, lo)), _) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
            (None, b'+') if form => out.push(b' '),
            (None, other) => out.push(other),
        }
        i += 1;
    }
    out
}

/// An RFC 9110 §5.6.2 token: what header names and methods must be.
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Appends `n` in decimal. `format!` and `to_string` go through
/// `core::fmt`, whose machinery costs a plugin more than the number itself
/// on a hot path (rate-limit writes several per request).
pub fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `n` in decimal, without `core::fmt` (see [`push_decimal`]).
pub fn decimal(n: u64) -> String {
    let mut out = String::with_capacity(20);
    push_decimal(&mut out, n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(percent_encode("a b/c?d=é~-._"), "a%20b%2Fc%3Fd%3D%C3%A9~-._");
    }

    #[test]
    fn decodes_escapes_and_keeps_broken_ones() {
        assert_eq!(percent_decode("a%20b%2Fc%C3%A9+d", false), "a b/cé+d".as_bytes());
        assert_eq!(percent_decode("a+b%2", true), b"a b%2");
        assert_eq!(percent_decode("%zz%", true), b"%zz%");
        assert_eq!(percent_decode("%ff", false), [0xff]);
        assert_eq!(percent_decode(&percent_encode("x y/é"), false), "x y/é".as_bytes());
    }

    #[test]
    fn tokens() {
        assert!(is_token("x-user-id"));
        assert!(is_token("GET"));
        assert!(!is_token("bad header"));
        assert!(!is_token(""));
        assert!(!is_token("a:b"));
    }

    #[test]
    fn decimals_match_display() {
        for n in [0, 7, 10, 99, 1_000_000_007, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        let mut out = String::from("x=");
        push_decimal(&mut out, 42);
        assert_eq!(out, "x=42");
    }
}
