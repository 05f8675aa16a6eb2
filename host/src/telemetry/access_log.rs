//! The access log: one line per request, written by a thread of its own.
//!
//! A request hands its finished [`RequestRecord`] to a bounded queue and
//! goes on; it never waits for the disk. When the writer falls behind and
//! the queue is full, the record is dropped and counted
//! (`wasmgate_access_log_dropped_total`). A file is opened for appending
//! and reopened on [`AccessLog::reopen`] (SIGUSR1), so `logrotate` can
//! rename it and signal.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use super::record::RequestRecord;
use crate::config::{AccessLogFormat, AccessLogSettings};

/// Lines waiting for the writer. A burst larger than this, faster than the
/// writer, loses lines rather than memory or latency.
const QUEUE: usize = 8192;

/// How often a writer with nothing to write checks for a reopen.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// The sending side, held by the gateway.
#[derive(Debug)]
pub(crate) struct AccessLog {
    queue: SyncSender<Box<RequestRecord>>,
    reopen: Arc<AtomicBool>,
    dropped: Counter,
}

impl AccessLog {
    /// Opens the destination and starts the writer thread. `json`: the
    /// format when the settings name none (the process's log format).
    pub(crate) fn start(settings: &AccessLogSettings, json: bool, dropped: Counter) -> io::Result<Self> {
        let format = settings.format.unwrap_or(if json { AccessLogFormat::Json } else { AccessLogFormat::Combined });
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let out = Output::open(settings.path.clone())?;
        let writer = Writer { lines, out, format, reopen: reopen.clone() };
        std::thread::Builder::new().name("access-log".into()).spawn(move || writer.run())?;
        Ok(Self { queue, reopen, dropped })
    }

    /// Queues a finished request's line; drops and counts it when the
    /// queue is full.
    pub(crate) fn submit(&self, record: Box<RequestRecord>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.queue.try_send(record) {
            self.dropped.inc();
        }
    }

    /// Makes the writer reopen its file before the next line.
    pub(crate) fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }
}

/// stdout, or a file by path.
enum Output {
    Stdout(io::Stdout),
    File { path: PathBuf, file: BufWriter<File> },
}

impl Output {
    fn open(path: Option<PathBuf>) -> io::Result<Self> {
        Ok(match path {
            None => Self::Stdout(io::stdout()),
            Some(path) => Self::File { file: BufWriter::new(append(&path)?), path },
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            // One write per line, under stdout's lock: lines never interleave.
            Self::Stdout(out) => out.lock().write_all(line),
            Self::File { file, .. } => file.write_all(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File { file, .. } => file.flush(),
        }
    }

    /// After a rotation: the old file is flushed and closed, a new one is
    /// opened at the path. If that fails, the old one keeps being written.
    fn reopen(&mut self) {
        if let Self::File { path, file } = self {
            let _ = file.flush();
            match append(path) {
                Ok(new) => *file = BufWriter::new(new),
                Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log"),
            }
        }
    }
}

fn append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct Writer {
    lines: Receiver<Box<RequestRecord>>,
    out: Output,
    format: AccessLogFormat,
    reopen: Arc<AtomicBool>,
}

impl Writer {
    /// Until every sender is gone: write what comes, flush when the queue
    /// is empty, reopen when asked.
    fn run(mut self) {
        let mut line = Vec::with_capacity(512);
        let mut failing = false;
        loop {
            let record = match self.lines.recv_timeout(IDLE_CHECK) {
                Ok(record) => Some(record),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if self.reopen.swap(false, Ordering::AcqRel) {
                self.out.reopen();
            }
            let Some(record) = record else { continue };
            line.clear();
            format(&record, self.format, &mut line);
            let mut result = self.out.write_line(&line);
            // Flush once the burst is written, not per line.
            while result.is_ok()
                && let Ok(record) = self.lines.try_recv()
            {
                line.clear();
                format(&record, self.format, &mut line);
                result = self.out.write_line(&line);
            }
            let result = result.and_then(|()| self.out.flush());
            // Said once per outage, not once per line.
            match (result, failing) {
                (Err(e), false) => {
                    tracing::error!(error = %e, "cannot write the access log; lines are lost until it works again");
                    failing = true;
                }
                (Ok(()), true) => {
                    tracing::info!("the access log is written again");
                    failing = false;
                }
                _ => {}
            }
        }
        let _ = self.out.flush();
    }
}

/// One line, newline included.
pub(crate) fn format(record: &RequestRecord, format: AccessLogFormat, out: &mut Vec<u8>) {
    match format {
        AccessLogFormat::Json => {
            // Strings and numbers: serialising cannot fail.
            let _ = serde_json::to_writer(&mut *out, &JsonLine::from(record));
        }
        AccessLogFormat::Combined => combined(record, out),
    }
    out.push(b'\n');
}

/// The JSON line's fields, in the order they are written.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    request_id: String,
    trace_id: String,
    span_id: String,
    client: String,
    method: &'a str,
    host: Option<String>,
    path: &'a str,
    protocol: &'static str,
    route: Option<&'a str>,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    upstream_target: Option<String>,
    upstream_status: Option<u16>,
    attempts: u32,
    duration_ms: f64,
    plugins_ms: f64,
    upstream_ms: f64,
    plugins: Vec<PluginLine<'a>>,
    user: Option<&'a str>,
    user_agent: Option<String>,
}

#[derive(Serialize)]
struct PluginLine<'a> {
    plugin: &'a str,
    phase: &'static str,
    result: &'static str,
    duration_ms: f64,
}

impl<'a> From<&'a RequestRecord> for JsonLine<'a> {
    fn from(r: &'a RequestRecord) -> Self {
        Self {
            time: rfc3339(r.time),
            request_id: lossy(&r.request_id),
            trace_id: r.trace.trace_id_hex(),
            span_id: r.trace.span_id_hex(),
            client: r.client.to_string(),
            method: r.method.as_str(),
            host: r.host.as_ref().map(lossy),
            path: &r.path,
            protocol: protocol(r.version),
            route: r.route.as_deref(),
            status: r.status,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            upstream_target: r.upstream.target.as_ref().map(ToString::to_string),
            upstream_status: r.upstream.status,
            attempts: r.upstream.attempts,
            duration_ms: ms(r.duration),
            plugins_ms: ms(r.plugins_time()),
            upstream_ms: ms(r.upstream.elapsed),
            plugins: r
                .plugins
                .iter()
                .map(|c| PluginLine {
                    plugin: &c.plugin,
                    phase: c.phase.as_str(),
                    result: c.result.as_str(),
                    duration_ms: ms(c.elapsed),
                })
                .collect(),
            user: r.user.as_deref(),
            user_agent: r.user_agent.as_ref().map(lossy),
        }
    }
}

