//! TLS and HTTP/2 to upstreams: real rustls servers with certificates from
//! a CA made in the test (rcgen), mutual TLS, a certificate for another
//! name, `insecure_skip_verify`, a CA file changed and reloaded, health
//! checks over TLS; HTTP/2 upstreams over TLS (ALPN) and h2c with trailers
//! both ways, an idle HTTP/2 connection let go, and refused streams retried.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use wasmgate_testbed::{Client, TestGateway, logs};

use crate::server_common::{BOUND, Ca};

/// A server's TLS config: this certificate, `h2` and `http/1.1` by ALPN,
/// and client certificates from `client_ca` required when given.
pub fn server_tls(cert_pem: &str, key_pem: &str, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `service` on `listener` (HTTP/1.1 or HTTP/2, prior knowledge or
/// ALPN), over TLS when `tls` is given; `on_tls` learns of each handshake
/// whether the client presented a certificate.
pub fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    on_tls: impl Fn(bool) + Send + 'static,
    service: S,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let service = service.clone();
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match &tls {
                None => {
                    tokio::spawn(async move {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    });
                }
                Some(config) => {
                    let Ok(stream) = TlsAcceptor::from(config.clone()).accept(tcp).await else { continue };
                    on_tls(stream.get_ref().1.peer_certificates().is_some());
                    tokio::spawn(async move {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            }
        }
    });
}

/// A request as the echo upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    path: String,
    headers: HeaderMap,
    trailers: Option<HeaderMap>,
}

/// An upstream answering `<version> <method> <path> <body>`, its request's
/// trailers echoed as response trailers with `x-upstream-trailer: done`.
struct Echo {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Per handshake: whether the client presented a certificate.
    handshakes: Arc<Mutex<Vec<bool>>>,
}

impl Echo {
    async fn start(tls: Option<Arc<ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let log = log.clone();
            async move {
                let (head, body) = req.into_parts();
                let collected = body.collect().await.ok();
                let trailers = collected.as_ref().and_then(|c| c.trailers().cloned());
                let bytes = collected.map(|c| c.to_bytes()).unwrap_or_default();
                let path = head.uri.path().to_owned();
                let text = format!("{:?} {} {path} {}", head.version, head.method, String::from_utf8_lossy(&bytes));
                log.lock().unwrap().push(Seen {
                    version: head.version,
                    path,
                    headers: head.headers,
                    trailers: trailers.clone(),
                });
                let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![Ok(Frame::data(Bytes::from(text)))];
                if let Some(mut trailers) = trailers {
                    trailers.insert("x-upstream-trailer", HeaderValue::from_static("done"));
                    frames.push(Ok(Frame::trailers(trailers)));
                }
                Ok::<_, Infallible>(Response::new(StreamBody::new(futures_util::stream::iter(frames))))
            }
        });
        let shakes = handshakes.clone();
        serve(listener, tls, move |cert| shakes.lock().unwrap().push(cert), service);
        Self { addr, seen, handshakes }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// PEM files in a folder of the test's.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A config proxying everything to `target` with these upstream settings.
fn proxy(target: SocketAddr, settings: &str) -> String {
    format!(
        "[upstreams.up]\ntargets = [\"{target}\"]\nretries = {{ attempts = 1 }}\n{settings}\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n"
    )
}

fn tls_table(ca: &Path, more: &str) -> String {
    format!("[upstreams.up.tls]\nca_file = {:?}\n{more}\n", ca.display().to_string())
}

