//! The encoding of a call's `input` (see the WIT's `on-request`): what the
//! host sends with every plugin call so that the reads a plugin makes on
//! every request cost no call back into the host. The host writes it and
//! the SDK reads it: one definition serves both.
//!
//! `now-ms:u64le` `request-id-len:u32le request-id`
//! `client-addr-len:u32le client-addr` (each empty unless asked for), then
//! entries `kind:u8 index:u16le value-len:u32le value`.

/// What an entry holds; the numbers are the WIT's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A value of the `index`th of `needs.prefetch-headers`.
    Header = 1,
    /// The value of the `index`th of `needs.prefetch-vars`.
    Var = 2,
}

/// Starts an input: clears `out` and writes the fixed fields.
pub fn begin(out: &mut Vec<u8>, now_ms: u64, request_id: &[u8], client_addr: &[u8]) {
    out.clear();
    out.reserve(16 + request_id.len() + client_addr.len());
    out.extend_from_slice(&now_ms.to_le_bytes());
    for field in [request_id, client_addr] {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
}

/// Appends one entry. Indexes past `u16::MAX` are never written: configure
/// refuses longer prefetch lists.
pub fn push(out: &mut Vec<u8>, kind: Kind, index: u16, value: &[u8]) {
    out.reserve(7 + value.len());
    out.push(kind as u8);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// The longest prefetch list an entry index can name.
pub const MAX_PREFETCH: usize = u16::MAX as usize;

/// An input read back, borrowing the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    pub now_ms: u64,
    pub request_id: &'a [u8],
    /// Empty unless the plugin asked for it.
    pub client_addr: &'a [u8],
    entries: &'a [u8],
}

impl<'a> Input<'a> {
    /// `None` when `buf` does not follow the encoding (a reader then asks
    /// the host for everything, as if nothing had come with the call).
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        let now_ms = u64::from_le_bytes(buf.get(..8)?.try_into().ok()?);
        let mut at = 8;
        let request_id = field(buf, &mut at)?;
        let client_addr = field(buf, &mut at)?;
        let entries = &buf[at..];
        let input = Self { now_ms, request_id, client_addr, entries };
        // Checked once here, so lookups need not handle a bad entry.
        let mut check = Entries { rest: entries };
        while check.next().is_some() {}
        check.rest.is_empty().then_some(input)
    }

    /// Every value of the `index`th prefetched header, in order.
    pub fn headers(&self, index: u16) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.entries().filter(move |e| e.0 == Kind::Header && e.1 == index).map(|e| e.2)
    }

    /// The value of the `index`th prefetched var, if set.
    pub fn var(&self, index: u16) -> Option<&'a [u8]> {
        self.entries().find(|e| e.0 == Kind::Var && e.1 == index).map(|e| e.2)
    }

    fn entries(&self) -> Entries<'a> {
        Entries { rest: self.entries }
    }
}

fn field<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(buf.get(*at..*at + 4)?.try_into().ok()?) as usize;
    let from = *at + 4;
    let bytes = buf.get(from..from.checked_add(len)?)?;
    *at = from + len;
    Some(bytes)
}

/// Reads entries until the buffer ends or one is malformed (`rest` is then
/// left non-empty).
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = (Kind, u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.rest;
        let kind = match *buf.first()? {
            1 => Kind::Header,
            2 => Kind::Var,
            _ => return None,
        };
        let index = u16::from_le_bytes(buf.get(1..3)?.try_into().ok()?);
        let mut at = 3;
        let value = field(buf, &mut at)?;
        self.rest = &buf[at..];
        Some((kind, index, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_round_trips() {
        let mut buf = vec![9, 9, 9];
        begin(&mut buf, 1_700_000_000_123, b"req-1", b"203.0.113.7:4242");
        push(&mut buf, Kind::Header, 0, b"Bearer a");
        push(&mut buf, Kind::Var, 1, "ålice".as_bytes());
        push(&mut buf, Kind::Header, 2, b"x");
        push(&mut buf, Kind::Header, 0, b"Bearer b");
        let input = Input::parse(&buf).unwrap();
        assert_eq!(input.now_ms, 1_700_000_000_123);
        assert_eq!(input.request_id, b"req-1");
        assert_eq!(input.client_addr, b"203.0.113.7:4242");
        assert_eq!(input.headers(0).collect::<Vec<_>>(), [&b"Bearer a"[..], b"Bearer b"]);
        assert_eq!(input.headers(1).count(), 0, "an index holds only its own kind");
        assert_eq!(input.headers(2).collect::<Vec<_>>(), [b"x"]);
        assert_eq!(input.var(1), Some("ålice".as_bytes()));
        assert_eq!(input.var(0), None);
    }

    #[test]
    fn an_input_without_entries_or_client_address_is_valid() {
        let mut buf = Vec::new();
        begin(&mut buf, 5, b"", b"");
        let input = Input::parse(&buf).unwrap();
        assert_eq!((input.now_ms, input.request_id, input.client_addr), (5, &b""[..], &b""[..]));
        assert_eq!(input.var(0), None);
    }

    #[test]
    fn malformed_inputs_are_refused_whole() {
        let mut buf = Vec::new();
        begin(&mut buf, 5, b"id", b"");
        push(&mut buf, Kind::Var, 0, b"value");
        assert!(Input::parse(&buf).is_some());
        assert_eq!(Input::parse(&buf[..buf.len() - 1]), None, "a truncated entry");
        assert_eq!(Input::parse(&buf[..7]), None, "a truncated clock");
        let mut unknown = buf.clone();
        unknown.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Input::parse(&unknown), None, "an unknown kind");
        let mut huge = Vec::new();
        huge.extend_from_slice(&5u64.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Input::parse(&huge), None, "a length past the end");
    }
}
