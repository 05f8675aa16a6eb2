//! Upstream services: target selection and the pooled HTTP client.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::body::Body;

/// Why a request got no response from an upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {upstream} did not answer within {timeout:?}")]
    Timeout { upstream: Arc<str>, timeout: Duration },
    #[error("upstream {upstream} ({target}) is unavailable: {reason}")]
    Unavailable {
        upstream: Arc<str>,
        target: Authority,
        reason: String,
    },
}

/// Settings of one upstream, from the checked config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub name: String,
    pub targets: Vec<Authority>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// One named upstream service with its targets.
pub struct Upstream {
    name: Arc<str>,
    targets: Vec<Authority>,
    next: AtomicUsize,
    timeout: Duration,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    pub fn new(spec: &UpstreamSpec) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(spec.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self {
            name: spec.name.as_str().into(),
            targets: spec.targets.clone(),
            next: AtomicUsize::new(0),
            timeout: spec.timeout,
            client,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Round robin over the targets.
    fn pick(&self) -> &Authority {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// Sends a request (its URI is rewritten to the chosen target, keeping
    /// path and query) and waits for the response head.
    pub async fn send(
        &self,
        mut req: http::Request<Body>,
        timeout: Option<Duration>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let target = self.pick().clone();
        let pq = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(target.clone());
        parts.path_and_query = Some(pq);
        *req.uri_mut() = Uri::from_parts(parts).expect("scheme, authority and path make a URI");
        // Upstreams are spoken to in HTTP/1.1 whatever the client used.
        *req.version_mut() = http::Version::HTTP_11;

        let timeout = timeout.unwrap_or(self.timeout);
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout {
                upstream: self.name.clone(),
                timeout,
            }),
            Ok(Err(e)) => Err(UpstreamError::Unavailable {
                upstream: self.name.clone(),
                target,
                reason: error_chain(&e),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The upstreams of one snapshot, by name.
#[derive(Default)]
pub struct Upstreams {
    by_name: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    pub fn new(specs: &[UpstreamSpec]) -> Self {
        Self {
            by_name: specs
                .iter()
                .map(|s| (s.name.clone(), Arc::new(Upstream::new(s))))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name)
    }
}
