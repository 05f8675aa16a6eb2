//! A real `redis-server` for tests of the Redis state backend: its own
//! process on a free loopback port, with nothing persisted, stopped on
//! drop.
//!
//! Missing binary: installed from Debian's `redis-server` package (see
//! [`crate::packages`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "redis-server";
const PACKAGE: &str = "redis-server";
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct TestRedis {
    port: u16,
    child: Option<Child>,
    /// The server's working directory, so nothing lands in the tree.
    dir: tempfile::TempDir,
}

impl TestRedis {
    /// Starts a server on a port that was free a moment ago; another
    /// process may take it in between, so a server that cannot bind is
    /// retried on another one.
    pub fn start() -> Self {
        let binary = binary();
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(&binary, dir.path(), port) {
                Ok(child) => return Self { port, child: Some(child), dir },
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty server on the same port, as after a crash and restart.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match spawn(&binary(), self.dir.path(), self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                // The old socket may linger a moment.
                Err(e) if Instant::now() > deadline => panic!("redis-server did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is
    /// answered, as with a server too slow for the command timeout.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// One command, in the inline protocol, answered by a line: enough for
    /// tests to look at the server without a client library.
    pub fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        stream.set_read_timeout(Some(READY_WITHIN)).expect("read timeout");
        stream.write_all(format!("{line}\r\n").as_bytes()).expect("write to redis-server");
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).expect("redis-server answers");
        match first.strip_prefix('$').and_then(|n| n.trim().parse::<usize>().ok()) {
            Some(len) => {
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body).expect("bulk reply");
                String::from_utf8_lossy(&body[..len]).into_owned()
            }
            None => first.trim_end().to_owned(),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Starts the server and waits until it answers PING.
fn spawn(binary: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited with {status} (port {port} taken?)"));
        }
        if ping(port) {
            // Another test's server may answer on a port both were given:
            // only ours will do.
            if server_pid(port) == Some(child.id()) {
                return Ok(child);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("port {port} is another redis-server's"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("redis-server on port {port} did not answer PING within {READY_WITHIN:?}"))
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// The `process_id` that the server answering on `port` reports.
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).ok()? > 0 {
        if let Some(pid) = line.trim_end().strip_prefix("process_id:") {
            return pid.parse().ok();
        }
        line.clear();
    }
    None
}

/// The server binary, installed first if it is missing and we may.
fn binary() -> PathBuf {
    crate::packages::installed(BINARY, PACKAGE)
}
