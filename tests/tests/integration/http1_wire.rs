//! HTTP/1.1 as the gateway speaks it on both sides, written and read by
//! hand: pipelined requests of every framing, `100 Continue`, HEAD and
//! HTTP/1.0 clients, upstreams that close pooled connections, answer before
//! reading the body, or stream chunked answers with trailers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::server_common::{BOUND, raw};
use http::Method;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wasmgate_testbed::{TestGateway, TestUpstream};

fn proxy(target: &str) -> String {
    format!(
        "[upstreams.up]\ntargets = [\"{target}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n"
    )
}

/// What a hand-written upstream does with one request.
enum Then {
    /// Writes these bytes and waits for the next request.
    Answer(Vec<u8>),
    /// Writes these bytes and closes.
    AnswerAndClose(Vec<u8>),
    /// Closes without a word.
    Close,
}

/// A request as a raw upstream read it: its connection, head and body.
type RawRequest = (usize, String, Vec<u8>);

/// An upstream written against raw sockets, for what a well-behaved server
/// library would not do. `respond(connection, nth request on it, head,
/// body)`; it reads a body only by `Content-Length`, and only if `read_body`.
struct RawUpstream {
    target: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
}

impl RawUpstream {
    async fn start(read_body: bool, respond: impl Fn(usize, usize, &str) -> Then + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond = Arc::new(respond);
        let (count, seen) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = count.fetch_add(1, Ordering::SeqCst);
                let (respond, seen) = (respond.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    for nth in 0.. {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push_str(&line);
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; if read_body { length } else { 0 }];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        seen.lock().unwrap().push((conn, head.clone(), body));
                        match respond(conn, nth, &head) {
                            Then::Answer(bytes) => {
                                if stream.get_mut().write_all(&bytes).await.is_err() {
                                    return;
                                }
                            }
                            Then::AnswerAndClose(bytes) => {
                                let _ = stream.get_mut().write_all(&bytes).await;
                                return;
                            }
                            Then::Close => return,
                        }
                    }
                });
            }
        });
        Self { target, connections, requests }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[tokio::test]
async fn pipelined_requests_of_every_framing_are_answered_in_order() {
    let up = TestUpstream::start(|seen| {
        wasmgate_testbed::Answer::new(
            200,
            format!("{} {} [{}]", seen.method, seen.uri, String::from_utf8_lossy(&seen.body)),
        )
    })
    .await;
    let gw = TestGateway::start(&proxy(&up.target())).await;
    let pipelined = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nchunk\r\n3\r\ned!\r\n0\r\nX-T: 1\r\n\r\n\
GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = raw(gw.addr, pipelined).await;
    assert_eq!(reply.statuses(), [200, 200, 200, 200], "{}", reply.text);
    assert!(reply.closed, "the last request asked to close");
    let bodies: Vec<&str> = ["GET /a []", "POST /b [hello]", "POST /c [chunked!]", "GET /d []"].into();
    let mut at = 0;
    for body in bodies {
        let found = reply.text[at..].find(body).unwrap_or_else(|| panic!("{body:?} in order in {}", reply.text));
        at += found + body.len();
    }
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let up = TestUpstream::start(|seen| wasmgate_testbed::Answer::new(200, seen.body.clone())).await;
    let gw = TestGateway::start(&proxy(&up.target())).await;
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(BOUND, conn.read_exact(&mut interim)).await.expect("an interim answer").unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(b"hello").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, conn.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
}

#[tokio::test]
async fn head_answers_keep_the_length_and_send_no_body() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&proxy(&up.target())).await;
    let reply =
        raw(gw.addr, b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
    assert_eq!(reply.statuses(), [200, 200], "{}", reply.text);
    let second = reply.text[1..].find("HTTP/1.1 ").expect("two answers") + 1;
    let (head_answer, get_answer) = reply.text.split_at(second);
    assert!(head_answer.to_ascii_lowercase().contains("content-length: 10\r\n"), "{head_answer}");
    assert!(head_answer.ends_with("\r\n\r\n"), "no body after the head: {head_answer}");
    assert!(get_answer.ends_with("\r\n\r\nup GET /y"), "{get_answer}");
}

