//! A throwaway CA and a `localhost` server certificate, and the rustls server config
//! (optionally requiring client certificates, for APNs certificate auth).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The generated certificates: the CA PEM for clients, the leaf chain and key for rustls.
pub(crate) struct MockCertificates {
    pub ca_pem: String,
    /// The CA's private key (PKCS#8 PEM), kept so a restarted mock can be trusted by the
    /// same `ca.pem`.
    pub ca_key_pem: String,
    pub leaf_chain: Vec<CertificateDer<'static>>,
    pub leaf_key: PrivateKeyDer<'static>,
}

#[allow(clippy::needless_pass_by_value)] // shaped for map_err
fn cert_error(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("certificate generation failed: {e}"))
}

/// A fresh CA, or the CA of `ca_key_pem` (a restart): the same subject and key give a CA
/// certificate that clients holding the earlier `ca.pem` already trust.
pub(crate) fn generate_certificates(ca_key_pem: Option<&str>) -> io::Result<MockCertificates> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pushwire mock CA");
    let ca_key = match ca_key_pem {
        Some(pem) => KeyPair::from_pem(pem).map_err(cert_error)?,
        None => KeyPair::generate().map_err(cert_error)?,
    };
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(cert_error)?;

    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(cert_error)?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().map_err(cert_error)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(cert_error)?;

    Ok(MockCertificates {
        ca_pem: ca.pem(),
        ca_key_pem,
        leaf_chain: vec![leaf.der().clone()],
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    })
}

/// rustls with the ring provider (never the process default) and ALPN `h2` only, or
/// `http/1.1` only for an HTTP/1.1 push service. With `client_ca_pem`, a client certificate
/// chaining to that CA is required.
pub(crate) fn server_config(
    certs: &MockCertificates,
    client_ca_pem: Option<&str>,
    http1_only: bool,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => builder.with_client_cert_verifier(client_verifier(pem, provider)?),
    };
    let mut config = builder
        .with_single_cert(certs.leaf_chain.clone(), certs.leaf_key.clone_key())
        .map_err(io::Error::other)?;
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec()]
    };
    Ok(Arc::new(config))
}

fn client_verifier(
    ca_pem: &str,
    provider: Arc<CryptoProvider>,
) -> io::Result<Arc<dyn ClientCertVerifier>> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| invalid(format!("client CA is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("client CA holds an unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("client CA PEM contains no certificate".to_owned()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(format!("client certificate verifier: {e}")))
}