#[tokio::test]
async fn tls_upstream_verified_against_a_ca_file_with_health_checks_over_tls() {
    let ca = Ca::new("upstream CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let up = Echo::start(Some(server_tls(&cert, &key, None))).await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem);
    let health = "[upstreams.up.health]\npath = \"/healthz\"\ninterval_ms = 50\n";
    let gw = TestGateway::start(&format!("{}{}", proxy(up.addr, health), tls_table(&ca_file, ""))).await;

    let reply = gw.client.get("/hello").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "HTTP/1.1 GET /hello "), "{}", reply.text());
    // SNI and verification used the target's host, an IP address here.
    tokio::time::timeout(BOUND, async {
        while !up.seen().iter().any(|s| s.path == "/healthz") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a health check over TLS");
    let status = gw.admin.get("/status").await.json();
    assert_eq!(status["upstreams"]["up"][0]["health"], "healthy", "{status}");
    // `tls = true` verifies against the system's roots, which do not hold
    // the test's CA.
    let system = TestGateway::start(&proxy(up.addr, "tls = true")).await;
    let detail = system.client.get("/").await.problem(502);
    assert!(detail.contains("TLS handshake failed"), "{detail}");
}

#[tokio::test]
async fn mutual_tls_with_and_without_the_client_certificate() {
    let ca = Ca::new("mesh CA");
    let (cert, key) = ca.issue(&["users.internal"]);
    let up = Echo::start(Some(server_tls(&cert, &key, Some(&ca)))).await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem);
    let (client_cert, client_key) = ca.issue(&["gateway.internal"]);
    let client_cert = files.write("gw.pem", &client_cert);
    let client_key = files.write("gw.key", &client_key);

    let name = "server_name = \"users.internal\"";
    let without = TestGateway::start(&format!("{}{}", proxy(up.addr, ""), tls_table(&ca_file, name))).await;
    without.client.get("/").await.problem(502);
    assert!(up.seen().is_empty(), "the upstream refused the request: {:?}", up.seen());

    let mtls = format!("{name}\nclient_cert_file = {client_cert:?}\nclient_key_file = {client_key:?}");
    let with = TestGateway::start(&format!("{}{}", proxy(up.addr, ""), tls_table(&ca_file, &mtls))).await;
    let reply = with.client.get("/mtls").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "HTTP/1.1 GET /mtls "));
    assert_eq!(up.handshakes.lock().unwrap().last(), Some(&true), "the gateway presented its certificate");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_502_and_the_log_says_why() {
    let ca = Ca::new("upstream CA");
    let (cert, key) = ca.issue(&["other.example"]);
    let up = Echo::start(Some(server_tls(&cert, &key, None))).await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem);
    let logs = logs::capture();
    let gw = TestGateway::start(&format!("{}{}", proxy(up.addr, ""), tls_table(&ca_file, ""))).await;
    let detail = gw.client.get("/").await.problem(502);
    assert!(detail.contains("TLS handshake failed"), "{detail}");
    assert!(up.seen().is_empty());
    let logged = logs.find(&[("message", "TLS to the upstream failed")]).expect("a log line for the failed handshake");
    let error = logged["error"].as_str().unwrap();
    assert!(error.contains("not valid for name"), "{error}");

    // Opting out of verification: the same server is reached, and the
    // opt-out is logged as a warning at load.
    let insecure = "insecure_skip_verify = true";
    let gw = TestGateway::start(&format!("{}{}", proxy(up.addr, ""), tls_table(&ca_file, insecure))).await;
    assert_eq!(gw.client.get("/anyway").await.status, 200);
    let warned = logs.events().into_iter().any(|e| {
        e["level"] == "WARN" && e["fields"]["message"].as_str().is_some_and(|m| m.contains("insecure_skip_verify"))
    });
    assert!(warned, "insecure_skip_verify is logged");
}

#[tokio::test]
async fn a_reload_reads_the_changed_ca_file_and_a_broken_one_is_a_config_error() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let (cert, key) = new_ca.issue(&["127.0.0.1"]);
    let up = Echo::start(Some(server_tls(&cert, &key, None))).await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &old_ca.pem);
    let gw = TestGateway::start(&format!("{}{}", proxy(up.addr, ""), tls_table(&ca_file, ""))).await;
    gw.client.get("/").await.problem(502);

    std::fs::write(&ca_file, &new_ca.pem).unwrap();
    let reloaded = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    assert_eq!(gw.client.get("/after").await.status, 200);

    std::fs::write(&ca_file, "not a certificate").unwrap();
    let refused = gw.admin.send(Method::POST, "/reload", &[], "").await;
    let detail = refused.problem(422);
    assert!(detail.contains("upstreams.up.tls.ca_file") && detail.contains("ca.pem"), "{detail}");
    assert_eq!(gw.client.get("/still").await.status, 200, "the running config keeps serving");
}

/// Sends `body` with `trailers` to the gateway over h2c; the response's
/// status, body and trailers.
async fn h2c_with_trailers(gateway: SocketAddr, path: &str, trailers: HeaderMap) -> (u16, String, Option<HeaderMap>) {
    let tcp = TcpStream::connect(gateway).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        vec![Ok(Frame::data(Bytes::from_static(b"ping"))), Ok(Frame::trailers(trailers))];
    let req = Request::post(format!("http://{gateway}{path}"))
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (status, String::from_utf8_lossy(&collected.to_bytes()).into_owned(), trailers)
}

#[tokio::test]
async fn h2_upstreams_by_alpn_and_h2c_pass_trailers_both_ways() {
    let ca = Ca::new("upstream CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let tls_up = Echo::start(Some(server_tls(&cert, &key, None))).await;
    let h2c_up = Echo::start(None).await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem);

    let over_tls = format!("{}{}", proxy(tls_up.addr, "protocol = \"h2\""), tls_table(&ca_file, ""));
    let h2c = proxy(h2c_up.addr, "protocol = \"h2\"");
    for (config, up) in [(over_tls, &tls_up), (h2c, &h2c_up)] {
        let gw = TestGateway::start(&config).await;
        let mut trailers = HeaderMap::new();
        trailers.insert("x-client-trailer", HeaderValue::from_static("sent"));
        let (status, body, back) = h2c_with_trailers(gw.addr, "/stream", trailers).await;
        assert_eq!((status, body.as_str()), (200, "HTTP/2.0 POST /stream ping"));
        let back = back.expect("response trailers");
        assert_eq!(back["x-upstream-trailer"], "done");
        assert_eq!(back["x-client-trailer"], "sent", "the request's trailers reached the upstream");
        let seen = up.seen();
        assert_eq!(seen[0].version, Version::HTTP_2);
        assert_eq!(seen[0].trailers.as_ref().map(|t| t["x-client-trailer"].clone()), Some("sent".parse().unwrap()));
        assert_eq!(seen[0].headers["x-forwarded-proto"], "http");

        // Requests from an HTTP/1.1 client share one multiplexed connection.
        let client = &Client::new(gw.addr);
        let replies =
            futures_util::future::join_all((0..8).map(|i| async move { client.get(&format!("/many/{i}")).await }))
                .await;
        assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
        drop(gw);
    }
    assert_eq!(tls_up.handshakes.lock().unwrap().len(), 1, "one TLS connection carried every request");
    // A body sent along without trailers arrives too.
    let gw = TestGateway::start(&proxy(h2c_up.addr, "protocol = \"h2\"")).await;
    let reply = Client::new(gw.addr).send(Method::PUT, "/put", &[], "data").await;
    assert_eq!(reply.text(), "HTTP/2.0 PUT /put data");
}

