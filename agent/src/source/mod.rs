//! Where an unconfigured node finds its configuration by itself at boot (`nodeboot-agent
//! acquire`), in order: the file baked into the image, local media found by label, and the
//! metadata service of the platform it detects. The first source that has a configuration wins;
//! "not present" falls through; a configuration that is present but invalid fails closed.
//!
//! Layout: `baked` and `media` read local files, `platform` detects the cloud or hypervisor and
//! reads its metadata service, the config crate's `metadata::from_payload` turns what a source
//! carried into a [`Document`] (pure), `acquire` is the command, and this module runs the chain and records its outcome for `serve` to show.
//!
//! [`Document`]: nodeboot_config::Document

pub mod acquire;
pub mod baked;
pub mod media;
pub mod platform;
pub mod record;

use std::io::Read as _;
use std::path::Path;

use nodeboot_config::api::{SourceOutcome, SourceReport};
use nodeboot_config::{Document, Secret};

use crate::rootfs::Root;

/// The largest configuration a local source may carry (the upload limit, 1 MiB).
pub const MAX_PAYLOAD: usize = nodeboot_config::MAX_FILE_SIZE;

/// Findings kept in a [`SourceReport`] (as the status and page keep for an upload).
pub const MAX_FINDINGS: usize = 20;
/// Bytes of finding text kept in a [`SourceReport`].
pub const MAX_FINDINGS_TEXT: usize = 2048;
/// Characters kept of one finding's message, path or help, and of an origin.
pub const MAX_CHARS: usize = 300;

/// What one source said.
#[derive(Debug)]
pub enum Read {
    /// Nothing there: try the next source.
    Absent,
    /// Something there (a configuration, a token, or both).
    Found(Found),
    /// Something there that cannot be read (a link, a FIFO, too large, an I/O error, a
    /// medium that does not mount): the chain fails closed.
    Unreadable {
        /// Where.
        origin: String,
        /// What went wrong.
        message: String,
    },
}

/// Source 3, the detected platform's metadata service: a seam so that the chain and its tests
/// do not wait for `platform` (the lead wires `platform::detect`/`fetch`/`forget` in).
pub trait PlatformSource {
    /// The platform's name, for logs.
    fn name(&self) -> String;
    /// `Ok(None)`: no configuration for this node. `Err` of kind `Unavailable`: not readable
    /// within its budget (fall through); of kind `Invalid`: a configuration that cannot be
    /// decoded (fail closed).
    fn fetch(&self) -> Result<Option<Found>, platform::FetchError>;
    /// Deletes the data where the platform lets the guest (after a successful apply).
    fn forget(&self);
}

/// What the chain ended with.
#[derive(Debug)]
pub enum Outcome {
    /// No source had a configuration (perhaps a token: then 8443 requires it).
    Nothing {
        /// A bootstrap token some source supplied.
        token: Option<Secret<String>>,
    },
    /// A valid configuration.
    Valid {
        /// Where it came from.
        origin: String,
        /// The configuration.
        document: Box<Document>,
        /// A bootstrap token beside it (kept in case the apply fails).
        token: Option<Secret<String>>,
    },
    /// A source had a configuration that cannot be used: nothing applied, no later source.
    Failed {
        /// What is shown.
        report: SourceReport,
        /// A bootstrap token some source supplied (8443 then requires it while a person
        /// fixes the configuration).
        token: Option<Secret<String>>,
    },
}

/// The chain's inputs: the node's root, the media, the OVF reader, and source 3 when a
/// platform was detected (`None`: nothing is probed on the network).
pub struct Chain<'a> {
    /// The node's root.
    pub root: &'a Path,
    /// Where local media are looked for.
    pub devices: media::Devices,
    /// The detected platform's metadata service.
    pub platform: Option<&'a dyn PlatformSource>,
}

impl std::fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("root", &self.root)
            .field("devices", &self.devices)
            .field("platform", &self.platform.map(|p| p.name()))
            .finish_non_exhaustive()
    }
}

