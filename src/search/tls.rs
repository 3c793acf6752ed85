//! TLS of a client: its options (CA, client identity, server name), the process-wide rustls
//! crypto provider, and for `tls.serverName` a rustls configuration whose verifier checks the
//! server certificate for a given DNS name instead of the URL's host (an IP address, a tunnel,
//! an internal alias). The chain is still verified in full against the configured CA (or the
//! system roots); only the name the certificate must match changes. SNI is still the URL's host.

use super::secret::SecretString;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// TLS material for one endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsOptions {
    /// PEM CA bundle that replaces the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key (mTLS).
    pub client_identity_pem: Option<SecretString>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// Verify the certificate for this DNS name instead of the URL's host.
    pub server_name: Option<String>,
}

/// Delegates to `inner`, with the expected name replaced.
#[derive(Debug)]
struct NameOverride {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A complete client configuration (roots, client certificate, ALPN) that verifies the server
/// certificate for `name`.
pub(crate) fn config_for_server_name(tls: &TlsOptions, name: &str) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let name = ServerName::try_from(name.to_string())
        .map_err(|_| format!("tls.serverName `{name}` is not a DNS name"))?;
    let inner: Arc<dyn ServerCertVerifier> = match &tls.ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| format!("CA bundle is not valid PEM: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("CA bundle holds an unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("CA bundle holds no certificate".into());
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| e.to_string())?
        }
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("system roots: {e}"))?,
        ),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NameOverride { inner, name }));
    let mut config = match &tls.client_identity_pem {
        Some(id) => {
            let pem = id.expose().as_bytes();
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "client certificate is not valid PEM".to_string())?;
            let key = PrivateKeyDer::from_pem_slice(pem)
                .map_err(|_| "client key is not a valid PEM private key".to_string())?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|_| "client certificate/key is not a valid PEM pair".to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Installs the process-wide rustls crypto provider (`ring`, the one kube uses). Safe to call more
/// than once; every entry point calls it before building a client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
