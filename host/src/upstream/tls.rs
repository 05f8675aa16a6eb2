//! TLS to an upstream's targets: the rustls client config its connections
//! use, built when the config is checked, so every load and reload reads
//! the certificate files again and a broken one is a config error (the
//! running config keeps serving).
//!
//! Certificates are verified against the given CA bundle, or the system's
//! trust store without one; the name checked (and sent as SNI) is
//! `server_name`, or the target's host. `insecure_skip_verify` accepts any
//! certificate; it is an explicit opt-in and logged at every load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The oldest TLS version an upstream may negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MinVersion {
    Tls12,
    Tls13,
}

/// What `[upstreams.<name>.tls]` asks for, paths resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    pub server_name: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Certificate chain and key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub min_version: Option<MinVersion>,
    pub insecure_skip_verify: bool,
}

/// Why the settings give no config: the key to blame and what is wrong.
#[derive(Debug)]
pub(crate) struct TlsError {
    pub key: &'static str,
    pub message: String,
}

fn error(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError { key, message: message.into() }
}

/// An upstream's checked TLS settings and the client config built from
/// them. Two specs are equal when the settings and the bytes of the files
/// are: a reload that read a changed CA bundle or client certificate
/// builds new connections with it.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    /// Sent as SNI and verified; the target's host when `None`.
    pub server_name: Option<ServerName<'static>>,
    pub insecure_skip_verify: bool,
    min_version: MinVersion,
    /// Each file read, with its contents when read.
    files: Vec<(PathBuf, Vec<u8>)>,
    config: Arc<ClientConfig>,
}

impl PartialEq for TlsSpec {
    fn eq(&self, other: &Self) -> bool {
        self.server_name == other.server_name
            && self.insecure_skip_verify == other.insecure_skip_verify
            && self.min_version == other.min_version
            && self.files == other.files
            && self.config.alpn_protocols == other.config.alpn_protocols
    }
}

impl Eq for TlsSpec {}

impl TlsSpec {
    /// Reads the files and builds the client config, offering `alpn`.
    pub(crate) fn load(settings: &TlsSettings, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        let server_name = match &settings.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| error("server_name", format!("{name:?} is not a DNS name or IP address")))?,
            ),
            None => None,
        };
        let min_version = settings.min_version.unwrap_or(MinVersion::Tls12);
        let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| error("min_version", e.to_string()))?;
        let mut files = Vec::new();
        let builder = if settings.insecure_skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            let roots = match &settings.ca_file {
                Some(path) => {
                    let pem = read(path, "ca_file", &mut files)?;
                    Arc::new(ca_bundle(path, &pem)?)
                }
                None => system_roots(),
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &settings.client_cert {
            Some((cert, key)) => {
                let chain = read(cert, "client_cert_file", &mut files)?;
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
                    .collect::<Result<_, _>>()
                    .map_err(|e| error("client_cert_file", format!("{}: {e}", cert.display())))?;
                if chain.is_empty() {
                    return Err(error("client_cert_file", format!("{} holds no PEM certificate", cert.display())));
                }
                let pem = read(key, "client_key_file", &mut files)?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| error("client_key_file", format!("{}: no private key: {e}", key.display())))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    error("client_key_file", format!("{} does not fit {}: {e}", key.display(), cert.display()))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            server_name,
            insecure_skip_verify: settings.insecure_skip_verify,
            min_version,
            files,
            config: Arc::new(config),
        })
    }

    pub(crate) fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The files read, for the reload watcher.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(path, _)| path.as_path())
    }
}

fn read(path: &Path, key: &'static str, files: &mut Vec<(PathBuf, Vec<u8>)>) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    files.push((path.to_owned(), bytes.clone()));
    Ok(bytes)
}

fn ca_bundle(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| error("ca_file", format!("{}: {e}", path.display())))?;
        roots.add(cert).map_err(|e| error("ca_file", format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(error("ca_file", format!("{} holds no PEM certificate", path.display())));
    }
    Ok(roots)
}

/// The system's trust store, read once per process: unlike the files a
/// config names, it does not change with the config.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's trusted certificates");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system trust store loaded for upstream TLS");
            Arc::new(roots)
        })
        .clone()
}

/// `insecure_skip_verify`: any certificate for any name is accepted; the
/// handshake's signatures are still checked, so the session is at least
/// with the holder of the key the certificate names.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
