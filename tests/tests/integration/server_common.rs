//! Helpers shared by the `server_*` tests: raw HTTP/1 over TCP, a test PKI
//! made with rcgen, TLS clients, and a gateway serving plaintext and TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use wasmgate::Gateway;
use wasmgate::{Listeners, Running};
use wasmgate_testbed::TestUpstream;

/// A gateway config with these `[server]` keys, proxying everything to
/// `up`.
pub fn config(server: &str, up: &TestUpstream) -> String {
    format!(
        "[server]\n{server}\n[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
        up.target()
    )
}

/// The longest any test waits for something that must happen.
pub const BOUND: Duration = Duration::from_secs(15);

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub text: String,
    /// Whether the gateway closed the connection (rather than `BOUND`
    /// passing).
    pub closed: bool,
}

impl RawReply {
    /// Statuses of every response on the connection, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.text
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| self.text[i + 9..].get(..3).and_then(|s| s.parse().ok()))
            .collect()
    }
}

/// Writes `request` as it is and reads until the gateway closes the
/// connection (or `BOUND` passes).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(request).await.expect("writing the request");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(BOUND, read_all(&mut stream, &mut out)).await.is_ok();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    RawReply { status, text, closed }
}

/// Reads until end of stream; a reset counts as the end.
async fn read_all(stream: &mut TcpStream, out: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(ca_name: &str) -> Self {
        let ca = Ca::new(ca_name);
        let (cert_pem, key_pem) = ca.issue(&["localhost", "127.0.0.1"]);
        Self { ca_pem: ca.pem.clone(), cert_pem, key_pem }
    }

    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("cert.pem"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &self.key_pem).unwrap();
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
    }

    /// A client trusting only this CA, offering `alpn`.
    pub fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// A certificate authority made for a test, issuing certificates.
pub struct Ca {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Self { pem, issuer: Issuer::new(params, key) }
    }

    /// A certificate for these names (DNS names or IP addresses) and its
    /// key, as PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// What a TLS request got back.
#[derive(Debug)]
pub struct TlsReply {
    pub status: u16,
    pub version: http::Version,
    pub body: String,
}

/// GET `path` over TLS, in HTTP/2 if ALPN chose it, else HTTP/1.1.
pub async fn tls_get(addr: SocketAddr, connector: &TlsConnector, path: &str) -> Result<TlsReply, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let resp = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req =
            http::Request::get(format!("https://localhost:{}{path}", addr.port())).body(Empty::<Bytes>::new()).unwrap();
        sender.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = http::Request::get(path).header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
        sender.send_request(req).await.map_err(|e| e.to_string())?
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(TlsReply { status, version, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A gateway serving one plaintext and one TLS listener from a config
/// file in its own folder (with the PKI's files beside it).
pub struct TlsGateway {
    pub gateway: Arc<Gateway>,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl TlsGateway {
    /// `toml` is the config but the `[server]` TLS keys, which are added.
    pub async fn start(pki: &Pki, server_keys: &str, toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        let path = dir.path().join("gateway.toml");
        let text = format!(
            "[server]\ntls_listen = [\"127.0.0.1:0\"]\n{server_keys}\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n{toml}"
        );
        std::fs::write(&path, text).unwrap();
        let mut config = wasmgate::load_config(&path).unwrap_or_else(|e| panic!("{e}"));
        config.listen = vec!["127.0.0.1:0".parse().unwrap()];
        let gateway = Arc::new(Gateway::new(config).await.unwrap_or_else(|e| panic!("{e}")));
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listeners = Listeners {
            plain: wasmgate::bind(&[loopback]).await.unwrap(),
            tls: wasmgate::bind(&[loopback]).await.unwrap(),
        };
        let running = wasmgate::serve_listeners(gateway.clone(), listeners).unwrap();
        Self { gateway, plain: running.addrs[0], tls: running.tls_addrs[0], running, dir }
    }
}

/// Waits until `stream` is closed by the other side, writing a byte every
/// `every` to look alive; false if it is still open after `BOUND`.
pub async fn closed_while_trickling<S>(stream: &mut S, bytes: &[u8], every: Duration) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut buf = [0u8; 1024];
    let mut i = 0;
    while tokio::time::Instant::now() < deadline {
        if !bytes.is_empty() {
            if stream.write_all(&bytes[i % bytes.len()..][..1]).await.is_err() {
                return true;
            }
            i += 1;
        }
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // an error response before the close
            Err(_) => {}
        }
    }
    false
}
