//! The connection to an extension server: `tcp://host:port` of an `UnsecuredEndpoint`, or TLS for
//! a `TlsEndpoint` (ALPN `h2`) trusting the process's roots ([`crate::tls::client_config`]: the
//! system's and `--ca-file`'s) plus the endpoint's `trustedCertificates`. As AVA, the server's
//! certificate must name the URL's host: `ignoreHostname` and `ignoreSignature` are refused by
//! validation for gRPC.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};

use crate::topology::model::Endpoint;

/// How long a TCP connection (and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why no channel could be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The endpoint's URL or certificates are not usable (validation refuses these first).
    #[error("endpoint: {0}")]
    Endpoint(String),
    /// The server could not be reached.
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The endpoint URL.
        url: String,
        /// What failed.
        detail: String,
    },
}

/// `host` and `port` of a `tcp://host:port` URL (IPv6 hosts in brackets).
pub fn host_and_port(url: &str) -> Result<(String, u16), ChannelError> {
    let bad = |why: &str| ChannelError::Endpoint(format!("'{url}' {why}"));
    let rest = url
        .split_once("://")
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("tcp"))
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("is not a tcp://host:port URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| bad("has no port"))?;
    let port = port.parse::<u16>().map_err(|_| bad("has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok((host.to_string(), port))
}

/// The certificates of one PEM text (a `trustedCertificates` entry); at least one.
pub fn parse_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

/// Reads the endpoint's PEM certificates (validation checks them first).
pub fn parse_certificates(pems: &[String]) -> Result<Vec<CertificateDer<'static>>, ChannelError> {
    let mut out = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let certs = parse_pem(pem)
            .map_err(|e| ChannelError::Endpoint(format!("trustedCertificates[{i}]: {e}")))?;
        out.extend(certs);
    }
    Ok(out)
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Opens one HTTP/2 connection to the endpoint (a session's; each session has its own).
pub async fn connect(endpoint: &Endpoint) -> Result<Channel, ChannelError> {
    let (host, port) = host_and_port(&endpoint.url)?;
    let tls = match &endpoint.tls {
        Some(options) => Some(tls_config(&options.trusted_certificates)?),
        None => None,
    };
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| ChannelError::Endpoint(format!("'{host}' is not a host name: {e}")))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = format!("{scheme}://{authority}");
    let url = endpoint.url.clone();
    let tonic_endpoint = TonicEndpoint::from_shared(uri)
        .map_err(|e| ChannelError::Endpoint(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let connector = tower::service_fn(move |_| {
        let (host, tls, server_name) = (host.clone(), tls.clone(), server_name.clone());
        async move {
            let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))??;
            tcp.set_nodelay(true)?;
            let io: Box<dyn Io> = match tls {
                Some(config) => {
                    let connector = tokio_rustls::TlsConnector::from(config);
                    let stream =
                        tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp))
                            .await
                            .map_err(|_| {
                                std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "TLS handshake timed out",
                                )
                            })??;
                    Box::new(stream)
                }
                None => Box::new(tcp),
            };
            Ok::<_, std::io::Error>(TokioIo::new(io))
        }
    });
    tonic_endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| ChannelError::Connect {
            url,
            detail: error_chain(&e),
        })
}

/// The process's TLS client configuration with the endpoint's certificates added, speaking h2.
fn tls_config(trusted: &[String]) -> Result<Arc<rustls::ClientConfig>, ChannelError> {
    let extra = parse_certificates(trusted)?;
    let mut config = if extra.is_empty() {
        (*crate::tls::client_config().map_err(|e| ChannelError::Endpoint(e.to_string()))?).clone()
    } else {
        (*crate::tls::client_config_with(&extra)
            .map_err(|e| ChannelError::Endpoint(e.to_string()))?)
        .clone()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// An error and its sources, joined (tonic's transport errors say little at the top).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls_give_host_and_port() {
        assert_eq!(
            host_and_port("tcp://avaextension:44000").expect("ok"),
            ("avaextension".to_string(), 44000)
        );
        assert_eq!(
            host_and_port("TCP://[::1]:5001/").expect("ok"),
            ("::1".to_string(), 5001)
        );
        for bad in ["http://a:1", "tcp://a", "tcp://:1", "tcp://a:x", "a:1"] {
            assert!(host_and_port(bad).is_err(), "{bad}");
        }
    }
}
