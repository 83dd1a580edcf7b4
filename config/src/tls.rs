//! Checks of the node's TLS material: the PEM chain parses, the private key parses and matches
//! the first certificate, which names the SIP TLS FQDN. No clock here: callers compare the
//! validity dates with the time they were given.

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, pem};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::SubjectPublicKeyInfoRef;

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
    for (i, block) in pem_blocks(pem).enumerate() {
        let n = i + 1;
        let (label, der) = pem::decode_vec(block.as_bytes()).map_err(|e| {
            InvalidValue::new(format!("PEM block {n} cannot be read: {e}"), CERT_HELP)
        })?;
        if label != "CERTIFICATE" {
            return Err(InvalidValue::new(
                format!("PEM block {n} is a {label:?}, not a CERTIFICATE"),
                CERT_HELP,
            ));
        }
        let invalid = |e: x509_cert::der::Error| {
            InvalidValue::new(
                format!("certificate {n} is not a valid X.509 certificate: {e}"),
                CERT_HELP,
            )
        };
        let cert = Certificate::from_der(&der).map_err(invalid)?;
        let tbs = &cert.tbs_certificate;
        let mut dns_names = Vec::new();
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id == SubjectAltName::OID {
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(invalid)?;
                for name in &san.0 {
                    if let GeneralName::DnsName(d) = name {
                        dns_names.push(d.as_str().to_ascii_lowercase());
                    }
                }
            }
        }
        out.push(CertInfo {
            spki: tbs
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec(),
            dns_names,
            not_before: unix_seconds(tbs.validity.not_before),
            not_after: unix_seconds(tbs.validity.not_after),
        });
    }
    if out.is_empty() {
        return Err(InvalidValue::new("no PEM certificate found", CERT_HELP));
    }
    Ok(out)
}

/// The PEM blocks of a text, each from its `-----BEGIN` line to its `-----END` line; text
/// between blocks is ignored, as openssl does.
fn pem_blocks(pem: &str) -> impl Iterator<Item = &str> {
    let mut rest = pem;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let from_end = rest[start..].find("-----END ").map(|e| start + e);
        let stop = from_end
            .and_then(|e| rest[e + 9..].find("-----").map(|t| e + 9 + t + 5))
            .unwrap_or(rest.len());
        let block = &rest[start..stop];
        rest = &rest[stop..];
        Some(block)
    })
}

/// Seconds since the Unix epoch (the DER reader refuses times before 1970).
fn unix_seconds(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
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
    let info = SubjectPublicKeyInfoRef::from_der(spki.as_ref()).map_err(|e| {
        InvalidValue::new(
            format!("the private key's public part cannot be read: {e}"),
            KEY_HELP,
        )
    })?;
    Ok(info.subject_public_key.raw_bytes().to_vec())
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

    #[test]
    fn pem_blocks_are_cut_at_their_markers() {
        let text =
            "junk\n-----BEGIN A-----\nQQ==\n-----END A-----\nmore\n-----BEGIN B-----\nQg==\n";
        let blocks: Vec<&str> = pem_blocks(text).collect();
        assert_eq!(
            blocks,
            [
                "-----BEGIN A-----\nQQ==\n-----END A-----",
                "-----BEGIN B-----\nQg==\n"
            ]
        );
        let err = parse_chain(text).unwrap_err();
        assert_eq!(err.message, "PEM block 1 is a \"A\", not a CERTIFICATE");
        let err =
            parse_chain("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(
            err.message.starts_with("PEM block 1 cannot be read"),
            "{}",
            err.message
        );
        assert_eq!(pem_blocks("no markers at all").count(), 0);
    }
}
