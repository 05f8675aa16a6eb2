//! The key a response is stored under: method, host, path, query and the
//! configured `Vary` headers, readable so that an operator can purge by
//! prefix (`GET api.example.com/users/` purges every user).

use wasmgate_sdk::Request;

/// Longest key the cache makes; a request whose key would be longer (a
/// huge query string) is not cached. Within the host's 1 KiB per key,
/// leaving room for the plugin's namespace.
pub const MAX_KEY_BYTES: usize = 960;

/// `GET host/path?query`, then `\n<name>:<values>` per configured `Vary`
/// header (lowercase, in config order; values joined by `, `, absent and
/// empty alike). HEAD is keyed as GET: it is answered from the GET entry.
/// Bytes that could blur the parts (controls, `%`, non-ASCII, and
/// whitespace in the host) are percent-encoded, so two requests share a key
/// only when they agree on every part. `None`: too long.
pub fn key(req: &Request, vary: &[String]) -> Option<String> {
    let mut key = String::with_capacity(128);
    key.push_str("GET ");
    let host = req.header_bytes("host").unwrap_or_default();
    push_escaped(&mut key, &host.to_ascii_lowercase(), b" /");
    push_escaped(&mut key, req.path().as_bytes(), b"");
    if let Some(query) = req.query() {
        key.push('?');
        push_escaped(&mut key, query.as_bytes(), b"");
    }
    for name in vary {
        key.push('\n');
        key.push_str(name);
        key.push(':');
        for (i, value) in req.header_all(name).iter().enumerate() {
            if i > 0 {
                key.push_str(", ");
            }
            push_escaped(&mut key, value.as_bytes(), b"");
        }
        if key.len() > MAX_KEY_BYTES {
            return None;
        }
    }
    (key.len() <= MAX_KEY_BYTES).then_some(key)
}

fn push_escaped(out: &mut String, bytes: &[u8], also: &[u8]) {
    for &b in bytes {
        if (b' '..=b'~').contains(&b) && b != b'%' && !also.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use wasmgate_sdk::testing::TestRequest;

    use super::*;

    fn vary() -> Vec<String> {
        vec!["accept-encoding".into(), "origin".into()]
    }

    #[test]
    fn method_host_path_query_and_vary_values() {
        let req = TestRequest::new("HEAD", "/a/b?x=1&y=%20")
            .header("host", "API.Example.com:8080")
            .header("accept-encoding", "gzip")
            .header("accept-encoding", "br");
        let key = key(&req.as_request(), &vary()).unwrap();
        assert_eq!(key, "GET api.example.com:8080/a/b?x=1&y=%2520\naccept-encoding:gzip, br\norigin:");
    }

    #[test]
    fn parts_cannot_be_forged_from_another_part() {
        let forged = TestRequest::new("GET", "/a").header("host", "h/x").header("origin", "o\nevil:1");
        let key = key(&forged.as_request(), &vary()).unwrap();
        assert_eq!(key, "GET h%2Fx/a\naccept-encoding:\norigin:o%0Aevil:1");
        let no_query = TestRequest::new("GET", "/a").header("host", "h");
        let empty_query = TestRequest::new("GET", "/a?").header("host", "h");
        assert_ne!(super::key(&no_query.as_request(), &[]), super::key(&empty_query.as_request(), &[]));
    }

    #[test]
    fn too_long_is_no_key() {
        let long = TestRequest::new("GET", &format!("/?q={}", "x".repeat(MAX_KEY_BYTES)));
        assert_eq!(key(&long.as_request(), &[]), None);
        let long = TestRequest::new("GET", "/").header("origin", "o".repeat(MAX_KEY_BYTES));
        assert_eq!(key(&long.as_request(), &vary()), None);
    }
}
