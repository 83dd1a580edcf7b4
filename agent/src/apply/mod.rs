//! Applying a validated configuration under a root directory: render a plan, carry it out all
//! or nothing (stage, journal, replace), record the state, and reboot behind a trait.
//!
//! The server and the wizard call [`apply_config`]; nothing else in the agent writes a node's
//! files. Every function takes the node's root (`/` in production, a temporary directory in
//! tests). See docs/apply.md.

pub mod cli;
pub mod plan;
pub mod reboot;
pub mod render;
pub mod state;
pub mod transaction;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::rootfs::Root;
use nodeboot_config::Document;
use serde::Serialize;

pub use cli::{run, run_reset, run_status};
pub use plan::Plan;
pub use reboot::{
    CommandReboot, NoReboot, Reboot, RebootError, RebootMethod, SyscallReboot, SystemdReboot,
    default_reboot, schedule_reboot,
};
pub use render::RenderError;
pub use transaction::Step;

/// Where a node is in its life. Transitions: `unconfigured` → (apply) `applying` →
/// `configured`, or back to `unconfigured`/`failed` when the apply fails; `configured` →
/// (reset) `unconfigured`. `applying` is only seen while an apply runs or after a crash, until
/// [`recover`] runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum NodeState {
    /// The generic image: waiting for a configuration.
    Unconfigured,
    /// An apply of this configuration is in progress (or was interrupted).
    Applying {
        /// sha256 of the XML.
        digest: String,
    },
    /// A configuration is in place; a different one is refused until a reset.
    Configured {
        /// sha256 of the applied XML.
        digest: String,
        /// When it was applied.
        applied_at_unix: u64,
    },
    /// The last attempt failed and was rolled back; the node is still unconfigured.
    Failed {
        /// sha256 of the XML that failed.
        digest: String,
        /// Why (no secrets: errors name files and system errors only). Logged detail: host
        /// paths and system errors, for the operator on the node, never for a client.
        error: String,
        /// What kind of failure it was: what a client may be told.
        #[serde(skip)]
        class: FailureClass,
    },
}

/// What a successful [`apply_config`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// The configuration is now in place.
    Applied {
        /// sha256 of the XML.
        digest: String,
        /// The paths (inside the root) that were written or removed.
        changed: Vec<PathBuf>,
    },
    /// The node already has exactly this configuration: nothing was written.
    Unchanged {
        /// sha256 of the XML.
        digest: String,
    },
}

/// Why an apply, a reset or a recovery did not happen. In each case the node's files hold one
/// whole configuration (the old one).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A different configuration is already applied.
    #[error(
        "the node is already configured (sha256 {digest}); run `nodeboot-agent reset` before applying a different configuration"
    )]
    AlreadyConfigured {
        /// sha256 of the configuration in place.
        digest: String,
    },
    /// Another apply or reset holds the lock.
    #[error("another apply or reset is in progress; try again when it has finished")]
    Busy,
    /// A file operation failed (full disk, permissions, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The host path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The node image lacks something the configuration needs (an `admin` account, ...).
    #[error("the node image is not ready: {0}")]
    Image(#[from] RenderError),
    /// The journal or a record of the agent cannot be read.
    #[error("{}: {message}", path.display())]
    Journal {
        /// The host path.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

/// What kind of failure an [`ApplyError`] is, decided by its variant and the system error's
/// number, never by its text. A client is told the class (the server words it); the error's
/// text (host paths, errno) is only logged and shown on the node. Recorded with a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// A different configuration is applied already.
    Configured,
    /// Another apply or reset holds the node.
    Busy,
    /// No space left (ENOSPC, EDQUOT).
    DiskFull,
    /// A read-only file system (EROFS).
    ReadOnly,
    /// The system refused an operation (EACCES, EPERM).
    PermissionDenied,
    /// The storage failed (EIO).
    Storage,
    /// A path under the node's root is a link, a FIFO or another non-regular file, a
    /// directory on the way is not a directory (ELOOP, ENOTDIR, EISDIR, ENXIO), or one of the
    /// agent's own refusals ([`crate::rootfs::Refused`]: a name it did not create, a user's
    /// directory owned by someone else).
    UnexpectedFile,
    /// The node image lacks something the configuration needs (an `admin` account, …).
    Image,
    /// Anything else (and a failure recorded before classes were).
    #[default]
    Other,
}

impl FailureClass {
    /// The class of a failed file operation: its errno, or the agent's own refusal.
    pub fn of_io(e: &std::io::Error) -> Self {
        use nix::errno::Errno;
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOSPC | Errno::EDQUOT) => FailureClass::DiskFull,
            Some(Errno::EROFS) => FailureClass::ReadOnly,
            Some(Errno::EACCES | Errno::EPERM) => FailureClass::PermissionDenied,
            Some(Errno::EIO) => FailureClass::Storage,
            Some(Errno::ELOOP | Errno::ENOTDIR | Errno::EISDIR | Errno::ENXIO) => {
                FailureClass::UnexpectedFile
            }
            Some(_) => FailureClass::Other,
            None if crate::rootfs::is_refusal(e) => FailureClass::UnexpectedFile,
            None => FailureClass::Other,
        }
    }
}

