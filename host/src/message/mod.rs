//! The request and response as plugins see them. They live on the host and
//! are lent to each plugin call as resources, so a call costs what the
//! plugin reads, not the size of the message.
//!
//! Below both the runtime (which lends them to plugins) and the pipeline
//! (which passes them from stage to stage); [`bounds`] holds what a plugin
//! may write into them.

pub(crate) mod bounds;
mod edit;
mod vary;

pub(crate) use edit::{Edit, Edits};

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use self::bounds::{Bounds, MAX_VARS, MAX_VARS_BYTES, field_bytes, path_and_query, shown};

/// Facts about a request fixed before the pipeline runs.
#[derive(Debug)]
pub(crate) struct RequestInfo {
    pub route: Arc<str>,
    pub params: Vec<(String, String)>,
    pub client_addr: SocketAddr,
    pub request_id: HeaderValue,
}

/// The request while it moves through the request phase; in the response
/// phase a read-only copy of its head.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub head: http::request::Parts,
    /// Present when a plugin of the pipeline asked for the body.
    pub body: Option<Bytes>,
    pub info: Arc<RequestInfo>,
    /// Values plugins of one pipeline share for one request.
    /// Slices of the buffer a plugin's edits came in (no copy per var).
    pub vars: Vec<(ByteString, ByteString)>,
    /// Headers for the response, set before there is one.
    pub response_edits: ResponseEdits,
    pub read_only: bool,
}

/// Response headers plugins set during the request phase
/// (`set-response-header`), replayed in call order onto whatever response
/// the request gets. Checked when set, so applying cannot fail: each is a
/// valid field, and together they stay within the header limits.
#[derive(Debug, Default)]
pub(crate) struct ResponseEdits {
    edits: Vec<(HeaderName, HeaderValue, EditKind)>,
    /// Their size as the header limit counts it.
    bytes: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EditKind {
    Set,
    Append,
}

impl ResponseEdits {
    pub(crate) fn push(
        &mut self,
        kind: EditKind,
        name: HeaderName,
        value: HeaderValue,
        bounds: &Bounds,
    ) -> Result<(), MessageError> {
        if self.edits.len() >= bounds.max_headers {
            return Err(MessageError::TooManyHeaders(bounds.max_headers));
        }
        let bytes = self.bytes + field_bytes(&name, &value);
        bounds.check_header_bytes(bytes)?;
        self.bytes = bytes;
        self.edits.push((name, value, kind));
        Ok(())
    }

    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        // The edits are within the header limits; `try_` only so that a
        // configured `max_headers` near `HeaderMap`'s own hard limit cannot
        // panic (the edit past it is dropped).
        for (name, value, kind) in self.edits {
            let _ = match kind {
                EditKind::Set => headers.try_insert(name, value).map(drop),
                EditKind::Append => match vary::to_append(headers, &name, value) {
                    Some(value) => headers.try_append(name, value).map(drop),
                    None => Ok(()),
                },
            };
        }
    }
}

#[derive(Debug)]
pub(crate) struct ResponseState {
    pub head: http::response::Parts,
    /// Present when a plugin of the pipeline asked for the body.
    pub body: Option<Bytes>,
    /// The trailers that go with `body`: the upstream's, read with the
    /// buffered body, or a plugin's. Sent only with a body the host holds
    /// (buffered or set by a plugin); a streamed body carries its own.
    pub trailers: HeaderMap,
}

impl ResponseState {
    /// Replaces the trailers with a list a plugin built, held to the
    /// limits of headers.
    pub(crate) fn set_trailers(&mut self, fields: Vec<(String, Vec<u8>)>, bounds: &Bounds) -> Result<(), MessageError> {
        bounds.check_fields(fields.iter().map(|(name, value)| (name.as_str(), value.as_slice())))?;
        let mut trailers = HeaderMap::new();
        for (name, value) in fields {
            Headers::append(&mut trailers, &name, value)?;
        }
        self.trailers = trailers;
        Ok(())
    }
}