#[tokio::test]
async fn http_1_0_clients_get_no_chunks_and_the_close_they_expect() {
    // A chunked answer with trailers, which an HTTP/1.0 client cannot read.
    let up = RawUpstream::start(true, |_, _, head| {
        if head.starts_with("GET /known-length") {
            return Then::Answer(ok("sized"));
        }
        Then::Answer(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\nx-sum: 6\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let gw = TestGateway::start(&proxy(&up.target)).await;
    let reply = raw(gw.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.closed);
    let lower = reply.text.to_ascii_lowercase();
    assert!(lower.contains("connection: close\r\n") && !lower.contains("transfer-encoding"), "{}", reply.text);
    assert!(reply.text.ends_with("\r\n\r\nabcdef"), "the body, delimited by the close: {}", reply.text);

    // HTTP/1.1 gets the chunks and the trailers as they came.
    let reply = raw(gw.addr, b"GET /new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(reply.text.ends_with("\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\nx-sum: 6\r\n\r\n"), "{}", reply.text);

    // An HTTP/1.0 client that asks to keep the connection gets it, when
    // the answer's length is known.
    let two = b"GET /known-length/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /known-length/b HTTP/1.0\r\n\r\n";
    let reply = raw(gw.addr, two).await;
    assert_eq!(reply.statuses(), [200, 200], "{}", reply.text);
    assert!(reply.text.to_ascii_lowercase().contains("connection: keep-alive\r\n"), "{}", reply.text);
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_replaced_for_repeatable_requests() {
    // Every connection answers its first request only; a later one finds it
    // closed without an answer, as when an upstream's keep-alive timeout
    // races the next request.
    let up = RawUpstream::start(true, |_, nth, _| if nth == 0 { Then::Answer(ok("fresh")) } else { Then::Close }).await;
    let gw = TestGateway::start(&proxy(&up.target)).await;
    for i in 0..3 {
        let reply = gw.client.get(&format!("/get/{i}")).await;
        assert_eq!((reply.status, reply.text()), (200, "fresh".to_owned()), "GET {i}");
    }
    assert_eq!(up.connections(), 3, "each GET after the first tried the pooled connection, then a new one");

    // A POST is not sent twice: the upstream may have acted on it.
    let reply = gw.client.send(Method::POST, "/post", &[], "once").await;
    let detail = reply.problem(502);
    assert!(detail.contains("connection closed before a response"), "{detail}");
    let posts = up.requests().iter().filter(|(_, head, _)| head.starts_with("POST")).count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn idle_connections_the_upstream_closed_are_not_used_again() {
    // Answers, then closes the connection a moment later: by the next
    // request the gateway sees it closed and does not try it at all.
    let up = RawUpstream::start(true, |_, _, _| Then::AnswerAndClose(ok("once"))).await;
    let gw = TestGateway::start(&proxy(&up.target)).await;
    for i in 0..3 {
        let reply = gw.client.send(Method::POST, &format!("/p/{i}"), &[], "body").await;
        assert_eq!(reply.status, 200, "POST {i}: {}", reply.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.connections(), 3);
    assert_eq!(up.requests().len(), 3, "no request was sent on a closed connection");
}

#[tokio::test]
async fn an_upstream_answer_before_the_body_is_relayed() {
    // Refuses at once, without reading the body.
    let up = RawUpstream::start(false, |_, _, _| {
        let body = "too big";
        let head =
            format!("HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len());
        Then::AnswerAndClose([head.as_bytes(), body.as_bytes()].concat())
    })
    .await;
    let gw = TestGateway::start(&proxy(&up.target)).await;
    let reply = gw.client.send(Method::POST, "/upload", &[], vec![b'x'; 8 << 20]).await;
    assert_eq!((reply.status, reply.text()), (413, "too big".to_owned()));
}
