//! HTTP/1.1 on the wire, for both sides of the proxy: heads parsed by
//! httparse (the parser hyper uses), message framing and the body codecs,
//! head serialization, and the I/O buffers they work on.
//!
//! The gateway speaks HTTP/1.1 itself rather than through hyper so that a
//! proxied request stays in its client connection's task from the first
//! byte read to the last byte written: the upstream round trip runs on a
//! pooled connection the request owns for the time being (as Pingora does),
//! not behind a channel to a connection task of its own, and each head is
//! parsed once, by the same code that enforces the framing rules against
//! request smuggling. Measured with callgrind, hyper's server and pooled
//! client were most of a proxied request's instructions. HTTP/2 stays with
//! hyper (`server::h2`).
//!
//! - [`head`]: request and response heads, their framing and limits
//! - [`codec`]: body decoding (length, chunked, to the end of the stream)
//!   and encoding
//! - [`io`]: read buffers, vectored write buffers, splitting a transport
//! - [`write`]: request and response heads as bytes
//! - [`upgrade`]: a connection handed over after `101 Switching Protocols`

pub(crate) mod codec;
pub(crate) mod head;
pub(crate) mod io;
pub(crate) mod upgrade;
pub(crate) mod write;

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}
