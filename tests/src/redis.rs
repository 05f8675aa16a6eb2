//! A real `redis-server` for tests of the Redis state backend: its own
//! process on a free loopback port, with nothing persisted, stopped on
//! drop.
//!
//! Missing binary: installed from Debian's `redis-server` package when
//! running as root (as benches/common.sh installs wrk and nginx), else the
//! test fails saying how to install it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
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
            return Ok(child);
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

/// The server binary, installed first if it is missing and we may.
fn binary() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(BINARY) {
        return found;
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    assert!(
        root,
        "{BINARY} is not installed and this is not root: install it with \
         `sudo apt-get install {PACKAGE}` (Debian/Ubuntu) or put {BINARY} on PATH"
    );
    let apt = |args: &[&str]| {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{BINARY} is missing and apt-get cannot run: {e}"));
        assert!(status.success(), "apt-get {args:?} failed: install {PACKAGE} by hand");
    };
    apt(&["update", "-qq"]);
    apt(&["install", "-y", "-qq", "--no-install-recommends", PACKAGE]);
    find(BINARY).unwrap_or_else(|| panic!("{PACKAGE} installed but {BINARY} is not on PATH"))
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}
