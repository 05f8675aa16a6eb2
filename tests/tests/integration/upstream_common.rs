//! Helpers shared by the `upstream_*` tests.

use std::net::SocketAddr;
use std::time::Duration;

use wasmgate_testbed::{Answer, Reply, Seen, TestUpstream};

/// The first word of a `TestUpstream::named` answer: who served it.
pub fn served_by(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text().split(' ').next().unwrap_or_default().to_owned()
}

/// Starts an upstream on `addr` again once the old one's port is free.
pub async fn restart(addr: SocketAddr, respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> TestUpstream {
    for _ in 0..250 {
        if std::net::TcpListener::bind(addr).is_ok() {
            return TestUpstream::start_on(addr, respond).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} stayed busy");
}

/// Like `TestUpstream::named`, for `restart`.
pub fn named(name: &str) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    let name = name.to_owned();
    move |seen| Answer::new(200, format!("{name} {} {}", seen.method, seen.uri))
}

/// Requests that reached `up` other than health checks.
pub fn traffic(up: &TestUpstream) -> usize {
    up.seen().iter().filter(|s| !s.uri.starts_with("/healthz")).count()
}

/// An address where connecting hangs: a listener whose accept queue is
/// full and never drained, so the kernel drops new SYNs.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _fill: Vec<std::net::TcpStream>,
}

impl Blackhole {
    pub async fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fill = Vec::new();
        // Fill the queue until a connect no longer completes.
        for _ in 0..8 {
            let attempt = tokio::task::spawn_blocking(move || {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            });
            match attempt.await.unwrap() {
                Ok(stream) => fill.push(stream),
                Err(_) => return Self { addr, _listener: listener, _fill: fill },
            }
        }
        panic!("could not fill the accept queue of {addr}");
    }
}
