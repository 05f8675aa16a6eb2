//! The configured limits, and what a decision tells the client.

use serde::Deserialize;
use wasmgate_sdk::host::state::Decision;
use wasmgate_sdk::text::push_decimal;

/// One entry of `limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    limit: u64,
    window: String,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    name: Option<String>,
}

/// A checked limit: `limit` events per `window_ms`, bursts up to `burst`.
#[derive(Debug)]
pub struct Limit {
    pub limit: u64,
    pub window_ms: u64,
    pub burst: u64,
    /// Names the limit in 429 details and the IETF fields.
    pub name: String,
    /// What its state keys start with, written once.
    key_prefix: String,
}

impl Limit {
    pub fn new(limit: u64, window_ms: u64, burst: u64, name: String) -> Self {
        let mut key_prefix = String::new();
        for (n, sep) in [(limit, '/'), (window_ms, '/'), (burst, ':')] {
            push_decimal(&mut key_prefix, n);
            key_prefix.push(sep);
        }
        Self { limit, window_ms, burst, name, key_prefix }
    }

    /// The parameters are part of the state key, so changing a limit starts
    /// fresh buckets rather than reading ones booked under other rules.
    pub fn state_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.key_prefix.len() + key.len());
        out.push_str(&self.key_prefix);
        out.push_str(key);
        out
    }

    /// The IETF fields count windows in whole seconds.
    fn window_s(&self) -> u64 {
        self.window_ms.div_ceil(1000)
    }
}

/// Checks every limit and sorts them by window, shortest first (see
/// `RateLimit::take` for why the order matters).
pub fn parse(configs: Vec<LimitConfig>, cost: u64) -> Result<Vec<Limit>, String> {
    if configs.is_empty() {
        return Err("`limits` must list at least one limit".into());
    }
    if cost == 0 {
        return Err("cost: must be at least 1".into());
    }
    let mut limits = configs
        .into_iter()
        .enumerate()
        .map(|(i, config)| {
            let at = format!("limits[{i}]");
            let window_ms = parse_window(&config.window).ok_or_else(|| {
                format!("{at}.window: `{}` is not a duration (e.g. 500ms, 1s, 5m, 1h, 1d)", config.window)
            })?;
            if config.limit == 0 {
                return Err(format!("{at}.limit: must be at least 1"));
            }
            let burst = config.burst.unwrap_or(config.limit);
            if burst == 0 {
                return Err(format!("{at}.burst: must be at least 1"));
            }
            if cost > burst {
                return Err(format!(
                    "{at}.burst: a cost of {cost} exceeds the burst of {burst}: no request could pass"
                ));
            }
            // What the host will check on every take (a window booking more
            // than ~142 years ahead), said at load instead.
            wasmgate_sdk::gcra::params(config.limit, window_ms, burst, cost).map_err(|e| format!("{at}: {e}"))?;
            let name = config.name.unwrap_or_else(|| format!("{}-per-{}", config.limit, config.window));
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(format!("{at}.name: `{name}` may only use letters, digits, `-`, `_` and `.`"));
            }
            Ok(Limit::new(config.limit, window_ms, burst, name))
        })
        .collect::<Result<Vec<_>, String>>()?;
    limits.sort_by_key(|limit| limit.window_ms);
    Ok(limits)
}

/// The `RateLimit-Policy` field value listing every limit.
pub fn policies(limits: &[Limit]) -> String {
    limits.iter().map(|l| format!("\"{}\";q={};w={}", l.name, l.limit, l.window_s())).collect::<Vec<_>>().join(", ")
}

/// `500ms`, `1s`, `5m`, `1h`, `1d`: a whole number and a unit.
fn parse_window(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let ms = number.parse::<u64>().ok()?.checked_mul(unit_ms)?;
    (ms > 0).then_some(ms)
}

/// A report's numbers in decimal, as the headers and the pipeline var
/// write them.
struct Digits<'d> {
    limit: &'d str,
    remaining: &'d str,
    reset: &'d str,
}

/// One decision as the client sees it; also what travels in the pipeline
/// var from one rate-limit stage to the next. The names borrow from the
/// stage's config or from the var's text: a request copies no more than
/// the var it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_s: u64,
    pub retry_after_s: u64,
    pub policy_name: &'a str,
    /// The `RateLimit-Policy` field: every limit of the stage.
    pub policies: &'a str,
}

impl<'a> Report<'a> {
    /// Seconds are rounded up, as the GCRA's milliseconds are: a client
    /// that waits what it was told is never early.
    pub fn new(limit: &'a Limit, policies: &'a str, decision: &Decision) -> Self {
        Report {
            allowed: decision.allowed,
            limit: decision.limit,
            remaining: decision.remaining,
            reset_s: decision.reset_ms.div_ceil(1000),
            retry_after_s: decision.retry_after_ms.div_ceil(1000),
            policy_name: &limit.name,
            policies,
        }
    }

    /// Fewer requests left is tighter; at equal counts, the one that takes
    /// longer to refill.
    pub fn is_tighter_than(&self, other: &Report) -> bool {
        (self.remaining, std::cmp::Reverse(self.reset_s)) < (other.remaining, std::cmp::Reverse(other.reset_s))
    }

