//! TLS client settings for SMTP, Redis and the webhook: verified against the system's roots, or (for
//! opportunistic SMTP only) encrypted without a trusted certificate.
//!
//! Owns the trust roots (the system store, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) and
//! the handshake, which completes within the stream's deadline. It must never hand out an
//! unverified configuration except through [`Verify::Nothing`], whose callers may not send a
//! secret over it.

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::{DeadlineStream, Stream};
use crate::fork::ForkSafe;

/// How much of the server's identity the handshake checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The certificate chains to a trusted root and names the host.
    Full,
    /// Anything goes: the connection is encrypted against a passive listener only. The
    /// handshake's own signatures are still checked.
    Nothing,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust roots every TLS client of the library uses (SMTP, Redis, the webhook), as DER
/// certificates, and the verified configuration made from them; reloaded when the variables
/// that pick the roots change (so a host that points `SSL_CERT_FILE` at its internal CA at run
/// time is obeyed).
#[derive(Clone)]
pub(crate) struct TrustRoots {
    /// The same certificates, as the webhook's HTTP client takes them.
    pub for_http: Arc<Vec<ureq::tls::Certificate<'static>>>,
    /// A client configuration that verifies against them.
    pub config: Arc<ClientConfig>,
}

/// The one trust store. The lock is held only to read or replace the cached value, never while
/// the roots are read from disk (a certificate file may be slow, or a FIFO): `fork()` waits for
/// this lock, and must not wait for file I/O. It is a [`ForkSafe`] lock, so a child never
/// inherits it held; a child forked while another thread was loading the roots loads its own.
static ROOTS: ForkSafe<Option<(RootsKey, TrustRoots)>> = ForkSafe::new(None);

type RootsKey = (Option<std::ffi::OsString>, Option<std::ffi::OsString>);

/// The system's trust roots (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), loaded once per
/// setting of those variables. None found is an error: nothing could be verified.
pub(crate) fn trust_roots() -> io::Result<TrustRoots> {
    let key = (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    );
    if let Some((k, roots)) = &*ROOTS.lock() {
        if *k == key {
            return Ok(roots.clone());
        }
    }
    // Two threads may load at once after a change; both results are equal, the last is kept.
    let roots = load_roots()?;
    *ROOTS.lock() = Some((key, roots.clone()));
    Ok(roots)
}

fn load_roots() -> io::Result<TrustRoots> {
    let certs = rustls_native_certs::load_native_certs().certs;
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no trusted root certificate found (system store, SSL_CERT_FILE, SSL_CERT_DIR)",
        ));
    }
    let config = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(store)
            .with_no_client_auth(),
    );
    let for_http = certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    Ok(TrustRoots {
        for_http: Arc::new(for_http),
        config,
    })
}

/// Takes and releases the roots lock (the fork test's probe).
#[cfg(test)]
pub(crate) fn handshake_config_for_tests() -> bool {
    drop(ROOTS.lock());
    true
}

fn unverified_config() -> io::Result<Arc<ClientConfig>> {
    let p = provider();
    Ok(Arc::new(
        ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(p)))
            .with_no_client_auth(),
    ))
}

/// Runs the TLS handshake over `tcp` for `host`, within the stream's deadline.
pub fn handshake(tcp: DeadlineStream, host: &str, verify: Verify) -> io::Result<Stream> {
    let cfg = match verify {
        Verify::Full => trust_roots()?.config,
        Verify::Nothing => unverified_config()?,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS name"))?;
    let conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
    }
    Ok(Stream::Tls(Box::new(tls)))
}

/// Accepts any certificate, but still checks that the peer holds the key it presented.
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
