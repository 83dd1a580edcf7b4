//! Checks of the node's TLS material: the PEM chain parses, the private key parses and matches
//! the first certificate, which names the SIP TLS FQDN. No clock here: callers compare the
//! validity dates with the time they were given.

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::model::InvalidValue;

/// What validation needs from one certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// The subject public key bits (without the algorithm identifier).
    pub spki: Vec<u8>,
    /// subjectAltName dNSName entries, lowercase.
    pub dns_names: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertInfo {
    /// True when a DNS name of the certificate covers `name` (exactly, or by a wildcard for one
    /// leftmost label).
    pub fn names(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.dns_names.iter().any(|n| {
            if let Some(suffix) = n.strip_prefix("*.") {
                name.split_once('.').is_some_and(|(_, rest)| rest == suffix)
            } else {
                *n == name
            }
        })
    }
}

const CERT_HELP: &str = "paste the PEM certificate chain, the node's own certificate first (\"-----BEGIN CERTIFICATE-----\" ...)";
const KEY_HELP: &str = "paste the PEM private key (PKCS#8 \"BEGIN PRIVATE KEY\", \"BEGIN EC PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\"), unencrypted";

/// Parses every certificate of a PEM chain; the first is the node's own.
pub(crate) fn parse_chain(pem: &str) -> Result<Vec<CertInfo>, InvalidValue> {
    let mut out = Vec::new();
    for (i, item) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let n = i + 1;
        let item = item.map_err(|e| {
            InvalidValue::new(format!("PEM block {n} cannot be read: {e}"), CERT_HELP)
        })?;
        if item.label != "CERTIFICATE" {
            return Err(InvalidValue::new(
                format!("PEM block {n} is a {:?}, not a CERTIFICATE", item.label),
                CERT_HELP,
            ));
        }
        let cert = item.parse_x509().map_err(|e| {
            InvalidValue::new(
                format!("certificate {n} is not a valid X.509 certificate: {e}"),
                CERT_HELP,
            )
        })?;
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for g in &san.value.general_names {
                if let GeneralName::DNSName(d) = g {
                    dns_names.push(d.to_ascii_lowercase());
                }
            }
        }
        out.push(CertInfo {
            spki: cert.public_key().subject_public_key.data.to_vec(),
            dns_names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        });
    }
    if out.is_empty() {
        return Err(InvalidValue::new("no PEM certificate found", CERT_HELP));
    }
    Ok(out)
}

/// Loads a PEM private key and returns its public key bits, to compare with a certificate's.
pub(crate) fn key_public_der(pem: &str) -> Result<Vec<u8>, InvalidValue> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| InvalidValue::new(format!("no PEM private key found: {e}"), KEY_HELP))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = provider.key_provider.load_private_key(der).map_err(|e| {
        InvalidValue::new(format!("the private key cannot be loaded: {e}"), KEY_HELP)
    })?;
    let spki = key
        .public_key()
        .ok_or_else(|| InvalidValue::new("the private key's type is not supported", KEY_HELP))?;
    let (_, info) = SubjectPublicKeyInfo::from_der(spki.as_ref()).map_err(|e| {
        InvalidValue::new(
            format!("the private key's public part cannot be read: {e}"),
            KEY_HELP,
        )
    })?;
    Ok(info.subject_public_key.data.to_vec())
}

/// One PEM text in a canonical form: lines trimmed, blank lines dropped, ending in a newline.
/// Stored in the model so that serializing and re-reading gives the same value.
pub(crate) fn normalize_pem(pem: &str) -> String {
    let mut out = String::with_capacity(pem.len());
    for line in pem.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let c = CertInfo {
            spki: vec![],
            dns_names: vec!["*.example.com".into(), "conf01.example.org".into()],
            not_before: 0,
            not_after: 0,
        };
        assert!(c.names("sip.example.com"));
        assert!(c.names("CONF01.example.org"));
        assert!(!c.names("a.b.example.com"));
        assert!(!c.names("example.com"));
    }
}
