//! Watches the frames an HTTP/2 client sends, as its bytes pass on their
//! way to hyper, for what hyper does not bound itself:
//!
//! - how long a request head takes: from the first byte of a HEADERS
//!   frame to the end of its header block (CONTINUATION frames included),
//!   and how long any frame but DATA takes to arrive whole. The connection's
//!   watchdog closes a connection whose head is late (`header_read_timeout`),
//!   as HTTP/1 does for a slow request head (slowloris).
//! - floods: a header block in too many frames (CONTINUATION flood), too
//!   many RST_STREAM frames a second (rapid reset, CVE-2023-44487) and too
//!   many other control frames a second (PING, SETTINGS, PRIORITY, empty
//!   frames). Past a limit, reading fails and the connection ends.
//!
//! Only frame headers are read (9 bytes each); payloads pass untouched.

use std::fmt;

/// The client connection preface, before the first frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_HEADERS: u8 = 0x4;

/// Frames one header block may take. A full-size header list fits in a
/// handful of 16 KiB frames; more is a client making the server hold and
/// decode an endless block.
pub(crate) const MAX_BLOCK_FRAMES: u32 = 32;
/// RST_STREAM frames a client may send per second. Each cancels a request
/// the gateway may already be working on: opening and resetting streams
/// in a loop costs the client nothing and the gateway a request each.
pub(crate) const MAX_RESETS_PER_SECOND: u32 = 100;
/// PING, SETTINGS, PRIORITY, empty DATA and unknown frames per second:
/// each costs the server work (an answer, a lookup) and carries no request.
pub(crate) const MAX_CONTROL_FRAMES_PER_SECOND: u32 = 1_000;

/// What the bytes read so far show. Times are milliseconds on the
/// connection's clock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Since when a request head (or a frame other than DATA) has been
    /// arriving without being whole.
    pub head_since: Option<u64>,
    /// Header blocks received whole (request heads and trailers).
    pub heads: u64,
    /// Whether these bytes carried request traffic (a header block or DATA
    /// completed), which keeps the connection from idling out.
    pub traffic: bool,
}

/// A limit the client went past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flood(&'static str);

impl fmt::Display for Flood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/2 client went past a limit: {}", self.0)
    }
}

impl std::error::Error for Flood {}

pub(crate) struct FrameWatch {
    /// The largest header block, in bytes as sent (compressed).
    max_block_bytes: u64,
    preface_left: usize,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    /// The frame being read past its header: its type, flags and bytes
    /// still to come.
    frame: Option<(u8, u8)>,
    payload_left: u32,
    /// When the frame now arriving started.
    frame_since: Option<u64>,
    block: Option<Block>,
    window_start: u64,
    resets: u32,
    control: u32,
    heads: u64,
}

struct Block {
    since: u64,
    frames: u32,
    bytes: u64,
}

impl FrameWatch {
    pub(crate) fn new(max_block_bytes: u64) -> Self {
        Self {
            max_block_bytes,
            preface_left: PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            frame: None,
            payload_left: 0,
            frame_since: None,
            block: None,
            window_start: 0,
            resets: 0,
            control: 0,
            heads: 0,
        }
    }

