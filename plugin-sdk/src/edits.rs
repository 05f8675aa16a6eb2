//! The encoding `request.apply` and `response.apply` take (see the WIT): a
//! plugin's writes in one buffer, `op:u8 name-len:u32le name
//! value-len:u32le value` each. The SDK writes it and the host reads it:
//! one definition serves both.

/// What one edit does; the numbers are the WIT's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    SetHeader = 1,
    AppendHeader = 2,
    RemoveHeader = 3,
    SetResponseHeader = 4,
    AppendResponseHeader = 5,
    SetVar = 6,
}

impl Op {
    fn from_u8(op: u8) -> Option<Self> {
        Some(match op {
            1 => Self::SetHeader,
            2 => Self::AppendHeader,
            3 => Self::RemoveHeader,
            4 => Self::SetResponseHeader,
            5 => Self::AppendResponseHeader,
            6 => Self::SetVar,
            _ => return None,
        })
    }
}

/// Appends one edit. The op and the name's length go in as one array: in
/// a wasm guest each `extend_from_slice` is a capacity check and a length
/// update, and plugins push several edits per request.
pub fn push(out: &mut Vec<u8>, op: Op, name: &str, value: &[u8]) {
    let [n0, n1, n2, n3] = (name.len() as u32).to_le_bytes();
    out.reserve(9 + name.len() + value.len());
    out.extend_from_slice(&[op as u8, n0, n1, n2, n3]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// One edit read back; `value_at` is where the value starts in the buffer,
/// so a reader holding the buffer as shared bytes can slice it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit<'a> {
    pub op: Op,
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub value_at: usize,
}

/// A buffer that does not follow the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed edits at byte {0}")]
pub struct Malformed(pub usize);

/// The edits of `buf`, in order; stops at the first malformed one.
pub fn decode(buf: &[u8]) -> impl Iterator<Item = Result<Edit<'_>, Malformed>> {
    let mut at = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at == buf.len() {
            return None;
        }
        let start = at;
        let edit = read(buf, &mut at);
        failed = edit.is_none();
        Some(edit.ok_or(Malformed(start)))
    })
}

fn read<'a>(buf: &'a [u8], at: &mut usize) -> Option<Edit<'a>> {
    let op = Op::from_u8(*buf.get(*at)?)?;
    *at += 1;
    let mut part = || {
        let len = u32::from_le_bytes(buf.get(*at..*at + 4)?.try_into().ok()?) as usize;
        let from = *at + 4;
        let bytes = buf.get(from..from.checked_add(len)?)?;
        *at = from + len;
        Some((bytes, from))
    };
    let (name, _) = part()?;
    let (value, value_at) = part()?;
    Some(Edit { op, name, value, value_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip_in_order() {
        let mut buf = Vec::new();
        push(&mut buf, Op::SetHeader, "x-a", b"1");
        push(&mut buf, Op::RemoveHeader, "cookie", b"");
        push(&mut buf, Op::SetVar, "user", "ålice".as_bytes());
        let edits: Vec<Edit> = decode(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(edits.len(), 3);
        assert_eq!((edits[0].op, edits[0].name, edits[0].value), (Op::SetHeader, &b"x-a"[..], &b"1"[..]));
        assert_eq!(&buf[edits[0].value_at..edits[0].value_at + 1], b"1");
        assert_eq!((edits[1].op, edits[1].value), (Op::RemoveHeader, &b""[..]));
        assert_eq!(edits[2].value, "ålice".as_bytes());
    }

    #[test]
    fn truncated_or_unknown_edits_are_malformed() {
        let mut buf = Vec::new();
        push(&mut buf, Op::SetHeader, "x-a", b"12345");
        let cut = &buf[..buf.len() - 1];
        assert_eq!(decode(cut).collect::<Vec<_>>(), vec![Err(Malformed(0))]);
        let mut unknown = buf.clone();
        unknown.push(9);
        let read: Vec<_> = decode(&unknown).collect();
        assert!(read[0].is_ok());
        assert_eq!(read[1], Err(Malformed(buf.len())));
        assert_eq!(read.len(), 2, "reading stops at the first malformed edit");
        let mut huge = vec![1u8];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge).next(), Some(Err(Malformed(0))));
    }
}