/// A plugin asked for something HTTP cannot carry.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("invalid value for header {0}")]
    HeaderValue(String),
    #[error("invalid method {0:?}")]
    Method(String),
    #[error("invalid path or query {0:?}")]
    Path(String),
    #[error("invalid status {0}: a plugin answers with a status from 200 to 599")]
    Status(u16),
    #[error("more than {0} header fields (the server's max_headers)")]
    TooManyHeaders(usize),
    #[error("header fields of {bytes} bytes, over the server's max_header_bytes of {limit}")]
    HeadersTooLarge { bytes: usize, limit: usize },
    #[error("a request target of {len} bytes, over the server's max_uri_bytes of {limit}")]
    UriTooLong { len: usize, limit: usize },
    #[error("a body of {len} bytes, over the server's max_request_body_bytes of {limit}")]
    BodyTooLarge { len: u64, limit: u64 },
    #[error("more than {MAX_VARS} vars on one request")]
    TooManyVars,
    #[error("vars of more than {MAX_VARS_BYTES} bytes on one request")]
    VarsTooLarge,
    #[error("a batch of edits of {len} bytes, over the limit of {limit}")]
    EditsTooLarge { len: usize, limit: usize },
    #[error("the request cannot be changed in the response phase")]
    ReadOnly,
    #[error("a response takes header edits only")]
    NotResponseEdit,
    #[error("the name of var {0:?} is not UTF-8")]
    VarName(String),
    #[error("the value of var {0:?} is not UTF-8")]
    VarValue(String),
    #[error("malformed edits at byte {0}")]
    Edits(usize),
}

impl RequestState {
    pub(crate) fn new(head: http::request::Parts, body: Option<Bytes>, info: Arc<RequestInfo>) -> Self {
        Self { head, body, info, vars: Vec::new(), response_edits: ResponseEdits::default(), read_only: false }
    }

    pub(crate) fn path(&self) -> &str {
        self.head.uri.path()
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.head.uri.query()
    }

    pub(crate) fn set_path_and_query(
        &mut self,
        path: &str,
        query: Option<&str>,
        bounds: &Bounds,
    ) -> Result<(), MessageError> {
        bounds.check_uri(path.len() + query.map_or(0, |q| q.len() + 1))?;
        let joined = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let pq = path_and_query(&joined)?;
        let mut parts = std::mem::take(&mut self.head.uri).into_parts();
        parts.path_and_query = Some(pq);
        self.head.uri = http::Uri::from_parts(parts).map_err(|_| MessageError::Path(shown(&joined)))?;
        Ok(())
    }

    pub(crate) fn writable(&mut self) -> Result<&mut Self, MessageError> {
        if self.read_only { Err(MessageError::ReadOnly) } else { Ok(self) }
    }

    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| &**v)
    }

    /// Sets a var, within the bounds on vars per request.
    pub(crate) fn set_var(&mut self, name: ByteString, value: ByteString) -> Result<(), MessageError> {
        let slot = self.vars.iter().position(|(k, _)| *k == name);
        if slot.is_none() && self.vars.len() >= MAX_VARS {
            return Err(MessageError::TooManyVars);
        }
        let others: usize =
            self.vars.iter().enumerate().filter(|(i, _)| Some(*i) != slot).map(|(_, (k, v))| k.len() + v.len()).sum();
        if others + name.len() + value.len() > MAX_VARS_BYTES {
            return Err(MessageError::VarsTooLarge);
        }
        match slot.and_then(|i| self.vars.get_mut(i)) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
        Ok(())
    }

    /// The read-only view of the request handed to the response phase.
    pub(crate) fn response_phase_view(&self) -> Box<RequestState> {
        let mut head = http::Request::new(()).into_parts().0;
        head.method = self.head.method.clone();
        head.uri = self.head.uri.clone();
        head.version = self.head.version;
        head.headers = self.head.headers.clone();
        Box::new(RequestState {
            vars: self.vars.clone(),
            read_only: true,
            ..RequestState::new(head, None, self.info.clone())
        })
    }
}

