//! The agent's own records under `/var/lib/nodeboot/` (inside the root): the applied XML, the
//! apply record that marks a node configured, the image's original files (for reset) and the
//! last failure. Reading them gives a [`NodeState`]; the records a configuration adds are
//! plan entries, so they change in the same transaction as the node's files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Change, Mask, Owner, Plan};
use super::render::{self, HOSTS, SHADOW};
use super::transaction::{self, STATE_DIR};
use super::{ApplyError, FailureClass, NodeState};
use crate::rootfs::{self, Root};

/// The configuration file as applied (0600: it holds password hashes and maybe a key).
pub const APPLIED_XML: &str = "/var/lib/nodeboot/applied.xml";
/// The apply record; its presence means "configured". The serve unit has
/// `ConditionPathExists=!/var/lib/nodeboot/configured.json`.
pub const RECORD: &str = "/var/lib/nodeboot/configured.json";
/// The image's files as they were before the first apply (0600), for `reset`.
pub const ORIGINAL: &str = "/var/lib/nodeboot/original.json";
/// The last failed attempt (digest and error), until an apply succeeds or a reset.
pub const FAILED: &str = "/var/lib/nodeboot/failed.json";
/// Written by the apply that commits a configuration, in the same transaction: the next boot
/// checks the configuration (`nodeboot-check.service` has
/// `ConditionPathExists=/var/lib/nodeboot/check-pending.json`). Removed by the check's verdict,
/// by its rollback and by `reset`.
pub const CHECK_PENDING: &str = "/var/lib/nodeboot/check-pending.json";
/// A configuration the node rolled back ([`nodeboot_config::api::RolledBack`]); the next
/// apply removes it in its transaction, `reset` too.
pub const ROLLED_BACK: &str = "/var/lib/nodeboot/rolled-back.json";
/// The last verdict of the checks ([`nodeboot_config::api::HEALTH_RECORD_PATH`]).
pub const HEALTH_RECORD: &str = "/var/lib/nodeboot/health.json";

/// What [`CHECK_PENDING`] holds: which configuration the next boot checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckPending {
    /// sha256 of the applied XML.
    pub digest: String,
    /// When the apply committed.
    pub applied_at_unix: u64,
}

/// The node's own identity kept by the agent: the endpoint's TLS key, its certificate and the
/// machine-id they were made for (`server::tls`). `reset` removes them so that every node
/// made from a reset image makes its own key. `/etc/machine-id` and the SSH host keys are the
/// operating system's identity: the image builder empties and removes them
/// (`nodeboot-image build`); docs/image.md says why the agent leaves them alone.
pub const PER_NODE_FILES: [&str; 3] = [
    "/var/lib/nodeboot/tls/key.pem",
    "/var/lib/nodeboot/tls/cert.pem",
    "/var/lib/nodeboot/tls/machine-id",
];

/// What `configured.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRecord {
    /// sha256 of the applied XML.
    pub digest: String,
    /// When the apply committed.
    pub applied_at_unix: u64,
    /// The agent that applied it.
    pub agent_version: String,
    /// Every path the configuration owns or edits (inside the root).
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FailureRecord {
    digest: String,
    error: String,
    /// Absent in a record written before classes were: `other`.
    #[serde(default)]
    class: FailureClass,
}

/// One file as the image had it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum OriginalFile {
    Absent {
        path: PathBuf,
    },
    File {
        path: PathBuf,
        content: FileBytes,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
}

impl std::fmt::Debug for OriginalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginalFile::Absent { path } => write!(f, "Absent({})", path.display()),
            OriginalFile::File { path, .. } => write!(f, "File({})", path.display()),
            OriginalFile::Symlink { path, target } => {
                write!(f, "Symlink({} -> {})", path.display(), target.display())
            }
        }
    }
}

/// File bytes in JSON: text when UTF-8 (readable), else a byte array.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum FileBytes {
    Text(String),
    Bytes(Vec<u8>),
}

