//! Limits with clear errors: request target (414), headers (431), bodies
//! buffered or streamed (413), total time (408/504), slow request heads,
//! idle connections and connections per listener.

use std::time::Duration;

use crate::server_common::{BOUND, closed_while_trickling, config, raw};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmgate_testbed::{Answer, TestGateway, TestUpstream};

#[tokio::test]
async fn request_target_and_headers_past_the_limits() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("max_uri_bytes = 100\nmax_header_bytes = 1000\nmax_headers = 10", &up)).await;

    let ok = gw.client.get(&format!("/{}", "a".repeat(90))).await;
    assert_eq!(ok.status, 200);

    let detail = gw.client.get(&format!("/{}", "a".repeat(200))).await.problem(414);
    assert!(detail.contains("limit is 100"), "{detail}");
    let many: Vec<(String, String)> = (0..12).map(|i| (format!("x-h{i}"), "v".to_owned())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let detail = gw.client.send(http::Method::GET, "/", &many, Bytes::new()).await.problem(431);
    assert!(detail.contains("header fields; the limit is 10"), "{detail}");
    let big = "v".repeat(2000);
    let detail = gw.client.send(http::Method::GET, "/", &[("x-big", &big)], Bytes::new()).await.problem(431);
    assert!(detail.contains("the limit is 1000"), "{detail}");

    // Far past the limits, hyper refuses before the gateway sees anything.
    let huge = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
    let reply = raw(gw.addr, huge.as_bytes()).await;
    assert!(matches!(reply.status, 414 | 431), "{:?}", reply.text);
    let huge = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "v".repeat(100_000));
    assert_eq!(raw(gw.addr, huge.as_bytes()).await.status, 431);

    assert_eq!(up.count(), 1, "only the first request reached the upstream");
}

#[tokio::test]
async fn bodies_past_the_server_limit_buffered_or_streamed() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("max_request_body_bytes = 1000", &up)).await;

    let ok = gw.client.send(http::Method::POST, "/small", &[], vec![b'x'; 1000]).await;
    assert_eq!(ok.status, 200);

    // Declared too large: refused before reading.
    let detail = gw.client.send(http::Method::POST, "/declared", &[], vec![b'x'; 1001]).await.problem(413);
    assert!(detail.contains("limit is 1000"), "{detail}");
    assert_eq!(up.count(), 1);

    // Chunked, no length declared: counted as it streams.
    let chunk = format!("1f4\r\n{}\r\n", "y".repeat(500));
    let request =
        format!("POST /streamed HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n", chunk.repeat(4));
    let reply = raw(gw.addr, request.as_bytes()).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(reply.text.contains("application/problem+json"), "{}", reply.text);
    assert!(reply.closed);
    // The upstream may have seen the start of the stream, never all of it.
    assert!(up.seen().iter().skip(1).all(|s| s.body.len() < 2000));
}

#[tokio::test]
async fn total_request_time_answers_504_or_408() {
    let up = TestUpstream::start(|_| Answer::new(200, "late").delay(Duration::from_secs(5))).await;
    let gw = TestGateway::start(&config("request_timeout_ms = 300", &up)).await;
    let detail = gw.client.get("/slow-upstream").await.problem(504);
    assert!(detail.contains("300 ms"), "{detail}");

    // The client declares 100 bytes and sends 10: it is the slow one.
    let reply = raw(gw.addr, b"POST /slow-client HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789").await;
    assert_eq!(reply.status, 408, "{}", reply.text);
    assert!(reply.closed);
}

#[tokio::test]
async fn slowloris_heads_are_cut_off() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("header_read_timeout_ms = 300", &up)).await;

    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ").await.unwrap();
    assert!(
        closed_while_trickling(&mut slow, b"abcdefgh", Duration::from_millis(50)).await,
        "a head sent a byte at a time is disconnected within {BOUND:?}"
    );
    // A connection that never sends anything goes the same way.
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    assert!(closed_while_trickling(&mut silent, b"", Duration::from_millis(50)).await);
    assert_eq!(up.count(), 0);

    // Normal requests are unaffected.
    assert_eq!(gw.client.get("/fine").await.status, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("idle_timeout_ms = 300", &up)).await;
    // Keep-alive: the connection stays open after the response until idle.
    let reply = raw(gw.addr, b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(reply.status, 200);
    assert!(reply.closed, "the idle connection was closed within {BOUND:?}");
}

/// An HTTP/1 connection that has completed one request and stays open.
async fn open_connection(addr: std::net::SocketAddr) -> Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/").header("host", "a").body(Empty::new()).unwrap();
    let resp = sender.send_request(req).await.ok()?;
    (resp.status() == 200).then_some(sender)
}

#[tokio::test]
async fn connections_past_the_listener_limit_are_closed() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&config("max_connections = 2", &up)).await;
    let first = open_connection(gw.addr).await.expect("first connection");
    let _second = open_connection(gw.addr).await.expect("second connection");

    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(BOUND, third.read(&mut buf)).await.expect("closed, not left waiting");
    assert!(matches!(read, Ok(0) | Err(_)), "the third connection gets no answer: {read:?}");
    assert_eq!(up.count(), 2);

    // Closing one makes room again.
    drop(first);
    let deadline = tokio::time::Instant::now() + BOUND;
    while open_connection(gw.addr).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "room was made within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
