//! TLS material in a conferencing node's file: key/certificate match, the SIP TLS FQDN in the
//! SAN, expiry (error) and near expiry (warning). Certificates are made at run time with rcgen;
//! the time they are checked against is an input (`parse_at`).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nodeboot_config::{Severity, parse_at};
use rcgen::{CertificateParams, KeyPair, date_time_ymd};

struct Material {
    cert: String,
    key: String,
}

/// A self-signed certificate for `names`, valid 2025-01-01 .. 2030-01-01.
fn material(names: &[&str]) -> Material {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Material {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn at(y: i32, m: u8, d: u8) -> SystemTime {
    let secs = date_time_ymd(y, m, d).unix_timestamp();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

fn document(sip: &str, cert: &str, key: &str) -> String {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/valid/transcoding.xml");
    let base = std::fs::read_to_string(p).unwrap();
    base.replace(
        "  <ssh enabled=\"global\">",
        &format!(
            "  <sip-tls-fqdn>{sip}</sip-tls-fqdn>\n  <tls>\n    <certificate>\n{cert}</certificate>\n    <private-key>\n{key}</private-key>\n  </tls>\n  <ssh enabled=\"global\">"
        ),
    )
}

/// Line of the first line containing `needle`, 1-based.
fn line_of(doc: &str, needle: &str) -> u32 {
    u32::try_from(doc.lines().position(|l| l.contains(needle)).unwrap() + 1).unwrap()
}

#[test]
fn matching_key_and_name_are_accepted_and_round_trip() {
    let m = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    let parsed = parse_at(doc.as_bytes(), at(2026, 6, 1)).unwrap();
    assert!(parsed.warnings().is_empty());
    let tls = parsed
        .config()
        .conferencing()
        .unwrap()
        .tls
        .as_ref()
        .unwrap();
    assert!(
        tls.certificate_chain_pem
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(format!("{:?}", tls.private_key_pem), "***");
    let again = parse_at(
        nodeboot_config::to_xml(parsed.config()).as_bytes(),
        at(2026, 6, 1),
    )
    .unwrap();
    assert_eq!(again.config(), parsed.config());
}

#[test]
fn wildcard_certificate_names_the_fqdn() {
    let m = material(&["*.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    assert!(parse_at(doc.as_bytes(), at(2026, 6, 1)).is_ok());
}

#[test]
fn a_key_of_another_certificate_is_refused_at_the_key() {
    let m = material(&["conf01.example.com"]);
    let other = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &other.key);
    let errs = parse_at(doc.as_bytes(), at(2026, 6, 1)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "/node-config/tls/private-key");
    assert_eq!(errs[0].line, line_of(&doc, "<private-key>") + 1);
    assert_eq!(
        errs[0].message,
        "the private key does not match the certificate"
    );
}

#[test]
fn a_certificate_without_the_sip_fqdn_is_refused() {
    let m = material(&["other.example.org", "www.example.org"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    let errs = parse_at(doc.as_bytes(), at(2026, 6, 1)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "/node-config/tls/certificate");
    assert_eq!(errs[0].line, line_of(&doc, "<certificate>") + 1);
    assert_eq!(errs[0].column, 1);
    assert_eq!(
        errs[0].message,
        "the certificate does not name the SIP TLS FQDN conf01.example.com (its DNS names: other.example.org, www.example.org)"
    );
}

#[test]
fn an_expired_certificate_is_an_error() {
    let m = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    let errs = parse_at(doc.as_bytes(), at(2030, 2, 1)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].message,
        "the certificate expired on 2030-01-01 00:00:00 UTC"
    );
}

#[test]
fn a_certificate_expiring_within_30_days_is_a_warning() {
    let m = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    let parsed = parse_at(doc.as_bytes(), at(2029, 12, 22)).unwrap();
    assert_eq!(parsed.warnings().len(), 1);
    let w = &parsed.warnings()[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.path, "/node-config/tls/certificate");
    assert_eq!(
        w.message,
        "the certificate expires on 2030-01-01 00:00:00 UTC, in 10 days"
    );
    // 31 days before: no warning
    assert!(
        parse_at(doc.as_bytes(), at(2029, 12, 1))
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn a_certificate_not_yet_valid_is_an_error() {
    let m = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", &m.cert, &m.key);
    let errs = parse_at(doc.as_bytes(), at(2024, 6, 1)).unwrap_err();
    assert_eq!(
        errs[0].message,
        "the certificate is not valid before 2025-01-01 00:00:00 UTC"
    );
}

#[test]
fn garbage_pem_is_refused_with_a_hint() {
    let m = material(&["conf01.example.com"]);
    let doc = document("conf01.example.com", "not a certificate\n", &m.key);
    let errs = parse_at(doc.as_bytes(), at(2026, 6, 1)).unwrap_err();
    assert_eq!(errs[0].path, "/node-config/tls/certificate");
    assert_eq!(errs[0].message, "no PEM certificate found");
    let doc = document(
        "conf01.example.com",
        &m.cert,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let errs = parse_at(doc.as_bytes(), at(2026, 6, 1)).unwrap_err();
    assert_eq!(errs[0].path, "/node-config/tls/private-key");
    assert!(
        errs[0]
            .message
            .starts_with("the private key cannot be loaded"),
        "{errs:?}"
    );
}