impl FileBytes {
    fn new(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(s) => FileBytes::Text(s),
            Err(e) => FileBytes::Bytes(e.into_bytes()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            FileBytes::Text(s) => s.as_bytes(),
            FileBytes::Bytes(b) => b,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Originals {
    files: Vec<OriginalFile>,
    /// Directories the first apply created (removed by reset when empty).
    created_dirs: Vec<PathBuf>,
}

fn read_json<T: serde::de::DeserializeOwned>(
    root: &Root,
    path: &str,
) -> Result<Option<T>, ApplyError> {
    match root.read(Path::new(path))? {
        Some(f) => serde_json::from_slice(&f.content)
            .map(Some)
            .map_err(|e| ApplyError::Journal {
                path: root.host_path(Path::new(path)),
                message: format!("unreadable record: {e}"),
            }),
        None => Ok(None),
    }
}

/// The node's state as its records say (no lock taken: a snapshot).
pub fn read_state(root: &Root) -> Result<NodeState, ApplyError> {
    if let Some(digest) = transaction::pending(root)? {
        return Ok(NodeState::Applying { digest });
    }
    if let Some(r) = read_json::<ApplyRecord>(root, RECORD)? {
        return Ok(NodeState::Configured {
            digest: r.digest,
            applied_at_unix: r.applied_at_unix,
        });
    }
    if let Some(f) = read_json::<FailureRecord>(root, FAILED)? {
        return Ok(NodeState::Failed {
            digest: f.digest,
            error: f.error,
            class: f.class,
        });
    }
    Ok(NodeState::Unconfigured)
}

/// The apply record of a configured node.
pub fn read_record(root: &Root) -> Result<Option<ApplyRecord>, ApplyError> {
    read_json(root, RECORD)
}

/// Notes a failed attempt, best effort (on a full disk there may be no room for it).
pub fn record_failure(root: &Root, digest: &str, error: &ApplyError) {
    let record = FailureRecord {
        digest: digest.to_owned(),
        error: error.to_string(),
        class: error.class(),
    };
    if let Ok(json) = serde_json::to_vec_pretty(&record) {
        if let Err(e) = root.write_atomic(Path::new(FAILED), &json) {
            tracing::warn!(error = %e, "could not record the failed apply");
        }
    }
}

/// A file rendering edits, read without following a link and only when regular.
fn read_existing(root: &Root, path: &str) -> Result<Option<render::ExistingFile>, ApplyError> {
    Ok(root.read(Path::new(path))?.map(|f| render::ExistingFile {
        content: f.content,
        mode: f.mode,
        owner: Owner {
            uid: f.uid,
            gid: f.gid,
        },
    }))
}

/// Reads what rendering needs from the root.
pub fn read_inputs(root: &Root, now_unix: u64) -> Result<render::Inputs, ApplyError> {
    let passwd = read_existing(root, render::PASSWD)?.ok_or_else(|| {
        ApplyError::Image(render::RenderError {
            path: render::PASSWD.into(),
            message: "missing; the root does not look like a Debian system".into(),
        })
    })?;
    let shadow = read_existing(root, SHADOW)?.ok_or_else(|| {
        ApplyError::Image(render::RenderError {
            path: SHADOW.into(),
            message: "missing; the root does not look like a Debian system".into(),
        })
    })?;
    Ok(render::Inputs {
        now_unix,
        passwd: passwd.content,
        shadow,
        hosts: read_existing(root, HOSTS)?,
    })
}

/// The image's version of one target, read without following a link: a link is recorded as a
/// link (its target is never opened), a regular file with its bytes; anything else is refused.
fn capture(root: &Root, path: &Path) -> Result<OriginalFile, ApplyError> {
    let Some((dir, name)) = root.parent_if_exists(path)? else {
        return Ok(OriginalFile::Absent {
            path: path.to_owned(),
        });
    };
    let path = path.to_owned();
    match dir.stat(&name)? {
        None => Ok(OriginalFile::Absent { path }),
        Some(st) if rootfs::is_link(&st) => match dir.read_link(&name)? {
            Some(target) => Ok(OriginalFile::Symlink { path, target }),
            None => Ok(OriginalFile::Absent { path }),
        },
        Some(_) => match dir.read(&name)? {
            Some(f) => Ok(OriginalFile::File {
                path,
                content: FileBytes::new(f.content),
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            }),
            None => Ok(OriginalFile::Absent { path }),
        },
    }
}

/// Adds the agent's records to a node plan: the applied XML, the apply record, the image's
/// originals (first apply only) and the removal of an old failure record.
pub fn add_records(
    root: &Root,
    plan: &mut Plan,
    doc: &nodeboot_config::Document,
    now_unix: u64,
) -> Result<(), ApplyError> {
    let files: Vec<PathBuf> = plan.entries.iter().map(|e| e.path.clone()).collect();
    if read_json::<Originals>(root, ORIGINAL)?.is_none() {
        let mut originals = Originals {
            files: Vec::new(),
            created_dirs: Vec::new(),
        };
        for f in &files {
            originals.files.push(capture(root, f)?);
        }
        originals.created_dirs = transaction::missing_dirs(root, plan, &files)?
            .into_iter()
            .map(|d| d.path)
            .collect();
        let json = serde_json::to_vec_pretty(&originals).map_err(|e| ApplyError::Journal {
            path: root.host_path(Path::new(ORIGINAL)),
            message: e.to_string(),
        })?;
        plan.write(ORIGINAL, json, 0o600, Owner::ROOT, Mask::Whole);
    }
    plan.write(
        APPLIED_XML,
        doc.bytes().to_vec(),
        0o600,
        Owner::ROOT,
        Mask::Whole,
    );
    let record = ApplyRecord {
        digest: doc.digest().to_owned(),
        applied_at_unix: now_unix,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        files,
    };
    let mut json = serde_json::to_vec_pretty(&record).map_err(|e| ApplyError::Journal {
        path: root.host_path(Path::new(RECORD)),
        message: e.to_string(),
    })?;
    json.push(b'\n');
    plan.write(RECORD, json, 0o644, Owner::ROOT, Mask::None);
    let pending = CheckPending {
        digest: doc.digest().to_owned(),
        applied_at_unix: now_unix,
    };
    let mut json = serde_json::to_vec_pretty(&pending).map_err(|e| ApplyError::Journal {
        path: root.host_path(Path::new(CHECK_PENDING)),
        message: e.to_string(),
    })?;
    json.push(b'\n');
    plan.write(CHECK_PENDING, json, 0o644, Owner::ROOT, Mask::None);
    plan.remove(FAILED);
    plan.remove(ROLLED_BACK);
    plan.remove(HEALTH_RECORD);
    Ok(())
}

/// What a return to the generic state keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing (`reset`, for image builders): the node's TLS identity and every record go.
    Nothing,
    /// The node's TLS identity ([`PER_NODE_FILES`]: the certificate an operator pinned stays
    /// valid) and [`ROLLED_BACK`] (a rollback after the checks failed).
    Identity,
}

/// The plan that returns a node to the image's generic state: every file back as the image had
/// it (for `/etc/shadow` only the admin line, for `/etc/hosts` only nodeboot's lines), the
/// agent's records removed and, with [`Keep::Nothing`], the node's TLS identity
/// ([`PER_NODE_FILES`]) too. Also returns the directories to remove afterwards when empty.
pub fn reset_plan(root: &Root, keep: Keep) -> Result<(Plan, Vec<PathBuf>), ApplyError> {
    let mut plan = Plan {
        replaceable_links: render::REPLACEABLE_LINKS
            .iter()
            .map(PathBuf::from)
            .collect(),
        ..Plan::default()
    };
    let originals = read_json::<Originals>(root, ORIGINAL)?;
    let mut dirs = Vec::new();
    if let Some(originals) = originals {
        for f in originals.files {
            match f {
                OriginalFile::Absent { path } => plan.remove(path),
                OriginalFile::Symlink { path, target } => plan.entries.push(super::plan::Entry {
                    path,
                    change: Change::Symlink(target),
                }),
                OriginalFile::File {
                    path,
                    content,
                    mode,
                    uid,
                    gid,
                } => {
                    let owner = Owner { uid, gid };
                    let current = read_existing(root, &path.to_string_lossy())?;
                    let old = content.as_bytes();
                    let (content, mode, owner, mask) = match (path.to_str(), current) {
                        (Some(SHADOW), Some(cur)) => {
                            let restored = render::account_line(old, render::ADMIN_USER)
                                .and_then(|line| {
                                    render::replace_account_line(
                                        &cur.content,
                                        render::ADMIN_USER,
                                        line,
                                    )
                                })
                                .unwrap_or(cur.content);
                            (restored, cur.mode, cur.owner, Mask::ShadowHashes)
                        }
                        (Some(HOSTS), Some(cur)) => (
                            render::replace_owned_hosts_lines(
                                &cur.content,
                                &render::owned_hosts_lines(old),
                            ),
                            cur.mode,
                            cur.owner,
                            Mask::None,
                        ),
                        _ => {
                            let mask = if mode & 0o077 == 0 {
                                Mask::Whole
                            } else {
                                Mask::None
                            };
                            (old.to_vec(), mode, owner, mask)
                        }
                    };
                    plan.write(path, content, mode, owner, mask);
                }
            }
        }
        dirs = originals.created_dirs;
    }
    let records = [
        RECORD,
        APPLIED_XML,
        ORIGINAL,
        FAILED,
        CHECK_PENDING,
        HEALTH_RECORD,
    ];
    let also_removed: &[&str] = match keep {
        Keep::Nothing => &[
            ROLLED_BACK,
            PER_NODE_FILES[0],
            PER_NODE_FILES[1],
            PER_NODE_FILES[2],
        ],
        Keep::Identity => &[],
    };
    for p in records.iter().chain(also_removed) {
        plan.remove(*p);
    }
    Ok((plan, dirs))
}

/// Removes directories the first apply created, deepest first, when they are empty.
pub fn remove_created_dirs(root: &Root, dirs: &[PathBuf]) {
    let mut dirs = dirs.to_vec();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        if let Ok(Some((dir, name))) = root.parent_if_exists(&d) {
            let _ = dir.rmdir(&name);
        }
    }
}

/// The state directory inside `root` (its host path).
pub fn state_dir(root: &Path) -> PathBuf {
    super::plan::under(root, Path::new(STATE_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_class_and_an_older_record_reads_as_other() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/nodeboot")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let e = ApplyError::Io {
            path: dir.path().join("etc/hostname"),
            source: std::io::Error::from_raw_os_error(28),
        };
        record_failure(&root, "ab", &e);
        assert_eq!(
            read_state(&root).unwrap(),
            NodeState::Failed {
                digest: "ab".into(),
                error: e.to_string(),
                class: FailureClass::DiskFull,
            }
        );
        let failed = dir.path().join(FAILED.trim_start_matches('/'));
        std::fs::write(&failed, r#"{"digest":"ab","error":"x"}"#).unwrap();
        let NodeState::Failed { class, .. } = read_state(&root).unwrap() else {
            panic!("not failed")
        };
        assert_eq!(class, FailureClass::Other);
    }
}
