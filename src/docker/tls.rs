//! TLS towards a `tcp://` engine, on gohot's one TLS stack (rustls with
//! ring): the engine's certificate checked against `ca.pem` (else the web's
//! roots), or not at all for a context with `SkipTLSVerify`; the client
//! certificate `cert.pem`/`key.pem` offered when present — what Docker does
//! with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`.

use std::path::Path;
use std::sync::Arc;

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::endpoint::Tls;

/// A bollard client for `https://` at `host` (`tcp://HOST:PORT`).
pub(super) fn connect(host: &str, tls: &Tls, timeout_s: u64) -> Result<Docker, String> {
    let mut config = client_config(tls)?;
    // No session resumption, as Docker's Go client (no session cache): some
    // TLS terminators (OpenSSL servers with client verification and no
    // session id context) refuse a resumed session outright.
    config.resumption = rustls::client::Resumption::disabled();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_max_idle_per_host(0);
    let client = Arc::new(builder.build(https));
    let addr = host.replacen("tcp://", "https://", 1);
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let client = Arc::clone(&client);
            Box::pin(async move { client.request(req).await.map_err(bollard::errors::Error::from) })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        },
        Some(addr),
        timeout_s,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if tls.verify {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                for cert in certs(ca)? {
                    roots.add(cert).map_err(|e| format!("{} is not a usable CA certificate: {e}", ca.display()))?;
                }
            }
            None => {
                roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    match &tls.client {
        Some((cert, key)) => {
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs(cert)?, key_der)
                .map_err(|e| format!("{} and {} do not make a client certificate: {e}", cert.display(), key.display()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `SkipTLSVerify`: encryption without checking who answers, as the context asks.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
