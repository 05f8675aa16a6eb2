//! The checked `[server]` settings the accept loop, connections and
//! requests run with. Built by `config::validate`; the TOML shape and its
//! documentation live on `ServerFile` in `config/schema.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::message::bounds::Bounds;
use crate::normalize::PathParams;

pub(crate) const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 32 << 20;
pub(crate) const DEFAULT_MAX_URI_BYTES: usize = 8 << 10;
pub(crate) const DEFAULT_MAX_HEADER_BYTES: usize = 32 << 10;
pub(crate) const DEFAULT_MAX_HEADERS: usize = 100;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server accepts connections and which requests it refuses before
/// routing. Listener addresses, `tls_listen` and `max_connections` apply at
/// start; everything else is read again for every new connection and
/// request, so a reload changes it (certificates included).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// TLS listeners (the plaintext ones are `Config::listen`).
    pub tls_listen: Vec<SocketAddr>,
    pub tls: Option<TlsSettings>,
    /// HTTP/2 with prior knowledge on plaintext listeners.
    pub h2c: bool,
    /// Largest request body, streamed or buffered: 413.
    pub max_request_body_bytes: u64,
    /// Longest request target (path and query): 414.
    pub max_uri_bytes: usize,
    /// Largest sum of header names and values: 431.
    pub max_header_bytes: usize,
    /// Most header fields: 431.
    pub max_headers: usize,
    /// Open connections per listener; more are closed as soon as accepted.
    pub max_connections: usize,
    /// From the request head to the response head: 408 while the client is
    /// still sending its body, 504 otherwise. `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// Time for the TLS handshake and for each request head (HTTP/1, or
    /// an HTTP/2 header block), from its first byte; a connection's first
    /// head from its start.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic is closed
    /// after this.
    pub idle_timeout: Duration,
    /// After SIGTERM/SIGINT, time left to in-flight requests.
    pub drain_timeout: Duration,
    /// What path normalisation does with `;` segment parameters.
    pub path_params: PathParams,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            tls_listen: Vec::new(),
            tls: None,
            h2c: true,
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            path_params: PathParams::default(),
        }
    }
}

/// A certificate chain and key, loaded when the config is (re)loaded.
#[derive(Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl From<&ServerSettings> for Bounds {
    /// The limits a client's request is held to, for what plugins write.
    fn from(server: &ServerSettings) -> Self {
        Self {
            max_headers: server.max_headers,
            max_header_bytes: server.max_header_bytes,
            max_uri_bytes: server.max_uri_bytes,
            max_body_bytes: server.max_request_body_bytes,
        }
    }
}
