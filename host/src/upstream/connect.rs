//! Opening a connection to a target: TCP, then TLS when the upstream has
//! it, both within the connect timeout. The connection is an enum, not a
//! boxed trait object: the plaintext HTTP/1.1 path, the one benchmarked,
//! stays a direct `TcpStream` call behind one predictable branch.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::uri::Authority;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::failure::ClientError;
use super::tls::TlsSpec;

/// How a target is connected to; clones are cheap.
#[derive(Clone)]
pub(crate) struct Connector {
    addr: Authority,
    timeout: Duration,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    /// `None` when the target's host is no valid server name (the config
    /// check refuses that; a connection then fails with the reason).
    name: Option<ServerName<'static>>,
}

impl Connector {
    /// `name`: the DNS name `addr` was resolved from, which is the server
    /// name the certificate is checked against unless one is configured.
    pub(crate) fn new(addr: Authority, name: Option<&str>, timeout: Duration, tls: Option<&TlsSpec>) -> Self {
        let tls = tls.map(|spec| Tls {
            connector: TlsConnector::from(spec.config()),
            name: spec
                .server_name
                .clone()
                .or_else(|| name.and_then(|n| ServerName::try_from(n.to_owned()).ok()))
                .or_else(|| host_name(&addr)),
        });
        Self { addr, timeout, tls }
    }

    pub(crate) fn addr(&self) -> &Authority {
        &self.addr
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same, with another timeout (health checks use theirs).
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Self {
        Self { timeout, ..self.clone() }
    }

    pub(crate) async fn connect(&self) -> Result<Stream, ClientError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timed_out = || ClientError::Connect { timed_out: true, source: io::ErrorKind::TimedOut.into() };
        let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(self.addr.as_str())).await {
            Ok(Ok(io)) => io,
            Ok(Err(source)) => {
                return Err(ClientError::Connect { timed_out: source.kind() == io::ErrorKind::TimedOut, source });
            }
            Err(_) => return Err(timed_out()),
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else { return Ok(Stream::Tcp(tcp)) };
        let Some(name) = tls.name.clone() else {
            let reason = format!("{} has no host usable as a TLS server name: set tls.server_name", self.addr);
            return Err(ClientError::Tls(io::Error::new(io::ErrorKind::InvalidInput, reason)));
        };
        match tokio::time::timeout_at(deadline, tls.connector.connect(name, tcp)).await {
            Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream))),
            Ok(Err(e)) => Err(ClientError::Tls(e)),
            Err(_) => Err(timed_out()),
        }
    }
}

/// The host of `host:port` as a server name (an IP address or DNS name).
pub(crate) fn host_name(addr: &Authority) -> Option<ServerName<'static>> {
    let host = addr.host().trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// A connection to a target.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The protocol the server chose by ALPN, on TLS.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Tcp(_) => None,
            Self::Tls(tls) => tls.get_ref().1.alpn_protocol(),
        }
    }

    /// Halves to read and write at once, on the same task.
    pub(crate) fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        match self {
            Self::Tcp(tcp) => {
                let (r, w) = tcp.split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Self::Tls(tls) => {
                let (r, w) = tokio::io::split(&mut **tls);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }

    /// Owned halves, for an upgraded connection (WebSocket).
    pub(crate) fn into_split(
        self,
    ) -> (Box<dyn AsyncRead + Send + Sync + Unpin>, Box<dyn AsyncWrite + Send + Sync + Unpin>) {
        match self {
            Self::Tcp(tcp) => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            Self::Tls(tls) => {
                let (r, w) = tokio::io::split(*tls);
                (Box::new(r), Box::new(w))
            }
        }
    }

    /// Whether an idle connection can carry a request: anything readable on
    /// it (the upstream's close, or bytes nobody asked for) says it cannot.
    /// On TCP this asks the runtime's readiness, which costs no system call
    /// unless the connection turned readable. On TLS the record layer reads
    /// what came (a TLS 1.3 server sends session tickets after the
    /// handshake; they are no reason to drop the connection).
    pub(crate) fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self {
            Self::Tcp(tcp) => match tcp.poll_read_ready(&mut cx) {
                Poll::Pending => true,
                Poll::Ready(Err(_)) => false,
                Poll::Ready(Ok(())) => {
                    let mut byte = [0u8; 1];
                    matches!(tcp.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                }
            },
            Self::Tls(tls) => {
                let mut byte = [0u8; 1];
                let mut buf = ReadBuf::new(&mut byte);
                Pin::new(&mut **tls).poll_read(&mut cx, &mut buf).is_pending()
            }
        }
    }
}

/// Forwards each call to the variant's stream.
macro_rules! forward_io {
    ($ty:ty, $($variant:ident),+) => {
        impl AsyncRead for $ty {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
    (write $ty:ty, $($variant:ident),+) => {
        impl AsyncWrite for $ty {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $(Self::$variant(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

forward_io!(Stream, Tcp, Tls);
forward_io!(write Stream, Tcp, Tls);
forward_io!(ReadHalf<'_>, Tcp, Tls);
forward_io!(write WriteHalf<'_>, Tcp, Tls);

pub(crate) enum ReadHalf<'a> {
    Tcp(tokio::net::tcp::ReadHalf<'a>),
    Tls(tokio::io::ReadHalf<&'a mut TlsStream<TcpStream>>),
}

pub(crate) enum WriteHalf<'a> {
    Tcp(tokio::net::tcp::WriteHalf<'a>),
    Tls(tokio::io::WriteHalf<&'a mut TlsStream<TcpStream>>),
}
