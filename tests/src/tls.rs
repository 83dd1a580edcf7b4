//! TLS clients for tests and benchmarks, built on the one pin verifier the provisioner uses
//! (`nodeboot_config::pin`): a test pins the agent's certificate exactly as `nodeboot push`
//! does, rather than with a verifier of its own.

use std::sync::Arc;

use nodeboot_config::pin::{Accept, Fingerprint, PinningVerifier};

/// A client configuration that accepts only the certificate with `fingerprint` (any form
/// `nodeboot push --fingerprint` takes), limited to `versions`; the handshake signature is
/// checked for real. Text that is no fingerprint (`SHA256:00`) matches no certificate.
pub fn pinned(
    fingerprint: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let accept = match Fingerprint::parse(fingerprint) {
        Ok(fp) => Accept::Only(fp),
        Err(_) => Accept::Nothing,
    };
    let verifier = PinningVerifier::new(accept);
    Arc::new(PinningVerifier::client_config_with(verifier, versions).unwrap())
}

/// A client configuration that accepts any certificate (a benchmark talking to the server it
/// just started); the handshake signature is still checked.
pub fn any_certificate() -> Arc<rustls::ClientConfig> {
    Arc::new(PinningVerifier::client_config(PinningVerifier::new(Accept::Any)).unwrap())
}
