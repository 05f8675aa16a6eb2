//! Answers a route itself by calling several upstreams and merging their
//! JSON into one document (a BFF endpoint: user + orders + products → one
//! dashboard).
//!
//! ```toml
//! [[routes]]
//! name = "dashboard"
//! path = "/users/{id}/dashboard"
//! pipeline = [{ plugin = "aggregate", config = { parts = [
//!     { name = "user", upstream = "users", path = "/users/{param.id}" },
//!     { name = "orders", upstream = "orders", path = "/orders?user={part.user.id}", required = false, fallback = { orders = [] } },
//! ] } }]
//! ```
//!
//! Parts that need nothing from each other go out together in one
//! `fetch_all`; a part whose path uses another part's response waits for
//! it, in a later wave. The waves are planned in `configure`, where a cycle
//! or an unknown part is refused. The README is the config reference.

mod plan;
mod template;

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use wasmgate_sdk::prelude::*;
use wasmgate_sdk::text::is_token;

use crate::template::{Context, PathTemplate, json_path};

/// Header naming the optional parts that failed and were replaced by their
/// fallback.
pub const PARTIAL_HEADER: &str = "x-wasmgate-partial";

/// A `for_each` list longer than this fails its part: one client request
/// must not turn into an unbounded number of upstream calls.
pub const MAX_ITEMS: usize = 64;

const DEFAULT_DEADLINE_MS: u32 = 5_000;

fn default_deadline_ms() -> u32 {
    DEFAULT_DEADLINE_MS
}

fn default_forward_headers() -> Vec<String> {
    ["x-request-id", "authorization", "x-user-id", "x-user-role", "traceparent", "tracestate"]
        .map(str::to_owned)
        .to_vec()
}

