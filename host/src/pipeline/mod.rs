//! A route's ordered plugins and the two phases they run in.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use http::Response;

use crate::body::{self, Body};
use crate::fields::set_content_length;
use crate::message::bounds::{self, Bounds};
use crate::message::{Headers, MessageError, RequestState, ResponseState};
use crate::runtime::{Action, Needs, PluginError, PluginPool, Reply};
use crate::telemetry::{Phase, PluginCall, PluginResult, PluginUseMetrics};

/// What a route does when one of its plugins fails (trap, timeout, memory).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailPolicy {
    /// Answer 5xx problem+json: the safe default for auth and the like.
    #[default]
    FailClosed,
    /// Skip the failed plugin and go on, for plugins that only enrich.
    FailOpen,
}

pub(crate) struct Stage {
    pub pool: Arc<PluginPool>,
    pub on_error: FailPolicy,
    /// Its calls' counters and durations (plugin, route, phase).
    pub metrics: PluginUseMetrics,
}

/// What the request phase decided.
pub(crate) enum RequestOutcome {
    /// Every plugin let the request through: send it upstream.
    Forward { req: Box<RequestState> },
    /// Plugin number `by` answered; only plugins before it see the response.
    Respond { req: Box<RequestState>, resp: Response<Body>, by: usize },
    /// A fail-closed plugin failed.
    Failed { error: PluginError },
}

pub(crate) struct Pipeline {
    stages: Vec<Stage>,
    needs: Needs,
}

impl Pipeline {
    pub(crate) fn new(stages: Vec<Stage>) -> Self {
        let mut needs = Needs::default();
        for s in &stages {
            let n = s.pool.needs();
            needs.request_body |= n.request_body;
            needs.response |= n.response;
            needs.response_body |= n.response && n.response_body;
        }
        Self { stages, needs }
    }

    /// What the pipeline as a whole asks for: the union of its plugins'.
    pub(crate) fn needs(&self) -> Needs {
        self.needs
    }

    pub(crate) fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The request travels boxed: it moves into each plugin call and back.
    /// A reply the server could not send (`bounds`) is the plugin's failure
    /// like any other, so a fail-open stage passes over it too.
    /// Each call is counted and timed, and listed in `calls` when given.
    /// One clock read ends a call and starts the next, and its wall-clock
    /// deadline too.
    pub(crate) async fn request_phase(
        &self,
        mut req: Box<RequestState>,
        bounds: &Bounds,
        mut calls: Option<&mut Vec<PluginCall>>,
    ) -> RequestOutcome {
        let mut started = Instant::now();
        for (i, stage) in self.stages.iter().enumerate() {
            let (back, result) = stage.pool.on_request(req, started).await;
            req = back;
            let result = result.and_then(|action| match action {
                Action::Continue => Ok(None),
                Action::Respond(reply) => reply_response(reply, bounds).map(Some).map_err(|e| PluginError::Write {
                    plugin: stage.pool.plugin().clone(),
                    reason: format!("its reply: {e}"),
                }),
            });
            let outcome = match &result {
                Ok(None) => PluginResult::Continue,
                Ok(Some(_)) => PluginResult::Respond,
                Err(error) => failure(error, stage.on_error),
            };
            started = stage.record(Phase::Request, outcome, started, calls.as_deref_mut());
            match result {
                Ok(None) => {}
                Ok(Some(resp)) => return RequestOutcome::Respond { req, resp, by: i },
                Err(error) => match stage.on_error {
                    FailPolicy::FailClosed => return RequestOutcome::Failed { error },
                    FailPolicy::FailOpen => {
                        fail_open(&req.info.route, &error, "plugin failed; passing the request on (fail-open)")
                    }
                },
            }
        }
        RequestOutcome::Forward { req }
    }

    /// Runs `on-response` of the first `ran` plugins, last first.
    pub(crate) async fn response_phase(
        &self,
        mut req: Box<RequestState>,
        mut resp: Box<ResponseState>,
        ran: usize,
        mut calls: Option<&mut Vec<PluginCall>>,
    ) -> Result<Box<ResponseState>, PluginError> {
        let mut started = Instant::now();
        for stage in self.stages[..ran].iter().rev() {
            if !stage.pool.needs().response {
                continue;
            }
            let (back_req, back_resp, result) = stage.pool.on_response(req, resp, started).await;
            (req, resp) = (back_req, back_resp);
            let outcome = match &result {
                Ok(()) => PluginResult::Continue,
                Err(error) => failure(error, stage.on_error),
            };
            started = stage.record(Phase::Response, outcome, started, calls.as_deref_mut());
            if let Err(error) = result {
                match stage.on_error {
                    FailPolicy::FailClosed => return Err(error),
                    FailPolicy::FailOpen => {
                        fail_open(&req.info.route, &error, "plugin failed on the response; passing it on (fail-open)")
                    }
                }
            }
        }
        Ok(resp)
    }
}

impl Stage {
    /// One call: counted and timed in the stage's metrics, and listed for
    /// the request's access-log line and spans. Returns when it ended.
    fn record(
        &self,
        phase: Phase,
        result: PluginResult,
        started: Instant,
        calls: Option<&mut Vec<PluginCall>>,
    ) -> Instant {
        let ended = Instant::now();
        let elapsed = ended.saturating_duration_since(started);
        self.metrics.record(phase, result, elapsed);
        if let Some(calls) = calls {
            calls.push(PluginCall { plugin: self.pool.plugin().clone(), started, phase, result, elapsed });
        }
        ended
    }
}

/// How a failed call is counted: a fail-open stage's failure is a pass
/// (its kind is in the log line); a fail-closed one's, by kind.
fn failure(error: &PluginError, policy: FailPolicy) -> PluginResult {
    if policy == FailPolicy::FailOpen {
        return PluginResult::FailOpen;
    }
    match error {
        PluginError::Trap { .. } => PluginResult::Trap,
        PluginError::Timeout { .. } => PluginResult::Timeout,
        PluginError::WallTimeout { .. } => PluginResult::WallTimeout,
        PluginError::MemoryLimit { .. } => PluginResult::MemoryLimit,
        PluginError::Overloaded { .. } => PluginResult::Overloaded,
        PluginError::Quarantined { .. } => PluginResult::Quarantined,
        PluginError::Write { .. } => PluginResult::Write,
        PluginError::StateUnavailable { .. } => PluginResult::StateUnavailable,
        PluginError::ConfigureTimeout { .. } | PluginError::Config { .. } => PluginResult::Error,
    }
}

/// A plugin's direct answer as an HTTP response, held to what the server
/// would send: a final status, valid fields within the header limits.
fn reply_response(reply: Reply, bounds: &Bounds) -> Result<Response<Body>, MessageError> {
    let status = bounds::final_status(reply.status)?;
    bounds.check_fields(reply.headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())))?;
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    for (name, value) in reply.headers {
        Headers::append(resp.headers_mut(), &name, value)?;
    }
    set_content_length(resp.headers_mut(), reply.body.len());
    *resp.body_mut() = body::full(reply.body);
    Ok(resp)
}

/// Logs a failure a fail-open stage passed over. A quarantined plugin is
/// skipped on every call until its probe, and said so when its breaker
/// opened: one line per skipped call would bury the logs.
fn fail_open(route: &str, error: &PluginError, message: &'static str) {
    if !error.logged_per_call() {
        tracing::debug!(route, error = %error, "{message}");
    } else {
        tracing::warn!(route, error = %error, "{message}");
    }
}
