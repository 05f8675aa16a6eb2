//! Request path normalisation, applied before routing.
//!
//! The normalised path is what routes match, what plugins see and what goes
//! upstream, so a route guarded by a plugin cannot be reached by spelling its
//! path another way (`/./admin`, `//admin`, `/x/../admin`, `/%61dmin`,
//! `/%2e%2e/admin`, `/x/..;/admin`, `/admin;x/secret`). The rule:
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
//! 4. A raw `;` starts a segment's parameters (`/a;v=1/b`), which Java
//!    servlet containers and Spring cut off before routing: to them
//!    `/admin;x/secret` is `/admin/secret`, and `/x/..;/admin` is `/admin`.
//!    A segment that is `.` or `..` before its `;` is a dot segment in every
//!    mode (step 5), its parameters dropped with it; [`PathParams`] decides
//!    what happens to the others. An escaped `%3B` stays encoded, a literal
//!    `;` inside a segment name: those containers split parameters off the
//!    raw path before decoding it, so to them too `/admin%3Bx` is one
//!    segment named `admin;x`, and `..%3B` is no dot segment.
//! 5. Empty segments are merged (`//` → `/`), `.` segments removed and `..`
//!    segments remove the one before (never above the root), after decoding,
//!    so `%2e%2e` is a `..` too (RFC 3986 §5.2.4).
//! 6. A trailing `/` is kept: `/admin/` and `/admin` stay distinct paths.
//!    Guard a subtree with a `prefix` route, which covers both.
//!
//! Paths stay case-sensitive.

use std::borrow::Cow;

/// What happens to `;` parameters of path segments other than `.` and
/// `..` (the `[server] path_params` setting).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PathParams {
    /// Cut off every segment's parameters (`/a;v=1/b` → `/a/b`): routes,
    /// plugins and the upstream see the path a servlet container routes
    /// on, and clients that append `;jsessionid=…` still work.
    #[default]
    Strip,
    /// Leave them in the path plugins and the upstream see, for upstreams
    /// that read them; routes still match the path without them (see
    /// [`routing_path`]), so a guard on `/admin` covers `/admin;x`.
    Keep,
    /// Refuse any path with a `;` (400).
    Reject,
}

impl PathParams {
    /// The setting's values, as written in the config.
    pub const NAMES: [(&str, Self); 3] = [("strip", Self::Strip), ("keep", Self::Keep), ("reject", Self::Reject)];

    /// The mode a config value names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, mode)| *mode)
    }
}

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
    #[error("`;` parameters are not accepted in the path")]
    Parameters,
}