fn default_method() -> String {
    "GET".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    parts: Vec<PartConfig>,
    #[serde(default = "default_deadline_ms")]
    deadline_ms: u32,
    #[serde(default = "default_forward_headers")]
    forward_headers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartConfig {
    name: String,
    upstream: String,
    path: String,
    #[serde(default = "default_method")]
    method: String,
    timeout_ms: Option<u32>,
    #[serde(default = "yes")]
    required: bool,
    fallback: Option<Value>,
    merge_as: Option<String>,
    merge: Option<MergeMode>,
    for_each: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MergeMode {
    /// Under `merge_as` (default: the part's name).
    Key,
    /// The part's fields go into the top level of the document.
    Root,
}

#[derive(Debug, PartialEq)]
enum Merge {
    At(Vec<String>),
    Root,
}

/// One call per element of a list in an earlier part's response.
#[derive(Debug, PartialEq)]
struct ForEach {
    part: usize,
    path: Vec<String>,
}

#[derive(Debug)]
struct Part {
    name: String,
    upstream: String,
    method: String,
    path: PathTemplate,
    timeout_ms: Option<u32>,
    required: bool,
    fallback: Value,
    merge: Merge,
    for_each: Option<ForEach>,
}

#[derive(Debug)]
pub struct Aggregate {
    parts: Vec<Part>,
    /// Part indexes per wave, dependencies first.
    waves: Vec<Vec<usize>>,
    deadline_ms: u32,
    forward_headers: Vec<String>,
}

impl Plugin for Aggregate {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        if config.parts.is_empty() {
            return Err("parts: list at least one part to call".into());
        }
        if config.deadline_ms == 0 {
            return Err("deadline_ms: must be at least 1".into());
        }
        let names: Vec<String> = config.parts.iter().map(|p| p.name.clone()).collect();
        for (i, name) in names.iter().enumerate() {
            if !is_name(name) {
                return Err(format!(
                    "parts[{i}].name: {name:?} must be non-empty letters, digits, `_` or `-` \
                     (it appears in templates and in the {PARTIAL_HEADER} header)"
                ));
            }
            if names[..i].contains(name) {
                return Err(format!("parts[{i}].name: `{name}` is used by two parts"));
            }
        }
        let index_of = |name: &str| names.iter().position(|n| n == name);

        let mut parts = Vec::new();
        let mut deps = Vec::new();
        for (i, config) in config.parts.into_iter().enumerate() {
            let at = format!("parts[{i}] (`{}`)", config.name);
            let (part, part_deps) = compile_part(config, &index_of).map_err(|e| format!("{at}: {e}"))?;
            parts.push(part);
            deps.push(part_deps);
        }
        let mut merged = BTreeSet::new();
        for part in &parts {
            if let Merge::At(path) = &part.merge
                && !merged.insert(path.join("."))
            {
                return Err(format!(
                    "parts: two parts merge under `{}`: give one of them another `merge_as`",
                    path.join(".")
                ));
            }
        }
        let waves = plan::waves(&names, &deps)?;

        let forward_headers = config
            .forward_headers
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                if is_token(&name) {
                    Ok(name.to_ascii_lowercase())
                } else {
                    Err(format!("forward_headers[{i}]: `{name}` is not a valid header name"))
                }
            })
            .collect::<Result<_, String>>()?;

        Ok(Aggregate { parts, waves, deadline_ms: config.deadline_ms, forward_headers })
    }

    fn on_request(&self, req: &Request) -> Action {
        let started_ns = clock::monotonic_ns();
        let forwarded = self.forwarded_headers(req);
        let query = req.query();
        let mut outcomes: Vec<Option<Result<Value, Failure>>> = vec![None; self.parts.len()];

        for wave in &self.waves {
            let elapsed_ms = clock::monotonic_ns().saturating_sub(started_ns) / 1_000_000;
            let left_ms = u64::from(self.deadline_ms).saturating_sub(elapsed_ms);
            let succeeded: Vec<Option<&Value>> =
                outcomes.iter().map(|outcome| outcome.as_ref().and_then(|o| o.as_ref().ok())).collect();
            let ctx = Context { req, query: query.as_deref(), parts: &succeeded, item: None };

            let mut requests = Vec::new();
            // Per part of the wave: its calls' range in `requests`, or why
            // it was not called.
            let mut planned: Vec<(usize, Result<std::ops::Range<usize>, Failure>)> = Vec::new();
            for &index in wave {
                let calls = self.plan_calls(index, &ctx, &outcomes, left_ms, &forwarded);
                let planned_part = calls.map(|calls| {
                    let start = requests.len();
                    requests.extend(calls);
                    start..requests.len()
                });
                planned.push((index, planned_part));
            }

            let mut results = if requests.is_empty() { Vec::new() } else { http::fetch_all(&requests) };
            // A host that returned fewer results than calls is treated as if
            // the missing calls had failed, never as a panic.
            results.resize_with(requests.len(), || Err(FetchError::Unavailable("the host returned no result".into())));
            for (index, planned_part) in planned {
                let part = &self.parts[index];
                let outcome = planned_part.and_then(|range| {
                    let values = range
                        .map(|call| answer(part, &requests[call], &results[call]))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(match part.for_each {
                        Some(_) => Value::Array(values),
                        None => values.into_iter().next().unwrap_or(Value::Null),
                    })
                });
                let outcome = outcome.and_then(|value| check_mergeable(part, value));
                if let Err(failure) = &outcome {
                    log::warn(format!("part {}: {failure}", part.name));
                }
                outcomes[index] = Some(outcome);
            }

            // A required part failed: later waves would be wasted calls.
            if let Some((part, failure)) = self.first_required_failure(&outcomes) {
                return required_failed(part, failure, self.deadline_ms).into();
            }
        }

        self.respond(outcomes)
    }
}

impl Aggregate {
    fn forwarded_headers(&self, req: &Request) -> Vec<(String, Vec<u8>)> {
        let mut headers = Vec::new();
        for name in &self.forward_headers {
            for value in req.header_all(name) {
                headers.push((name.clone(), value.into_bytes()));
            }
        }
        headers
    }

    /// The calls of one part, or why none can be made: a dependency failed,
    /// a template has no value, the deadline passed.
    fn plan_calls(
        &self,
        index: usize,
        ctx: &Context,
        outcomes: &[Option<Result<Value, Failure>>],
        left_ms: u64,
        forwarded: &[(String, Vec<u8>)],
    ) -> Result<Vec<OutboundRequest>, Failure> {
        let part = &self.parts[index];
        let dependencies = part.path.dependencies().chain(part.for_each.as_ref().map(|each| each.part));
        for dependency in dependencies {
            if let Some(Err(_)) = &outcomes[dependency] {
                return Err(Failure::Dependency(self.parts[dependency].name.clone()));
            }
        }
        if left_ms == 0 {
            return Err(Failure::NotStarted);
        }
        // Capped by the time left, so the whole answer keeps its deadline.
        let timeout_ms = part.timeout_ms.map_or(left_ms, |ms| u64::from(ms).min(left_ms));
        let timeout_ms = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        let request = |path: String| {
            let mut request = OutboundRequest::new(&part.method, &part.upstream, &path).timeout_ms(timeout_ms);
            request.headers = forwarded.to_vec();
            request
        };
        match &part.for_each {
            None => {
                let path = part.path.render(ctx).map_err(Failure::Template)?;
                Ok(vec![request(path)])
            }
            Some(each) => {
                let items = items(ctx.parts[each.part], &each.path);
                if items.len() > MAX_ITEMS {
                    return Err(Failure::TooManyItems(items.len()));
                }
                items
                    .into_iter()
                    .map(|item| {
                        let ctx = Context { item: Some(item), ..*ctx };
                        part.path.render(&ctx).map(request).map_err(Failure::Template)
                    })
                    .collect()
            }
        }
    }

