//! The dashboard's page: three files embedded in the binary, so running
//! the gateway needs no build step or asset directory. The page reads the
//! admin API like any client (`/status`, `/metrics`), so it shows nothing
//! an API client could not see, and needs the same token.

use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};

use crate::body::{self, Body};

const PAGE: &str = include_str!("dashboard.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");

/// The asset at `path`, if it is one.
pub(super) fn asset(path: &str) -> Option<Response<Body>> {
    let (text, kind) = match path {
        "/" => (PAGE, "text/html; charset=utf-8"),
        "/dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = Response::new(body::full(text));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Scripts and styles only from the gateway itself, no inline script, no
    // framing: a route or plugin name can never become active content.
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    Some(resp)
}
