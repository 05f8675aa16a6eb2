//! A `wasmgate run` process, as an operator starts it: the address it
//! listens on comes from its own log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Killed when dropped, so a failing test leaves no gateway behind.
pub struct GatewayProcess {
    child: Child,
    /// The first plaintext address its log says it listens on.
    pub addr: SocketAddr,
    log: Option<JoinHandle<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts `bin run config` with JSON logs at `info` and waits (up to
    /// `bound`) for the address it listens on.
    pub fn start(bin: &str, config: &Path, bound: Duration) -> Self {
        let mut child = Command::new(bin)
            .args(["--log-format", "json", "run"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                    && json["fields"]["message"] == "wasmgate listening"
                    && json["fields"]["tls"].is_null()
                    && let Some(addr) = json["fields"]["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = addr_tx.send(addr);
                }
                lines.push(line);
            }
            lines
        });
        let mut process = GatewayProcess { child, addr: ([0, 0, 0, 0], 0).into(), log: Some(log) };
        match addr_rx.recv_timeout(bound) {
            Ok(addr) => process.addr = addr,
            Err(_) => {
                let _ = process.child.kill();
                let (status, lines) = process.wait();
                panic!("the gateway logged no address within {bound:?} ({status}); log:\n{}", lines.join("\n"));
            }
        }
        process
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to exit; its exit status and every line it logged.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("waiting for the gateway");
        let lines = self.log.take().map(|log| log.join().unwrap_or_default()).unwrap_or_default();
        (status, lines)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.log.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
