//! TLS for every connection Vigil makes or accepts, through rustls with the ring provider.
//!
//! Clients (HttpExtension endpoints, the object store, the MQTT broker, the CLI's calls to a
//! service) trust the system's roots plus the certificates of `--ca-file`
//! ([`trust_ca_file`], once at start-up; [`client_config`] then hands out the same
//! configuration to every client). The HTTPS listener is [`server`].

pub mod server;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused the configuration (a key that does not match its certificate, ...).
    #[error("TLS configuration refused: {0}")]
    Config(String),
    /// `--ca-file` was given twice with different files (start-up set it already).
    #[error("the trusted CA file is already set")]
    AlreadySet,
}

static CLIENT: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// `--ca-file`'s certificates, for configurations that add more.
static CA_FILE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// The crypto provider of every TLS connection.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusts the certificates in `path` (PEM, one or more) besides the system's roots, for every
/// client of this process. Call once at start-up, before any client is made.
pub fn trust_ca_file(path: &Path) -> Result<(), TlsError> {
    let extra = read_certificates(path)?;
    let config = build_client_config(&extra)?;
    CLIENT.set(config).map_err(|_| TlsError::AlreadySet)?;
    CA_FILE.set(extra).map_err(|_| TlsError::AlreadySet)
}

/// The client configuration: the system's roots plus `--ca-file`'s certificates.
pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    if let Some(config) = CLIENT.get() {
        return Ok(config.clone());
    }
    let config = build_client_config(&[])?;
    Ok(CLIENT.get_or_init(|| config).clone())
}

/// The client configuration trusting `extra` besides the system's roots and `--ca-file`'s
/// certificates (a TlsEndpoint's `trustedCertificates`).
pub fn client_config_with(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut all = CA_FILE.get().cloned().unwrap_or_default();
    all.extend_from_slice(extra);
    build_client_config(&all)
}

/// A blocking HTTP client builder that speaks TLS with [`client_config`].
pub fn http_client_builder() -> Result<reqwest::blocking::ClientBuilder, TlsError> {
    let config = (*client_config()?).clone();
    Ok(reqwest::blocking::Client::builder().tls_backend_preconfigured(config))
}

fn build_client_config(extra: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for e in &system.errors {
        tracing::warn!("system CA certificates: {e}");
    }
    let (_, unusable) = roots.add_parsable_certificates(system.certs);
    if unusable > 0 {
        tracing::debug!("{unusable} system CA certificates could not be used");
    }
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| TlsError::Config(format!("a --ca-file certificate: {e}")))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file `path`; at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_bounded(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Largest PEM file read (a chain of a few certificates is a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Reads `path` whole, refusing a file over [`MAX_PEM_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e.to_string()))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(file_error(
            path,
            format!(
                "{} bytes, over the {} KiB a PEM file may have",
                meta.len(),
                MAX_PEM_BYTES >> 10
            ),
        ));
    }
    std::fs::read(path).map_err(|e| file_error(path, e.to_string()))
}

fn file_error(path: &Path, detail: String) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("vigil-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not pem at all\n").expect("write");
        let e = read_certificates(&path).expect_err("refused");
        assert!(
            e.to_string()
                .contains("empty.pem: holds no PEM certificate"),
            "{e}"
        );
        let missing = read_certificates(&dir.join("absent.pem")).expect_err("refused");
        assert!(matches!(missing, TlsError::File { .. }), "{missing}");
    }
}