/// Apache's combined format (`%h - %u [%t] "%r" %>s %b "%{Referer}i"
/// "%{User-agent}i"`, the referer left out as `-`), then the gateway's own
/// fields as `key=value`. Values a client chose are quoted with `"` and `\`
/// escaped, and control bytes shown as `\xNN`, so no client can forge a
/// line or a field.
fn combined(r: &RequestRecord, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(out, "{} - ", r.client.ip());
    match &r.user {
        Some(user) => escaped(user.as_bytes(), out),
        None => out.push(b'-'),
    }
    let _ = write!(out, " [{}] \"{} ", clf_time(r.time), r.method);
    escape_into(r.path.as_bytes(), out);
    let _ = write!(out, " {}\" {} {} \"-\" ", protocol(r.version), r.status, r.bytes_out);
    match &r.user_agent {
        Some(ua) => escaped(ua.as_bytes(), out),
        None => out.extend_from_slice(b"\"-\""),
    }
    let _ = write!(out, " request_id=");
    escaped(r.request_id.as_bytes(), out);
    let _ = write!(out, " trace_id={} route=", r.trace.trace_id_hex());
    match &r.route {
        Some(route) => escaped(route.as_bytes(), out),
        None => out.push(b'-'),
    }
    let _ = write!(out, " host=");
    match &r.host {
        Some(host) => escaped(host.as_bytes(), out),
        None => out.push(b'-'),
    }
    let target = r.upstream.target.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let status = r.upstream.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
    let _ = write!(
        out,
        " bytes_in={} upstream={target} upstream_status={status} attempts={} duration_ms={:.3} plugins_ms={:.3} \
         upstream_ms={:.3} plugins=",
        r.bytes_in,
        r.upstream.attempts,
        ms(r.duration),
        ms(r.plugins_time()),
        ms(r.upstream.elapsed),
    );
    if r.plugins.is_empty() {
        out.push(b'-');
    }
    for (i, c) in r.plugins.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{}:{}:{}:{:.3}", c.plugin, c.phase.as_str(), c.result.as_str(), ms(c.elapsed));
    }
}

/// `"value"`, escaped.
fn escaped(value: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    escape_into(value, out);
    out.push(b'"');
}

fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

fn lossy(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn ms(d: Duration) -> f64 {
    // Microsecond precision is plenty and keeps lines short.
    (d.as_micros() as f64) / 1000.0
}

/// UTC date and time of a Unix time: (year, month, day, h, m, s, ms).
fn civil(time: std::time::SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60, since.subsec_millis())
}

