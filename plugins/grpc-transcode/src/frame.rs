//! gRPC length-prefixed messages: a compressed flag (one byte), a length
//! (four bytes, big-endian), then the message.

const HEADER: usize = 5;

/// One message framed, uncompressed.
pub(crate) fn encode(message: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(message.len()).map_err(|_| "message longer than 4 GiB".to_owned())?;
    let mut out = Vec::with_capacity(HEADER + message.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

/// What a reply body may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_message_bytes: usize,
    pub max_messages: usize,
}

/// Why a reply body is not a sequence of messages this plugin can read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    Truncated,
    Compressed,
    TooLarge { len: usize, limit: usize },
    TooMany { limit: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("the reply body ends inside a gRPC message"),
            Self::Compressed => {
                f.write_str("the reply holds a compressed gRPC message (grpc-encoding is not supported)")
            }
            Self::TooLarge { len, limit } => {
                write!(f, "a gRPC message of {len} bytes, over max_response_message_bytes ({limit})")
            }
            Self::TooMany { limit } => write!(f, "more than max_response_messages ({limit}) gRPC messages"),
        }
    }
}

/// The messages of a reply body, in order, checked against `limits` before
/// any is decoded.
pub(crate) fn split(mut body: &[u8], limits: Limits) -> Result<Vec<&[u8]>, FrameError> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        let (header, rest) = body.split_at_checked(HEADER).ok_or(FrameError::Truncated)?;
        let [flag, a, b, c, d] = *header else { return Err(FrameError::Truncated) };
        if flag != 0 {
            return Err(FrameError::Compressed);
        }
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > limits.max_message_bytes {
            return Err(FrameError::TooLarge { len, limit: limits.max_message_bytes });
        }
        if messages.len() == limits.max_messages {
            return Err(FrameError::TooMany { limit: limits.max_messages });
        }
        let (message, rest) = rest.split_at_checked(len).ok_or(FrameError::Truncated)?;
        messages.push(message);
        body = rest;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_message_bytes: 8, max_messages: 3 };

    #[test]
    fn frames_round_trip() {
        let framed = encode(b"abc").unwrap();
        assert_eq!(framed, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let mut two = framed.clone();
        two.extend(encode(b"").unwrap());
        assert_eq!(split(&two, LIMITS).unwrap(), [&b"abc"[..], b""]);
        assert_eq!(split(b"", LIMITS).unwrap(), Vec::<&[u8]>::new());
    }

    #[test]
    fn malformed_or_oversized_bodies_are_refused() {
        assert_eq!(split(&[0, 0, 0], LIMITS), Err(FrameError::Truncated));
        assert_eq!(split(&[0, 0, 0, 0, 4, 1], LIMITS), Err(FrameError::Truncated));
        assert_eq!(split(&[1, 0, 0, 0, 0], LIMITS), Err(FrameError::Compressed));
        assert_eq!(
            split(&[0, 255, 255, 255, 255], LIMITS),
            Err(FrameError::TooLarge { len: u32::MAX as usize, limit: 8 })
        );
        let four: Vec<u8> = (0..4).flat_map(|_| encode(b"x").unwrap()).collect();
        assert_eq!(split(&four, LIMITS), Err(FrameError::TooMany { limit: 3 }));
    }
}
