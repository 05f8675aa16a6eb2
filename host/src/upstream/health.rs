//! Active health checks: one background task per upstream probes every
//! target each interval with `GET <path>` on a fresh connection (a pooled
//! one could outlive the process it was made to) and flips the target's
//! health after enough passes or failures in a row. 2xx passes.
//!
//! The task holds the target set, not the upstream: the upstream aborts it
//! when dropped, so a reload that replaces the snapshot stops its checks.
//! The new snapshot's task counts on from each target's health as it is
//! (a target carried over a reload keeps it). Each round checks the set
//! as it is then: a name's new addresses are checked from the next round,
//! removed ones no more.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, USER_AGENT};
use tokio::task::AbortHandle;

use super::members::Members;
use super::pool::Pool;
use super::roundtrip::{self, Outbound, Outgoing};
use super::spec::{HealthSpec, Protocol};
use super::target::Target;

/// Passes and failures in a row, and the verdict they lead to.
#[derive(Debug, Clone)]
pub(crate) struct HealthCounter {
    healthy: bool,
    streak: u32,
}

impl Default for HealthCounter {
    /// Targets start healthy: a fresh snapshot (a reload) must not refuse
    /// traffic until the first checks come back.
    fn default() -> Self {
        Self { healthy: true, streak: 0 }
    }
}

impl HealthCounter {
    /// Counting from a target's health now (carried over a reload).
    pub(crate) fn from_health(healthy: bool) -> Self {
        Self { healthy, streak: 0 }
    }

    /// Counts a check; returns the new health when it changes.
    pub(crate) fn record(&mut self, pass: bool, spec: &HealthSpec) -> Option<bool> {
        if pass == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if pass { spec.healthy_threshold } else { spec.unhealthy_threshold };
        if self.streak >= needed {
            self.healthy = pass;
            self.streak = 0;
            Some(pass)
        } else {
            None
        }
    }
}

/// Starts the checks (needs a tokio runtime; without one there are none).
pub(crate) fn spawn(upstream: Arc<str>, members: Arc<ArcSwap<Members>>, spec: HealthSpec) -> Option<AbortHandle> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(upstream = %upstream, "no async runtime: health checks are off");
        return None;
    };
    Some(runtime.spawn(run(upstream, members, spec)).abort_handle())
}

async fn run(upstream: Arc<str>, members: Arc<ArcSwap<Members>>, spec: HealthSpec) {
    let mut counted: Vec<(Arc<Target>, HealthCounter)> = Vec::new();
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The streaks of targets still there go on; new ones start one.
        let targets = members.load().targets.clone();
        counted = targets
            .into_iter()
            .map(|t| {
                let known = counted.iter().find(|(old, _)| Arc::ptr_eq(old, &t)).map(|(_, c)| c.clone());
                let counter = known.unwrap_or_else(|| HealthCounter::from_health(t.is_healthy()));
                (t, counter)
            })
            .collect();
        let checks = counted.iter().map(|(t, _)| probe(&t.pool, &spec.path, spec.timeout));
        let results = futures_util::future::join_all(checks).await;
        for ((target, counter), result) in counted.iter_mut().zip(results) {
            match counter.record(result.is_ok(), &spec) {
                Some(true) => {
                    tracing::info!(upstream = %upstream, target = %target.addr, "target is healthy again");
                    target.set_healthy(true);
                }
                Some(false) => {
                    let reason = result.err().unwrap_or_default();
                    tracing::warn!(upstream = %upstream, target = %target.addr, %reason, "target is unhealthy");
                    target.set_healthy(false);
                    target.pool.reset();
                }
                None => {}
            }
        }
    }
}

/// One check, on a connection of its own made as the target's are (TLS,
/// HTTP/2 as configured); the error says why it failed.
pub(crate) async fn probe(target: &Pool, path: &str, timeout: Duration) -> Result<(), String> {
    let check = async {
        let pool = Pool::new(target.connector().with_timeout(timeout), target.protocol(), timeout);
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("wasmgate-health-check"));
        let req =
            Outbound { method: &http::Method::GET, target: path, headers: &headers, at: std::time::Instant::now() };
        let resp = match pool.protocol() {
            Protocol::Http1 => {
                let conn = pool.connect().await.map_err(|e| e.to_string())?;
                roundtrip::on_conn(&pool, conn, &req, Outgoing::Bytes(Bytes::new()))
                    .await
                    .map_err(|f| format!("request: {}", f.error))?
            }
            Protocol::H2 => roundtrip::send(&pool, &req, Outgoing::Bytes(Bytes::new()))
                .await
                .map_err(|e| format!("request: {}", super::failure::error_chain(&e)))?,
        };
        let status = resp.status();
        if status.is_success() { Ok(()) } else { Err(format!("status {status}")) }
    };
    tokio::time::timeout(timeout, check).await.unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::upstream::connect::Connector;

    #[test]
    fn thresholds_need_a_streak() {
        let spec = HealthSpec { healthy_threshold: 2, unhealthy_threshold: 3, ..HealthSpec::default() };
        let mut c = HealthCounter::default();
        assert_eq!(c.record(false, &spec), None);
        assert_eq!(c.record(false, &spec), None);
        assert_eq!(c.record(true, &spec), None, "a pass breaks the failure streak");
        assert_eq!(c.record(false, &spec), None);
        assert_eq!(c.record(false, &spec), None);
        assert_eq!(c.record(false, &spec), Some(false));
        assert_eq!(c.record(false, &spec), None, "already unhealthy");
        assert_eq!(c.record(true, &spec), None);
        assert_eq!(c.record(true, &spec), Some(true));
    }

    #[tokio::test]
    async fn probes_pass_on_2xx_only() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: http::uri::Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        let status = if req.uri().path() == "/ok" { 200 } else { 500 };
                        let mut resp = http::Response::new(http_body_util::Full::new(Bytes::from("x")));
                        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let t = Duration::from_secs(5);
        let pool =
            |addr: &http::uri::Authority| Pool::new(Connector::new(addr.clone(), None, t, None), Protocol::Http1, t);
        assert_eq!(probe(&pool(&addr), "/ok", t).await, Ok(()));
        assert!(probe(&pool(&addr), "/bad", t).await.unwrap_err().contains("500"));
        let closed: http::uri::Authority = "127.0.0.1:1".parse().unwrap();
        assert!(probe(&pool(&closed), "/ok", t).await.unwrap_err().starts_with("connect"));
    }
}
