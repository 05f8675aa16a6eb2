//! Malformed and ambiguous requests, written by hand on raw connections:
//! each gets its 400 and nothing reaches the upstream. And path spellings:
//! a route guarded by a plugin cannot be reached by writing its path
//! another way.

use crate::server_common::raw;
use serde_json::json;
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::FIXTURE_RESPOND;
use wasmgate_testbed::{TestGateway, TestUpstream};

async fn gateway() -> (TestUpstream, TestGateway) {
    let up = TestUpstream::named("up").await;
    let config = GatewayConfig::new()
        .upstream("up", &up)
        .plugin("respond", FIXTURE_RESPOND)
        .route(
            Route::prefix("admin", "/admin").upstream("up").stage("respond", json!({"status": 403, "body": "guarded"})),
        )
        .route(Route::prefix("open", "/").upstream("up"));
    let gw = TestGateway::start(&config.to_string()).await;
    (up, gw)
}

#[tokio::test]
async fn ambiguous_framing_and_malformed_heads_are_refused() {
    let (up, gw) = gateway().await;
    let cases: &[(&str, &[u8])] = &[
        (
            "Content-Length then Transfer-Encoding",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        ),
        (
            "Transfer-Encoding then Content-Length",
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        ),
        (
            "differing Content-Lengths",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        ("Content-Length with a sign", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"),
        ("Content-Length not a number", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello"),
        ("space before the colon", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello"),
        ("chunked not last", b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        ("unknown coding", b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        ("chunked in HTTP/1.0", b"POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        (
            "invalid chunk size",
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunk size overflow",
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n",
        ),
        ("control byte in a value", b"GET /x HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n"),
        ("NUL in a value", b"GET /x HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n"),
        ("space in a name", b"GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"),
        ("obs-fold", b"GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n"),
        ("space in the target", b"GET /x y HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("bare CR", b"GET /x HTTP/1.1\r\nHost: a\rX-Y: z\r\n\r\n"),
    ];
    for (what, request) in cases {
        let reply = raw(gw.addr, request).await;
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.text);
        assert!(reply.closed, "{what}: the connection is closed after the refusal");
        assert_eq!(up.count(), 0, "{what}: reached the upstream");
        if what.contains("Transfer-Encoding") {
            assert!(reply.text.contains("must not carry both Content-Length and Transfer-Encoding"), "{}", reply.text);
        }
        if what.contains("chunk size") {
            assert!(reply.text.contains("the request body is malformed"), "{}", reply.text);
        }
    }
}

#[tokio::test]
async fn a_smuggled_request_on_a_kept_alive_connection_goes_nowhere() {
    let (up, gw) = gateway().await;
    let reply = raw(
        gw.addr,
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n\
POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert_eq!(reply.statuses(), vec![200, 400], "{}", reply.text);
    assert!(reply.closed);
    let paths: Vec<String> = up.seen().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(paths, vec!["/first"]);
}

#[tokio::test]
async fn well_framed_bodies_still_pass() {
    let (up, gw) = gateway().await;
    let reply = raw(
        gw.addr,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc\
GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.statuses(), vec![200, 200, 200], "{}", reply.text);
    let seen = up.seen();
    assert_eq!(seen[0].body, "hello world");
    assert_eq!(seen[1].body, "abc");
}

#[tokio::test]
async fn a_guarded_path_cannot_be_spelled_around() {
    let (up, gw) = gateway().await;
    let guarded = [
        "/admin",
        "/admin/",
        "/admin/users",
        "/./admin",
        "/x/../admin",
        "/x/y/../../admin/x",
        "//admin",
        "///admin//users",
        "/%2e%2e/admin",
        "/%2E%2E/admin",
        "/.%2e/admin",
        "/x/%2e%2e/admin",
        "/%61dmin",
        "/%61%64%6d%69%6e/users",
        "/admin/.",
        "/public/../admin?x=1",
    ];
    for path in guarded {
        let reply =
            raw(gw.addr, format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text);
        assert!(reply.text.ends_with("guarded"), "{path}: {}", reply.text);
    }
    let refused = [
        "/admin%2fusers",
        "/x%2f..%2fadmin",
        "/x%2F..%2Fadmin",
        "/x%5c..%5cadmin",
        "/x\\..\\admin",
        "/admin%00",
        "/%",
        "/%zz/admin",
        "admin",
    ];
    for path in refused {
        let reply =
            raw(gw.addr, format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
    }
    // HTTP/2 requests are normalised the same way.
    let reply = wasmgate_testbed::Client::http2(gw.addr).get("/x/../%61dmin").await;
    assert_eq!((reply.status, reply.text().as_str()), (403, "guarded"));
    assert_eq!(up.count(), 0, "the upstream saw nothing: {:?}", up.seen());

    // What does reach the upstream is the normalised path.
    let reply = raw(
        gw.addr,
        b"GET /public/./x/../%7Euser//caf%c3%a9?q=%2e%2e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(up.seen()[0].uri, "/public/~user/caf%C3%A9?q=%2e%2e");
}
