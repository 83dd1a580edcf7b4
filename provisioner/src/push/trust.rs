//! Which node certificates we trust: pinned SHA-256 fingerprints (the command line, the
//! inventory, or the known-nodes file, like SSH's `known_hosts`); a node that is none of these
//! is refused unless the operator trusts it on first use (`--trust-first-use`, or a yes at the
//! terminal prompt), or asks for `--insecure` by name.
//!
//! The known-nodes text handling is pure; [`KnownNodes::load`] and [`KnownNodes::save`] are
//! the only file effects. A [`Policy`] becomes what the shared verifier
//! (`nodeboot_config::pin::PinningVerifier`) [`Accept`]s in the TLS handshake, so a node whose
//! certificate does not match never receives a byte of the configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nodeboot_config::pin::Accept;
pub use nodeboot_config::pin::Fingerprint;

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

impl Policy {
    /// What the TLS verifier accepts under this policy.
    pub fn accept(self) -> Accept {
        match self {
            Policy::Pinned(fp) => Accept::Only(fp),
            Policy::FirstUse | Policy::Insecure => Accept::Any,
            Policy::Unknown => Accept::Nothing,
        }
    }
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
