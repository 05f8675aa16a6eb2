//! A `wasmgate run` process, as an operator starts it: the addresses it
//! listens on come from its own log, which the test can read while it
//! runs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Killed when dropped, so a failing test leaves no gateway behind.
pub struct GatewayProcess {
    child: Child,
    /// The first plaintext address its log says it listens on.
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    /// What it wrote to stdout: the access log, unless it goes to a file.
    out: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// A "… listening" line of the log.
enum Listening {
    Traffic(SocketAddr),
    Admin(SocketAddr),
}

impl GatewayProcess {
    /// Starts `bin run config` with JSON logs at `info` and waits (up to
    /// `bound`) for the address it listens on.
    pub fn start(bin: &str, config: &Path, bound: Duration) -> Self {
        Self::start_with(bin, config, "json", bound)
    }

    /// As [`Self::start`], with `--log-format log_format`.
    pub fn start_with(bin: &str, config: &Path, log_format: &str, bound: Duration) -> Self {
        let mut child = Command::new(bin)
            .args(["--log-format", log_format, "run"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let out = Arc::new(Mutex::new(Vec::new()));
        let written = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                written.lock().unwrap().push(line);
            }
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Kept before the address is announced: a test that reads
                // the log once the gateway listens finds the line.
                let listening = listening(&line);
                log.lock().unwrap().push(line);
                if let Some(listening) = listening {
                    let _ = addr_tx.send(listening);
                }
            }
        });
        let mut process = GatewayProcess { child, addr: ([0, 0, 0, 0], 0).into(), lines, out, reader: Some(reader) };
        loop {
            match addr_rx.recv_timeout(bound) {
                Ok(Listening::Admin(_)) => {}
                Ok(Listening::Traffic(addr)) => {
                    process.addr = addr;
                    break;
                }
                Err(_) => {
                    let _ = process.child.kill();
                    let (status, lines) = process.wait();
                    panic!("the gateway logged no address within {bound:?} ({status}); log:\n{}", lines.join("\n"));
                }
            }
        }
        process
    }

    /// Its process id, for signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The admin API's address, from its log (it is logged right after the
    /// traffic listeners'); panics if none is logged within 10 s.
    pub fn admin(&self) -> SocketAddr {
        for _ in 0..1000 {
            let lines = self.lines.lock().unwrap();
            if let Some(addr) = lines.iter().find_map(|line| match listening(line) {
                Some(Listening::Admin(addr)) => Some(addr),
                _ => None,
            }) {
                return addr;
            }
            drop(lines);
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the gateway logged no admin address");
    }

    /// Lines logged so far that contain `text`.
    pub fn logged(&self, text: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|line| line.contains(text)).count()
    }

    /// The lines it wrote to stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// Waits for it to exit; its exit status and every line it logged.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("waiting for the gateway");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (status, lines)
    }

    /// Stops it as an operator does, with SIGTERM; asserts that it exits
    /// cleanly and returns its whole log.
    pub fn terminate(self) -> Vec<String> {
        let killed = Command::new("kill").args(["-TERM", &self.id().to_string()]).status().expect("running kill");
        assert!(killed.success(), "kill -TERM failed");
        let (status, lines) = self.wait();
        assert!(status.success(), "exit status {status:?}; log:\n{}", lines.join("\n"));
        lines
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address of a "wasmgate listening" (plain text, not TLS) or "admin
/// API listening" line, in either log format.
fn listening(line: &str) -> Option<Listening> {
    let (message, addr, tls) = if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        let fields = &json["fields"];
        (fields["message"].as_str()?.to_owned(), fields["addr"].as_str()?.to_owned(), !fields["tls"].is_null())
    } else {
        // Colour codes, were there any, would not hide the address.
        let plain = without_colour(line);
        let message = ["wasmgate listening", "admin API listening"].into_iter().find(|m| plain.contains(m))?;
        let (_, rest) = plain.split_once(message)?;
        let field = |key: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(key).map(str::to_owned));
        (message.to_owned(), field("addr=")?, field("tls=").is_some())
    };
    let addr = addr.parse().ok()?;
    match message.as_str() {
        "wasmgate listening" if !tls => Some(Listening::Traffic(addr)),
        "admin API listening" => Some(Listening::Admin(addr)),
        _ => None,
    }
}

/// `line` without `ESC [ … m` sequences.
pub fn without_colour(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some((before, after)) = rest.split_once('\u{1b}') {
        out.push_str(before);
        rest = after.split_once('m').map_or("", |(_, tail)| tail);
    }
    out.push_str(rest);
    out
}
