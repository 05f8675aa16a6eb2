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

/// An RFC 9110 §5.6.2 token: what header names and methods must be.
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(percent_encode("a b/c?d=é~-._"), "a%20b%2Fc%3Fd%3D%C3%A9~-._");
    }

    #[test]
    fn tokens() {
        assert!(is_token("x-user-id"));
        assert!(is_token("GET"));
        assert!(!is_token("bad header"));
        assert!(!is_token(""));
        assert!(!is_token("a:b"));
    }
}
