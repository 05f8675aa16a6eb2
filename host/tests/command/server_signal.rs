//! `wasmgate run` shuts down gracefully on SIGTERM: it stops accepting,
//! finishes the request in flight, and exits 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use wasmgate_testbed::{Answer, Client, TestUpstream};

const BOUND: Duration = Duration::from_secs(20);

/// Kills the gateway if the test fails before it exits by itself.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let up = TestUpstream::start(|_| Answer::new(200, "slow but done").delay(Duration::from_secs(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
            up.target()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["--log-format", "json", "run"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());

    // The address it bound, from its log.
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["fields"]["message"] == "wasmgate listening"
                && let Some(addr) = json["fields"]["addr"].as_str()
            {
                let _ = addr_tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            lines.push(line);
        }
        lines
    });
    let addr = addr_rx.recv_timeout(BOUND).expect("the gateway logs its address");

    let client = Client::new(addr);
    let slow = tokio::spawn(async move { client.get("/slow").await });
    let deadline = std::time::Instant::now() + BOUND;
    while up.count() == 0 {
        assert!(std::time::Instant::now() < deadline, "the request reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    // New connections are refused once the listener is closed.
    let deadline = std::time::Instant::now() + BOUND;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the listener closes after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let reply = tokio::time::timeout(BOUND, slow).await.expect("the in-flight request finishes").unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slow but done"));
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    std::mem::forget(guard);
    let lines = log.join().unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("drained; exiting")), "{lines:?}");
}
