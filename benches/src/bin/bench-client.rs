//! Helpers the load scripts drive:
//!
//! ```text
//! bench-client hold ADDR N SECONDS [PATH]   open N keep-alive connections, one request on each,
//!                                           print "holding N", keep them open SECONDS
//! bench-client startup WASMGATE RUNS        start-to-ready of `WASMGATE run` with 10 plugins,
//!                                           cold (empty artifact cache) and warm; a Markdown table
//! bench-client latency ADDR N PATH_A PATH_B [AUTHORIZATION]
//!                                           N requests to each path, alternating A and B on one
//!                                           keep-alive connection each; prints the p50 and p99 of
//!                                           each in µs ("A_P50 A_P99 B_P50 B_P99")
//! bench-client noisy ADDR N PATH NOISE_PATH CONNS
//!                                           N requests to PATH on one keep-alive connection while
//!                                           CONNS connections send NOISE_PATH back to back; prints
//!                                           PATH's p50, p99 and max in µs, then the noise requests
//!                                           sent and how many of them were not 2xx
//!                                           ("P50 P99 MAX NOISE NOISE_ERRORS"); CONNS = 0: no noise
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmgate_testbed::files::stamp_component;
use wasmgate_testbed::plugins::{ADD_HEADER, AGGREGATE, JWT_AUTH, RATE_LIMIT, TRANSFORM};

/// Sends `GET path` on a keep-alive connection and reads the whole reply;
/// returns the status.
fn get(stream: &mut TcpStream, path: &str) -> std::io::Result<u16> {
    get_with(stream, path, "")
}

/// [`get`] with extra header lines (each ending in CRLF).
fn get_with(stream: &mut TcpStream, path: &str, extra: &str) -> std::io::Result<u16> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-client\r\n{extra}\r\n")?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

fn hold(addr: SocketAddr, n: usize, seconds: u64, path: &str) {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        get(&mut stream, path).unwrap_or_else(|e| panic!("request on connection {i}: {e}"));
        held.push(stream);
    }
    println!("holding {n}");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(seconds));
    drop(held);
}

const PORT: u16 = 19290;

/// A config with 10 distinct plugin components: the five shipped plugins
/// and five builds of the version-stamp fixture.
fn write_site(dir: &Path) {
    let mut toml = format!(
        r#"
[server]
listen = ["127.0.0.1:{PORT}"]

[runtime]
cache_dir = "cache"

[upstreams.users]
targets = ["127.0.0.1:9"]
[upstreams.orders]
targets = ["127.0.0.1:9"]
[upstreams.products]
targets = ["127.0.0.1:9"]

[plugins.jwt-auth]
path = "{JWT_AUTH}"
config = {{ issuers = ["https://demo.wasmgate.test"], keys = [{{ kid = "demo", secret = "demo-secret-change-me-0123456789ab", algorithms = ["HS256"] }}] }}
[plugins.rate-limit]
path = "{RATE_LIMIT}"
config = {{ key = ["route", "ip"], limits = [{{ limit = 1000000, window = "1s" }}] }}
[plugins.transform]
path = "{TRANSFORM}"
[plugins.aggregate]
path = "{AGGREGATE}"
[plugins.add-header]
path = "{ADD_HEADER}"
config = {{ request = {{ x-gateway = "wasmgate" }} }}

[[routes]]
name = "user"
path = "/users/{{id}}"
upstream = "users"
pipeline = [{{ plugin = "jwt-auth" }}, {{ plugin = "rate-limit" }}, {{ plugin = "transform", config = {{ request = {{ headers = {{ set = {{ x-gateway = "wasmgate" }} }} }} }} }}]

[[routes]]
name = "dashboard"
path = "/users/{{id}}/dashboard"
pipeline = [{{ plugin = "jwt-auth" }}, {{ plugin = "aggregate", config = {{ parts = [{{ name = "user", upstream = "users", path = "/users/{{param.id}}" }}] }} }}]

[[routes]]
name = "products"
prefix = "/products"
upstream = "products"
pipeline = [{{ plugin = "add-header" }}]
"#
    );
    for i in 1..=5 {
        std::fs::write(dir.join(format!("stamp{i}.wasm")), stamp_component(&format!("stamp-b{i:07}"))).unwrap();
        toml.push_str(&format!(
            "\n[plugins.stamp{i}]\npath = \"stamp{i}.wasm\"\n[[routes]]\nname = \"v{i}\"\npath = \"/v{i}\"\npipeline = [{{ plugin = \"stamp{i}\", config = {{ respond = true }} }}]\n"
        ));
    }
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
}

