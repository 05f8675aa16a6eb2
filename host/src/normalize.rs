//! Request path normalisation, applied before routing.
//!
//! The normalised path is what routes match, what plugins see and what goes
//! upstream, so a route guarded by a plugin cannot be reached by spelling its
//! path another way (`/./admin`, `//admin`, `/x/../admin`, `/%61dmin`,
//! `/%2e%2e/admin`). The rule:
//!
//! 1. The request target must be an absolute path (or `*`, which no route
//!    matches); anything else is refused.
//! 2. Percent-escapes are decoded once when they encode an unreserved
//!    character (`A-Z a-z 0-9 - . _ ~`), since those mean the same encoded or
//!    not (RFC 3986 §6.2.2.2). Every other escape stays encoded, with its hex
//!    digits upper-cased (§6.2.2.1), so `%3F` stays a literal `?` and `%25`
//!    a literal `%` (no double decoding).
//! 3. Escapes of a path separator (`%2F` `/`, `%5C` `\`) and of control
//!    characters (`%00`–`%1F`, `%7F`) are refused, as is a raw `\`: keeping
//!    them would let the gateway see one segment where an upstream that
//!    decodes them sees two. Malformed escapes (`%`, `%4`, `%zz`) are refused.
//! 4. Empty segments are merged (`//` → `/`), `.` segments removed and `..`
//!    segments remove the one before (never above the root), after decoding,
//!    so `%2e%2e` is a `..` too (RFC 3986 §5.2.4).
//! 5. A trailing `/` is kept: `/admin/` and `/admin` stay distinct paths.
//!    Guard a subtree with a `prefix` route, which covers both.
//!
//! Paths stay case-sensitive, and `;` parameters are not interpreted.

use std::borrow::Cow;

/// Why a request path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target must be an absolute path")]
    NotAbsolute,
    #[error("malformed percent-escape in the path")]
    BadEscape,
    #[error("percent-encoded path separators (%2F, %5C) are not accepted")]
    EncodedSeparator,
    #[error("percent-encoded control characters are not accepted in the path")]
    EncodedControl,
    #[error("backslashes are not accepted in the path")]
    Backslash,
}

/// The normalised form of `path` (borrowed when it already is).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if path == "*" {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if !path.contains(['%', '\\']) && !path.contains("//") && !path.contains("/.") {
        return Ok(Cow::Borrowed(path));
    }

    let decoded = decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    // Whether the path ends in a directory (a `/`, or a dot segment).
    let mut trailing = false;
    for segment in decoded[1..].split('/') {
        trailing = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    Ok(if out == path { Cow::Borrowed(path) } else { Cow::Owned(out) })
}

/// Decodes unreserved escapes, upper-cases the rest, refuses the dangerous.
fn decode(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                    return Err(PathError::BadEscape);
                };
                let byte = (hi * 16 + lo) as u8;
                match byte {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(PathError::EncodedControl),
                    b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => out.push(b as char),
                    b => {
                        out.push('%');
                        out.push_str(&format!("{b:02X}"));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            _ => {
                // Copy the run up to the next byte of interest in one go
                // (it is valid UTF-8: only ASCII bytes end it).
                let end = bytes[i..].iter().position(|b| matches!(b, b'%' | b'\\')).map_or(bytes.len(), |p| i + p);
                out.push_str(&path[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn spellings_of_one_path_become_one() {
        for p in [
            "/admin",
            "/./admin",
            "/x/../admin",
            "//admin",
            "///admin",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/.%2e/admin",
            "/../../admin",
            "/%61dmin",
            "/%61%64%6D%69%6E",
            "/x/y/../../admin",
        ] {
            assert_eq!(norm(p).unwrap(), "/admin", "{p}");
        }
        assert_eq!(norm("/admin/.").unwrap(), "/admin/");
        assert_eq!(norm("/admin/").unwrap(), "/admin/");
        assert_eq!(norm("/admin//").unwrap(), "/admin/");
        assert_eq!(norm("/admin/x/..").unwrap(), "/admin/");
    }

    #[test]
    fn roots_and_unchanged_paths() {
        assert_eq!(norm("/").unwrap(), "/");
        assert_eq!(norm("/..").unwrap(), "/");
        assert_eq!(norm("/.").unwrap(), "/");
        assert_eq!(norm("//").unwrap(), "/");
        assert_eq!(norm("*").unwrap(), "*");
        assert!(matches!(normalize("/users/7"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize("/.well-known/x"), Ok(Cow::Borrowed(_))));
        assert_eq!(norm("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(norm("/a..b/.c").unwrap(), "/a..b/.c");
    }

    #[test]
    fn reserved_and_non_ascii_escapes_stay_encoded_in_upper_case() {
        assert_eq!(norm("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(norm("/a%3fb").unwrap(), "/a%3Fb");
        assert_eq!(norm("/a%252e%252e/x").unwrap(), "/a%252e%252e/x", "decoded once only");
        assert_eq!(norm("/a%20b").unwrap(), "/a%20b");
    }

    #[test]
    fn dangerous_spellings_are_refused() {
        assert_eq!(norm("/admin%2fx"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/x%2F..%2Fadmin"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/x%5cadmin"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/x\\admin"), Err(PathError::Backslash));
        assert_eq!(norm("/x%00"), Err(PathError::EncodedControl));
        assert_eq!(norm("/x%0d%0a"), Err(PathError::EncodedControl));
        assert_eq!(norm("/x%"), Err(PathError::BadEscape));
        assert_eq!(norm("/x%4"), Err(PathError::BadEscape));
        assert_eq!(norm("/x%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("admin"), Err(PathError::NotAbsolute));
        assert_eq!(norm(""), Err(PathError::NotAbsolute));
    }
}
