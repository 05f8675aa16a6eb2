//! Graceful shutdown, in process through `Running`: listeners close at
//! once, in-flight requests finish, and the drain timeout bounds the wait.
//! (The signal path through the real binary is `host/tests/command/server_signal.rs`.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::server_common::BOUND;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use wasmgate::Gateway;
use wasmgate::Running;
use wasmgate_testbed::Client;

/// An upstream that reports each request as it arrives and answers only
/// when the test releases it.
struct HeldUpstream {
    addr: SocketAddr,
    arrived: mpsc::Receiver<oneshot::Sender<()>>,
}

impl HeldUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, arrived) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let tx = tx.clone();
                        async move {
                            let (release, released) = oneshot::channel();
                            let _ = tx.send(release).await;
                            let _ = released.await;
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"finished"))))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, arrived }
    }
}

async fn start(up: &HeldUpstream, server: &str) -> (Running, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\n{server}\n[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
            up.addr
        ),
    )
    .unwrap();
    let gateway = Arc::new(Gateway::load(&path).await.unwrap_or_else(|e| panic!("{e}")));
    let running = wasmgate::serve(gateway, wasmgate::bind(&["127.0.0.1:0".parse().unwrap()]).await.unwrap());
    let addr = running.addrs[0];
    (running, addr, dir)
}

#[tokio::test]
async fn in_flight_requests_finish_and_new_connections_are_refused() {
    let mut up = HeldUpstream::start().await;
    let (running, addr, _dir) = start(&up, "").await;

    let client = Client::new(addr);
    let slow = tokio::spawn(async move { client.get("/slow").await });
    let release = up.arrived.recv().await.expect("the request reached the upstream");

    running.stop_accepting().await;
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "new connections are refused once shutdown begins");

    let shutdown = tokio::spawn(running.shutdown());
    assert!(!shutdown.is_finished());
    release.send(()).unwrap();
    let reply = tokio::time::timeout(BOUND, slow).await.expect("the request finishes").unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "finished"));
    tokio::time::timeout(BOUND, shutdown).await.expect("shutdown completes once drained").unwrap();
}

#[tokio::test]
async fn the_drain_timeout_bounds_the_wait() {
    let mut up = HeldUpstream::start().await;
    let (running, addr, _dir) = start(&up, "drain_timeout_ms = 200").await;
    let stuck = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/stuck").header("host", "a").body(http_body_util::Empty::<Bytes>::new()).unwrap();
        sender.send_request(req).await
    });
    // Never released.
    let _held = up.arrived.recv().await.expect("the request reached the upstream");
    tokio::time::timeout(BOUND, running.shutdown()).await.expect("shutdown gives up after the drain timeout");
    let outcome = tokio::time::timeout(BOUND, stuck).await.expect("the connection was closed").unwrap();
    assert!(outcome.is_err(), "the stuck request was cut off: {outcome:?}");
}
