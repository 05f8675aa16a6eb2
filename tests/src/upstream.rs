//! An upstream service on `127.0.0.1:0` that records what reached it and
//! answers as the test says.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Sent after the body. Over HTTP/1.1 only when the request said
    /// `TE: trailers` and the answer names them in a `Trailer` header.
    pub trailers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self { status, headers: Vec::new(), body: body.into(), trailers: Vec::new(), delay: Duration::ZERO }
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.into(), value.into()));
        self
    }

    pub fn json(value: &serde_json::Value) -> Self {
        Self::new(200, serde_json::to_vec(value).unwrap()).header("content-type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A body followed by trailers, of no announced length: a server sends it
/// chunked, the one HTTP/1.1 framing that carries trailers.
struct Trailing {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl Trailing {
    fn new(data: Bytes, trailers: &[(String, String)]) -> Self {
        let trailers = trailers
            .iter()
            .map(|(k, v)| (http::HeaderName::try_from(k).unwrap(), http::HeaderValue::try_from(v).unwrap()))
            .collect();
        Self { data: Some(data), trailers: Some(trailers) }
    }
}

impl hyper::body::Body for Trailing {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let frame = match (self.data.take(), self.trailers.take()) {
            (Some(data), trailers) => {
                self.trailers = trailers;
                Some(hyper::body::Frame::data(data))
            }
            (None, trailers) => trailers.map(hyper::body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}

type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// Holds every request until the barrier's party is complete: a way to
/// prove requests arrive concurrently without measuring time.
pub type Gate = Arc<tokio::sync::Barrier>;

pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Record>,
    task: tokio::task::JoinHandle<()>,
}

/// The requests received, or only their count.
#[derive(Default)]
struct Record {
    seen: Mutex<Vec<Seen>>,
    count: std::sync::atomic::AtomicUsize,
    count_only: bool,
}

impl TestUpstream {
    /// Answers 200 with a body naming the upstream and echoing the path.
    pub async fn named(name: &str) -> Self {
        let name = name.to_owned();
        Self::start(move |seen| Answer::new(200, format!("{name} {} {}", seen.method, seen.uri))).await
    }

    pub async fn start(respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), respond).await
    }

    pub async fn start_on(addr: SocketAddr, respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_with(addr, None, Record::default(), respond).await
    }

    /// Like `start`, but every request first waits at `gate`.
    pub async fn start_gated(gate: Gate, respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_with("127.0.0.1:0".parse().unwrap(), Some(gate), Record::default(), respond).await
    }

    /// Like `start`, but keeps only the count of requests (`seen` stays
    /// empty): for floods in memory tests, where the requests kept would be
    /// most of what is measured (their headers hold on to the read buffer
    /// of their connection, about 8 KiB each).
    pub async fn counting(respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        let record = Record { count_only: true, ..Record::default() };
        Self::start_with("127.0.0.1:0".parse().unwrap(), None, record, respond).await
    }

    async fn start_with(
        addr: SocketAddr,
        gate: Option<Gate>,
        record: Record,
        respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(record);
        let respond: Responder = Arc::new(respond);
        let task = tokio::spawn(serve(listener, seen.clone(), respond, gate));
        Self { addr, seen, task }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `host:port`, as upstream targets are written in config.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// A config section declaring this service as upstream `name`.
    pub fn section(&self, name: &str) -> String {
        format!("[upstreams.{name}]\ntargets = [\"{}\"]\n", self.target())
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connections are tasks of this one, so dropping the upstream (which
/// aborts it) closes them too, as a stopped server would: a client's
/// pooled keep-alive connection does not outlive it.
async fn serve(listener: TcpListener, seen: Arc<Record>, respond: Responder, gate: Option<Gate>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let seen = seen.clone();
        let respond = respond.clone();
        let gate = gate.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let seen = seen.clone();
                let respond = respond.clone();
                let gate = gate.clone();
                async move {
                    if let Some(gate) = gate {
                        gate.wait().await;
                    }
                    let (head, body) = req.into_parts();
                    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                    let record = Seen {
                        method: head.method.to_string(),
                        uri: head.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                        headers: head.headers,
                        body,
                    };
                    if !seen.count_only {
                        seen.seen.lock().unwrap().push(record.clone());
                    }
                    seen.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let answer = respond(&record);
                    if !answer.delay.is_zero() {
                        tokio::time::sleep(answer.delay).await;
                    }
                    let body = match answer.trailers.is_empty() {
                        true => Full::new(answer.body).boxed(),
                        false => Trailing::new(answer.body, &answer.trailers).boxed(),
                    };
                    let mut resp = hyper::Response::new(body);
                    *resp.status_mut() = http::StatusCode::from_u16(answer.status).unwrap();
                    for (k, v) in answer.headers {
                        resp.headers_mut()
                            .append(http::HeaderName::try_from(k).unwrap(), http::HeaderValue::try_from(v).unwrap());
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A port on 127.0.0.1 that refuses connections: bound but not listening,
/// and held while the returned socket lives, so that no other test's
/// server is given it meanwhile (a port bound and let go at once may be).
pub fn closed_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind("127.0.0.1:0".parse().expect("an address")).expect("a free port");
    let addr = socket.local_addr().expect("its address");
    (socket, addr)
}
