//! Message bodies on the wire: decoding what a peer sends (a length, chunks,
//! or everything until it closes) into frames that share the read buffer,
//! and encoding frames for a peer.

use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use hyper::body::Frame;
use tokio::io::AsyncRead;

use super::Framing;
use super::io::{BODY_READ_CHUNK, WriteBuf, poll_read_more};

/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4 << 10;
/// Largest trailer section.
const MAX_TRAILERS: usize = 16 << 10;
const MAX_TRAILER_FIELDS: usize = 32;

/// Reads one message body off a buffer the caller fills.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    Eof,
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// Everything buffered is used: read more, then decode again.
    More,
    /// The body is complete.
    Done,
}

/// Why a body could not be read: after any of these, the connection is
/// out of step and is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A chunk-size line that is not hex, too long, or overflows.
    #[error("invalid chunk size")]
    ChunkSize,
    /// Chunk data longer than its size said.
    #[error("a chunk is not followed by CRLF")]
    ChunkEnd,
    /// Trailer fields that do not parse or exceed the limits.
    #[error("invalid trailer section")]
    Trailers,
    /// The peer closed mid-body.
    #[error("the connection closed before the end of the body")]
    Incomplete,
}

impl From<DecodeError> for std::io::Error {
    fn from(e: DecodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// The next frame of a body read off `io` into `buf`; `Ready(None)` at its
/// end.
pub(crate) fn poll_frame<R: AsyncRead + Unpin>(
    decoder: &mut Decoder,
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
    loop {
        match decoder.decode(buf)? {
            Decoded::Data(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
            Decoded::Trailers(trailers) => return Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Decoded::Done => return Poll::Ready(None),
            Decoded::More => {
                if ready!(poll_read_more(io, buf, BODY_READ_CHUNK, cx))? == 0 {
                    decoder.eof()?;
                }
            }
        }
    }
}

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Eof,
        };
        Self { state }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of the body still to come, when the framing says.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of the body out of `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, DecodeError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = left.min(buf.len() as u64);
                    let rest = left - n;
                    self.state = match (self.state, rest) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(rest),
                        (_, 0) => State::ChunkDataEnd,
                        _ => State::ChunkData(rest),
                    };
                    return Ok(Decoded::Data(buf.split_to(n as usize).freeze()));
                }
                State::Eof => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::ChunkSize => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_CHUNK_LINE => return Ok(Decoded::More),
                    _ => return Err(DecodeError::ChunkSize),
                },
                State::ChunkDataEnd => {
                    if buf.len() < 2 {
                        return if buf.first().is_none_or(|b| *b == b'\r') {
                            Ok(Decoded::More)
                        } else {
                            Err(DecodeError::ChunkEnd)
                        };
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(DecodeError::ChunkEnd);
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => return self.trailers(buf),
            }
        }
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, DecodeError> {
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Decoded::Done);
        }
        if buf.len() < 2 {
            return Ok(Decoded::More);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((used, fields))) => {
                let mut map = HeaderMap::with_capacity(fields.len());
                for f in fields {
                    let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| DecodeError::Trailers)?;
                    let value = HeaderValue::from_bytes(f.value).map_err(|_| DecodeError::Trailers)?;
                    map.append(name, value);
                }
                buf.advance(used);
                self.state = State::Done;
                Ok(Decoded::Trailers(map))
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => Ok(Decoded::More),
            _ => Err(DecodeError::Trailers),
        }
    }

    /// The peer closed the connection and `buf` is used up: the end of a
    /// body delimited by the close, an error for any other.
    pub(crate) fn eof(&mut self) -> Result<Decoded, DecodeError> {
        match self.state {
            State::Eof | State::Done => {
                self.state = State::Done;
                Ok(Decoded::Done)
            }
            _ => Err(DecodeError::Incomplete),
        }
    }
}

/// Frames a body for a peer.
#[derive(Debug)]
pub(crate) struct Encoder {
    framing: Framing,
    /// Bytes still owed under `Framing::Length`.
    left: u64,
    finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EncodeError {
    #[error("the body is longer than its Content-Length")]
    TooLong,
    #[error("the body ended before its Content-Length")]
    TooShort,
}

impl Encoder {
    pub(crate) fn new(framing: Framing) -> Self {
        let left = if let Framing::Length(n) = framing { n } else { 0 };
        Self { framing, left, finished: false }
    }

    /// Appends one data frame, framed.
    pub(crate) fn data(&mut self, data: Bytes, out: &mut WriteBuf) -> Result<(), EncodeError> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::Empty => return Err(EncodeError::TooLong),
            Framing::Length(_) => {
                let n = data.len() as u64;
                if n > self.left {
                    return Err(EncodeError::TooLong);
                }
                self.left -= n;
                out.push(data);
            }
            Framing::Chunked => {
                let mut size = [0u8; 16];
                out.extend(hex(data.len(), &mut size));
                out.extend(b"\r\n");
                out.push(data);
                out.extend(b"\r\n");
            }
            Framing::Close => out.push(data),
        }
        Ok(())
    }

    /// Appends the trailer section (chunked only; dropped otherwise, as
    /// there is nowhere to put it) and ends the body.
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap, out: &mut WriteBuf) -> Result<(), EncodeError> {
        if self.framing == Framing::Chunked && !self.finished {
            out.extend(b"0\r\n");
            for (name, value) in trailers {
                out.extend(name.as_str().as_bytes());
                out.extend(b": ");
                out.extend(value.as_bytes());
                out.extend(b"\r\n");
            }
            out.extend(b"\r\n");
            self.finished = true;
        }
        self.finish(out)
    }

    /// Ends the body: the last chunk, or a check that the length was met.
    pub(crate) fn finish(&mut self, out: &mut WriteBuf) -> Result<(), EncodeError> {
        match self.framing {
            Framing::Chunked if !self.finished => out.extend(b"0\r\n\r\n"),
            Framing::Length(_) if self.left > 0 => return Err(EncodeError::TooShort),
            _ => {}
        }
        self.finished = true;
        Ok(())
    }
}

/// A whole body read off a peer, as [`decode_in_steps`] returns it.
#[derive(Debug, PartialEq)]
pub struct DecodedBody {
    /// The body's bytes, de-chunked.
    pub data: Vec<u8>,
    /// Trailer fields, when the chunked body had any.
    pub trailers: Option<HeaderMap>,
    /// Bytes of the wire the body took; the rest belongs to what follows.
    pub used: usize,
}

/// Decodes one body from `wire` arriving `step` bytes at a time, the end
/// of `wire` standing for the peer closing the connection: the decoder
/// as a connection drives it, without one (tests, fuzzing).
pub fn decode_in_steps(framing: Framing, wire: &[u8], step: usize) -> Result<DecodedBody, DecodeError> {
    let mut decoder = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut body = DecodedBody { data: Vec::new(), trailers: None, used: 0 };
    let mut fed = 0;
    let mut pieces = wire.chunks(step.max(1));
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(d) => body.data.extend_from_slice(&d),
            Decoded::Trailers(t) => body.trailers = Some(t),
            Decoded::Done => break,
            Decoded::More => match pieces.next() {
                Some(piece) => {
                    buf.extend_from_slice(piece);
                    fed += piece.len();
                }
                None => {
                    decoder.eof()?;
                    break;
                }
            },
        }
    }
    body.used = fed - buf.len();
    Ok(body)
}

/// `pieces` as a chunked body ending in `trailers`, as sent to a peer
/// (tests, fuzzing).
pub fn encode_chunked(pieces: impl IntoIterator<Item = Bytes>, trailers: &HeaderMap) -> Vec<u8> {
    let mut out = WriteBuf::default();
    let mut encoder = Encoder::new(Framing::Chunked);
    for piece in pieces {
        // Chunked framing takes any data: only lengths can be exceeded.
        let _ = encoder.data(piece, &mut out);
    }
    let _ = encoder.trailers(trailers, &mut out);
    out.to_vec()
}

fn hex(mut n: usize, out: &mut [u8; 16]) -> &[u8] {
    let mut at = out.len();
    loop {
        at -= 1;
        out[at] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return &out[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data and trailers of `wire` fed `step` bytes at a time.
    fn decode_steps(framing: Framing, wire: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), DecodeError> {
        decode_in_steps(framing, wire, step).map(|body| (body.data, body.trailers))
    }

    #[test]
    fn chunked_bodies_decode_whole_or_byte_by_byte() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 9\r\n\r\n";
        for step in [wire.len(), 1, 3] {
            let (data, trailers) = decode_steps(Framing::Chunked, wire, step).unwrap();
            assert_eq!(data, b"hello, world", "step {step}");
            assert_eq!(trailers.unwrap()["x-sum"], "9");
        }
        let (data, trailers) = decode_steps(Framing::Chunked, b"3\r\nabc\r\n0\r\n\r\n", 2).unwrap();
        assert_eq!((data, trailers), (b"abc".to_vec(), None));
    }

    #[test]
    fn malformed_chunks_and_short_bodies_are_errors() {
        assert_eq!(decode_steps(Framing::Chunked, b"zz\r\nhello\r\n", 64), Err(DecodeError::ChunkSize));
        assert_eq!(
            decode_steps(Framing::Chunked, b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n", 64),
            Err(DecodeError::ChunkSize),
            "size overflow"
        );
        assert_eq!(decode_steps(Framing::Chunked, b"3\r\nabcX\r\n", 64), Err(DecodeError::ChunkEnd));
        assert_eq!(decode_steps(Framing::Length(10), b"short", 64), Err(DecodeError::Incomplete));
        assert_eq!(decode_steps(Framing::Chunked, b"3\r\nabc", 64), Err(DecodeError::Incomplete));
        assert_eq!(decode_steps(Framing::Close, b"until the end", 4).unwrap().0, b"until the end");
    }

    #[test]
    fn a_length_takes_no_more_than_its_due() {
        let mut decoder = Decoder::new(Framing::Length(3));
        let mut buf = BytesMut::from(&b"abcGET /next"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Data(Bytes::from_static(b"abc")));
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Done);
        assert_eq!(&buf[..], b"GET /next");
    }

    #[test]
    fn encoders_frame_and_check_lengths() {
        let mut out = WriteBuf::default();
        let mut chunked = Encoder::new(Framing::Chunked);
        chunked.data(Bytes::from_static(b"hello"), &mut out).unwrap();
        chunked.data(Bytes::from(vec![b'x'; 26]), &mut out).unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("1"));
        chunked.trailers(&trailers, &mut out).unwrap();
        let expected = format!("5\r\nhello\r\n1a\r\n{}\r\n0\r\nx-sum: 1\r\n\r\n", "x".repeat(26));
        assert_eq!(out.to_vec(), expected.as_bytes());

        let mut out = WriteBuf::default();
        let mut length = Encoder::new(Framing::Length(4));
        assert_eq!(length.data(Bytes::from_static(b"toolong"), &mut out), Err(EncodeError::TooLong));
        length.data(Bytes::from_static(b"ab"), &mut out).unwrap();
        assert_eq!(length.finish(&mut out), Err(EncodeError::TooShort));
    }

    #[test]
    fn a_decoded_body_says_what_it_used_and_encodes_back() {
        let wire = b"5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\nGET /next HTTP/1.1\r\n";
        let body = decode_in_steps(Framing::Chunked, wire, 4).unwrap();
        assert_eq!(body.used, wire.len() - b"GET /next HTTP/1.1\r\n".len());
        let trailers = body.trailers.clone().unwrap();
        let again = encode_chunked([Bytes::from(body.data.clone())], &trailers);
        assert_eq!(again, &wire[..body.used]);
    }
}
