//! HTTP/2 at the edge: request heads within the header read timeout (h2c
//! and TLS with ALPN), connections without requests closed, floods of
//! frames refused, and cookie fields joined for HTTP/1.1 upstreams.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use wasmgate_testbed::h2_wire::{self, CONTINUATION, HEADERS, PING};
use wasmgate_testbed::{Client, TestGateway, TestUpstream, eventually};

use crate::server_common::{BOUND, Pki, TlsGateway, closed_while_trickling, config, tls_get};

/// Opens an h2c connection and sends `bytes` after the preface.
async fn h2c(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(&[h2_wire::preface(), bytes.to_vec()].concat()).await.expect("writing");
    stream
}

/// Writes `bytes` (the gateway may close before all are taken) and
/// whether the gateway then closes the connection within `BOUND`.
async fn closes_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let _ = stream.write_all(&[h2_wire::preface(), bytes.to_vec()].concat()).await;
    tokio::time::timeout(BOUND, h2_wire::read_to_close(&mut stream)).await.is_ok()
}

/// `GET /` over a new h2c connection; the status, or why there is none.
async fn h2c_get(addr: SocketAddr) -> Result<u16, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}/")).body(Empty::<Bytes>::new()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(1), sender.send_request(req))
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// A HEADERS frame of `stream` that does not end its header block.
fn open_block(stream: u32) -> Vec<u8> {
    h2_wire::frame(HEADERS, 0, stream, h2_wire::GET_BLOCK)
}

#[tokio::test]
async fn slow_h2_heads_are_cut_off_at_the_header_timeout() {
    let up = TestUpstream::named("up").await;
    // Idle connections would be closed only after a minute: what closes
    // these is the header read timeout.
    let gw = TestGateway::start(&config("header_read_timeout_ms = 300\nidle_timeout_ms = 60000", &up)).await;

    // A request, then another head trickled a byte at a time.
    let mut trickling = h2c(gw.addr, &h2_wire::get(1)).await;
    assert!(
        closed_while_trickling(&mut trickling, &open_block(3), Duration::from_millis(50)).await,
        "a trickled head keeps the connection open"
    );
    // A request, then a header block that never ends.
    let mut stalled = h2c(gw.addr, &[h2_wire::get(1), open_block(3)].concat()).await;
    assert!(closed_while_trickling(&mut stalled, b"", Duration::from_millis(50)).await, "a stalled block");
    // The preface and nothing more.
    let mut silent = h2c(gw.addr, b"").await;
    assert!(closed_while_trickling(&mut silent, b"", Duration::from_millis(50)).await, "a connection with no request");

    assert_eq!(up.count(), 2, "the requests that arrived whole were served");
    assert_eq!(Client::http2(gw.addr).get("/").await.status, 200);
}

#[tokio::test]
async fn held_h2_heads_do_not_keep_other_clients_out() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("max_connections = 2\nheader_read_timeout_ms = 300", &up)).await;
    // Both connections the listener allows, each holding a head open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = h2c(gw.addr, &open_block(1)).await;
        // The server's SETTINGS: the connection was taken up.
        let mut buf = [0u8; 64];
        assert!(stream.read(&mut buf).await.unwrap() > 0);
        held.push(stream);
    }
    eventually("a normal client is served", || async { h2c_get(gw.addr).await == Ok(200) }).await;
}

#[tokio::test]
async fn pings_do_not_keep_an_idle_h2_connection_open() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("idle_timeout_ms = 300\nheader_read_timeout_ms = 60000", &up)).await;
    let mut stream = h2c(gw.addr, &h2_wire::get(1)).await;
    let ping = h2_wire::frame(PING, 0, 0, b"12345678");
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut buf = [0u8; 1024];
    let closed = loop {
        if tokio::time::Instant::now() > deadline {
            break false;
        }
        if stream.write_all(&ping).await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            _ => {}
        }
    };
    assert!(closed, "a ping every 50 ms kept the connection open");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn h2_floods_are_refused() {
    let up = TestUpstream::named("up").await;
    // Neither timeout can close a connection within `BOUND`: the limits do.
    let gw = TestGateway::start(&config("header_read_timeout_ms = 60000\nidle_timeout_ms = 60000", &up)).await;

    assert!(closes_after(gw.addr, &h2_wire::continuation_flood(10_000)).await, "CONTINUATION flood");
    assert!(closes_after(gw.addr, &h2_wire::rapid_reset(5_000)).await, "rapid reset");
    let pings: Vec<u8> = (0..5_000).flat_map(|_| h2_wire::frame(PING, 0, 0, b"12345678")).collect();
    assert!(closes_after(gw.addr, &pings).await, "PING flood");
    // A header block past the header list limit, in few frames.
    let mut big = h2_wire::frame(HEADERS, 0, 1, &[0x40; 16_000]);
    for _ in 0..8 {
        big.extend(h2_wire::frame(CONTINUATION, 0, 1, &[0x40; 16_000]));
    }
    assert!(closes_after(gw.addr, &big).await, "an oversized header block");

    assert_eq!(Client::http2(gw.addr).get("/").await.status, 200, "other clients are served");
}

#[tokio::test]
async fn slow_h2_heads_over_tls_are_cut_off() {
    let pki = Pki::new("h2 test CA");
    let up = TestUpstream::named("up").await;
    let routes = format!(
        "[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
        up.target()
    );
    let gw = TlsGateway::start(&pki, "header_read_timeout_ms = 300\nidle_timeout_ms = 60000", &routes).await;
    let connector = pki.connector(&[b"h2"]);

    let tcp = TcpStream::connect(gw.tls).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(&[h2_wire::preface(), h2_wire::get(1)].concat()).await.unwrap();
    assert!(closed_while_trickling(&mut tls, &open_block(3), Duration::from_millis(50)).await, "a trickled head");

    let tcp = TcpStream::connect(gw.tls).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.write_all(&[h2_wire::preface(), h2_wire::frame(HEADERS, 0, 1, h2_wire::GET_BLOCK)].concat()).await.unwrap();
    assert!(closed_while_trickling(&mut tls, b"", Duration::from_millis(50)).await, "a stalled block");

    let reply = tls_get(gw.tls, &connector, "/").await.unwrap();
    assert_eq!((reply.status, reply.version), (200, http::Version::HTTP_2));
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn cookie_fields_from_h2_clients_arrive_joined() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("", &up)).await;
    let cookies = [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")];
    let reply = Client::http2(gw.addr).send(http::Method::GET, "/", &cookies, Bytes::new()).await;
    assert_eq!(reply.status, 200);
    let seen = up.seen();
    let sent: Vec<_> = seen[0].headers.get_all("cookie").iter().collect();
    assert_eq!(sent, ["a=1; b=2"], "one Cookie field for HTTP/1.1 (RFC 9113 §8.2.3)");
}