impl Chain<'_> {
    /// Runs the sources in order (baked file, media, platform). See the module documentation.
    pub fn run(&self) -> Outcome {
        let mut token: Option<Secret<String>> = None;
        let root = match Root::open(self.root) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    report: unreadable(&self.root.display().to_string(), &e.to_string()),
                    token: None,
                };
            }
        };
        let mount_base = self.root.join("run/nodeboot");
        let local: [&dyn Fn() -> Read; 2] = [&|| baked::read(&root), &|| {
            media::read(&self.devices, &mount_base)
        }];
        for source in local {
            match source() {
                Read::Absent => {}
                Read::Unreadable { origin, message } => {
                    return Outcome::Failed {
                        report: unreadable(&origin, &message),
                        token,
                    };
                }
                Read::Found(found) => match judge(found, &mut token) {
                    Some(outcome) => return outcome,
                    None => continue,
                },
            }
        }
        if let Some(p) = self.platform {
            match p.fetch() {
                Ok(None) => {}
                Ok(Some(found)) => {
                    if let Some(outcome) = judge(found, &mut token) {
                        return outcome;
                    }
                }
                // The platform module's contract: an unreadable service falls through (a
                // person can still configure the node), and says so in the log.
                Err(e) if e.kind == platform::FetchErrorKind::Invalid => {
                    return Outcome::Failed {
                        report: unreadable(&p.name(), &e.message),
                        token,
                    };
                }
                Err(e) => {
                    tracing::warn!(platform = %p.name(), error = %e.message, "metadata service not readable");
                }
            }
        }
        Outcome::Nothing { token }
    }
}

/// A found source read as a configuration: `None` when it carried only a token (the chain
/// goes on), the valid document, or the fail-closed report.
fn judge(found: Found, token: &mut Option<Secret<String>>) -> Option<Outcome> {
    let Found {
        origin,
        bytes,
        token: found_token,
    } = found;
    if let Some(t) = found_token {
        token.get_or_insert(t);
    }
    let bytes = bytes?;
    match nodeboot_config::from_payload(&bytes) {
        Ok(payload) => {
            if let Some(t) = payload.token {
                token.get_or_insert(t);
            }
            let document = payload.document?;
            Some(Outcome::Valid {
                origin,
                document: Box::new(document),
                token: token.take(),
            })
        }
        Err(findings) => Some(Outcome::Failed {
            report: SourceReport {
                origin: clean(&origin),
                outcome: SourceOutcome::Invalid {
                    findings: crate::server::status::bounded_diagnostics(
                        &findings,
                        MAX_FINDINGS,
                        MAX_FINDINGS_TEXT,
                        MAX_CHARS,
                    ),
                },
            },
            token: token.take(),
        }),
    }
}

/// A one-line, bounded, printable text.
pub fn clean(s: &str) -> String {
    crate::server::status::shorten(&nodeboot_config::text::printable_line(s), MAX_CHARS)
}

/// How a configuration the node rolled back is described to a person (acquire's output, the
/// banner, the page): "rolled back on 2026-11-30 00:53:20 UTC: gateway 10.0.2.1 did not
/// answer ARP on eth0 within 120 s". `reason` is a report's, cleaned once where the report is
/// made and again where it is read back ([`record::read_report`]); the banner and the page
/// escape the line for their medium.
pub fn rolled_back_text(at_unix: u64, reason: &str) -> String {
    format!(
        "rolled back on {}: {reason}",
        nodeboot_config::format_utc(i64::try_from(at_unix).unwrap_or(0)),
    )
}

fn unreadable(origin: &str, message: &str) -> SourceReport {
    SourceReport {
        origin: clean(origin),
        outcome: SourceOutcome::Unreadable {
            message: clean(message),
        },
    }
}

/// Reads the regular file at `path` under `root` (no link followed, a FIFO refused), at most
/// `limit` bytes: `Err` names what is wrong when it is larger. `None` when absent.
pub fn read_bounded(root: &Root, path: &Path, limit: usize) -> Result<Option<Vec<u8>>, String> {
    let Some((dir, name)) = root.parent_if_exists(path).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some((file, st)) = dir.open_regular(&name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let too_big = || {
        format!(
            "{}: over the limit of {limit} bytes",
            dir.host_of(&name).display()
        )
    };
    if usize::try_from(st.st_size).map_or(true, |n| n > limit) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", dir.host_of(&name).display()))?;
    if out.len() > limit {
        return Err(too_big());
    }
    Ok(Some(out))
}

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
