//! TLS for `SSL_GET`: rustls (ring). As keepalived, the server certificate is verified only
//! when the config's root `SSL { ca … }` names a CA file; SNI is sent with `enable_sni`
//! (`sni_name`, else the virtualhost).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::sync::Arc;

/// Accepts any certificate: keepalived's `SSL_GET` without a CA does not verify.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end: &CertificateDer<'_>,
        _inter: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration: verifying against `ca` (a PEM file) or not at all, and
/// presenting `client` (certificate chain and key, PEM files) to servers that ask.
pub fn client_config(
    ca: Option<&str>,
    client: Option<(&str, &str)>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let wants_cert = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read CA file {path}: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| format!("bad certificate in {path}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("bad certificate in {path}: {e}"))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider))),
    };
    let Some((cert, key)) = client else {
        return Ok(wants_cert.with_no_client_auth());
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the client certificate {cert}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {cert}: {e}"))?;
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the client key {key}: {e}"))?;
    wants_cert
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| format!("client certificate {cert} with key {key}: {e}"))
}

/// The name to present: the SNI name when SNI is on, else the address (no SNI is sent
/// for an IP address).
pub fn server_name(sni: Option<&str>, target: SocketAddr) -> ServerName<'static> {
    sni.and_then(|n| ServerName::try_from(n.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()))
}
