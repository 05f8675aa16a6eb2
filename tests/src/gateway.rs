//! A gateway started from a config file, serving on loopback ports, with its
//! admin API and file watcher running as `wasmgate run` would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmgate::{Config, ConfigErrors, Gateway, Running, StartError, Watcher};

use crate::client::Client;

pub struct TestGateway {
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    pub client: Client,
    /// The admin API.
    pub admin: Client,
    /// The admin API's address.
    pub admin_addr: SocketAddr,
    running: Vec<Running>,
    _watcher: Watcher,
    dir: Option<tempfile::TempDir>,
}

impl TestGateway {
    /// Writes `toml` to `gateway.toml` in a fresh folder and starts a
    /// gateway from it (any listen address in it is replaced by
    /// `127.0.0.1:0`).
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
        let mut gw = Self::try_start_at(&path).await.map_err(|e| (e, path))?;
        gw.dir = Some(dir);
        Ok(gw)
    }

    /// Starts from an existing config file (reload tests edit it later).
    pub async fn start_at(path: &Path) -> Self {
        match Self::try_start_at(path).await {
            Ok(gw) => gw,
            Err(e) => panic!("gateway failed to start:\n{e}"),
        }
    }

    async fn try_start_at(path: &Path) -> Result<Self, StartError> {
        Self::try_start_config(wasmgate::load_config(path)?).await
    }

    /// Starts from a checked config (its listen addresses are replaced).
    pub async fn start_config(config: Config) -> Self {
        match Self::try_start_config(config).await {
            Ok(gw) => gw,
            Err(e) => panic!("gateway failed to start:\n{e}"),
        }
    }

    async fn try_start_config(mut config: Config) -> Result<Self, StartError> {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        config.listen = vec![loopback];
        // Only to a file: lines on stdout would bury the test output.
        let access_log = config.access_log.path.is_some();
        let gateway = Arc::new(Gateway::new(config).await?);
        if access_log {
            gateway.start_access_log(true).expect("opening the access log");
        }
        let traffic = wasmgate::serve(gateway.clone(), wasmgate::bind(&[loopback]).await.expect("binding"));
        gateway.count_connections(traffic.connections.clone());
        let admin = wasmgate::serve_admin(gateway.clone(), wasmgate::bind(&[loopback]).await.expect("binding"));
        let watcher = wasmgate::watch(gateway.clone()).expect("watching the config");
        let addr = traffic.addrs[0];
        Ok(Self {
            gateway,
            addr,
            client: Client::new(addr),
            admin: Client::new(admin.addrs[0]),
            admin_addr: admin.addrs[0],
            running: vec![traffic, admin],
            _watcher: watcher,
            dir: None,
        })
    }

    /// The folder of a config started with `start`.
    pub fn config_dir(&self) -> &Path {
        self.dir.as_ref().expect("started from TOML text").path()
    }

    /// Stops accepting and drains in-flight requests.
    pub async fn shutdown(mut self) {
        for r in self.running.drain(..) {
            r.shutdown().await;
        }
    }
}

/// Starts a gateway from `toml` that must be refused; returns its errors,
/// one string each, and the config file's path as the errors name it.
pub async fn refused(toml: &str) -> (Vec<String>, String) {
    match TestGateway::try_start(toml).await {
        Ok(_) => panic!("the config should be refused"),
        Err((e, path)) => (error_lines(&e), path.display().to_string()),
    }
}

/// The config errors of a failed start, one string each.
pub fn error_lines(e: &StartError) -> Vec<String> {
    match e {
        StartError::Config(ConfigErrors::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}