    /// Follows `bytes`, read at `now`.
    pub(crate) fn read(&mut self, mut bytes: &[u8], now: u64) -> Result<Progress, Flood> {
        let mut traffic = false;
        if self.preface_left > 0 {
            let n = self.preface_left.min(bytes.len());
            self.preface_left -= n;
            bytes = &bytes[n..];
        }
        while !bytes.is_empty() {
            if self.frame.is_none() {
                if self.header_len == 0 {
                    self.frame_since = Some(now);
                }
                let n = (FRAME_HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..][..n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len < FRAME_HEADER_LEN {
                    break;
                }
                self.header_len = 0;
                let [l0, l1, l2, kind, flags, ..] = self.header;
                self.payload_left = u32::from_be_bytes([0, l0, l1, l2]);
                self.frame = Some((kind, flags));
                self.begin(kind, self.payload_left, now)?;
            }
            let n = (self.payload_left as usize).min(bytes.len());
            self.payload_left -= n as u32;
            bytes = &bytes[n..];
            if self.payload_left == 0
                && let Some((kind, flags)) = self.frame.take()
            {
                self.frame_since = None;
                traffic |= self.end(kind, flags);
            }
        }
        Ok(Progress { head_since: self.head_since(), heads: self.heads, traffic })
    }

    fn head_since(&self) -> Option<u64> {
        let frame = match self.frame {
            Some((DATA, _)) => None,
            _ => self.frame_since,
        };
        match (frame, self.block.as_ref().map(|b| b.since)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A frame's header is in: counts it against the limits.
    fn begin(&mut self, kind: u8, len: u32, now: u64) -> Result<(), Flood> {
        if now.saturating_sub(self.window_start) >= 1_000 {
            self.window_start = now;
            self.resets = 0;
            self.control = 0;
        }
        match kind {
            HEADERS => {
                let since = self.frame_since.unwrap_or(now);
                self.block = Some(Block { since, frames: 0, bytes: 0 });
            }
            RST_STREAM => {
                self.resets += 1;
                if self.resets > MAX_RESETS_PER_SECOND {
                    return Err(Flood("too many RST_STREAM frames a second"));
                }
            }
            DATA | WINDOW_UPDATE | CONTINUATION if len > 0 => {}
            _ => {
                self.control += 1;
                if self.control > MAX_CONTROL_FRAMES_PER_SECOND {
                    return Err(Flood("too many control frames a second"));
                }
            }
        }
        if kind == HEADERS || kind == CONTINUATION {
            // A CONTINUATION outside a block is hyper's to refuse.
            if let Some(block) = &mut self.block {
                block.frames += 1;
                block.bytes += u64::from(len);
                if block.frames > MAX_BLOCK_FRAMES {
                    return Err(Flood("a header block in too many CONTINUATION frames"));
                }
                if block.bytes > self.max_block_bytes {
                    return Err(Flood("a header block larger than the header list limit"));
                }
            }
        }
        Ok(())
    }

    /// A frame is in whole; whether it was request traffic.
    fn end(&mut self, kind: u8, flags: u8) -> bool {
        match kind {
            HEADERS | CONTINUATION if flags & END_HEADERS != 0 && self.block.take().is_some() => {
                self.heads += 1;
                true
            }
            DATA => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_head_is_pending_until_its_block_ends() {
        let mut w = FrameWatch::new(1 << 20);
        assert_eq!(w.read(PREFACE, 0).unwrap(), Progress::default());
        let settings = frame(4, 0, 0, &[]);
        assert_eq!(w.read(&settings, 1).unwrap().head_since, None);

        let headers = frame(HEADERS, 0, 1, b"abc");
        // Byte by byte: pending from the first byte on.
        for (i, b) in headers.iter().enumerate() {
            assert_eq!(w.read(&[*b], 10 + i as u64).unwrap().head_since, Some(10));
        }
        let more = frame(CONTINUATION, 0, 1, b"def");
        assert_eq!(w.read(&more, 50).unwrap().head_since, Some(10), "the block is still open");
        let last = frame(CONTINUATION, END_HEADERS, 1, b"g");
        let p = w.read(&last, 60).unwrap();
        assert_eq!((p.head_since, p.heads, p.traffic), (None, 1, true));

        // A DATA frame arriving slowly is a body, not a head.
        let data = frame(DATA, 0, 1, b"0123456789");
        assert_eq!(w.read(&data[..12], 70).unwrap().head_since, None);
    }

    #[test]
    fn floods_are_refused() {
        let mut w = FrameWatch::new(1 << 20);
        w.read(PREFACE, 0).unwrap();
        let mut block = frame(HEADERS, 0, 1, b"a");
        for _ in 0..MAX_BLOCK_FRAMES {
            block.extend(frame(CONTINUATION, 0, 1, &[]));
        }
        assert!(w.read(&block, 1).unwrap_err().0.contains("CONTINUATION"));

        let mut w = FrameWatch::new(1 << 20);
        w.read(PREFACE, 0).unwrap();
        let reset = frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]);
        for i in 0..MAX_RESETS_PER_SECOND {
            w.read(&reset, u64::from(i)).unwrap();
        }
        assert!(w.read(&reset, 999).is_err());
        let mut w = FrameWatch::new(1 << 20);
        w.read(PREFACE, 0).unwrap();
        for i in 0..MAX_RESETS_PER_SECOND {
            w.read(&reset, u64::from(i)).unwrap();
        }
        assert!(w.read(&reset, 1_000).is_ok(), "a new second, a new allowance");

        let mut w = FrameWatch::new(10);
        w.read(PREFACE, 0).unwrap();
        assert!(w.read(&frame(HEADERS, END_HEADERS, 1, &[0; 11]), 0).is_err());
    }
}
