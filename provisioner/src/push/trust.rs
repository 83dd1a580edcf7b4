//! Which node certificates we trust: pinned SHA-256 fingerprints (the command line, the
//! inventory, or the known-nodes file, like SSH's `known_hosts`); a node that is none of these
//! is refused unless the operator trusts it on first use (`--trust-first-use`, or a yes at the
//! terminal prompt), or asks for `--insecure` by name.
//!
//! The fingerprint and known-nodes text handling is pure; [`KnownNodes::load`] and
//! [`KnownNodes::save`] are the only file effects. [`PinningVerifier`] plugs the decision into
//! the TLS handshake, so a node whose certificate does not match never receives a byte of
//! the configuration. It does not check names or chains: a node's certificate is self-signed,
//! and its identity is its fingerprint.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
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
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
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

/// What a connection to one node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Only this certificate (from `--fingerprint`, the inventory or the known-nodes file).
    Pinned(Fingerprint),
    /// Any certificate, recorded on success (trust on first use: the node is not yet known,
    /// and the operator passed `--trust-first-use`).
    FirstUse,
    /// No certificate: the node is neither pinned nor known, and nobody said to trust it.
    /// The handshake stops at the certificate (nothing is sent); the fingerprint seen is
    /// remembered so the operator can be told how to pin it.
    Unknown,
    /// Any certificate, recorded nowhere (`--insecure`).
    Insecure,
}

/// Where a pinned fingerprint came from, for messages that tell the operator what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinSource {
    /// `--fingerprint` on the command line.
    CommandLine,
    /// The node's `fingerprint` in the inventory.
    Inventory,
    /// A line of the known-nodes file.
    KnownNodes,
}

/// A rustls verifier that accepts a node's certificate by its SHA-256 fingerprint and still
/// checks the handshake signature, so the peer proves it holds the certificate's key.
///
/// It remembers the fingerprint it saw, for "first use" records and mismatch messages.
#[derive(Debug)]
pub struct PinningVerifier {
    policy: Policy,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Option<Fingerprint>>,
}

impl PinningVerifier {
    /// A verifier for one connection under `policy`.
    pub fn new(policy: Policy) -> Arc<Self> {
        Arc::new(PinningVerifier {
            policy,
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
        match (self.policy, self.seen()) {
            (Policy::Pinned(want), Some(seen)) => want != seen,
            _ => false,
        }
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
        match self.policy {
            Policy::Pinned(want) if want != seen => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            Policy::Unknown => Err(rustls::Error::InvalidCertificate(
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

/// The known-nodes file: one `host:port SHA256:<hex>` line (colons between hex pairs) per node endpoint, `#` comments.
///
/// Entries are keyed by the endpoint exactly as the operator named it (after adding the
/// default port), as SSH keys `known_hosts` by the name typed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownNodes {
    entries: BTreeMap<String, Fingerprint>,
    /// Lines that came from the file, kept verbatim (comments, unknown lines) so saving does
    /// not lose what the operator wrote.
    original: Vec<String>,
    added: Vec<(String, Fingerprint)>,
}

impl KnownNodes {
    /// Parses the file's text. A malformed line is an error naming its line number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut known = KnownNodes::default();
        for (i, line) in text.lines().enumerate() {
            known.original.push(line.to_string());
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let mut fields = content.split_whitespace();
            let (Some(endpoint), Some(fp), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!(
                    "line {}: expected `host:port SHA256:<hex>`, found `{content}`",
                    i + 1
                ));
            };
            let fp = Fingerprint::parse(fp).map_err(|e| format!("line {}: {e}", i + 1))?;
            known.entries.insert(endpoint.to_string(), fp);
        }
        Ok(known)
    }

    /// Reads the file at `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => KnownNodes::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                .context("reading the known-nodes file (fix or remove the line named)"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownNodes::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The fingerprint recorded for `endpoint`, if any.
    pub fn get(&self, endpoint: &str) -> Option<Fingerprint> {
        self.entries.get(endpoint).copied()
    }

    /// Records a fingerprint seen on first use.
    pub fn add(&mut self, endpoint: &str, fp: Fingerprint) {
        if self.entries.insert(endpoint.to_string(), fp).is_none() {
            self.added.push((endpoint.to_string(), fp));
        }
    }

    /// Whether [`KnownNodes::add`] recorded anything new since loading.
    pub fn changed(&self) -> bool {
        !self.added.is_empty()
    }

    /// The file's new text: the original lines, then one line per new entry.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.original.is_empty() {
            out.push_str(
                "# nodeboot known nodes: `host:port SHA256:<hex>` per line, \
                 recorded on first use.\n",
            );
        }
        for line in &self.original {
            out.push_str(line);
            out.push('\n');
        }
        for (endpoint, fp) in &self.added {
            out.push_str(&format!("{endpoint} {fp}\n"));
        }
        out
    }

    /// Writes the file atomically (temporary file in the same folder, fsync, rename).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "known_nodes".into()),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().with_context(|| format!("writing {}", path.display()))
    }
}

/// The default known-nodes file: `$XDG_CONFIG_HOME/nodeboot/known_nodes`, else
/// `~/.config/nodeboot/known_nodes`.
pub fn default_known_nodes_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("nodeboot").join("known_nodes"))
}

#[cfg(test)]
mod tests {
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
    fn known_nodes_round_trip_keeps_comments_and_adds_lines() {
        let text = format!("# mine\n10.0.0.31:8443 SHA256:{HEX}\n\n");
        let mut known = KnownNodes::parse(&text).unwrap();
        let fp = Fingerprint::parse(HEX).unwrap();
        assert_eq!(known.get("10.0.0.31:8443"), Some(fp));
        assert_eq!(known.get("10.0.0.32:8443"), None);
        assert!(!known.changed());
        known.add("[fd00::1]:8443", Fingerprint::of_der(b"x"));
        assert!(known.changed());
        let rendered = known.render();
        assert!(
            rendered.starts_with("# mine\n10.0.0.31:8443 SHA256:ab12"),
            "{rendered}"
        );
        let again = KnownNodes::parse(&rendered).unwrap();
        assert_eq!(again.get("[fd00::1]:8443"), Some(Fingerprint::of_der(b"x")));
    }

    #[test]
    fn malformed_known_nodes_line_is_named() {
        let err = KnownNodes::parse("# ok\nnode1:8443\n").unwrap_err();
        assert_eq!(
            err,
            "line 2: expected `host:port SHA256:<hex>`, found `node1:8443`"
        );
        let err = KnownNodes::parse("node1:8443 SHA256:zz\n").unwrap_err();
        assert!(err.starts_with("line 1: `SHA256:zz` is not"), "{err}");
    }

    #[test]
    fn save_writes_the_file_and_load_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_nodes");
        assert_eq!(KnownNodes::load(&path).unwrap(), KnownNodes::default());
        let mut known = KnownNodes::default();
        known.add("n1:8443", Fingerprint::of_der(b"n1"));
        known.save(&path).unwrap();
        let loaded = KnownNodes::load(&path).unwrap();
        assert_eq!(loaded.get("n1:8443"), Some(Fingerprint::of_der(b"n1")));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("known_nodes")]);
    }
}
