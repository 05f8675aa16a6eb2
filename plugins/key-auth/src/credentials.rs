//! Where a request carries its key: the configured headers and the query
//! parameter. Both are taken out of the request whatever happens next, so
//! the key never reaches the upstream.

use sha2::{Digest, Sha256};
use wasmgate_sdk::Request;

use crate::consumers::{self, Hash};

/// What the request presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// No key, or only empty ones: an empty key is no key.
    Nothing,
    /// The SHA-256 of the one key given.
    Key(Hash),
    /// Keys in more than one place, or the same place twice. Which one
    /// counts would be a guess, and a guess an attacker can steer.
    Several,
}

/// Tallies the keys found, hashing the first so no key is kept in memory.
#[derive(Default)]
struct Tally {
    count: usize,
    first: Option<Hash>,
}

impl Tally {
    fn add(&mut self, hash: Hash) {
        self.count += 1;
        self.first.get_or_insert(hash);
    }

    fn presented(self) -> Presented {
        match (self.count, self.first) {
            (1, Some(hash)) => Presented::Key(hash),
            (0, _) => Presented::Nothing,
            _ => Presented::Several,
        }
    }
}

/// Reads the key from `headers` (lower-case names) and the `query` parameter,
/// and removes every one of them from the request. Everything is read
/// before anything is written: a write makes the values prefetched with
/// the call stale, and later reads would each cost a call into the host.
pub fn take(req: &Request, headers: &[String], query: Option<&str>) -> Presented {
    let mut tally = Tally::default();
    // Which key headers the request carries: bit `i` for `headers[i]`.
    let mut present = 0u64;
    for (i, name) in headers.iter().enumerate() {
        let values = req.header_all(name);
        if !values.is_empty() {
            present |= 1u64.checked_shl(i as u32).unwrap_or(0);
        }
        for value in values.iter().filter(|v| !v.is_empty()) {
            tally.add(consumers::hash(value.as_bytes()));
        }
    }
    let rest = query.and_then(|param| take_param(&req.query()?, param, &mut tally));
    for (i, name) in headers.iter().enumerate() {
        if present & 1u64.checked_shl(i as u32).unwrap_or(0) != 0 {
            req.remove_header(name);
        }
    }
    if let Some(rest) = rest {
        req.set_query((!rest.is_empty()).then_some(rest.as_str()));
    }
    tally.presented()
}

/// Hashes every value of `param` in `query` (decoded as a form would be:
/// `%XX` and `+`, in the name too, so `api%6Bey` is `apikey`) into `tally`.
/// Returns the query without them when there were any: the other
/// parameters as they were written, in order.
fn take_param(query: &str, param: &str, tally: &mut Tally) -> Option<String> {
    let mut found = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decodes_to(name, param) {
            found = true;
            if !value.is_empty() {
                let mut hasher = Sha256::new();
                decode(value, |chunk| hasher.update(chunk));
                tally.add(hasher.finalize().into());
            }
        }
    }
    if !found {
        return None;
    }
    let mut rest = String::with_capacity(query.len());
    for pair in query.split('&').filter(|pair| !decodes_to(pair.split_once('=').map_or(*pair, |(n, _)| n), param)) {
        if !rest.is_empty() {
            rest.push('&');
        }
        rest.push_str(pair);
    }
    Some(rest)
}

/// Form-decodes `text` (`+` is a space, `%XX` a byte, a `%` not followed by
/// two hex digits itself), handing the bytes to `out` in runs, without
/// allocating.
fn decode(text: &str, mut out: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let replacement = match bytes[i] {
            b'+' => Some((b' ', 1)),
            b'%' => hex_pair(bytes.get(i + 1..i + 3)).map(|b| (b, 3)),
            _ => None,
        };
        match replacement {
            Some((byte, len)) => {
                out(&bytes[start..i]);
                out(&[byte]);
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    out(&bytes[start..]);
}

fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let [hi, lo] = pair? else { return None };
    let digit = |b: &u8| (*b as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

/// Whether `raw` form-decodes to exactly `name`.
fn decodes_to(raw: &str, name: &str) -> bool {
    // A decoded byte comes from one to three raw ones.
    if raw.len() < name.len() || raw.len() > name.len() * 3 {
        return false;
    }
    let mut expected = name.as_bytes().iter();
    let mut equal = true;
    decode(raw, |chunk| {
        for byte in chunk {
            equal &= expected.next() == Some(byte);
        }
    });
    equal && expected.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        decode(text, |chunk| out.extend_from_slice(chunk));
        out
    }

    #[test]
    fn decodes_as_a_form_and_keeps_broken_escapes() {
        assert_eq!(decoded("a+b%2Bc%2fd"), b"a b+c/d");
        assert_eq!(decoded("100%"), b"100%");
        assert_eq!(decoded("%zz%4"), b"%zz%4");
        assert_eq!(decoded("%C3%A9"), "é".as_bytes());
        assert_eq!(decoded(""), b"");
    }

    #[test]
    fn names_match_after_decoding_only_exactly() {
        assert!(decodes_to("apikey", "apikey"));
        assert!(decodes_to("api%6Bey", "apikey"));
        assert!(decodes_to("%61%70%69%6b%65%79", "apikey"));
        assert!(!decodes_to("apikeys", "apikey"));
        assert!(!decodes_to("apike", "apikey"));
        assert!(!decodes_to("APIKEY", "apikey"));
        assert!(!decodes_to("", "apikey"));
    }

    #[test]
    fn the_parameter_is_removed_and_the_rest_kept_verbatim_in_order() {
        let mut tally = Tally::default();
        let rest = take_param("a=1&apikey=s3cr%65t&b=%20x&&c", "apikey", &mut tally);
        assert_eq!(rest.as_deref(), Some("a=1&b=%20x&&c"));
        assert_eq!(tally.presented(), Presented::Key(Sha256::digest(b"s3cret").into()));

        let mut tally = Tally::default();
        assert_eq!(take_param("a=1&b=2", "apikey", &mut tally), None, "nothing to remove");
        assert_eq!(tally.presented(), Presented::Nothing);

        let mut tally = Tally::default();
        assert_eq!(take_param("apikey=k1&x=1&api%6Bey=k2", "apikey", &mut tally).as_deref(), Some("x=1"));
        assert_eq!(tally.presented(), Presented::Several);

        let mut tally = Tally::default();
        assert_eq!(take_param("apikey=&apikey", "apikey", &mut tally).as_deref(), Some(""));
        assert_eq!(tally.presented(), Presented::Nothing, "empty values are no key");
    }
}
