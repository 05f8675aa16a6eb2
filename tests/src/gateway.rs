//! A gateway started from TOML text, serving on a loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmgate::config::ConfigErrors;
use wasmgate::server::{self, Running};
use wasmgate::{Gateway, StartError};

use crate::client::Client;

pub struct TestGateway {
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    pub client: Client,
    running: Option<Running>,
    dir: tempfile::TempDir,
}

impl TestGateway {
    /// Writes `toml` to `gateway.toml` in a fresh folder and starts a
    /// gateway from it on `127.0.0.1:0` (any `[server]` listen is replaced).
    pub async fn start(toml: &str) -> Self {
        match Self::try_start(toml).await {
            Ok(gw) => gw,
            Err((e, _)) => panic!("gateway failed to start:\n{e}"),
        }
    }

    /// Like `start`, returning the error and the config's path.
    pub async fn try_start(toml: &str) -> Result<Self, (StartError, PathBuf)> {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml).expect("writing the test config");
        let mut config = match wasmgate::config::load(&path) {
            Ok(c) => c,
            Err(e) => return Err((e.into(), path)),
        };
        config.listen = vec!["127.0.0.1:0".parse().unwrap()];
        let gateway = match Gateway::new(config).await {
            Ok(g) => Arc::new(g),
            Err(e) => return Err((e, path)),
        };
        let listeners = server::bind(&gateway.snapshot().config.listen).await.expect("binding");
        let running = server::serve(gateway.clone(), listeners);
        let addr = running.addrs[0];
        Ok(Self {
            gateway,
            addr,
            client: Client::new(addr),
            running: Some(running),
            dir,
        })
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// The config errors of a failed start, one string each.
pub fn error_lines(e: &StartError) -> Vec<String> {
    match e {
        StartError::Config(ConfigErrors::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}
