//! The `keys` setting as a whole: keys written in the config, checked
//! when the plugin is configured, and sources fetched at run time. Above
//! both `keys` (one entry) and `remote` (one fetched source).

use crate::keys::{Key, KeyConfig, parse_entry};
use crate::remote::Source;

/// The keys of the config: those written in it, checked now, and the
/// sources fetched at run time.
#[derive(Debug)]
pub struct Keys {
    pub fixed: Vec<Key>,
    pub remote: Vec<Source>,
}

/// Builds every key, failing on the first bad one with its position (and
/// kid) in the message. `issuers` is the plugin's, the default issuer of a
/// discovery entry.
pub fn parse_keys(configs: Vec<KeyConfig>, issuers: &[String]) -> Result<Keys, String> {
    if configs.is_empty() {
        return Err("`keys` must list at least one key".into());
    }
    let mut keys: Vec<(String, Key)> = Vec::new();
    let mut remote = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let name = match &config.kid {
            Some(kid) => format!("keys[{i}] (kid {kid:?})"),
            None => format!("keys[{i}]"),
        };
        if config.is_remote() {
            remote.push(Source::new(&name, config, issuers)?);
            continue;
        }
        for (jwk_name, key) in parse_entry(&name, config)? {
            if let Some(kid) = &key.kid
                && let Some((other, _)) = keys.iter().find(|(_, k)| k.kid.as_ref() == Some(kid))
            {
                return Err(format!(
                    "{jwk_name}: kid {kid:?} is already used by {other}; a token's kid must name one key"
                ));
            }
            keys.push((jwk_name, key));
        }
    }
    Ok(Keys { fixed: keys.into_iter().map(|(_, key)| key).collect(), remote })
}