/// Header names a plugin instance has used, each parsed once: a plugin
/// sets the same few names on every request, and parsing a name that is
/// not a standard one allocates. Names come as the bytes the plugin sent:
/// a known one is matched without checking its text again.
#[derive(Debug, Default)]
pub struct NameCache(Vec<(Box<[u8]>, HeaderName)>);

/// Names a cache keeps; a plugin computing names per request gets no more.
const CACHED_NAMES: usize = 32;

impl NameCache {
    /// The field name for these bytes, checked once and then reused.
    pub fn name(&mut self, name: &[u8]) -> Result<HeaderName, MessageError> {
        if let Some((_, parsed)) = self.0.iter().find(|(known, _)| **known == *name) {
            return Ok(parsed.clone());
        }
        let parsed = header_name(name)?;
        if self.0.len() < CACHED_NAMES {
            self.0.push((name.into(), parsed.clone()));
        }
        Ok(parsed)
    }

    /// A header field as a plugin wrote it, checked.
    pub fn field(&mut self, name: &[u8], value: Bytes) -> Result<(HeaderName, HeaderValue), MessageError> {
        let name = self.name(name)?;
        let value = header_value(&name, value)?;
        Ok((name, value))
    }
}

fn header_name(name: &[u8]) -> Result<HeaderName, MessageError> {
    HeaderName::from_bytes(name).map_err(|_| MessageError::HeaderName(shown(&String::from_utf8_lossy(name))))
}

fn header_value(name: &HeaderName, value: impl Into<Bytes>) -> Result<HeaderValue, MessageError> {
    HeaderValue::from_maybe_shared(value.into()).map_err(|_| MessageError::HeaderValue(name.to_string()))
}

/// Header edits shared by requests and responses.
pub(crate) struct Headers;

impl Headers {
    pub(crate) fn first(map: &HeaderMap, name: &str) -> Option<Vec<u8>> {
        map.get(name).map(|v| v.as_bytes().to_vec())
    }