/// An h2c upstream counting its connections: those made, and those the
/// client closed. `/slow` answers after 1.5 s, anything else at once.
struct CountedH2 {
    addr: SocketAddr,
    opened: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
}

impl CountedH2 {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (opened, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
            if req.uri().path() == "/slow" {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(format!(
                "{} done",
                req.uri().path()
            )))))
        });
        let (made, gone) = (opened.clone(), ended.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                made.fetch_add(1, Ordering::SeqCst);
                let gone = gone.clone();
                tokio::spawn(async move {
                    let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    gone.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self { addr, opened, ended }
    }

    fn counts(&self) -> (usize, usize) {
        (self.opened.load(Ordering::SeqCst), self.ended.load(Ordering::SeqCst))
    }
}

/// The shared HTTP/2 connection is kept while requests take it, let go once
/// none has for `idle_timeout_ms` (a stream still running on it finishes
/// first), and made again by the next request.
#[tokio::test]
async fn an_idle_h2_upstream_connection_is_closed_and_a_busy_one_kept() {
    let up = CountedH2::start().await;
    let gw = TestGateway::start(&proxy(up.addr, "protocol = \"h2\"\nidle_timeout_ms = 1000")).await;
    let client = Client::new(gw.addr);
    // A request every 100 ms for over twice the idle timeout.
    for i in 0..25 {
        let reply = client.get(&format!("/busy/{i}")).await;
        assert_eq!((reply.status, reply.text()), (200, format!("/busy/{i} done")));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(up.counts(), (1, 0), "one connection carried the busy traffic");

    // The sweeper lets the connection go while this response is on its way.
    let reply = client.get("/slow").await;
    assert_eq!((reply.status, reply.text()), (200, "/slow done".to_owned()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while up.counts().1 == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the idle connection was never closed: {:?}", up.counts());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.counts(), (1, 1));
    let reply = client.get("/again").await;
    assert_eq!((reply.status, reply.text()), (200, "/again done".to_owned()));
    assert_eq!(up.counts().0, 2, "the next request made a new connection");
}

/// An h2c upstream (the `h2` crate's server, which can reset a stream
/// with any reason) that resets its first `resets` streams with `reason`,
/// then answers `<method> <path>`; counts the streams it saw.
async fn resetting_h2(resets: usize, reason: h2::Reason) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else { return };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    if count.fetch_add(1, Ordering::SeqCst) < resets {
                        respond.send_reset(reason);
                        continue;
                    }
                    let text = format!("{} {}", req.method(), req.uri().path());
                    let Ok(mut send) = respond.send_response(Response::new(()), false) else { continue };
                    let _ = send.send_data(Bytes::from(text), true);
                }
            });
        }
    });
    (addr, seen)
}

/// `REFUSED_STREAM` says the upstream processed nothing of the request
/// (RFC 9113 §8.7): even a POST is sent again. Any other reset may come
/// after processing, and a POST is not.
#[tokio::test]
async fn a_refused_h2_stream_is_retried_whatever_the_method_and_other_resets_are_not() {
    let settings = "protocol = \"h2\"\nretries = { attempts = 2, backoff_ms = 1 }";
    let retried = |target| proxy(target, settings).replace("retries = { attempts = 1 }\n", "");

    let (addr, seen) = resetting_h2(1, h2::Reason::REFUSED_STREAM).await;
    let gw = TestGateway::start(&retried(addr)).await;
    let reply = Client::new(gw.addr).send(Method::POST, "/orders", &[], "").await;
    assert_eq!((reply.status, reply.text()), (200, "POST /orders".to_owned()));
    assert_eq!(seen.load(Ordering::SeqCst), 2, "refused, then answered");
    drop(gw);

    let (addr, seen) = resetting_h2(1, h2::Reason::INTERNAL_ERROR).await;
    let gw = TestGateway::start(&retried(addr)).await;
    let reply = Client::new(gw.addr).send(Method::POST, "/orders", &[], "").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("HTTP/2 stream failed"), "{}", reply.text());
    assert_eq!(seen.load(Ordering::SeqCst), 1, "a POST that may have been processed is not sent again");
}
