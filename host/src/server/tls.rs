//! TLS termination: certificates loaded into a rustls config (ALPN `h2`
//! and `http/1.1`), and the handshake of each accepted connection.
//!
//! The config lives in the snapshot's settings, so a reload that re-reads
//! the certificate files takes effect for the next handshake; listeners are
//! not rebound.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads a PEM certificate chain and private key into a server config.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate {} and its key do not fit: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where a TLS listener gets the config for its next handshake: the current
/// snapshot's, or the one it started with if a reload removed TLS.
pub(crate) struct TlsSource {
    current: Box<dyn Fn() -> Option<Arc<ServerConfig>> + Send + Sync>,
    fallback: Arc<ServerConfig>,
}

impl TlsSource {
    pub(crate) fn new(
        fallback: Arc<ServerConfig>,
        current: impl Fn() -> Option<Arc<ServerConfig>> + Send + Sync + 'static,
    ) -> Self {
        Self { current: Box::new(current), fallback }
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from((self.current)().unwrap_or_else(|| self.fallback.clone()))
    }
}