/// The normalised form of `path` (borrowed when it already is).
pub fn normalize(path: &str, params: PathParams) -> Result<Cow<'_, str>, PathError> {
    if path == "*" {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if params == PathParams::Reject && path.contains(';') {
        return Err(PathError::Parameters);
    }
    if !path.contains(['%', '\\', ';']) && !path.contains("//") && !path.contains("/.") {
        return Ok(Cow::Borrowed(path));
    }

    let decoded = decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    // Whether the path ends in a directory (a `/`, or a dot segment).
    let mut trailing = false;
    for segment in decoded[1..].split('/') {
        let name = segment.split_once(';').map_or(segment, |(name, _)| name);
        let dot = matches!(name, "." | "..");
        let kept = if dot || params == PathParams::Strip { name } else { segment };
        trailing = matches!(kept, "" | "." | "..");
        match kept {
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

/// The path routes match for a normalised `path`: without its segments'
/// parameters, which only [`PathParams::Keep`] leaves in it. An upstream
/// that reads `/admin;x/secret` as `/admin/secret` must not get it through
/// a route that `/admin` does not match.
pub fn routing_path(path: &str, params: PathParams) -> Cow<'_, str> {
    match params {
        PathParams::Keep => normalize(path, PathParams::Strip).unwrap_or(Cow::Borrowed(path)),
        PathParams::Strip | PathParams::Reject => Cow::Borrowed(path),
    }
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
        norm_with(p, PathParams::default())
    }

    fn norm_with(p: &str, params: PathParams) -> Result<String, PathError> {
        normalize(p, params).map(Cow::into_owned)
    }

    const MODES: [PathParams; 3] = [PathParams::Strip, PathParams::Keep, PathParams::Reject];

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
        assert!(matches!(normalize("/users/7", PathParams::Strip), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize("/.well-known/x", PathParams::Strip), Ok(Cow::Borrowed(_))));
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

    /// The "..;/" class of gateway bypasses: what a servlet container reads
    /// as a dot segment is one here too, whatever the mode.
    #[test]
    fn dot_segments_with_parameters_are_dot_segments_in_every_mode() {
        for params in [PathParams::Strip, PathParams::Keep] {
            for p in
                ["/x/..;/admin", "/x/..;x=1/admin", "/x/%2e%2e;/admin", "/x/.%2E;a/admin", "/.;/admin", "/..;/admin"]
            {
                assert_eq!(norm_with(p, params).unwrap(), "/admin", "{p} {params:?}");
            }
            assert_eq!(norm_with("/admin/secret/..;", params).unwrap(), "/admin/");
            assert_eq!(norm_with("/admin/.;x", params).unwrap(), "/admin/");
        }
        assert_eq!(norm_with("/x/..;/admin", PathParams::Reject), Err(PathError::Parameters));
    }

    #[test]
    fn strip_cuts_every_segments_parameters() {
        for p in ["/admin;/secret", "/admin;x=1/secret", "/admin;a;b=2/secret;jsessionid=abc", "/;x/admin/secret"] {
            assert_eq!(norm(p).unwrap(), "/admin/secret", "{p}");
        }
        assert_eq!(norm("/admin;x").unwrap(), "/admin");
        assert_eq!(norm("/admin/;x").unwrap(), "/admin/");
        assert_eq!(norm("/;").unwrap(), "/");
    }

    #[test]
    fn keep_leaves_parameters_to_the_upstream_and_routes_without_them() {
        let keep = |p| norm_with(p, PathParams::Keep).unwrap();
        assert_eq!(keep("/admin;x=1/secret"), "/admin;x=1/secret");
        assert_eq!(keep("/a;v=%2e/b"), "/a;v=./b", "unreserved escapes are decoded in parameters too");
        assert_eq!(keep("/;x/admin"), "/;x/admin");
        for p in ["/admin;x=1/secret", "/;x/admin/secret", "/admin;/secret;jsessionid=1"] {
            let kept = keep(p);
            assert_eq!(routing_path(&kept, PathParams::Keep), "/admin/secret", "{p}");
        }
        assert_eq!(routing_path("/admin/secret", PathParams::Strip), "/admin/secret");
    }

    #[test]
    fn reject_refuses_any_raw_semicolon() {
        for p in ["/admin;/secret", "/a;", "/;", "/x/..;/admin"] {
            assert_eq!(norm_with(p, PathParams::Reject), Err(PathError::Parameters), "{p}");
        }
        assert_eq!(norm_with("/a%3bb", PathParams::Reject).unwrap(), "/a%3Bb");
    }

    /// `%3B` is a literal character in a segment name, never a parameter
    /// delimiter: not to the router, not to a container that splits
    /// parameters off before decoding.
    #[test]
    fn an_encoded_semicolon_stays_a_literal() {
        for params in MODES {
            assert_eq!(norm_with("/admin%3bx/secret", params).unwrap(), "/admin%3Bx/secret", "{params:?}");
            assert_eq!(norm_with("/x/..%3B/admin", params).unwrap(), "/x/..%3B/admin", "{params:?}");
            assert_eq!(norm_with("/x/%2e%2e%3b/admin", params).unwrap(), "/x/..%3B/admin", "{params:?}");
        }
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for params in MODES {
            for p in ["/x/..;/admin", "/a;b/./c;d/..;e/f", "/%2e%2e;x/%61;b//c/", "/a%3b/..%3B;/b", "/;/;x/.;/"] {
                if let Ok(once) = norm_with(p, params) {
                    assert!(matches!(normalize(&once, params), Ok(Cow::Borrowed(_))), "{p} {params:?} → {once}");
                }
            }
        }
    }
}