/// `2026-12-05T14:00:23.123Z`.
fn rfc3339(time: std::time::SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `05/Dec/2026:14:00:23 +0000`, as the combined format writes it.
fn clf_time(time: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, _) = civil(time);
    let month = MONTHS.get(mo.saturating_sub(1) as usize).unwrap_or(&"Jan");
    format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http::{HeaderValue, Method, Request};

    use super::super::metrics::{Phase, PluginResult};
    use super::super::record::{PluginCall, Tries};
    use super::super::trace_context::TraceContext;
    use super::*;

    fn record() -> RequestRecord {
        // Obs-text: a byte a client may send, and no line may show raw.
        let agent = HeaderValue::from_bytes(b"curl/8 \"quoted\" \xff").unwrap();
        let head = Request::builder()
            .method(Method::POST)
            .uri("/users/7")
            .header("host", "api.example")
            .header("user-agent", agent)
            .header("content-length", "12")
            .body(())
            .unwrap();
        let start = Instant::now();
        let mut r = RequestRecord::new(
            &head,
            "10.0.0.9:5555".parse().unwrap(),
            HeaderValue::from_static("req-1"),
            TraceContext::from_headers(head.headers()),
            start,
            true,
        );
        r.time = UNIX_EPOCH + Duration::from_millis(1_764_943_223_123);
        r.path = "/users/7".into();
        r.route = Some("users".into());
        r.status = 201;
        r.bytes_out = 34;
        r.upstream = Tries {
            attempts: 2,
            target: Some("127.0.0.1:9101".parse().unwrap()),
            status: Some(201),
            elapsed: Duration::from_micros(1500),
            ..Tries::default()
        };
        r.plugins = vec![
            PluginCall {
                plugin: "auth".into(),
                started: r.start,
                phase: Phase::Request,
                result: PluginResult::Continue,
                elapsed: Duration::from_micros(250),
            },
            PluginCall {
                plugin: "cors".into(),
                started: r.start,
                phase: Phase::Response,
                result: PluginResult::FailOpen,
                elapsed: Duration::from_micros(100),
            },
        ];
        r.user = Some("alice".into());
        r.duration = Duration::from_micros(2500);
        r
    }

    #[test]
    fn a_json_line_has_every_field() {
        let r = record();
        let mut out = Vec::new();
        format(&r, AccessLogFormat::Json, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["time"], "2025-12-05T14:00:23.123Z");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["trace_id"], r.trace.trace_id_hex());
        assert_eq!(v["client"], "10.0.0.9:5555");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["host"], "api.example");
        assert_eq!(v["path"], "/users/7");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["route"], "users");
        assert_eq!(v["status"], 201);
        assert_eq!(v["bytes_in"], 12);
        assert_eq!(v["bytes_out"], 34);
        assert_eq!(v["upstream_target"], "127.0.0.1:9101");
        assert_eq!(v["upstream_status"], 201);
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["duration_ms"], 2.5);
        assert_eq!(v["plugins_ms"], 0.35);
        assert_eq!(v["upstream_ms"], 1.5);
        assert_eq!(
            v["plugins"][0],
            serde_json::json!({"plugin": "auth", "phase": "request", "result": "continue", "duration_ms": 0.25})
        );
        assert_eq!(v["plugins"][1]["result"], "fail_open");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["user_agent"], "curl/8 \"quoted\" \u{fffd}");
    }

    #[test]
    fn a_combined_line_escapes_what_clients_chose() {
        let r = record();
        let mut out = Vec::new();
        format(&r, AccessLogFormat::Combined, &mut out);
        let line = String::from_utf8(out).unwrap();
        let trace = r.trace.trace_id_hex();
        assert_eq!(
            line,
            format!(
                "10.0.0.9 - \"alice\" [05/Dec/2025:14:00:23 +0000] \"POST /users/7 HTTP/1.1\" 201 34 \"-\" \
                 \"curl/8 \\\"quoted\\\" \\xff\" request_id=\"req-1\" trace_id={trace} route=\"users\" \
                 host=\"api.example\" bytes_in=12 upstream=127.0.0.1:9101 upstream_status=201 attempts=2 \
                 duration_ms=2.500 plugins_ms=0.350 upstream_ms=1.500 \
                 plugins=auth:request:continue:0.250,cors:response:fail_open:0.100\n"
            )
        );
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day, and the last second of a year.
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(clf_time(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "31/Dec/2025:23:59:59 +0000");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, lines) = mpsc::sync_channel(2);
        let dropped = Counter::default();
        let log = AccessLog { queue, reopen: Arc::new(AtomicBool::new(false)), dropped: dropped.clone() };
        for _ in 0..5 {
            log.submit(Box::new(record()));
        }
        assert_eq!(dropped.get(), 3);
        assert_eq!(lines.try_iter().count(), 2);
        drop(lines);
        log.submit(Box::new(record()));
        assert_eq!(dropped.get(), 4, "a stopped writer drops too");
        drop(dir);
    }

    #[test]
    fn the_file_is_reopened_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let settings =
            AccessLogSettings { enabled: true, path: Some(path.clone()), format: Some(AccessLogFormat::Json) };
        let log = AccessLog::start(&settings, false, Counter::default()).unwrap();
        let lines = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default().lines().count();
        let wait_for = |p: &std::path::Path, n: usize| {
            for _ in 0..500 {
                if lines(p) >= n {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{} never had {n} lines", p.display());
        };
        log.submit(Box::new(record()));
        wait_for(&path, 1);
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        // Until the writer sees the flag (at its next line or idle check),
        // lines may still go to the renamed file: wait for the new one.
        let mut sent = 1usize;
        while !path.exists() {
            log.submit(Box::new(record()));
            sent += 1;
            std::thread::sleep(Duration::from_millis(20));
            assert!(sent < 200, "never reopened");
        }
        log.submit(Box::new(record()));
        sent += 1;
        for _ in 0..500 {
            if lines(&rotated) + lines(&path) == sent && lines(&path) >= 1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} lines sent, {} + {} written", sent, lines(&rotated), lines(&path));
    }
}
