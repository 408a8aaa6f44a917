//! TLS for `rediss://` (feature `tls`): rustls with the ring provider. The server's certificate is checked against
//! Mozilla's root certificates (webpki-roots), or against the CA certificates of a PEM file (`--tls-ca`), and its
//! name against the URL's host (a DNS name or an IP address). `--tls-insecure` skips the certificate check — the
//! handshake signatures are still verified, but anyone on the path can pose as the server: for test servers with
//! a self-signed certificate only. A client certificate (servers with `tls-auth-clients yes`) comes from a PEM
//! certificate chain and key.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

/// TLS options of a `rediss://` connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA certificate(s) to trust instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (self-signed test servers).
    pub insecure: bool,
    /// PEM certificate chain to present (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// A TLS stream over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad_file(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} {}: {e}", path.display()))
}

/// The rustls client configuration for `opts`.
///
/// # Errors
/// A PEM file that cannot be read or holds no certificate (or key); a client certificate without its key.
pub fn client_config(opts: &TlsOptions) -> io::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let builder = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.signature_verification_algorithms)))
    } else {
        let mut roots = RootCertStore::empty();
        match &opts.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad_file("--tls-ca", path, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad_file("--tls-ca", path, e))?;
                if certs.is_empty() {
                    return Err(bad_file("--tls-ca", path, "no certificate in the file"));
                }
                for c in certs {
                    roots.add(c).map_err(|e| bad_file("--tls-ca", path, e))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&opts.client_cert, &opts.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad_file("--tls-cert", cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_file("--tls-cert", cert, e))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| bad_file("--tls-key", key, e))?;
            builder.with_client_auth_cert(chain, k).map_err(|e| bad_file("--tls-cert", cert, e))?
        }
        _ => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "--tls-cert and --tls-key go together"));
        }
    };
    Ok(Arc::new(config))
}

/// Wraps `tcp` in TLS for `host` and completes the handshake (bounded by the socket's time-outs).
///
/// # Errors
/// The host is not a valid server name, or the handshake fails (the certificate is not trusted, names another
/// host, the server speaks no TLS…); the message names `addr`.
pub fn connect(tcp: TcpStream, host: &str, addr: &str, config: Arc<ClientConfig>) -> io::Result<TlsStream> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {host:?} is not a TLS server name: {e}"))
    })?;
    let conn = ClientConnection::new(config, name).map_err(|e| io::Error::other(format!("{addr}: TLS: {e}")))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| {
            let what = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer (read time-out)".to_string(),
                _ => e.to_string(),
            };
            io::Error::new(io::ErrorKind::PermissionDenied, format!("{addr}: TLS handshake failed: {what}"))
        })?;
    }
    Ok(s)
}

/// `--tls-insecure`: any certificate is accepted; the handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
