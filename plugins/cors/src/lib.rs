//! Cross-origin resource sharing: answers preflight requests itself and
//! marks the responses to allowed origins, all from the request phase.
//!
//! The full config reference is in this crate's README. In short:
//!
//! ```toml
//! pipeline = [
//!     { plugin = "cors", config = { allow_origins = ["https://app.example.com", "https://*.example.com"],
//!       allow_headers = ["authorization", "content-type"], allow_credentials = true } },
//!     { plugin = "jwt-auth" },
//! ]
//! ```

mod origin;

use wasmgate_sdk::prelude::*;
use wasmgate_sdk::text::{decimal, is_token};

use origin::{Allowed, Origins, shown};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    allow_origins: Vec<String>,
    #[serde(default = "default_methods")]
    allow_methods: Vec<String>,
    #[serde(default)]
    allow_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default = "default_max_age")]
    max_age: u32,
    #[serde(default)]
    allow_credentials: bool,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].map(String::from).to_vec()
}

fn default_max_age() -> u32 {
    600
}

/// Header values are built once, here: a request only picks among them.
#[derive(Debug)]
pub struct Cors {
    origins: Origins,
    methods: Vec<String>,
    /// Lower-case.
    headers: Vec<String>,
    /// `Access-Control-Allow-Methods`, `-Allow-Headers`, `-Expose-Headers`,
    /// `-Max-Age`: the lists joined with `, `; empty ones are not sent.
    allow_methods: String,
    allow_headers: String,
    expose_headers: String,
    max_age: String,
    credentials: bool,
}

const ORIGIN: &str = "origin";
const REQUEST_METHOD: &str = "access-control-request-method";
const REQUEST_HEADERS: &str = "access-control-request-headers";

impl Plugin for Cors {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let origins = Origins::parse(&config.allow_origins)?;
        if config.allow_credentials && origins.has_any() {
            return Err("allow_origins: `*` cannot be combined with allow_credentials = true \
                 (browsers refuse it): list the origins"
                .into());
        }
        let tokens = |field: &str, list: &[String], lower: bool| -> Result<Vec<String>, String> {
            list.iter()
                .enumerate()
                .map(|(i, item)| match is_token(item) {
                    true if item == "*" => Err(format!("{field}[{i}]: `*` is not supported here: list the names")),
                    true => Ok(if lower { item.to_ascii_lowercase() } else { item.clone() }),
                    false => Err(format!("{field}[{i}]: `{}` is not a valid name", shown(item))),
                })
                .collect()
        };
        let methods = tokens("allow_methods", &config.allow_methods, false)?;
        if methods.is_empty() {
            return Err("`allow_methods` must list at least one method".into());
        }
        let headers = tokens("allow_headers", &config.allow_headers, true)?;
        let expose = tokens("expose_headers", &config.expose_headers, true)?;
        Ok(Cors {
            origins,
            allow_methods: methods.join(", "),
            allow_headers: headers.join(", "),
            expose_headers: expose.join(", "),
            methods,
            headers,
            max_age: decimal(u64::from(config.max_age)),
            credentials: config.allow_credentials,
        })
    }

    /// `Origin` is read on every request; the method and the preflight
    /// headers only when it is there.
    fn needs(&self) -> Needs {
        Needs::default().prefetch_header(ORIGIN)
    }

    fn on_request(&self, req: &Request) -> Action {
        let origins = req.header_all(ORIGIN);
        let [origin] = origins.as_slice() else {
            if origins.is_empty() {
                // Not a cross-origin request from a browser: untouched.
                return Action::Continue;
            }
            // Several `Origin` headers: no browser sends that.
            return self.refuse_or_pass(req, "more than one Origin header");
        };
        let allowed = self.origins.allows(origin);
        if req.method() == "OPTIONS"
            && let Some(method) = req.header(REQUEST_METHOD)
        {
            return match allowed {
                Some(allowed) => self.preflight(req, origin, allowed, &method),
                None => forbidden(&format!("origin `{}` is not allowed", shown(origin))),
            };
        }
        // The answer depends on `Origin`, allowed or not: a cache must not
        // serve one origin's answer to another.
        req.append_response_header("vary", "Origin");
        if let Some(allowed) = allowed {
            req.set_response_header("access-control-allow-origin", self.allow_origin(origin, &allowed));
            if self.credentials {
                req.set_response_header("access-control-allow-credentials", "true");
            }
            if !self.expose_headers.is_empty() {
                req.set_response_header("access-control-expose-headers", &self.expose_headers);
            }
        }
        Action::Continue
    }
}

export_plugin!(Cors);

impl Cors {
    /// A preflight from an allowed origin: 204 with the permissions, or
    /// 403 when it asks for a method or header not allowed.
    fn preflight(&self, req: &Request, origin: &str, allowed: Allowed, method: &str) -> Action {
        if !self.methods.iter().any(|m| m == method) {
            return forbidden(&format!("method `{}` is not allowed (allowed: {})", shown(method), self.allow_methods));
        }
        for value in req.header_all(REQUEST_HEADERS) {
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                    let allowed = if self.allow_headers.is_empty() { "none" } else { &self.allow_headers };
                    return forbidden(&format!("header `{}` is not allowed (allowed: {allowed})", shown(name)));
                }
            }
        }
        let mut reply = Reply::new(204)
            .header("access-control-allow-origin", self.allow_origin(origin, &allowed))
            .header("access-control-allow-methods", self.allow_methods.as_str())
            .header("access-control-max-age", self.max_age.as_str())
            .header("vary", "Origin");
        if !self.allow_headers.is_empty() {
            reply = reply.header("access-control-allow-headers", self.allow_headers.as_str());
        }
        if self.credentials {
            reply = reply.header("access-control-allow-credentials", "true");
        }
        reply.into()
    }

    fn allow_origin<'a>(&self, origin: &'a str, allowed: &Allowed) -> &'a str {
        match allowed {
            Allowed::Any => "*",
            Allowed::Echo => origin,
        }
    }

    /// A request whose `Origin` cannot be judged: a preflight is refused,
    /// anything else passes without CORS headers.
    fn refuse_or_pass(&self, req: &Request, why: &str) -> Action {
        if req.method() == "OPTIONS" && req.header(REQUEST_METHOD).is_some() {
            return forbidden(why);
        }
        req.append_response_header("vary", "Origin");
        Action::Continue
    }
}

fn forbidden(detail: &str) -> Action {
    log::debug(format!("cors: preflight refused: {detail}"));
    Reply::problem(403, "Forbidden", detail).into()
}

#[cfg(test)]
mod tests;
