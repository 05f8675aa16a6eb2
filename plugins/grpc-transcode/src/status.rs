//! gRPC status codes, and the HTTP status each becomes: the table Envoy's
//! `grpc_json_transcoder` and grpc-gateway use.

/// The HTTP status, the code's name and the HTTP reason phrase for a
/// `grpc-status` code; codes outside the known range are `UNKNOWN`'s 500.
pub(crate) fn http_status(code: u32) -> (u16, &'static str) {
    match code {
        0 => (200, "OK"),
        1 => (499, "CANCELLED"),
        3 => (400, "INVALID_ARGUMENT"),
        4 => (504, "DEADLINE_EXCEEDED"),
        5 => (404, "NOT_FOUND"),
        6 => (409, "ALREADY_EXISTS"),
        7 => (403, "PERMISSION_DENIED"),
        8 => (429, "RESOURCE_EXHAUSTED"),
        9 => (400, "FAILED_PRECONDITION"),
        10 => (409, "ABORTED"),
        11 => (400, "OUT_OF_RANGE"),
        12 => (501, "UNIMPLEMENTED"),
        13 => (500, "INTERNAL"),
        14 => (503, "UNAVAILABLE"),
        15 => (500, "DATA_LOSS"),
        16 => (401, "UNAUTHENTICATED"),
        _ => (500, "UNKNOWN"),
    }
}

/// The reason phrase of the statuses this plugin answers with, as problem
/// titles.
pub(crate) fn title(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        499 => "Client Closed Request",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_http_status() {
        let table: Vec<(u16, &str)> = (0..=17).map(http_status).collect();
        assert_eq!(
            table,
            [
                (200, "OK"),
                (499, "CANCELLED"),
                (500, "UNKNOWN"),
                (400, "INVALID_ARGUMENT"),
                (504, "DEADLINE_EXCEEDED"),
                (404, "NOT_FOUND"),
                (409, "ALREADY_EXISTS"),
                (403, "PERMISSION_DENIED"),
                (429, "RESOURCE_EXHAUSTED"),
                (400, "FAILED_PRECONDITION"),
                (409, "ABORTED"),
                (400, "OUT_OF_RANGE"),
                (501, "UNIMPLEMENTED"),
                (500, "INTERNAL"),
                (503, "UNAVAILABLE"),
                (500, "DATA_LOSS"),
                (401, "UNAUTHENTICATED"),
                (500, "UNKNOWN"),
            ]
        );
        assert_eq!(http_status(u32::MAX), (500, "UNKNOWN"));
    }
}