    pub(crate) fn all(map: &HeaderMap, name: &str) -> Vec<Vec<u8>> {
        map.get_all(name).iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    pub(crate) fn list(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        map.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())).collect()
    }

    /// Adds a field a plugin built (a reply's, an outbound call's), from a
    /// list already held to the header limits.
    pub(crate) fn append(map: &mut HeaderMap, name: &str, value: Vec<u8>) -> Result<(), MessageError> {
        let name = header_name(name.as_bytes())?;
        let value = header_value(&name, value)?;
        map.try_append(name, value).map_err(|_| MessageError::TooManyHeaders(map.len()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_parsed_once_and_a_bad_one_is_refused_every_time() {
        let mut names = NameCache::default();
        let first = names.name(b"x-custom").unwrap();
        assert_eq!(names.name(b"x-custom").unwrap(), first);
        assert_eq!(names.0.len(), 1, "the second use was a cache hit");
        for bad in [&b"bad name"[..], b"", b"caf\xc3\xa9", b"\xff"] {
            assert!(matches!(names.name(bad), Err(MessageError::HeaderName(_))), "{bad:?}");
        }
        assert_eq!(names.0.len(), 1, "refused names are not kept");
        let (name, value) = names.field(b"X-Upper", Bytes::from_static(b"v")).unwrap();
        assert_eq!((name.as_str(), value.as_bytes()), ("x-upper", &b"v"[..]));
        assert!(names.field(b"x-ok", Bytes::from_static(b"a\nb")).is_err());
    }

    fn request() -> RequestState {
        let info = RequestInfo {
            route: "r".into(),
            params: Vec::new(),
            client_addr: "127.0.0.1:1".parse().unwrap(),
            request_id: HeaderValue::from_static("id"),
        };
        RequestState::new(http::Request::new(()).into_parts().0, None, Arc::new(info))
    }

    #[test]
    fn a_batch_sets_vars_from_its_own_buffer_and_refuses_ones_that_are_not_text() {
        use edit::{Edit, Edits};
        use wasmgate_sdk::edits::{self, Op};
        let bounds = Bounds { max_headers: 8, max_header_bytes: 1024, max_uri_bytes: 64, max_body_bytes: 64 };
        let (mut req, mut names) = (request(), NameCache::default());
        let mut batch = Vec::new();
        edits::push(&mut batch, Op::SetVar, "user", "ålice".as_bytes());
        edits::push(&mut batch, Op::SetHeader, "x-a", b"1");
        req.apply(&mut names, &bounds, Edits::Batch(batch)).unwrap();
        assert_eq!(req.var("user"), Some("ålice"));
        assert_eq!(req.head.headers["x-a"], "1");

        let mut value = Vec::new();
        edits::push(&mut value, Op::SetVar, "user", b"\xffbob");
        let refused = req.apply(&mut names, &bounds, Edits::Batch(value));
        assert!(matches!(refused, Err(MessageError::VarValue(ref name)) if name == "user"), "{refused:?}");
        let mut name = vec![Op::SetVar as u8, 2, 0, 0, 0, 0xc3, 0x28];
        name.extend_from_slice(&1u32.to_le_bytes());
        name.push(b'x');
        let refused = req.apply(&mut names, &bounds, Edits::Batch(name));
        assert!(matches!(refused, Err(MessageError::VarName(_))), "{refused:?}");
        assert_eq!(req.var("user"), Some("ålice"), "a refused var changes nothing");
        req.apply(&mut names, &bounds, Edits::One(Op::SetVar, Bytes::from("role"), Bytes::from("admin"))).unwrap();
        assert_eq!(req.var("role"), Some("admin"));
    }

    #[test]
    fn vars_are_bounded_in_number_and_size() {
        let mut req = request();
        for i in 0..MAX_VARS {
            req.set_var(format!("v{i}").into(), "x".into()).unwrap();
        }
        assert!(matches!(req.set_var("one-more".into(), "x".into()), Err(MessageError::TooManyVars)));
        req.set_var("v0".into(), "replaced".into()).unwrap();
        assert_eq!(req.var("v0"), Some("replaced"));

        let mut req = request();
        req.set_var("big".into(), "x".repeat(MAX_VARS_BYTES - 3).into()).unwrap();
        assert!(matches!(req.set_var("a".into(), "x".into()), Err(MessageError::VarsTooLarge)));
        // Replacing a value counts the new one, not both.
        req.set_var("big".into(), "x".repeat(MAX_VARS_BYTES - 3).into()).unwrap();
        assert!(matches!(
            req.set_var("big".into(), "x".repeat(MAX_VARS_BYTES).into()),
            Err(MessageError::VarsTooLarge)
        ));
        assert_eq!(req.var("big").map(str::len), Some(MAX_VARS_BYTES - 3), "a refused write changes nothing");
    }

    #[test]
    fn response_headers_set_early_are_bounded_like_headers() {
        let bounds = Bounds { max_headers: 2, max_header_bytes: 20, max_uri_bytes: 100, max_body_bytes: 100 };
        let (name, value) = (HeaderName::from_static("x-a"), HeaderValue::from_static("1"));
        let mut edits = ResponseEdits::default();
        edits.push(EditKind::Set, name.clone(), value.clone(), &bounds).unwrap();
        edits.push(EditKind::Append, name.clone(), value.clone(), &bounds).unwrap();
        assert!(matches!(edits.push(EditKind::Append, name, value, &bounds), Err(MessageError::TooManyHeaders(2))));
        let mut edits = ResponseEdits::default();
        let big = HeaderValue::from_static("0123456789abcdef");
        assert!(matches!(
            edits.push(EditKind::Set, HeaderName::from_static("x-b"), big, &bounds),
            Err(MessageError::HeadersTooLarge { bytes: 23, limit: 20 })
        ));
        let mut headers = HeaderMap::new();
        edits.apply(&mut headers);
        assert!(headers.is_empty());
    }
}
