//! Raw HTTP/2 frames, for tests that send what no well-behaved client
//! would: stalled or endless header blocks, streams opened and reset in a
//! loop, pings instead of requests.

use tokio::io::{AsyncRead, AsyncReadExt};

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// RST_STREAM's error code for a request the client no longer wants.
pub const CANCEL: [u8; 4] = [0, 0, 0, 8];

/// The HPACK header block of `GET /` for `:authority: a`, from the static
/// table only (so every block is the same, whatever came before).
pub const GET_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x01, 0x01, b'a'];

/// One frame as it goes on the wire.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// What a client sends first: the preface and an empty SETTINGS.
pub fn preface() -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

/// A whole `GET /` on `stream`, with no body.
pub fn get(stream: u32) -> Vec<u8> {
    frame(HEADERS, END_HEADERS | END_STREAM, stream, GET_BLOCK)
}

/// Streams 1, 3, 5...: each opened with a `GET /` and reset at once.
pub fn rapid_reset(streams: u32) -> Vec<u8> {
    (0..streams).flat_map(|i| [get(2 * i + 1), frame(RST_STREAM, 0, 2 * i + 1, &CANCEL)]).flatten().collect()
}

/// A header block that never ends: its HEADERS frame, then `frames` empty
/// CONTINUATION frames.
pub fn continuation_flood(frames: usize) -> Vec<u8> {
    let mut out = frame(HEADERS, 0, 1, GET_BLOCK);
    for _ in 0..frames {
        out.extend(frame(CONTINUATION, 0, 1, &[]));
    }
    out
}

/// Reads until the other side closes (a reset counts); the bytes read.
pub async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}
