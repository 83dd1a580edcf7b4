//! Where an unconfigured node finds its configuration by itself at boot (`nodeboot-agent
//! acquire`), in order: the file baked into the image, local media found by label, and the
//! metadata service of the platform it detects. The first source that has a configuration wins;
//! "not present" falls through; a configuration that is present but invalid fails closed.
//!
//! Layout: `baked` and `media` read local files, `platform` detects the cloud or hypervisor and
//! reads its metadata service, `payload` turns what a source carried into a [`Document`] (pure),
//! and this module runs the chain and records its outcome for `serve` to show.
//!
//! [`Document`]: nodeboot_config::Document

pub mod platform;

/// What one source carried, before it is read as a configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Found {
    /// Where it came from, for people: "Oracle Cloud metadata (metadata.user_data)",
    /// "config drive CONFIG-2 (openstack/latest/user_data)", "/etc/nodeboot/node.xml".
    pub origin: String,
    /// The configuration as the platform delivered it, transport encodings (base64, gzip)
    /// already removed: schema-1 XML or one of the Management Node JSON shapes. `None` when
    /// the source carried only a bootstrap token.
    pub bytes: Option<Vec<u8>>,
    /// A bootstrap token the source supplied (`nodeboot_token`, OVF `nodeboot.token`).
    pub token: Option<nodeboot_config::Secret<String>>,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes may hold password hashes; the token is a secret.
        f.debug_struct("Found")
            .field("origin", &self.origin)
            .field("bytes", &self.bytes.as_ref().map(Vec::len))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
