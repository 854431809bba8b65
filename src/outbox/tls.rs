//! TLS for the outbox's connections (SMTP and webhooks): rustls with ring.

use std::path::Path;

use tokio_rustls::TlsConnector;

use crate::config::ConfigError;

/// The system's trust roots, or, when `ca_file` is set, only the CAs in it (a private CA).
/// `key` names the setting in errors.
pub fn connector(ca_file: &Path, key: &str) -> Result<TlsConnector, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let bad = |e: String| ConfigError(format!("`{key}`: {e}"));
    if ca_file.as_os_str().is_empty() {
        return mail_send::smtp::tls::build_tls_connector(false).map_err(bad);
    }
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!("{} holds no certificate", ca_file.display())));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(std::sync::Arc::new(config)))
}
