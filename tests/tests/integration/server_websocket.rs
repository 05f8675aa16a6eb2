//! WebSocket through the gateway: the handshake goes through the route and
//! its plugins, then frames flow both ways between a real client and a
//! real echo upstream, over HTTP/1.1 or, to an `h2` upstream, over an
//! HTTP/2 extended CONNECT stream (RFC 8441).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use wasmgate_testbed::TestGateway;
use wasmgate_testbed::plugins::{ADD_HEADER, FIXTURE_RESPOND};

/// A WebSocket echo server recording each handshake's path and headers.
struct EchoUpstream {
    addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<(String, http::HeaderMap)>>>,
}

impl EchoUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    #[allow(clippy::result_large_err)] // the callback's type is tungstenite's
                    let record = |req: &Request, resp: Response| {
                        seen.lock().unwrap().push((req.uri().to_string(), req.headers().clone()));
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else { return };
                    while let Some(Ok(msg)) = ws.next().await {
                        let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
                        if msg.is_close() || (echo && ws.send(msg).await.is_err()) {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, handshakes }
    }
}

/// Three text messages and a 200 KB binary one come back as sent; then
/// the client closes.
async fn echoes<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) {
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(format!("hello {i}")));
    }
    let big = vec![7u8; 200_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    ws.close(None).await.unwrap();
}

fn config(up: &EchoUpstream) -> String {
    format!(
        r#"
[upstreams.ws]
targets = ["{}"]

[plugins.add-header]
path = "{ADD_HEADER}"

[plugins.respond]
path = "{FIXTURE_RESPOND}"

[[routes]]
name = "ws"
prefix = "/ws"
upstream = "ws"
pipeline = [{{ plugin = "add-header", config = {{ request = {{ x-added = "by-plugin" }}, response = {{ x-seen = "yes" }} }} }}]

[[routes]]
name = "guarded"
prefix = "/guarded"
upstream = "ws"
pipeline = [{{ plugin = "respond", config = {{ status = 403, body = "guarded" }} }}]
"#,
        up.addr
    )
}

#[tokio::test]
async fn websocket_echo_through_the_gateway() {
    let up = EchoUpstream::start().await;
    let gw = TestGateway::start(&config(&up)).await;

    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(format!("ws://{}/ws/chat?room=1", gw.addr), tcp)
        .await
        .expect("the handshake succeeds through the gateway");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers().get("x-seen").map(|v| v.as_bytes()), Some(&b"yes"[..]), "response phase ran");
    echoes(&mut ws).await;

    let handshakes = up.handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 1);
    let (uri, headers) = &handshakes[0];
    assert_eq!(uri, "/ws/chat?room=1");
    assert_eq!(headers.get("x-added").unwrap(), "by-plugin", "the request phase ran on the handshake");
    assert!(headers.get("x-forwarded-for").is_some());

    // The gateway still serves plain requests on other connections.
    let reply = gw.client.get("/guarded").await;
    assert_eq!((reply.status, reply.text().as_str()), (403, "guarded"));
}

#[tokio::test]
async fn a_plugin_can_refuse_the_handshake() {
    let up = EchoUpstream::start().await;
    let gw = TestGateway::start(&config(&up)).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let err = tokio_tungstenite::client_async(format!("ws://{}/guarded/chat", gw.addr), tcp)
        .await
        .expect_err("the plugin answers 403");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 403),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    assert!(up.handshakes.lock().unwrap().is_empty(), "the upstream saw nothing");
}

#[tokio::test]
async fn many_websockets_at_once() {
    let up = EchoUpstream::start().await;
    let gw = TestGateway::start(&config(&up)).await;
    let clients = (0..8).map(|n| {
        let addr = gw.addr;
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws/{n}"), tcp).await.unwrap();
            for i in 0..10 {
                ws.send(Message::text(format!("{n}:{i}"))).await.unwrap();
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(format!("{n}:{i}")));
            }
            ws.close(None).await.unwrap();
        })
    });
    for c in futures_util::future::join_all(clients).await {
        c.unwrap();
    }
    assert_eq!(up.handshakes.lock().unwrap().len(), 8);
}

