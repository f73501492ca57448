//! HTTPS served by the shore itself: the certificate chain and key that
//! `[http] tls_cert_file` and `tls_key_file` name, through rustls with the
//! ring provider, on a listener axum serves like a plain one.

use crate::config::ShoreHttpConfig;
use keelson_config::pem::{self, PemError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take over its TLS handshake. A vessel on a
/// geostationary link needs a few round trips of 600 ms or more, with
/// losses; a client still silent after this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the shore cannot serve HTTPS with the configured files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be used.
    #[error("{0}")]
    Certificate(PemError),
    /// The key file cannot be used.
    #[error("{0}")]
    Key(PemError),
    /// rustls refused the certificate chain.
    #[error("the certificate in {file} cannot be served: {detail}")]
    BadCertificate {
        /// The certificate file.
        file: String,
        /// rustls's reason.
        detail: String,
    },
    /// rustls refused the private key.
    #[error("the private key in {file} cannot be used: {detail}")]
    BadKey {
        /// The key file.
        file: String,
        /// rustls's reason.
        detail: String,
    },
    /// rustls cannot be set up with the ring provider (a build fault).
    #[error("TLS cannot be set up: {0}")]
    Setup(String),
    /// The key is not the certificate's.
    #[error("the private key in {key_file} does not belong to the certificate in {cert_file}")]
    Mismatch {
        /// The certificate file.
        cert_file: String,
        /// The key file.
        key_file: String,
    },
}

impl TlsError {
    /// The configuration key of the file to fix.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Certificate(_) | TlsError::BadCertificate { .. } | TlsError::Setup(_) => {
                "http.tls_cert_file"
            }
            TlsError::Key(_) | TlsError::BadKey { .. } | TlsError::Mismatch { .. } => {
                "http.tls_key_file"
            }
        }
    }
}

/// The TLS server configuration of `[http]`, or `None` for plain HTTP.
pub fn server_config(
    http: &ShoreHttpConfig,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    let Some((cert_path, key_path)) = http.tls_files() else {
        return Ok(None);
    };
    let cert_file = cert_path.display().to_string();
    let key_file = key_path.display().to_string();
    let chain = pem::certificates(cert_path).map_err(TlsError::Certificate)?;
    let key = pem::private_key(key_path).map_err(TlsError::Key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Loading the key on its own first tells a bad key from a chain the
    // key does not belong to; rustls reports both from one call below.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::BadKey {
            file: key_file.clone(),
            detail: e.to_string(),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            },
            other => TlsError::BadCertificate {
                file: cert_file.clone(),
                detail: other.to_string(),
            },
        })?;
    // axum serves HTTP/1.1 only (its http2 feature is off).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// A TCP listener whose connections come out of a TLS handshake. The
/// handshakes run side by side, each in its own task, so a slow or silent
/// client holds up no other.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Wraps a bound listener.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Both branches are cancel-safe, as axum requires: it drops this future
    // when the server shuts down.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                // axum's own accept for TCP retries errors such as running
                // out of file descriptors, after a pause.
                (tcp, peer) = axum::serve::Listener::accept(&mut self.tcp) => {
                    let acceptor = self.acceptor.clone();
                    self.handshakes.spawn(handshake(acceptor, tcp, peer));
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// One client's handshake; `None` when it failed. Failures are logged at
/// debug level only: on a shore open to the internet, scanners make many.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some((tls, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
