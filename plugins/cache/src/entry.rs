//! A stored response, as the bytes of one state value: the host's plain
//! `get`/`set` carry it, so the cache needs nothing from the contract
//! beyond what every plugin has.
//!
//! `MAGIC stored-at-ms:u64le expires-at-ms:u64le age-s:u64le status:u16le
//! header-count:u16le (name-len:u16le name value-len:u32le value)* body`.
//! A value that does not decode (another version's, or cut short) is a
//! miss, never an error the client sees.

use wasmgate_sdk::Headers;

/// Changes whenever the layout does, so an old entry reads as a miss.
const MAGIC: &[u8; 4] = b"wgc1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The wall clock when stored, ms since the Unix epoch.
    pub stored_at_ms: u64,
    /// When it stops being fresh: the store's TTL expires it too, this
    /// guards against a backend that kept it longer.
    pub expires_at_ms: u64,
    /// `Age` the response already had when stored, seconds.
    pub age_s: u64,
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Entry {
    /// The encoded size, without encoding: checked against the entry limit
    /// before any copy is made.
    pub fn encoded_len(headers: &Headers, body_len: usize) -> usize {
        MAGIC.len() + 8 * 3 + 2 + 2 + headers.iter().map(|(n, v)| 2 + n.len() + 4 + v.len()).sum::<usize>() + body_len
    }

    /// `None` when a header does not fit the layout (a name past 64 KiB,
    /// more than 65,535 fields): such a response is not stored.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(Self::encoded_len(&self.headers, self.body.len()));
        out.extend_from_slice(MAGIC);
        for n in [self.stored_at_ms, self.expires_at_ms, self.age_s] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&u16::try_from(self.headers.len()).ok()?.to_le_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(&u16::try_from(name.len()).ok()?.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&self.body);
        Some(out)
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let (stored_at_ms, expires_at_ms, age_s) = (r.u64()?, r.u64()?, r.u64()?);
        let status = u16::from_le_bytes(r.array()?);
        let count = u16::from_le_bytes(r.array()?);
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = u16::from_le_bytes(r.array()?);
            let name = std::str::from_utf8(r.take(usize::from(len))?).ok()?.to_owned();
            let len = u32::from_le_bytes(r.array()?);
            headers.push((name, r.take(usize::try_from(len).ok()?)?.to_vec()));
        }
        Some(Self { stored_at_ms, expires_at_ms, age_s, status, headers, body: r.0.to_vec() })
    }
}

/// Reads a byte slice front to back; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            stored_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_060_000,
            age_s: 3,
            status: 200,
            headers: vec![("content-type".into(), b"text/plain".to_vec()), ("x-bin".into(), vec![0, 0xff])],
            body: b"hello".to_vec(),
        }
    }

    #[test]
    fn round_trips_and_its_length_is_known_before() {
        let e = entry();
        let bytes = e.encode().unwrap();
        assert_eq!(bytes.len(), Entry::encoded_len(&e.headers, e.body.len()));
        assert_eq!(Entry::decode(&bytes), Some(e));
    }

    #[test]
    fn anything_cut_short_or_foreign_is_no_entry() {
        let bytes = entry().encode().unwrap();
        let body_at = bytes.len() - 5;
        for cut in 0..body_at {
            assert_eq!(Entry::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut foreign = bytes.clone();
        foreign[3] = b'2';
        assert_eq!(Entry::decode(&foreign), None);
        let mut huge = bytes;
        huge[30..32].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(Entry::decode(&huge), None, "a count past the data");
    }
}
