//! Request paths, in every `path_params` mode. Invariants: normalising is
//! idempotent; a normalised path is absolute, without empty or dot
//! segments (but a trailing `/`), without backslashes, and without `;`
//! unless parameters are kept; the path routes match has no parameters and
//! is normalised itself; a valid request target stays one.

#![no_main]

use std::borrow::Cow;

use http::uri::PathAndQuery;
use libfuzzer_sys::fuzz_target;
use wasmgate::internals::{PathParams, normalize, routing_path};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    for params in [PathParams::Strip, PathParams::Keep, PathParams::Reject] {
        let Ok(once) = normalize(path, params) else { continue };
        match normalize(&once, params) {
            Ok(Cow::Borrowed(twice)) => assert_eq!(twice, once),
            other => panic!("{path:?} → {once:?} → {other:?} ({params:?})"),
        }
        if once == "*" {
            continue;
        }
        assert!(once.starts_with('/'), "{once:?}");
        assert!(!once.contains('\\'), "{once:?}");
        let segments: Vec<&str> = once[1..].split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            let name = segment.split(';').next().unwrap_or_default();
            assert!(!matches!(name, "." | ".."), "a dot segment left in {once:?} ({params:?})");
            assert!(!segment.is_empty() || i + 1 == segments.len(), "an empty segment in {once:?}");
        }
        if params != PathParams::Keep {
            assert!(!once.contains(';'), "{path:?} → {once:?} ({params:?})");
        }
        let routed = routing_path(&once, params);
        assert!(!routed.contains(';'), "{once:?} routes as {routed:?} ({params:?})");
        assert!(matches!(normalize(&routed, PathParams::Strip), Ok(Cow::Borrowed(_))), "{routed:?}");
        // As `Uri::path` hands it over: no query, no fragment.
        if path.parse::<PathAndQuery>().is_ok_and(|p| p.path() == path) {
            assert!(once.parse::<PathAndQuery>().is_ok(), "{path:?} → {once:?} is no request target");
        }
    }
});