impl ApplyError {
    /// What kind of failure this is, for a client (see [`FailureClass`]).
    pub fn class(&self) -> FailureClass {
        match self {
            ApplyError::AlreadyConfigured { .. } => FailureClass::Configured,
            ApplyError::Busy => FailureClass::Busy,
            ApplyError::Io { source, .. } => FailureClass::of_io(source),
            ApplyError::Image(_) => FailureClass::Image,
            ApplyError::Journal { .. } => FailureClass::Other,
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Holds the apply lock (an flock on the root directory itself, so no file is created).
fn lock(root: &Root) -> Result<Flock<std::fs::File>, ApplyError> {
    let io = |source| ApplyError::Io {
        path: root.host().to_owned(),
        source,
    };
    let dir = std::fs::File::from(root.as_fd().try_clone_to_owned().map_err(io)?);
    Flock::lock(dir, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            ApplyError::Busy
        } else {
            io(errno.into())
        }
    })
}

/// Opens the node's root (see [`crate::rootfs`]: nothing below it is reached through a link).
fn open_root(root: &Path) -> Result<Root, ApplyError> {
    Ok(Root::open(root)?)
}

/// Renders the full plan for a configuration (node files and the agent's records) without
/// writing anything: what `apply --dry-run` shows.
pub fn plan_config(root: &Path, doc: &Document) -> Result<Plan, ApplyError> {
    plan_at(&open_root(root)?, doc, now_unix())
}

fn plan_at(root: &Root, doc: &Document, now_unix: u64) -> Result<Plan, ApplyError> {
    let inputs = state::read_inputs(root, now_unix)?;
    let mut plan = render::render(doc.config(), &inputs)?;
    state::add_records(root, &mut plan, doc, now_unix)?;
    plan.actions.push(plan::Action::Reboot);
    Ok(plan)
}

/// Applies a validated configuration under `root`, all or nothing, durably (it returns once the
/// new files are on disk; see the transaction module for the barriers). The same document
/// again (same digest) is [`Outcome::Unchanged`] and writes nothing; a different one on a configured
/// node is [`ApplyError::AlreadyConfigured`]. Blocking file I/O: call it from
/// `spawn_blocking` in async code. Does not reboot: the caller decides (see
/// [`schedule_reboot`]).
pub fn apply_config(root: &Path, doc: &Document) -> Result<Outcome, ApplyError> {
    apply_config_with(root, doc, now_unix(), &mut |_| {})
}

/// [`apply_config`] with the clock and an observer of the protocol's steps given: for tests
/// (crash points, fixed time) and benchmarks.
pub fn apply_config_with(
    root: &Path,
    doc: &Document,
    now_unix: u64,
    observer: &mut dyn FnMut(Step),
) -> Result<Outcome, ApplyError> {
    apply_locked(root, doc, now_unix, &mut |_| {}, observer)
}

/// [`apply_config`] that hands the plan to `show` before carrying it out (what `nodeboot-agent
/// apply` prints). The plan is rendered once and the node's state read once, under the lock:
/// `show` is not called when the node already has this document, or another one.
pub fn apply_config_showing(
    root: &Path,
    doc: &Document,
    show: &mut dyn FnMut(&Plan),
) -> Result<Outcome, ApplyError> {
    apply_locked(root, doc, now_unix(), show, &mut |_| {})
}

fn apply_locked(
    root: &Path,
    doc: &Document,
    now_unix: u64,
    show: &mut dyn FnMut(&Plan),
    observer: &mut dyn FnMut(Step),
) -> Result<Outcome, ApplyError> {
    let root = &open_root(root)?;
    let _lock = lock(root)?;
    recover_locked(root)?;
    let digest = doc.digest().to_owned();
    match state::read_state(root)? {
        NodeState::Configured {
            digest: current, ..
        } if current == digest => {
            return Ok(Outcome::Unchanged { digest });
        }
        NodeState::Configured {
            digest: current, ..
        } => {
            return Err(ApplyError::AlreadyConfigured { digest: current });
        }
        _ => {}
    }
    let result = plan_at(root, doc, now_unix).and_then(|plan| {
        show(&plan);
        transaction::execute(root, &plan, &digest, observer)
    });
    match result {
        Ok(changed) => {
            tracing::info!(%digest, files = changed.len(), "configuration applied");
            Ok(Outcome::Applied { digest, changed })
        }
        Err(e) => {
            tracing::warn!(%digest, error = %e, "apply failed; the old configuration is in place");
            state::record_failure(root, &digest, &e);
            Err(e)
        }
    }
}

/// The node's state.
pub fn read_state(root: &Path) -> Result<NodeState, ApplyError> {
    state::read_state(&open_root(root)?)
}

/// The digest of an interrupted apply, if one is pending.
pub fn pending(root: &Path) -> Result<Option<String>, ApplyError> {
    transaction::pending(&open_root(root)?)
}

fn recover_locked(root: &Root) -> Result<(), ApplyError> {
    match transaction::recover(root)? {
        Some(transaction::Recovered::RolledForward(digest)) => {
            tracing::warn!(%digest, "completed an interrupted apply");
        }
        Some(transaction::Recovered::RolledBack(digest)) => {
            tracing::warn!(%digest, "rolled back an interrupted apply");
        }
        None => {}
    }
    Ok(())
}

/// Finishes or rolls back an interrupted apply, so that the root holds one whole
/// configuration. The agent calls it before anything else; a no-op when nothing was
/// interrupted.
pub fn recover(root: &Path) -> Result<(), ApplyError> {
    let root = &open_root(root)?;
    let _lock = lock(root)?;
    recover_locked(root)
}

/// At boot, before anything acts on the node's state: finishes or undoes an interrupted
/// transaction (apply, reset or rollback). Returns its digest when there was one: this boot
/// has read files from the middle of it (the hostname, the network), so every boot-time caller
/// (`nodeboot-acquire`, `nodeboot-check`, `serve`) reboots into what recovery left, in either
/// direction, instead of going on.
pub fn recover_at_boot(root: &Path) -> Result<Option<String>, ApplyError> {
    let interrupted = transaction::pending(&open_root(root)?)?;
    recover(root)?;
    Ok(interrupted)
}

/// Returns the node to the image's unconfigured state (for image builders): every file apply
/// wrote is put back as the image had it, the records are removed. All or nothing, like apply.
pub fn reset(root: &Path) -> Result<(), ApplyError> {
    reset_with(root, &mut |_| {})
}

/// [`reset`] with an observer of the protocol's steps (crash tests).
pub fn reset_with(root: &Path, observer: &mut dyn FnMut(Step)) -> Result<(), ApplyError> {
    let root = &open_root(root)?;
    let _lock = lock(root)?;
    recover_locked(root)?;
    let (plan, dirs) = state::reset_plan(root, state::Keep::Nothing)?;
    transaction::execute(root, &plan, "reset", observer)?;
    state::remove_created_dirs(root, &dirs);
    Ok(())
}

/// The largest [`RolledBack`](nodeboot_config::api::RolledBack) record written (its checks
/// are dropped, then its reason shortened, to fit).
pub const MAX_ROLLED_BACK: usize = 32 * 1024;

/// Rolls a configuration back after its checks failed (`nodeboot-check`): the node returns to
/// the image's generic state as with [`reset`], but keeps its TLS identity (the certificate an
/// operator pinned stays valid) and gets `record` as `/var/lib/nodeboot/rolled-back.json`, in
/// the same transaction. The check marker goes with the other records. Does not reboot.
pub fn rollback(root: &Path, record: &nodeboot_config::api::RolledBack) -> Result<(), ApplyError> {
    let root = &open_root(root)?;
    let _lock = lock(root)?;
    recover_locked(root)?;
    let (mut plan, dirs) = state::reset_plan(root, state::Keep::Identity)?;
    let json = rolled_back_json(record).map_err(|e| ApplyError::Journal {
        path: root.host_path(Path::new(state::ROLLED_BACK)),
        message: e.to_string(),
    })?;
    plan.write(
        state::ROLLED_BACK,
        json,
        0o644,
        plan::Owner::ROOT,
        plan::Mask::None,
    );
    transaction::execute(root, &plan, "rollback", &mut |_| {})?;
    state::remove_created_dirs(root, &dirs);
    Ok(())
}

/// `record` as JSON within [`MAX_ROLLED_BACK`]: without its checks' lists of what was tried,
/// then without its checks, if it is too large.
fn rolled_back_json(record: &nodeboot_config::api::RolledBack) -> serde_json::Result<Vec<u8>> {
    let mut record = record.clone();
    record.reason = nodeboot_config::text::printable_line(&record.reason)
        .chars()
        .take(500)
        .collect();
    let mut json = serde_json::to_vec_pretty(&record)?;
    if json.len() > MAX_ROLLED_BACK {
        record.checks.iter_mut().for_each(|c| c.tried.clear());
        json = serde_json::to_vec_pretty(&record)?;
    }
    if json.len() > MAX_ROLLED_BACK {
        record.checks.clear();
        json = serde_json::to_vec_pretty(&record)?;
    }
    json.push(b'\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn the_class_comes_from_the_variant_the_errno_or_the_refusal_type() {
        let io_err = |source: io::Error| ApplyError::Io {
            path: "/tmp/x/root/etc/hostname".into(),
            source,
        };
        let os = |code| io_err(io::Error::from_raw_os_error(code));
        let cases = [
            (os(28), FailureClass::DiskFull),
            (os(122), FailureClass::DiskFull),
            (os(30), FailureClass::ReadOnly),
            (os(13), FailureClass::PermissionDenied),
            (os(1), FailureClass::PermissionDenied),
            (os(5), FailureClass::Storage),
            (os(40), FailureClass::UnexpectedFile),
            (os(20), FailureClass::UnexpectedFile),
            (os(9), FailureClass::Other),
            (
                io_err(crate::rootfs::refusal(
                    io::ErrorKind::InvalidInput,
                    "is a FIFO, not a regular file",
                )),
                FailureClass::UnexpectedFile,
            ),
            // The wording of a refusal without its type decides nothing.
            (
                io_err(io::Error::other("is a symbolic link (os error 28)")),
                FailureClass::Other,
            ),
            (
                ApplyError::Image(RenderError {
                    path: "/etc/passwd".into(),
                    message: "no admin".into(),
                }),
                FailureClass::Image,
            ),
            (
                ApplyError::Journal {
                    path: "/r/var/lib/nodeboot/journal.json".into(),
                    message: "unreadable".into(),
                },
                FailureClass::Other,
            ),
            (ApplyError::Busy, FailureClass::Busy),
            (
                ApplyError::AlreadyConfigured {
                    digest: "ab".into(),
                },
                FailureClass::Configured,
            ),
        ];
        for (e, class) in cases {
            assert_eq!(e.class(), class, "{e}");
        }
    }
}
