//! rustls client configuration: webpki roots plus an optional extra CA, ALPN h2 (plus http/1.1
//! on a pool that allows it: Web Push), optional client certificate (APNs certificate auth).
//! Verification is always on.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::PoolConfig;
use crate::error::{Error, ErrorKind};

pub(crate) fn client_config(cfg: &PoolConfig) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &cfg.ca_file {
        let shown = path.display();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_error(format!("cannot read CA file {shown}: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error(format!("CA file {shown} is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(tls_error(format!(
                "CA file {shown} contains no certificate"
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                tls_error(format!(
                    "CA file {shown} holds an unusable certificate: {e}"
                ))
            })?;
        }
    }
    // ring explicitly: no process-wide default provider needed, no clash with other crates.
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots);
    let mut config = match &cfg.client_cert {
        None => builder.with_no_client_auth(),
        Some((chain_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| tls_error(format!("client certificate is not valid PEM: {e}")))?;
            if chain.is_empty() {
                return Err(tls_error(
                    "client certificate PEM contains no certificate".to_owned(),
                ));
            }
            // The key's parse error is not shown: it could echo key material.
            let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
                tls_error("client certificate key is not a valid PEM private key".to_owned())
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(format!("client certificate rejected: {e}")))?
        }
    };
    config.alpn_protocols = if cfg.allow_http1 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec()]
    };
    Ok(Arc::new(config))
}

fn tls_error(message: String) -> Error {
    Error::new(ErrorKind::Tls, message)
}
