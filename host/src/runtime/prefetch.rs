//! What comes with every call of a plugin use: the request's values its
//! `needs.prefetch-*` named, written into the call's `input` (encoding in
//! `wasmgate_sdk::input`). A value sent along costs a copy; fetched by the
//! plugin it costs a call into the host, several times that.

use std::io::Write as _;
use std::net::SocketAddr;

use http::HeaderName;
use wasmgate_sdk::input::{self, Kind, MAX_PREFETCH};

use super::bindings::types;
use crate::clock;
use crate::message::RequestState;

/// The host's reading of a plugin's `needs`: the flags the pipeline acts
/// on, and the names its calls' input carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Needs {
    pub request_body: bool,
    pub response: bool,
    pub response_body: bool,
}

#[derive(Debug, Default)]
pub(super) struct Prefetch {
    headers: Vec<HeaderName>,
    vars: Vec<String>,
    request_id: bool,
    client_addr: bool,
}

/// Reads what `configure` returned; a name that cannot be a header, or
/// lists an index cannot address, reject the config.
pub(super) fn read_needs(needs: types::Needs) -> Result<(Needs, Prefetch), String> {
    if needs.prefetch_headers.len() > MAX_PREFETCH || needs.prefetch_vars.len() > MAX_PREFETCH {
        return Err(format!("needs: at most {MAX_PREFETCH} prefetched headers and vars each"));
    }
    let headers = needs
        .prefetch_headers
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("needs.prefetch-headers: {name:?} is not a header name"))
        })
        .collect::<Result<_, _>>()?;
    let flags =
        Needs { request_body: needs.request_body, response: needs.response, response_body: needs.response_body };
    let prefetch = Prefetch {
        headers,
        vars: needs.prefetch_vars,
        request_id: needs.prefetch_request_id,
        client_addr: needs.prefetch_client_addr,
    };
    Ok((flags, prefetch))
}

impl Prefetch {
    /// Whether calls take an input at all: lowering one costs an allocation
    /// in the guest, which a plugin that asked for nothing does not pay.
    pub(super) fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.vars.is_empty() && !self.request_id && !self.client_addr
    }

    /// The input of a call on `req`, written into `out`; `None` when the
    /// plugin asked for nothing.
    pub(super) fn write<'a>(&self, out: &'a mut Vec<u8>, req: &RequestState) -> Option<&'a [u8]> {
        if self.is_empty() {
            return None;
        }
        let info = &req.info;
        let mut addr = [0u8; 64];
        let addr = if self.client_addr { client_addr(&mut addr, info.client_addr) } else { &[] };
        let request_id = if self.request_id { info.request_id.as_bytes() } else { &[] };
        input::begin(out, clock::now_ms(), request_id, addr);
        for (index, name) in self.headers.iter().enumerate() {
            for value in req.head.headers.get_all(name) {
                input::push(out, Kind::Header, index as u16, value.as_bytes());
            }
        }
        for (index, name) in self.vars.iter().enumerate() {
            if let Some(value) = req.var(name) {
                input::push(out, Kind::Var, index as u16, value.as_bytes());
            }
        }
        Some(out)
    }
}

/// `addr` as `request.client-addr` gives it (as `Display` writes it),
/// written into `buf`. An IPv4 address, the usual client, is written
/// number by number: through `core::fmt` it cost 1.6k instructions, more
/// than the rest of the call that asked for it.
pub(super) fn client_addr(buf: &mut [u8; 64], addr: SocketAddr) -> &[u8] {
    let SocketAddr::V4(v4) = addr else {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // The longest socket address, `[v6%scope]:port`, is well under 64 bytes.
        write!(cursor, "{addr}").expect("a socket address fits the buffer");
        let len = cursor.position() as usize;
        return &buf[..len];
    };
    // `255.255.255.255:65535`, the longest, takes 21 bytes.
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            put(b".");
        }
        put(digits.format(octet).as_bytes());
    }
    put(b":");
    put(digits.format(v4.port()).as_bytes());
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::HeaderValue;
    use wasmgate_sdk::input::Input;

    use super::*;
    use crate::message::RequestInfo;

    fn needs(headers: &[&str], vars: &[&str], ids: bool) -> types::Needs {
        types::Needs {
            request_body: false,
            response: true,
            response_body: false,
            prefetch_headers: headers.iter().map(|h| h.to_string()).collect(),
            prefetch_vars: vars.iter().map(|v| v.to_string()).collect(),
            prefetch_request_id: ids,
            prefetch_client_addr: ids,
        }
    }

    fn request() -> RequestState {
        let mut head = http::Request::new(()).into_parts().0;
        head.headers.append("authorization", HeaderValue::from_static("Bearer a"));
        head.headers.append("x-many", HeaderValue::from_static("1"));
        head.headers.append("x-many", HeaderValue::from_static("2"));
        let info = Arc::new(RequestInfo {
            route: "r".into(),
            params: Vec::new(),
            client_addr: "[2001:db8::1]:4242".parse().unwrap(),
            request_id: HeaderValue::from_static("req-7"),
        });
        let mut req = RequestState::new(head, None, info);
        req.set_var("user".into(), "alice".into()).unwrap();
        req
    }

    #[test]
    fn the_input_carries_what_was_asked_for_and_nothing_else() {
        let (flags, prefetch) =
            read_needs(needs(&["Authorization", "x-many", "x-absent"], &["user", "unset"], true)).unwrap();
        assert_eq!(flags, Needs { request_body: false, response: true, response_body: false });
        let mut buf = Vec::new();
        let input = Input::parse(prefetch.write(&mut buf, &request()).unwrap()).unwrap();
        assert_eq!(input.request_id, b"req-7");
        assert_eq!(input.client_addr, b"[2001:db8::1]:4242");
        assert!(input.now_ms > 1_600_000_000_000, "the wall clock");
        assert_eq!(input.headers(0).collect::<Vec<_>>(), [b"Bearer a"]);
        assert_eq!(input.headers(1).collect::<Vec<_>>(), [b"1", b"2"]);
        assert_eq!(input.headers(2).count(), 0);
        assert_eq!(input.var(0), Some(&b"alice"[..]));
        assert_eq!(input.var(1), None);

        let (_, vars_only) = read_needs(needs(&[], &["user"], false)).unwrap();
        let input = Input::parse(vars_only.write(&mut buf, &request()).unwrap()).unwrap();
        assert_eq!((input.request_id, input.client_addr), (&b""[..], &b""[..]), "not asked for");
        assert_eq!(input.var(0), Some(&b"alice"[..]));

        let (_, nothing) = read_needs(needs(&[], &[], false)).unwrap();
        assert_eq!(nothing.write(&mut buf, &request()), None, "no input at all");
    }

    #[test]
    fn client_addresses_are_written_as_display_writes_them() {
        let mut buf = [0; 64];
        for addr in ["0.0.0.0:0", "255.255.255.255:65535", "203.0.113.7:51234", "10.0.0.1:80", "[2001:db8::1]:443"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(client_addr(&mut buf, addr), addr.to_string().as_bytes());
        }
    }

    #[test]
    fn a_name_that_cannot_be_a_header_rejects_the_config() {
        let err = read_needs(needs(&["bad name"], &[], false)).unwrap_err();
        assert!(err.contains("\"bad name\" is not a header name"), "{err}");
    }
}
