//! Rate limits requests per client, API key, user or route, with the
//! host's atomic GCRA primitive (`state::take`): every instance in the
//! gateway shares the same budgets (in the gateway's memory, or in Redis
//! shared by several gateways with `[state] backend = "redis"`), and the plugin
//! keeps no state of its own.
//!
//! The full config reference and the algorithm are in this crate's README.
//! In short:
//!
//! ```toml
//! pipeline = [{ plugin = "rate-limit", config = {
//!     key = ["route", "user"], on_missing = "fallback", fallback = ["route", "ip"],
//!     limits = [{ limit = 10, window = "1s" }, { limit = 1000, window = "1h" }],
//! } }]
//! ```

mod key;
mod limits;

use wasmgate_sdk::prelude::*;

use key::{KeyPart, MissingKey};
use limits::{Limit, LimitConfig, Report};

/// The pipeline var carrying the tightest report so far. Shared by every
/// rate-limit stage of a pipeline: each keeps the most restrictive report,
/// so the client sees the limit it is closest to.
const REPORT_VAR: &str = "rate-limit";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    key: Vec<String>,
    limits: Vec<LimitConfig>,
    #[serde(default = "default_cost")]
    cost: u64,
    #[serde(default)]
    on_missing: OnMissing,
    #[serde(default)]
    fallback: Vec<String>,
    #[serde(default = "default_reject_status")]
    reject_status: u16,
    #[serde(default = "default_fail_open")]
    fail_open: bool,
    #[serde(default)]
    ietf_headers: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OnMissing {
    #[default]
    Reject,
    Skip,
    Fallback,
}

fn default_cost() -> u64 {
    1
}

fn default_reject_status() -> u16 {
    401
}

fn default_fail_open() -> bool {
    true
}

#[derive(Debug)]
pub struct RateLimit {
    key: Vec<KeyPart>,
    missing: MissingKey,
    limits: Vec<Limit>,
    /// The `RateLimit-Policy` value, the same for every request.
    policies: String,
    cost: u64,
    fail_open: bool,
    ietf_headers: bool,
}

impl Plugin for RateLimit {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let key = key::parse_parts("key", &config.key)?;
        if ![400, 401, 403].contains(&config.reject_status) {
            return Err(format!("reject_status: {} is not one of 400, 401, 403", config.reject_status));
        }
        let missing = match config.on_missing {
            OnMissing::Skip => MissingKey::Skip,
            OnMissing::Reject => MissingKey::Reject(config.reject_status),
            OnMissing::Fallback => {
                if config.fallback.is_empty() {
                    return Err("on_missing = \"fallback\" needs a `fallback` key".into());
                }
                MissingKey::Fallback {
                    parts: key::parse_parts("fallback", &config.fallback)?,
                    status: config.reject_status,
                }
            }
        };
        if !matches!(missing, MissingKey::Fallback { .. }) && !config.fallback.is_empty() {
            return Err("`fallback` is only used with on_missing = \"fallback\"".into());
        }
        let limits = limits::parse(config.limits, config.cost)?;
        Ok(RateLimit {
            key,
            missing,
            policies: limits::policies(&limits),
            limits,
            cost: config.cost,
            fail_open: config.fail_open,
            ietf_headers: config.ietf_headers,
        })
    }

    /// The key's parts and the report of earlier stages are read on every
    /// request; a fallback's parts only when the key lacks one, so they are
    /// fetched then.
    fn needs(&self) -> Needs {
        let needs = Needs::default().prefetch_var(REPORT_VAR);
        self.key.iter().fold(needs, |needs, part| part.prefetch(needs))
    }

    fn on_request(&self, req: &Request) -> Action {
        let key = match key::build(&self.key, req) {
            Some(key) => key,
            None => match &self.missing {
                MissingKey::Skip => return Action::Continue,
                MissingKey::Reject(status) => return self.missing_key(*status),
                MissingKey::Fallback { parts, status } => match key::build(parts, req) {
                    Some(key) => key,
                    None => return self.missing_key(*status),
                },
            },
        };
        let report = match self.take(&key) {
            Ok(report) => report,
            Err(error) if self.fail_open => {
                log::warn(format!("rate-limit: state unavailable, letting the request through: {error}"));
                metrics::counter_add("rate_limit_state_errors", 1);
                return Action::Continue;
            }
            Err(error) => {
                log::error(format!("rate-limit: state unavailable, refusing the request: {error}"));
                metrics::counter_add("rate_limit_state_errors", 1);
                return Reply::problem(503, "Service Unavailable", "the rate limiter is unavailable").into();
            }
        };
        if !report.allowed {
            metrics::counter_add("rate_limit_refused", 1);
            let mut reply = Reply::problem(
                429,
                "Too Many Requests",
                &format!("rate limit {} exceeded; retry in {} s", report.policy_name, report.retry_after_s),
            )
            .header("retry-after", report.retry_after_s.to_string());
            let mut headers = Vec::new();
            report.headers(self.ietf_headers, |name, value| headers.push((name, value.to_owned())));
            for (name, value) in headers {
                reply = reply.header(name, value);
            }
            return reply.into();
        }
        let earlier = req.var(REPORT_VAR);
        let report = match earlier.as_deref().and_then(Report::decode) {
            Some(earlier) if earlier.is_tighter_than(&report) => earlier,
            _ => report,
        };
        // The headers are known now, so set now: no response phase, one
        // call per request. A later stage's tighter report replaces them.
        report.publish(
            self.ietf_headers,
            |var| req.set_var(REPORT_VAR, var),
            |name, value| req.set_response_header(name, value),
        );
        Action::Continue
    }
}

export_plugin!(RateLimit);

impl RateLimit {
    /// Takes from each limit in turn, shortest window first, stopping at
    /// the first refusal. Limits after it are not charged; those before it
    /// were, which is why the short ones go first: a burst refused by the
    /// per-second limit must not eat into the hourly one.
    fn take(&self, key: &str) -> Result<Report<'_>, String> {
        let mut tightest: Option<Report> = None;
        for limit in &self.limits {
            let decision = state::take(&limit.state_key(key), limit.limit, limit.window_ms, limit.burst, self.cost)?;
            let report = Report::new(limit, &self.policies, &decision);
            if !decision.allowed {
                return Ok(report);
            }
            if tightest.as_ref().is_none_or(|t| report.is_tighter_than(t)) {
                tightest = Some(report);
            }
        }
        tightest.ok_or_else(|| "no limits configured".into())
    }

    fn missing_key(&self, status: u16) -> Action {
        let title = match status {
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Bad Request",
        };
        let detail = format!("the request lacks what the rate limit is keyed on ({})", key::describe(&self.key));
        Reply::problem(status, title, &detail).into()
    }
}

#[cfg(test)]
mod tests;
