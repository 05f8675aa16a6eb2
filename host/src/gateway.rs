//! The gateway: the current snapshot behind one atomic pointer, and the
//! entry point every request goes through, with or without a socket.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Request, Response};

use crate::body::Body;
use crate::config::{self, Config, ConfigErrors};
use crate::proxy_headers::{self, REQUEST_ID};
use crate::runtime::Runtime;
use crate::services::PluginMetrics;
use crate::snapshot::{Shared, Snapshot};
use crate::state::StateStore;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error("cannot start the plugin runtime: {0:#}")]
    Runtime(anyhow::Error),
}

pub struct Gateway {
    current: ArcSwap<Snapshot>,
    shared: Shared,
}

impl Gateway {
    /// Loads, checks and builds a config file into a running gateway.
    pub async fn load(path: &Path) -> Result<Self, StartError> {
        Self::new(config::load(path)?).await
    }

    pub async fn new(config: Config) -> Result<Self, StartError> {
        let runtime = Runtime::new(config.engine, config.cache_dir.clone()).map_err(StartError::Runtime)?;
        let shared = Shared {
            runtime,
            state: Arc::new(StateStore::local()),
            metrics: Arc::new(PluginMetrics::default()),
            started: Instant::now(),
        };
        let snapshot = Snapshot::build(config, &shared)
            .await
            .map_err(|errors| StartError::Config(ConfigErrors::Invalid(errors)))?;
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            shared,
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn metrics(&self) -> &PluginMetrics {
        &self.shared.metrics
    }

    /// Handles one request end to end. Never fails: every error becomes a
    /// problem+json response. The response carries the request id.
    pub async fn handle(&self, req: Request<Body>, client: SocketAddr) -> Response<Body> {
        let snapshot = self.current.load_full();
        let request_id = proxy_headers::request_id(req.headers());
        let mut resp = crate::handler::handle(&snapshot, req, client, request_id.clone()).await;
        resp.headers_mut().insert(REQUEST_ID, request_id);
        resp
    }
}