    fn first_required_failure<'a>(
        &'a self,
        outcomes: &'a [Option<Result<Value, Failure>>],
    ) -> Option<(&'a Part, &'a Failure)> {
        self.parts.iter().zip(outcomes).find_map(|(part, outcome)| match outcome {
            Some(Err(failure)) if part.required => Some((part, failure)),
            _ => None,
        })
    }

    /// Merges in config order, so a later part's fields win at the top
    /// level.
    fn respond(&self, outcomes: Vec<Option<Result<Value, Failure>>>) -> Action {
        let mut document = Map::new();
        let mut failed = Vec::new();
        for (part, outcome) in self.parts.iter().zip(outcomes) {
            let value = match outcome {
                Some(Ok(value)) => value,
                _ => {
                    failed.push(part.name.as_str());
                    part.fallback.clone()
                }
            };
            match &part.merge {
                Merge::Root => {
                    if let Value::Object(fields) = value {
                        document.extend(fields);
                    }
                }
                Merge::At(path) => insert_at(&mut document, path, value, &part.name),
            }
        }
        let mut reply = Reply::new(200);
        if !failed.is_empty() {
            reply = reply.header(PARTIAL_HEADER, failed.join(","));
        }
        reply.json(&document).into()
    }
}

fn compile_part(config: PartConfig, index_of: &dyn Fn(&str) -> Option<usize>) -> Result<(Part, Vec<usize>), String> {
    if !is_token(&config.method) {
        return Err(format!("method: {:?} is not a valid HTTP method", config.method));
    }
    if config.upstream.is_empty() {
        return Err("upstream: name an upstream of the gateway config".into());
    }
    if config.timeout_ms == Some(0) {
        return Err("timeout_ms: must be at least 1".into());
    }
    let for_each = config
        .for_each
        .as_deref()
        .map(|text| {
            let (part_name, path) = text.split_once('.').unwrap_or((text, ""));
            let part = index_of(part_name)
                .ok_or_else(|| format!("for_each: {text:?} references unknown part `{part_name}` (write PART.PATH)"))?;
            Ok::<_, String>(ForEach { part, path: json_path(path, "for_each").map_err(|e| format!("for_each: {e}"))? })
        })
        .transpose()?;
    let path = PathTemplate::parse(&config.path, index_of, for_each.is_some()).map_err(|e| format!("path: {e}"))?;

    if config.required && config.fallback.is_some() {
        return Err(
            "fallback: a required part never uses its fallback: set `required = false` to make it optional".into()
        );
    }
    let merge = match (config.merge, config.merge_as) {
        (Some(MergeMode::Root), Some(_)) => {
            return Err("merge_as: not used with `merge = \"root\"`: give one or the other".into());
        }
        (Some(MergeMode::Root), None) => Merge::Root,
        (_, Some(key)) => Merge::At(json_path(&key, "merge_as").map_err(|e| format!("merge_as: {e}"))?),
        (_, None) => Merge::At(vec![config.name.clone()]),
    };
    if merge == Merge::Root && config.for_each.is_some() {
        return Err("merge: a `for_each` part answers a list, which cannot be merged at the root".into());
    }
    let fallback = config.fallback.unwrap_or(Value::Null);
    if merge == Merge::Root && !(fallback.is_object() || fallback.is_null()) {
        return Err("fallback: a part merged at the root needs an object (or no fallback)".into());
    }

    let mut deps: Vec<usize> = path.dependencies().collect();
    deps.extend(for_each.as_ref().map(|each| each.part));
    deps.sort_unstable();
    deps.dedup();
    Ok((
        Part {
            name: config.name,
            upstream: config.upstream,
            method: config.method,
            path,
            timeout_ms: config.timeout_ms,
            required: config.required,
            fallback,
            merge,
            for_each,
        },
        deps,
    ))
}

