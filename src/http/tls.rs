//! TLS for the admin listener (`admin.tls_cert_file`, `admin.tls_key_file`): rustls with
//! ring's provider, the TLS stack the outbox's connections already use, TLS 1.2 and 1.3.
//! The handshake runs on the connection's own task, never in the accept loop, bounded by
//! `server.header_read_timeout` as the request head is.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{check_private, Admin, ConfigError};

/// A listener's TLS: the server's certificate and key, and how long a handshake may take.
/// Cheap to clone.
#[derive(Clone)]
pub struct Acceptor {
    inner: TlsAcceptor,
    timeout: Duration,
}

impl Acceptor {
    /// The admin listener's TLS when both files are set (None: plain HTTP). The key file
    /// must be closed to other users, as secret files are; either file's problem names
    /// its key.
    pub fn from_config(admin: &Admin, timeout: Duration) -> Result<Option<Acceptor>, ConfigError> {
        if !admin.tls() {
            return Ok(None);
        }
        let config = server_config(&admin.tls_cert_file, &admin.tls_key_file)?;
        Ok(Some(Acceptor {
            inner: TlsAcceptor::from(Arc::new(config)),
            timeout,
        }))
    }

    /// The TLS session over `stream`; None when the handshake fails (a plain-HTTP client, a
    /// scanner, a client that distrusts the certificate) or takes too long: the connection
    /// is then closed without an answer.
    pub async fn handshake(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let peer = stream.peer_addr().ok();
        match tokio::time::timeout(self.timeout, self.inner.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                tracing::debug!(?peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(?peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// TLS 1.2 and 1.3 with ring's provider, the certificate chain and its key, HTTP/1.1.
fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |name: &str, path: &Path, e: &dyn std::fmt::Display| {
        ConfigError(format!("`admin.{name}`: {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("tls_cert_file", cert, &e))?;
    if certs.is_empty() {
        return Err(bad("tls_cert_file", cert, &"holds no PEM certificate"));
    }
    check_private(key).map_err(|e| ConfigError(format!("`admin.tls_key_file`: {e}")))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("tls_key_file", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError(format!("`admin.tls_cert_file`: TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            bad(
                "tls_key_file",
                key,
                &format!("not the certificate's key, or unusable ({e})"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
