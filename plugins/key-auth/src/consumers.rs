//! The consumers and the hashes of their keys, checked once at configure
//! time, and the lookup of a presented key.

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// A consumer as written in config: `keys` holds SHA-256 hashes in hex,
/// never keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Debug)]
pub struct Consumer {
    pub name: String,
    /// The groups joined with `,`, as forwarded; empty when there are none.
    pub groups: String,
}

/// Every consumer, and their key hashes sorted for a binary search.
///
/// A lookup by the hash of a secret does not time the secret: the time a
/// search takes depends on where the presented key's hash falls among the
/// stored hashes, and learning that (even learning a stored hash outright)
/// gets an attacker no closer to a key that hashes to it. So there is no
/// need to compare against every hash in constant time, and a lookup costs
/// log₂(keys) comparisons of 32 bytes.
#[derive(Debug)]
pub struct Consumers {
    pub list: Vec<Consumer>,
    by_hash: Vec<(Hash, usize)>,
}

impl Consumers {
    pub fn parse(configs: Vec<ConsumerConfig>) -> Result<Self, String> {
        if configs.is_empty() {
            return Err("`consumers` must declare at least one consumer".into());
        }
        let mut list = Vec::with_capacity(configs.len());
        let mut by_hash = Vec::new();
        for (i, config) in configs.into_iter().enumerate() {
            let at = format!("consumers[{i}]");
            if !is_name(&config.name) {
                return Err(format!(
                    "{at}: the name must be 1 to 256 printable ASCII characters, \
                     without leading or trailing spaces"
                ));
            }
            if list.iter().any(|c: &Consumer| c.name == config.name) {
                return Err(format!("{at}: a consumer named `{}` is already declared", config.name));
            }
            let at = format!("{at} (`{}`)", config.name);
            for (g, group) in config.groups.iter().enumerate() {
                if !is_group(group) {
                    return Err(format!(
                        "{at}.groups[{g}]: a group is 1 to 256 printable ASCII characters \
                         without spaces or `,`"
                    ));
                }
            }
            for (k, key) in config.keys.iter().enumerate() {
                // The value is never repeated: it may be a key pasted in clear.
                let hash = parse_hash(key).ok_or_else(|| {
                    format!(
                        "{at}.keys[{k}]: not a SHA-256 hash (64 hex digits); store the key's hash, \
                         as `printf %s KEY | sha256sum` prints it"
                    )
                })?;
                by_hash.push((hash, list.len()));
            }
            list.push(Consumer { name: config.name, groups: config.groups.join(",") });
        }
        by_hash.sort_unstable();
        if let Some(pair) = by_hash.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            let (a, b) = (&list[pair[0].1].name, &list[pair[1].1].name);
            return Err(if a == b {
                format!("consumer `{a}` lists the same key hash twice")
            } else {
                format!("consumers `{a}` and `{b}` share a key hash: a key must name one consumer")
            });
        }
        Ok(Self { list, by_hash })
    }

    /// The consumer whose key hashes to `hash`.
    pub fn find(&self, hash: &Hash) -> Option<&Consumer> {
        let at = self.by_hash.binary_search_by(|(stored, _)| stored.cmp(hash)).ok()?;
        self.by_hash.get(at).and_then(|&(_, index)| self.list.get(index))
    }
}

pub fn hash(key: &[u8]) -> Hash {
    Sha256::digest(key).into()
}

/// 64 hex digits, either case.
fn parse_hash(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| (b as char).to_digit(16);
        *out = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(hash)
}

/// Printable ASCII, spaces inside only: it goes into a header as it is.
fn is_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !name.starts_with(' ')
        && !name.ends_with(' ')
}

/// Groups are forwarded joined with `,`, so they cannot hold one.
fn is_group(group: &str) -> bool {
    (1..=256).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_in_either_case_and_nothing_else_does() {
        let hex = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        assert_eq!(parse_hash(hex), Some(hash(b"test")));
        assert_eq!(parse_hash(&hex.to_ascii_lowercase()), Some(hash(b"test")));
        assert_eq!(parse_hash(&hex[..62]), None);
        assert_eq!(parse_hash(&format!("{hex}00")), None);
        assert_eq!(parse_hash(&format!("{}zz", &hex[..62])), None);
        assert_eq!(parse_hash(&format!("{}é", &hex[..62])), None, "64 bytes, not 64 hex digits");
        assert_eq!(parse_hash(&format!("+{}", &hex[..63])), None);
    }
}
