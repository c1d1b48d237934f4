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
    password: Option<&str>,
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
    let key_der = private_key(key, password)?;
    wants_cert
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| format!("client certificate {cert} with key {key}: {e}"))
}

/// A PEM private key: plain, or encrypted as PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2 as
/// `openssl pkcs8 -topk8` writes it) and opened with `password` (`SSL { password }`).
/// OpenSSL's older `Proc-Type: 4,ENCRYPTED` keys are refused with the command that
/// converts them.
fn private_key(
    path: &str,
    password: Option<&str>,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the client key {path}: {e}"))?;
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "the client key {path} is encrypted the old OpenSSL way; convert it: \
             openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out NEW"
        ));
    }
    if !text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return rustls::pki_types::PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|e| format!("cannot read the client key {path}: {e}"));
    }
    let password = password.ok_or_else(|| {
        format!("the client key {path} is encrypted: give its password (SSL {{ password }})")
    })?;
    let (label, doc) = pkcs8::Document::from_pem(&text)
        .map_err(|e| format!("cannot read the client key {path}: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!("the client key {path}: unexpected PEM {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|e| format!("cannot read the client key {path}: {e}"))?;
    let plain = info
        .decrypt(password)
        .map_err(|e| format!("cannot decrypt the client key {path} (wrong password?): {e}"))?;
    Ok(rustls::pki_types::PrivateKeyDer::Pkcs8(
        plain.as_bytes().to_vec().into(),
    ))
}

/// The name to present: the SNI name when SNI is on, else the address (no SNI is sent
/// for an IP address).
pub fn server_name(sni: Option<&str>, target: SocketAddr) -> ServerName<'static> {
    sni.and_then(|n| ServerName::try_from(n.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()))
}
