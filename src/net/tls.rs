//! TLS client settings for SMTP and Redis: verified against the system's roots, or (for
//! opportunistic SMTP only) encrypted without a trusted certificate.
//!
//! Owns the trust roots (the system store, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) and
//! the handshake, which completes within the stream's deadline. It must never hand out an
//! unverified configuration except through [`Verify::Nothing`], whose callers may not send a
//! secret over it.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::{DeadlineStream, Stream};

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

/// The verified configuration, rebuilt when the variables that pick the roots change (so a
/// host that points `SSL_CERT_FILE` at its internal CA at run time is obeyed).
///
/// The roots are loaded (file I/O) under this lock: a child forked meanwhile must not inherit
/// it held, so it is on the fork handlers' list (`crate::fork`) like every library lock.
pub(crate) static VERIFIED: Mutex<Option<(RootsKey, Arc<ClientConfig>)>> = Mutex::new(None);

type RootsKey = (Option<std::ffi::OsString>, Option<std::ffi::OsString>);

fn verified_config() -> io::Result<Arc<ClientConfig>> {
    let key = (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    );
    let mut cached = VERIFIED.lock();
    if let Some((k, cfg)) = &*cached {
        if *k == key {
            return Ok(cfg.clone());
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no trusted root certificate found (system store, SSL_CERT_FILE, SSL_CERT_DIR)",
        ));
    }
    let cfg = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    *cached = Some((key, cfg.clone()));
    Ok(cfg)
}

/// Takes and releases the roots lock (the fork test's probe).
#[cfg(test)]
pub(crate) fn handshake_config_for_tests() -> bool {
    drop(VERIFIED.lock());
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
        Verify::Full => verified_config()?,
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
