//! Authenticates API keys against consumers declared in config, where each
//! key is stored as its SHA-256 hash, forwards who the consumer is and
//! removes the key before the upstream.
//!
//! The full config reference is in this crate's README. In short:
//!
//! ```toml
//! [plugins.key-auth.config]
//! consumers = [
//!     { name = "billing-service", groups = ["internal"], keys = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"] },
//! ]
//! ```

mod consumers;
mod credentials;

use wasmgate_sdk::prelude::*;
use wasmgate_sdk::text::is_token;

use consumers::{Consumer, ConsumerConfig, Consumers};
use credentials::Presented;

/// The pipeline var naming the consumer, for later plugins (rate-limit
/// keys on `var:consumer`).
pub const CONSUMER_VAR: &str = "consumer";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    consumers: Vec<ConsumerConfig>,
    #[serde(default = "default_key_headers")]
    key_headers: Vec<String>,
    #[serde(default)]
    key_query: Option<String>,
    #[serde(default = "default_consumer_header")]
    consumer_header: String,
    #[serde(default = "default_groups_header")]
    groups_header: String,
    #[serde(default)]
    anonymous: Option<String>,
    #[serde(default = "default_realm")]
    realm: String,
}

fn default_key_headers() -> Vec<String> {
    vec!["apikey".into(), "x-api-key".into()]
}

fn default_consumer_header() -> String {
    "x-consumer-id".into()
}

fn default_groups_header() -> String {
    "x-consumer-groups".into()
}

fn default_realm() -> String {
    "wasmgate".into()
}

#[derive(Debug)]
pub struct KeyAuth {
    consumers: Consumers,
    /// Lower-case.
    key_headers: Vec<String>,
    key_query: Option<String>,
    /// Lower-case; `None` forwards nothing.
    consumer_header: Option<String>,
    groups_header: Option<String>,
    /// Index into `consumers.list`.
    anonymous: Option<usize>,
    /// `ApiKey realm="…"`, the same on every refusal.
    challenge: String,
}

impl Plugin for KeyAuth {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let consumers = Consumers::parse(config.consumers)?;
        if config.key_headers.len() > 64 {
            return Err("key_headers: more than 64 headers".into());
        }
        let key_headers = config
            .key_headers
            .iter()
            .enumerate()
            .map(|(i, name)| header_name(&format!("key_headers[{i}]"), name))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(param) = &config.key_query
            && param.is_empty()
        {
            return Err("key_query: the parameter name must not be empty (leave it out to read no query)".into());
        }
        if key_headers.is_empty() && config.key_query.is_none() {
            return Err("`key_headers` is empty and `key_query` is not set: there is nowhere to read a key".into());
        }
        let optional = |field: &str, name: &str| -> Result<Option<String>, String> {
            if name.is_empty() {
                return Ok(None);
            }
            let name = header_name(field, name)?;
            if key_headers.contains(&name) {
                return Err(format!("{field}: `{name}` is also a key header"));
            }
            Ok(Some(name))
        };
        let consumer_header = optional("consumer_header", &config.consumer_header)?;
        let groups_header = optional("groups_header", &config.groups_header)?;
        if consumer_header.is_some() && consumer_header == groups_header {
            return Err("consumer_header and groups_header must differ".into());
        }
        let anonymous = match &config.anonymous {
            None => None,
            Some(name) => Some(
                consumers
                    .list
                    .iter()
                    .position(|c| &c.name == name)
                    .ok_or_else(|| format!("anonymous: no consumer is named `{name}`"))?,
            ),
        };
        if !config.realm.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
            return Err("`realm` must be printable ASCII without `\"` or `\\`".into());
        }
        Ok(KeyAuth {
            consumers,
            key_headers,
            key_query: config.key_query,
            consumer_header,
            groups_header,
            anonymous,
            challenge: format!("ApiKey realm=\"{}\"", config.realm),
        })
    }

    /// The key headers are read on every request. The query is read
    /// through the host, and only when `key_query` is set.
    fn needs(&self) -> Needs {
        self.key_headers.iter().fold(Needs::default(), |needs, name| needs.prefetch_header(name))
    }

    fn on_request(&self, req: &Request) -> Action {
        let consumer = match credentials::take(req, &self.key_headers, self.key_query.as_deref()) {
            Presented::Key(hash) => match self.consumers.find(&hash) {
                Some(consumer) => consumer,
                None => return self.refuse(req, 401, "Unauthorized", "the API key is not valid"),
            },
            Presented::Nothing => match self.anonymous.and_then(|i| self.consumers.list.get(i)) {
                Some(anonymous) => anonymous,
                None => return self.refuse(req, 401, "Unauthorized", &self.missing_detail()),
            },
            Presented::Several => {
                return self.refuse(req, 400, "Bad Request", "more than one API key in the request: send exactly one");
            }
        };
        self.forward(req, consumer);
        Action::Continue
    }
}

export_plugin!(KeyAuth);

impl KeyAuth {
    /// The consumer headers replace whatever the client sent, and the var
    /// tells later plugins who it is.
    fn forward(&self, req: &Request, consumer: &Consumer) {
        if let Some(header) = &self.consumer_header {
            req.set_header(header, &consumer.name);
        }
        if let Some(header) = &self.groups_header {
            if consumer.groups.is_empty() {
                req.remove_header(header);
            } else {
                req.set_header(header, &consumer.groups);
            }
        }
        req.set_var(CONSUMER_VAR, &consumer.name);
    }

    /// Even a refused request loses the client's consumer headers: an
    /// earlier plugin's response phase sees the request as forwarded.
    fn refuse(&self, req: &Request, status: u16, title: &str, detail: &str) -> Action {
        for header in [&self.consumer_header, &self.groups_header].into_iter().flatten() {
            req.remove_header(header);
        }
        log::debug(format!("key-auth: {status}: {detail}"));
        Reply::problem(status, title, detail).header("www-authenticate", self.challenge.as_str()).into()
    }

    fn missing_detail(&self) -> String {
        let mut places: Vec<String> = self.key_headers.iter().map(|h| format!("header `{h}`")).collect();
        if let Some(param) = &self.key_query {
            places.push(format!("query parameter `{param}`"));
        }
        format!("an API key is required (in {})", places.join(" or "))
    }
}

fn header_name(field: &str, name: &str) -> Result<String, String> {
    if !is_token(name) {
        return Err(format!("{field}: `{name}` is not a valid header name"));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