/// An h2c upstream taking WebSockets by extended CONNECT (RFC 8441) and
/// echoing their messages; it records each CONNECT's `:protocol`, path and
/// headers. Without `enable`, it does not offer extended CONNECT.
async fn h2_websocket_upstream(enable: bool) -> (SocketAddr, Arc<Mutex<Vec<(String, String, http::HeaderMap)>>>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let log = log.clone();
        async move {
            let protocol = req.extensions().get::<hyper::ext::Protocol>().map(|p| p.as_str().to_owned());
            log.lock().unwrap().push((
                protocol.clone().unwrap_or_default(),
                req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                req.headers().clone(),
            ));
            let mut resp = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
            if req.method() != http::Method::CONNECT || protocol.as_deref() != Some("websocket") {
                *resp.status_mut() = http::StatusCode::BAD_REQUEST;
                return Ok::<_, std::convert::Infallible>(resp);
            }
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(stream) = upgrade.await else { return };
                let mut ws =
                    tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(stream), Role::Server, None).await;
                while let Some(Ok(msg)) = ws.next().await {
                    let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
                    if msg.is_close() || (echo && ws.send(msg).await.is_err()) {
                        return;
                    }
                }
            });
            resp.headers_mut().insert("x-upstream", http::HeaderValue::from_static("h2"));
            Ok(resp)
        }
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                if enable {
                    builder.enable_connect_protocol();
                }
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    (addr, seen)
}

fn h2_config(target: SocketAddr) -> String {
    format!(
        "[upstreams.ws]\ntargets = [\"{target}\"]\nprotocol = \"h2\"\n\n[[routes]]\nname = \"ws\"\nprefix = \"/ws\"\nupstream = \"ws\"\n"
    )
}

#[tokio::test]
async fn websocket_to_an_h2_upstream_by_extended_connect() {
    let (addr, seen) = h2_websocket_upstream(true).await;
    let gw = TestGateway::start(&h2_config(addr)).await;

    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(format!("ws://{}/ws/chat?room=2", gw.addr), tcp)
        .await
        .expect("the handshake succeeds through the gateway (tungstenite checks Sec-WebSocket-Accept)");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers().get("x-upstream").map(|v| v.as_bytes()), Some(&b"h2"[..]));
    echoes(&mut ws).await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (protocol, path, headers) = &seen[0];
    assert_eq!((protocol.as_str(), path.as_str()), ("websocket", "/ws/chat?room=2"));
    assert_eq!(headers.get("sec-websocket-version").unwrap(), "13");
    for gone in ["sec-websocket-key", "connection", "upgrade"] {
        assert!(headers.get(gone).is_none(), "{gone} does not go over HTTP/2: {headers:?}");
    }
}

#[tokio::test]
async fn an_h2_upstream_without_extended_connect_refuses_the_websocket_with_502() {
    let (addr, seen) = h2_websocket_upstream(false).await;
    let gw = TestGateway::start(&h2_config(addr)).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let err = tokio_tungstenite::client_async(format!("ws://{}/ws/chat", gw.addr), tcp).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 502),
        other => panic!("expected an HTTP answer, got {other:?}"),
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the upstream");
    // The connection to it still serves plain requests.
    let reply = gw.client.get("/ws/plain").await;
    assert_eq!(reply.status, 400, "the upstream's own answer to a plain GET: {}", reply.text());
}

/// The shared connection is let go once idle, but a WebSocket open on it
/// is a stream still running: it carries on past the idle timeout.
#[tokio::test]
async fn a_websocket_on_an_h2_upstream_outlives_the_idle_timeout() {
    let (addr, _) = h2_websocket_upstream(true).await;
    let config = h2_config(addr).replace("protocol = \"h2\"\n", "protocol = \"h2\"\nidle_timeout_ms = 200\n");
    let gw = TestGateway::start(&config).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws/long", gw.addr), tcp).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before"));
    // Several sweeps: the connection has had no new request all along.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    ws.send(Message::text("after")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("after"));
    ws.close(None).await.unwrap();
}

/// An upgrade without `Sec-WebSocket-Key` is no WebSocket handshake: it
/// reaches the upstream as a plain GET (here answered 400), not a CONNECT.
#[tokio::test]
async fn an_upgrade_without_a_key_goes_on_as_a_plain_request() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, seen) = h2_websocket_upstream(true).await;
    let gw = TestGateway::start(&h2_config(addr)).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let head = "GET /ws/nokey HTTP/1.1\r\nhost: gw\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tcp.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].0.as_str(), seen[0].1.as_str()), ("", "/ws/nokey"), "a GET without :protocol");
}
