//! A node's certificate identity and the one TLS verifier that checks it: the SHA-256
//! fingerprint of the certificate (as the agent shows it on its console, banner, page and
//! status) and a rustls [`ServerCertVerifier`] that accepts a certificate by that fingerprint.
//!
//! Shared by `nodeboot push`/`status` and every test client, so they all pin the same way.
//! It does not check names or chains: a node's certificate is self-signed, and its identity
//! is its fingerprint. The handshake signature is still checked, so the peer proves it holds
//! the certificate's key. No I/O.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER bytes: the identity of a node's endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parses `SHA256:<hex>` (64 hex digits, colons allowed between pairs) or
    /// `SHA256:<base64>` (as OpenSSH prints it, padding optional); the `SHA256:` prefix itself
    /// is optional.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let body = match text.split_once(':') {
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case("sha256") => rest,
            _ => text,
        };
        let hex: String = body.chars().filter(|c| *c != ':').collect();
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("`{text}` is not a fingerprint"))?;
            }
            return Ok(Fingerprint(out));
        }
        if let Some(bytes) = decode_base64(body.trim_end_matches('=')) {
            if let Ok(out) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(Fingerprint(out));
            }
        }
        Err(format!(
            "`{text}` is not a SHA-256 fingerprint (expected SHA256: followed by 64 hex digits, \
             colons allowed, or by 43 base64 characters)"
        ))
    }
}

/// The form the agent shows on its console, banner, page and status (and `openssl x509
/// -fingerprint -sha256` prints, in lower case): `SHA256:ab:12:…`.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", crate::hex(&self.0, ":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Decodes standard or URL-safe base64 without padding; `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Which certificate a connection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Only the certificate with this fingerprint.
    Only(Fingerprint),
    /// Any certificate (first use, `--insecure`, a benchmark talking to its own server).
    Any,
    /// None: the handshake stops at the certificate, whose fingerprint is remembered so the
    /// operator can be told how to pin it.
    Nothing,
}

/// The rustls verifier that accepts a node's certificate by its SHA-256 fingerprint
/// ([`Accept`]) and still checks the handshake signature.
///
/// It remembers the fingerprint it saw, for "first use" records and mismatch messages.
#[derive(Debug)]
pub struct PinningVerifier {
    accept: Accept,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Option<Fingerprint>>,
}

impl PinningVerifier {
    /// A verifier for one connection.
    pub fn new(accept: Accept) -> Arc<Self> {
        Arc::new(PinningVerifier {
            accept,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            seen: Mutex::new(None),
        })
    }

    /// The fingerprint of the certificate the node presented, once the handshake got that far.
    pub fn seen(&self) -> Option<Fingerprint> {
        self.seen.lock().map(|g| *g).unwrap_or(None)
    }

    /// Whether the handshake was refused because the certificate did not match the pin.
    pub fn mismatched(&self) -> bool {
        match (self.accept, self.seen()) {
            (Accept::Only(want), Some(seen)) => want != seen,
            _ => false,
        }
    }

    /// A rustls client configuration (ring, safe default protocol versions, no client
    /// certificate) that verifies with `verifier`.
    pub fn client_config(verifier: Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        Self::client_config_with(verifier, rustls::DEFAULT_VERSIONS)
    }

    /// [`PinningVerifier::client_config`] limited to `versions`.
    pub fn client_config_with(
        verifier: Arc<Self>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of_der(end_entity.as_ref());
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        match self.accept {
            Accept::Only(want) if want != seen => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            Accept::Nothing => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HEX: &str = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12";

    #[test]
    fn fingerprint_forms_parse_to_the_same_value() {
        let plain = Fingerprint::parse(&format!("SHA256:{HEX}")).unwrap();
        let colons: String = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            Fingerprint::parse(&format!("sha256:{colons}")).unwrap(),
            plain
        );
        assert_eq!(Fingerprint::parse(HEX).unwrap(), plain);
        assert_eq!(
            plain.to_string(),
            format!("SHA256:{}", colons.to_lowercase())
        );
        // The same 32 bytes as OpenSSH prints them: base64 without padding.
        let b64 = "qxLNNO9WqxLNNO9WqxLNNO9WqxLNNO9WqxLNNO9WqxI";
        assert_eq!(Fingerprint::parse(&format!("SHA256:{b64}")).unwrap(), plain);
        assert_eq!(
            Fingerprint::parse(&format!("SHA256:{b64}=")).unwrap(),
            plain
        );
    }

    #[test]
    fn bad_fingerprints_are_refused_with_the_expected_form() {
        for bad in [
            "",
            "SHA256:",
            "SHA256:abcd",
            "MD5:ab:cd",
            &format!("SHA256:{HEX}00"),
        ] {
            let err = Fingerprint::parse(bad).unwrap_err();
            assert!(err.contains("expected SHA256:"), "{bad}: {err}");
        }
    }

    #[test]
    fn hex_writes_lowercase_pairs_with_the_separator() {
        assert_eq!(crate::hex(&[0x00, 0xab, 0x0f], ""), "00ab0f");
        assert_eq!(crate::hex(&[0x00, 0xab, 0x0f], ":"), "00:ab:0f");
        assert_eq!(crate::hex(&[], ":"), "");
        assert_eq!(
            crate::digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Fingerprint::of_der(b"").to_string(),
            "SHA256:e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55"
        );
    }
}
