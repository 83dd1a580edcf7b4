//! [`Document`]: the one value a validated configuration travels as, from the rules that made
//! it to the apply that records it. It holds the bytes a node records, their SHA-256 (computed
//! once, here), the typed configuration and the warnings.
//!
//! Only the rules of this crate build one (there is no public constructor), so holding a
//! `Document` is proof that the configuration passed every check. Nothing here does I/O.

use crate::diagnostic::Diagnostic;
use crate::model::NodeConfig;

/// A validated configuration: bytes, digest, model and warnings, made only by the rules.
/// Its `Debug` shows the bytes' length only: they hold password hashes and private keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Document {
    bytes: Vec<u8>,
    digest: String,
    config: NodeConfig,
    warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("digest", &self.digest)
            .field("config", &self.config)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Document {
    /// Hashes `bytes` once. `bytes` are what the node records: the uploaded file as it came,
    /// or the schema-1 XML serialized from `config` for answers and metadata fields.
    pub(crate) fn new(bytes: Vec<u8>, config: NodeConfig, warnings: Vec<Diagnostic>) -> Self {
        let digest = crate::digest(&bytes);
        Document {
            bytes,
            digest,
            config,
            warnings,
        }
    }

    /// A document whose bytes are the XML serialized from `config` (answers and metadata
    /// fields have no file of their own).
    pub(crate) fn serialized(config: NodeConfig, warnings: Vec<Diagnostic>) -> Self {
        let bytes = crate::serialize::to_xml(&config).into_bytes();
        Document::new(bytes, config, warnings)
    }

    /// The schema-1 XML the node records (and hashes).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The lowercase hex SHA-256 of [`Document::bytes`]: the configuration's identity
    /// everywhere (status, journal, "same file, nothing to do").
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The typed, validated configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Findings that do not make the configuration invalid (e.g. a certificate expiring
    /// within 30 days).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The typed configuration, dropping the rest.
    pub fn into_config(self) -> NodeConfig {
        self.config
    }
}
