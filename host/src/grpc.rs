//! What the gateway knows of gRPC: which requests are gRPC calls, the
//! deadline a call carries (`grpc-timeout`), and how an HTTP status reads
//! as a gRPC status. gRPC itself is proxied like any HTTP/2 exchange;
//! `answer.rs` decides when an answer takes the gRPC form.

use std::time::Duration;

use http::HeaderMap;
use http::StatusCode;
use http::header::CONTENT_TYPE;

/// `application/grpc`, `application/grpc+proto`, `application/grpc-web`...
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The call's deadline from `grpc-timeout` (at most 8 digits and a unit:
/// `H`, `M`, `S`, `m`, `u`, `n`); `None` when absent or malformed.
pub(crate) fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.as_bytes();
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Eight digits at most: no overflow below.
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The gRPC status code for an answer with this HTTP status.
pub(crate) fn code(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 3,             // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        408 | 504 => 4,       // DEADLINE_EXCEEDED
        413 | 429 | 431 => 8, // RESOURCE_EXHAUSTED
        405 | 501 => 12,      // UNIMPLEMENTED
        502 | 503 => 14,      // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

/// `grpc-message` text: percent-encoded outside printable ASCII and `%`.
pub(crate) fn encode_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with_timeout(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", HeaderValue::from_static(value));
        h
    }

    #[test]
    fn timeouts_in_every_unit_and_malformed_ones_ignored() {
        assert_eq!(timeout(&with_timeout("2S")), Some(Duration::from_secs(2)));
        assert_eq!(timeout(&with_timeout("150m")), Some(Duration::from_millis(150)));
        assert_eq!(timeout(&with_timeout("1H")), Some(Duration::from_secs(3600)));
        assert_eq!(timeout(&with_timeout("99999999n")), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(timeout(&with_timeout(bad)), None, "{bad:?}");
        }
        assert_eq!(timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_and_messages() {
        assert_eq!(code(StatusCode::BAD_GATEWAY), 14);
        assert_eq!(code(StatusCode::GATEWAY_TIMEOUT), 4);
        assert_eq!(code(StatusCode::UNAUTHORIZED), 16);
        assert_eq!(code(StatusCode::INTERNAL_SERVER_ERROR), 13);
        assert_eq!(encode_message("no route for GET /x é%"), "no route for GET /x %C3%A9%25");
    }
}
