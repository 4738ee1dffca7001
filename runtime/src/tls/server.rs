//! The HTTPS listener: a TCP listener whose connections speak TLS, the certificate chain and key
//! read from PEM files and read again when either file changes (checked every
//! [`RELOAD_CHECK`]). A pair that cannot be read or does not match keeps the last good one in
//! force and is reported once per change. Handshakes run on their own tasks, at most
//! [`MAX_HANDSHAKES`] at once and each within [`HANDSHAKE_TIMEOUT`], so a slow or silent client
//! holds up nobody.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{TlsError, file_error, provider, read_bounded, read_certificates};

/// How often the certificate and key files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);
/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;

/// The PEM files of the listener's identity.
#[derive(Clone, Debug)]
pub struct CertificateFiles {
    /// The certificate chain, end-entity certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl CertificateFiles {
    /// Reads and checks the pair: the key must be usable and match the certificate.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let chain = read_certificates(&self.cert)?;
        let key_pem = read_bounded(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| file_error(&self.key, format!("not a PEM private key: {e}")))?;
        CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
            TlsError::Config(format!(
                "{} with {}: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })
    }

    /// What identifies the files' current versions: modification time and length of each.
    fn stamp(&self) -> Option<[(SystemTime, u64); 2]> {
        let of = |path: &Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        Some([of(&self.cert)?, of(&self.key)?])
    }
}

/// Hands every handshake the identity in force.
#[derive(Debug)]
struct Identity {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| key.clone())
    }
}

/// What the listener reports about its certificate.
#[derive(Debug)]
pub enum Reload {
    /// A changed pair was read and is in force.
    Loaded,
    /// A changed pair was refused; the previous one stays in force.
    Refused(TlsError),
}

/// A TLS listener for [`axum::serve`].
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Serves TLS on `listener` with the identity in `files` (refused at once if it cannot be
    /// read), reading the files again when they change and telling `report` how that went.
    pub fn bind(
        listener: TcpListener,
        files: CertificateFiles,
        report: impl Fn(Reload) + Send + 'static,
    ) -> Result<Self, TlsError> {
        let local = listener
            .local_addr()
            .map_err(|e| TlsError::Config(format!("listener address: {e}")))?;
        let identity = Arc::new(Identity {
            current: RwLock::new(Arc::new(files.load()?)),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(identity.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        tokio::spawn(watch_files(files, identity, report));
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("HTTPS listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!("HTTPS listener: handshake with {peer}: {e}"),
                Err(_) => tracing::debug!(
                    "HTTPS listener: {peer} did not finish its handshake in {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

async fn watch_files(
    files: CertificateFiles,
    identity: Arc<Identity>,
    report: impl Fn(Reload) + Send + 'static,
) {
    let mut seen = files.stamp();
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let stamp = files.stamp();
        if stamp == seen {
            continue;
        }
        seen = stamp;
        match files.load() {
            Ok(key) => {
                if let Ok(mut current) = identity.current.write() {
                    *current = Arc::new(key);
                }
                tracing::info!(
                    "HTTPS listener: certificate {} read again",
                    files.cert.display()
                );
                report(Reload::Loaded);
            }
            Err(e) => {
                tracing::warn!("HTTPS listener: {e}; the previous certificate stays in force");
                report(Reload::Refused(e));
            }
        }
    }
}