    /// `X-RateLimit-*` always; the IETF `RateLimit` and `RateLimit-Policy`
    /// fields (draft-ietf-httpapi-ratelimit-headers) on request. Each is
    /// handed to `put` as it is written, from one stack buffer per number.
    pub fn headers(&self, ietf: bool, put: impl FnMut(&'static str, &str)) {
        self.with_digits(|digits| self.put_headers(ietf, digits, put));
    }

    /// For the pipeline var: numbers, then the name (letters, digits and
    /// `-_.`, see `parse`), then the policies, which may hold spaces and
    /// so come last. (Requests write it with [`Report::publish`].)
    #[cfg(test)]
    pub fn encode(&self) -> String {
        self.with_digits(|digits| self.encode_with(digits))
    }

    /// The pipeline var, handed to `var`, then the headers, handed to
    /// `put`: both carry the limit, remaining and reset numbers, written
    /// once here for both (formatting a number costs a plugin more than
    /// copying it).
    pub fn publish(&self, ietf: bool, var: impl FnOnce(&str), put: impl FnMut(&'static str, &str)) {
        self.with_digits(|digits| {
            var(&self.encode_with(digits));
            self.put_headers(ietf, digits, put);
        });
    }

    /// `f` given the limit, remaining and reset numbers in decimal.
    fn with_digits<T>(&self, f: impl FnOnce(&Digits) -> T) -> T {
        let mut buffers = [itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new()];
        let [limit, remaining, reset] = &mut buffers;
        f(&Digits {
            limit: limit.format(self.limit),
            remaining: remaining.format(self.remaining),
            reset: reset.format(self.reset_s),
        })
    }

    fn put_headers(&self, ietf: bool, digits: &Digits, mut put: impl FnMut(&'static str, &str)) {
        put("x-ratelimit-limit", digits.limit);
        put("x-ratelimit-remaining", digits.remaining);
        put("x-ratelimit-reset", digits.reset);
        if ietf {
            put("ratelimit", &format!("\"{}\";r={};t={}", self.policy_name, digits.remaining, digits.reset));
            put("ratelimit-policy", self.policies);
        }
    }

    fn encode_with(&self, digits: &Digits) -> String {
        let Report { allowed, policy_name, policies, .. } = self;
        let mut out = String::with_capacity(64 + policy_name.len() + policies.len());
        out.push_str(if *allowed { "1 " } else { "0 " });
        for n in [digits.limit, digits.remaining, digits.reset] {
            out.push_str(n);
            out.push(' ');
        }
        push_decimal(&mut out, self.retry_after_s);
        out.push(' ');
        out.push_str(policy_name);
        out.push(' ');
        out.push_str(policies);
        out
    }

    pub fn decode(text: &'a str) -> Option<Self> {
        let mut fields = text.splitn(7, ' ');
        let mut number = || fields.next()?.parse::<u64>().ok();
        let (allowed, limit, remaining, reset_s, retry_after_s) =
            (number()?, number()?, number()?, number()?, number()?);
        Some(Report {
            allowed: allowed == 1,
            limit,
            remaining,
            reset_s,
            retry_after_s,
            policy_name: fields.next()?,
            policies: fields.next()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_booking_centuries_ahead_is_refused_at_load() {
        let config = |window: &str| LimitConfig { limit: 1, window: window.into(), burst: Some(2), name: None };
        assert!(parse(vec![config("10000d")], 1).is_ok());
        let err = parse(vec![config("30000d")], 1).unwrap_err();
        assert!(err.starts_with("limits[0]: ") && err.contains("142 years"), "{err}");
    }

    #[test]
    fn a_report_survives_the_pipeline_var() {
        let report = Report {
            allowed: true,
            limit: 10,
            remaining: 3,
            reset_s: 60,
            retry_after_s: 0,
            policy_name: "per-minute",
            policies: "\"per-minute\";q=10;w=60, \"per-hour\";q=100;w=3600",
        };
        assert_eq!(Report::decode(&report.encode()), Some(report));
        assert_eq!(Report::decode("1 2 3"), None);
        assert_eq!(Report::decode("x 1 2 3 4 n p"), None);
    }

    #[test]
    fn the_state_key_and_headers_carry_the_numbers() {
        let limit = Limit::new(100, 60_000, 7, "per-minute".into());
        assert_eq!(limit.state_key("user=1:a;"), "100/60000/7:user=1:a;");
        let report = Report {
            allowed: false,
            limit: 100,
            remaining: 0,
            reset_s: 18_446_744_073_709_551,
            retry_after_s: 9,
            policy_name: "per-minute",
            policies: "p",
        };
        assert_eq!(report.encode(), "0 100 0 18446744073709551 9 per-minute p");
        let mut headers = Vec::new();
        report.headers(false, |name, value| headers.push((name, value.to_owned())));
        assert_eq!(
            headers,
            [
                ("x-ratelimit-limit", "100".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", "18446744073709551".to_owned()),
            ]
        );
        let mut ietf = Vec::new();
        report.headers(true, |name, value| ietf.push((name, value.to_owned())));
        assert_eq!(ietf[3], ("ratelimit", "\"per-minute\";r=0;t=18446744073709551".to_owned()));
        assert_eq!(ietf[4], ("ratelimit-policy", "p".to_owned()));
    }

    #[test]
    fn windows_have_a_number_and_a_unit() {
        assert_eq!(parse_window("500ms"), Some(500));
        assert_eq!(parse_window("1s"), Some(1_000));
        assert_eq!(parse_window("5m"), Some(300_000));
        assert_eq!(parse_window("1h"), Some(3_600_000));
        assert_eq!(parse_window("2d"), Some(172_800_000));
        for bad in ["", "1", "s", "0s", "1.5s", "1 s", "1w", "-1s", "99999999999999999d"] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }
}