/// Why a part has no value.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Timeout {
        upstream: String,
        timeout_ms: Option<u32>,
    },
    /// The deadline passed before its wave.
    NotStarted,
    Status {
        upstream: String,
        status: u16,
    },
    Unavailable(String),
    /// Refused by the host before sending (unknown upstream…).
    Invalid(String),
    Json(String),
    NotObject,
    Template(String),
    TooManyItems(usize),
    Dependency(String),
}

impl Failure {
    fn timed_out(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::NotStarted)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout { upstream, timeout_ms } => match timeout_ms {
                Some(ms) => write!(f, "upstream {upstream} did not answer within {ms} ms"),
                None => write!(f, "upstream {upstream} did not answer in time"),
            },
            Self::NotStarted => write!(f, "not started: the deadline had passed"),
            Self::Status { upstream, status } => write!(f, "upstream {upstream} answered {status}"),
            Self::Unavailable(reason) => write!(f, "{reason}"),
            Self::Invalid(reason) => write!(f, "the call was refused: {reason}"),
            Self::Json(reason) => write!(f, "the response is not valid JSON: {reason}"),
            Self::NotObject => write!(f, "the response is not a JSON object, so it cannot be merged at the root"),
            Self::Template(reason) => write!(f, "not called: the path's {reason}"),
            Self::TooManyItems(count) => {
                write!(f, "not called: for_each found {count} items, more than {MAX_ITEMS}")
            }
            Self::Dependency(name) => write!(f, "not called: it needs part `{name}`, which failed"),
        }
    }
}

/// The JSON of one call, or why it failed.
fn answer(
    part: &Part,
    request: &OutboundRequest,
    result: &Result<OutboundResponse, FetchError>,
) -> Result<Value, Failure> {
    match result {
        Ok(resp) if (200..300).contains(&resp.status) => {
            if resp.body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&resp.body).map_err(|e| Failure::Json(e.to_string()))
        }
        Ok(resp) => Err(Failure::Status { upstream: part.upstream.clone(), status: resp.status }),
        Err(FetchError::Timeout) => {
            Err(Failure::Timeout { upstream: part.upstream.clone(), timeout_ms: request.timeout_ms })
        }
        Err(FetchError::Unavailable(reason)) => Err(Failure::Unavailable(reason.clone())),
        Err(FetchError::Invalid(reason)) => Err(Failure::Invalid(reason.clone())),
    }
}

fn check_mergeable(part: &Part, value: Value) -> Result<Value, Failure> {
    if part.merge == Merge::Root && !value.is_object() {
        return Err(Failure::NotObject);
    }
    Ok(value)
}

/// 504 when the part ran out of time, 502 for any other failure.
fn required_failed(part: &Part, failure: &Failure, deadline_ms: u32) -> Reply {
    if failure.timed_out() {
        let detail = match failure {
            Failure::NotStarted => {
                format!("required part `{}` was not started: the deadline of {deadline_ms} ms had passed", part.name)
            }
            other => format!("required part `{}` timed out: {other}", part.name),
        };
        Reply::problem(504, "Gateway Timeout", &detail)
    } else {
        Reply::problem(502, "Bad Gateway", &format!("required part `{}` failed: {failure}", part.name))
    }
}

/// The elements a `for_each` walks: the list at `path` (through arrays),
/// or a single value as a list of one.
fn items<'a>(value: Option<&'a Value>, path: &[String]) -> Vec<&'a Value> {
    fn walk<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
        match (path.split_first(), value) {
            (_, Value::Array(items)) => {
                for item in items {
                    walk(item, path, out);
                }
            }
            (None, Value::Null) => {}
            (None, value) => out.push(value),
            (Some((first, rest)), Value::Object(map)) => {
                if let Some(child) = map.get(first) {
                    walk(child, rest, out);
                }
            }
            (Some(_), _) => {}
        }
    }
    let mut out = Vec::new();
    if let Some(value) = value {
        walk(value, path, &mut out);
    }
    out
}

/// Puts `value` at a dotted path, creating objects on the way. A scalar in
/// the way (another part's value) is kept and this part left out, with a
/// warning: overwriting it would lose data silently.
fn insert_at(document: &mut Map<String, Value>, path: &[String], value: Value, name: &str) {
    let (last, parents) = path.split_last().expect("merge paths are never empty");
    let mut target = document;
    for segment in parents {
        let slot = target.entry(segment.clone()).or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(map) => target = map,
            _ => {
                log::warn(format!(
                    "part {name}: `{segment}` already holds a value that is not an object; part left out"
                ));
                return;
            }
        }
    }
    target.insert(last.clone(), value);
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

export_plugin!(Aggregate);

#[cfg(test)]
mod tests;
