//! The buffers HTTP/1 connections read into and write from, and splitting
//! a transport so a request body can read while the connection writes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// What a read asks the kernel for at least while a head is awaited.
const READ_CHUNK: usize = 8 << 10;

/// What a read asks for at least while a body streams: large bodies take
/// a few large reads (and writes) instead of many small ones.
pub(crate) const BODY_READ_CHUNK: usize = 64 << 10;

/// Pieces smaller than this are copied into the write buffer; larger ones
/// are written from where they are.
const COPY_BELOW: usize = 8 << 10;

/// Reads more bytes into `buf`; `Ok(0)` when the peer has closed. Space is
/// reserved in `buf` first, which reclaims its allocation once the frames
/// split off it earlier are gone.
pub(crate) fn poll_read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < chunk / 4 {
        buf.reserve(chunk);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// [`poll_read_more`] for a head.
pub(crate) async fn read_more<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    poll_fn(|cx| poll_read_more(io, buf, READ_CHUNK, cx)).await
}

/// Bytes to write, gathered so that one `writev` sends a head and its body.
#[derive(Debug, Default)]
pub(crate) struct WriteBuf {
    inline: Vec<u8>,
    /// Large pieces, each to go after `inline[..at]`.
    pieces: Vec<(usize, Bytes)>,
}

impl WriteBuf {
    /// The buffer heads are written into.
    pub(crate) fn head(&mut self) -> &mut Vec<u8> {
        &mut self.inline
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.inline.extend_from_slice(bytes);
    }

    pub(crate) fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.inline.extend_from_slice(&data);
        } else {
            self.pieces.push((self.inline.len(), data));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inline.len() + self.pieces.iter().map(|(_, p)| p.len()).sum::<usize>()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.inline.is_empty() && self.pieces.is_empty()
    }

    /// Everything, in order (tests, fuzzing).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.segments().flat_map(|s| s.iter().copied()).collect()
    }

    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        let pieces = self.pieces.iter().flat_map(move |(at, piece)| {
            let before = &self.inline[from..*at];
            from = *at;
            [before, &piece[..]]
        });
        let last = self.pieces.last().map_or(0, |(at, _)| *at);
        pieces.chain(std::iter::once(&self.inline[last..])).filter(|s| !s.is_empty())
    }

    /// Writes everything and empties the buffer.
    pub(crate) async fn flush<W: AsyncWrite + Unpin>(&mut self, io: &mut W) -> io::Result<()> {
        if self.pieces.is_empty() {
            io.write_all(&self.inline).await?;
        } else {
            let total = self.len();
            let mut done = 0;
            while done < total {
                let mut skip = done;
                let mut slices = Vec::with_capacity(self.pieces.len() * 2 + 1);
                for segment in self.segments() {
                    if skip >= segment.len() {
                        skip -= segment.len();
                        continue;
                    }
                    slices.push(IoSlice::new(&segment[skip..]));
                    skip = 0;
                }
                let n = io.write_vectored(&slices).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
            }
        }
        io.flush().await?;
        self.inline.clear();
        self.pieces.clear();
        Ok(())
    }
}

/// A connection whose reading and writing can belong to different owners
/// (the request body reads while the connection's task writes), put back
/// together for HTTP/2.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin + Sized + 'static {
    type Reader: AsyncRead + Send + Sync + Unpin + 'static;
    type Writer: AsyncWrite + Send + Sync + Unpin + 'static;
    fn split(self) -> (Self::Reader, Self::Writer);
    fn unsplit(reader: Self::Reader, writer: Self::Writer) -> Self;
}

/// TCP halves share the socket without a lock.
impl Transport for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }

    fn unsplit(reader: OwnedReadHalf, writer: OwnedWriteHalf) -> Self {
        reader.reunite(writer).expect("the halves of one stream")
    }
}

impl<IO: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Transport for tokio_rustls::server::TlsStream<IO> {
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }

    fn unsplit(reader: Self::Reader, writer: Self::Writer) -> Self {
        reader.unsplit(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_pieces_go_out_in_order_with_the_small_ones() {
        let mut out = WriteBuf::default();
        out.extend(b"head;");
        out.push(Bytes::from(vec![b'a'; COPY_BELOW]));
        out.extend(b";mid;");
        out.push(Bytes::from(vec![b'b'; COPY_BELOW + 1]));
        out.push(Bytes::from_static(b";tail"));
        let expected = out.to_vec();
        assert_eq!(expected.len(), 5 + COPY_BELOW + 5 + COPY_BELOW + 1 + 5);
        // A writer that takes 1000 bytes at a time exercises partial writes.
        let (mut client, mut server) = tokio::io::duplex(1000);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got).await.unwrap();
            got
        });
        out.flush(&mut client).await.unwrap();
        assert!(out.is_empty());
        drop(client);
        assert_eq!(reader.await.unwrap(), expected);
    }
}