/// Starts the gateway and polls until `/v5` answers 200.
fn start_to_ready(wasmgate: &str, dir: &Path) -> Duration {
    let addr: SocketAddr = ([127, 0, 0, 1], PORT).into();
    let start = Instant::now();
    let mut child = Command::new(wasmgate)
        .arg("run")
        .arg(dir.join("gateway.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting wasmgate");
    let ready = loop {
        if let Ok(mut stream) = TcpStream::connect(addr)
            && get(&mut stream, "/v5").is_ok_and(|status| status == 200)
        {
            break start.elapsed();
        }
        // A guard against waiting forever on a broken start, not a measurement.
        if start.elapsed() > Duration::from_secs(60) {
            panic!("wasmgate never became ready");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("wasmgate exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = child.kill();
    let _ = child.wait();
    ready
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn startup(wasmgate: &str, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_site(dir.path());
    let cache = dir.path().join("cache");
    let row = |label: &str, cold: bool| {
        let mut samples: Vec<Duration> = (0..runs)
            .map(|_| {
                if cold {
                    let _ = std::fs::remove_dir_all(&cache);
                }
                start_to_ready(wasmgate, dir.path())
            })
            .collect();
        samples.sort();
        println!(
            "| {label} | {} | {} | {} | {runs} |",
            ms(samples[samples.len() / 2]),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
        samples[samples.len() / 2]
    };
    println!("| start with 10 plugins | median | min | max | runs |");
    println!("| --- | --- | --- | --- | --- |");
    let cold = row("cold (empty artifact cache)", true);
    start_to_ready(wasmgate, dir.path()); // fill the cache
    let warm = row("warm (artifact cache filled)", false);
    println!("\nwarm / cold: {:.2}", warm.as_secs_f64() / cold.as_secs_f64());
}

/// Latency of two routes measured side by side: requests alternate, so a
/// noisy neighbour slows both alike and the difference of the medians is
/// what the second route adds.
fn latency(addr: SocketAddr, n: usize, a: &str, b: &str, authorization: Option<&str>) {
    let extra = authorization.map(|v| format!("Authorization: {v}\r\n")).unwrap_or_default();
    let mut conns = [a, b].map(|path| {
        let mut stream = TcpStream::connect(addr).expect("connecting");
        stream.set_nodelay(true).expect("nodelay");
        // Warm-up: instances created, caches filled.
        for _ in 0..n / 10 + 10 {
            assert_eq!(get_with(&mut stream, path, &extra).expect("warm-up request"), 200, "{path}");
        }
        (stream, path, Vec::with_capacity(n))
    });
    for _ in 0..n {
        for (stream, path, times) in &mut conns {
            let start = Instant::now();
            let status = get_with(stream, path, &extra).expect("request");
            times.push(start.elapsed());
            assert_eq!(status, 200, "{path}");
        }
    }
    let line: Vec<String> = conns
        .iter_mut()
        .flat_map(|(_, _, times)| {
            times.sort();
            let at = |q: f64| quantile_us(times, q).to_string();
            [at(0.5), at(0.99)]
        })
        .collect();
    println!("{}", line.join(" "));
}

/// The p-quantile of sorted times, in µs.
fn quantile_us(sorted: &[Duration], q: f64) -> u128 {
    sorted[((sorted.len() - 1) as f64 * q) as usize].as_micros()
}

/// One route's latency while other connections keep a noisy route busy:
/// what a misbehaving plugin costs the routes that do not use it.
fn noisy(addr: SocketAddr, n: usize, path: &str, noise_path: &str, conns: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let noise: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, sent, failed, noise_path) = (stop.clone(), sent.clone(), failed.clone(), noise_path.to_owned());
            std::thread::spawn(move || {
                let mut stream = None;
                while !stop.load(Ordering::Relaxed) {
                    let conn = match &mut stream {
                        Some(conn) => conn,
                        None => stream.insert(TcpStream::connect(addr).expect("connecting")),
                    };
                    let result = get(conn, &noise_path);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !result.as_ref().is_ok_and(|status| (200..300).contains(status)) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if result.is_err() {
                        stream = None;
                    }
                }
            })
        })
        .collect();

    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream.set_nodelay(true).expect("nodelay");
    // Few: under some noise each takes a second.
    for _ in 0..10 {
        assert_eq!(get(&mut stream, path).expect("warm-up request"), 200, "{path}");
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let status = get(&mut stream, path).expect("request");
        times.push(start.elapsed());
        assert_eq!(status, 200, "{path}");
    }
    stop.store(true, Ordering::Relaxed);
    for thread in noise {
        let _ = thread.join();
    }
    times.sort();
    println!(
        "{} {} {} {} {}",
        quantile_us(&times, 0.5),
        quantile_us(&times, 0.99),
        quantile_us(&times, 1.0),
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, what: &str| args.get(i).cloned().unwrap_or_else(|| panic!("missing {what}"));
    match args.get(1).map(String::as_str) {
        Some("hold") => hold(
            arg(2, "ADDR").parse().expect("ADDR"),
            arg(3, "N").parse().expect("N"),
            arg(4, "SECONDS").parse().expect("SECONDS"),
            args.get(5).map_or("/", String::as_str),
        ),
        Some("startup") => startup(&arg(2, "WASMGATE"), arg(3, "RUNS").parse().expect("RUNS")),
        Some("latency") => latency(
            arg(2, "ADDR").parse().expect("ADDR"),
            arg(3, "N").parse().expect("N"),
            &arg(4, "PATH_A"),
            &arg(5, "PATH_B"),
            args.get(6).map(String::as_str),
        ),
        Some("noisy") => noisy(
            arg(2, "ADDR").parse().expect("ADDR"),
            arg(3, "N").parse().expect("N"),
            &arg(4, "PATH"),
            &arg(5, "NOISE_PATH"),
            arg(6, "CONNS").parse().expect("CONNS"),
        ),
        _ => {
            eprintln!(
                "usage: bench-client hold ADDR N SECONDS [PATH] | startup WASMGATE RUNS | latency ADDR N PATH_A PATH_B [AUTHORIZATION] | noisy ADDR N PATH NOISE_PATH CONNS"
            );
            std::process::exit(2);
        }
    }
}
