//! Carrying out a [`Plan`] under a root, all or nothing, and finishing an interrupted one.
//!
//! The protocol (docs/apply.md has the reasoning). A *barrier* is one syncfs(2) per file
//! system touched: it makes everything written before it durable.
//! 1. write the journal (`phase: prepare`): every target, its staged and backup names, whether
//!    it existed, and the directories about to be created;
//! 2. create missing directories; write every new file to a staged name next to its target
//!    with its mode and owner; hard-link every existing target to a backup name;
//! 3. rewrite the journal with `phase: commit` and the sha256, mode and owner of every staged
//!    file; barrier (the commit point: journal, staged files and backups durable together);
//! 4. rename each staged file over its target (or unlink a removed target); barrier — the new
//!    configuration is durable when `execute` returns;
//! 5. remove the backups, then the journal.
//!
//! Recovery: no journal → nothing to do; `prepare` or `rollback` → put every backup back and
//! delete staged files and created directories (the old configuration); `commit` with every
//! staged file (or its renamed target) matching its recorded sha256, mode and owner → rename
//! the remaining staged files into place (the new configuration); `commit` with a staged file
//! missing or different (power lost inside the barrier, before any rename) → roll back. All
//! are idempotent, so a crash during recovery is recovered by the next start.
//!
//! This module knows nothing of configurations; it moves bytes.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::plan::{Change, DirSpec, Owner, Plan, under};

/// The agent's state directory inside the root. The Debian package ships it; apply creates it
/// when missing and never removes it.
pub const STATE_DIR: &str = "/var/lib/nodeboot";
/// The journal of an apply in progress (absent when none is).
pub const JOURNAL: &str = "/var/lib/nodeboot/journal.json";
const JOURNAL_TMP: &str = "/var/lib/nodeboot/.journal.json.tmp";

/// A point in the protocol, reported to the observer right after it is reached. Tests stop the
/// apply at each one to check crash consistency; nothing else depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The `prepare` journal is durable.
    JournalPrepared,
    /// One missing directory was created.
    DirCreated,
    /// The staged file of the n-th changed entry is written and synced.
    Staged(usize),
    /// Existing targets are linked to their backups.
    BackedUp,
    /// The `commit` journal, the staged files and the backups are durable (one barrier): from
    /// here on, recovery rolls forward.
    JournalCommitted,
    /// The n-th changed entry is in place.
    Replaced(usize),
    /// The directories holding the targets are synced.
    ReplacedSynced,
    /// The backups are gone.
    BackupsRemoved,
    /// The journal is gone: the apply is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Prepare,
    Commit,
    Rollback,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalEntry {
    /// Target, absolute inside the root.
    path: PathBuf,
    /// True for a write, false for a removal.
    write: bool,
    /// Staged file (absolute inside the root), for writes.
    staged: PathBuf,
    /// Hard link to the old file, when it existed.
    backup: PathBuf,
    /// Whether the target existed before.
    old_exists: bool,
    /// What the staged file must be, so that recovery can tell a complete commit from one cut
    /// short inside its barrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect: Option<Expected>,
}

/// The identity of a staged file: sha256, mode and owner, or a link target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expected {
    File {
        sha256: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Link {
        target: PathBuf,
    },
}

fn sha256_hex(bytes: &[u8]) -> String {
    nodeboot_config::digest(bytes)
}

fn expected_for(change: &Change) -> Option<Expected> {
    match change {
        Change::Write(f) => Some(Expected::File {
            sha256: sha256_hex(&f.content),
            mode: f.mode,
            uid: f.owner.uid,
            gid: f.owner.gid,
        }),
        Change::Symlink(to) => Some(Expected::Link { target: to.clone() }),
        Change::Remove => None,
    }
}

/// Whether the file at `host` is what the journal expects.
fn matches(host: &Path, expect: &Expected) -> bool {
    match expect {
        Expected::Link { target } => fs::read_link(host).is_ok_and(|l| &l == target),
        Expected::File {
            sha256,
            mode,
            uid,
            gid,
        } => match fs::symlink_metadata(host) {
            Ok(m)
                if m.is_file()
                    && m.mode() & 0o7777 == *mode
                    && m.uid() == *uid
                    && m.gid() == *gid =>
            {
                fs::read(host).is_ok_and(|c| &sha256_hex(&c) == sha256)
            }
            _ => false,
        },
    }
}

/// True when every write of a commit journal is durable: its staged file (or, once renamed,
/// its target) is exactly what the journal expects.
fn commit_is_complete(root: &Path, journal: &Journal) -> bool {
    journal.entries.iter().all(|j| match &j.expect {
        None => true,
        Some(e) => {
            let staged = under(root, &j.staged);
            if exists(&staged) {
                matches(&staged, e)
            } else {
                matches(&under(root, &j.path), e)
            }
        }
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    /// What is being applied (a configuration's sha256, or `reset`).
    digest: String,
    phase: Phase,
    entries: Vec<JournalEntry>,
    /// Directories this apply creates, parents first.
    created_dirs: Vec<PathBuf>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.nodeboot-{suffix}"))
}

fn parent(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn same_inode(a: &Path, b: &Path) -> bool {
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn sync_dir(host: &Path) -> Result<(), ApplyError> {
    File::open(host)
        .and_then(|d| d.sync_all())
        .map_err(io_err(host))
}

/// Makes everything written so far under these directories durable: one syncfs(2) per file
/// system they live on (usually one), instead of an fsync per file and per directory. On ext4
/// each fsync is a journal commit (2–4 ms on this project's disks); one commit for the whole
/// batch is what keeps an apply under its 25 ms budget. The agent's state directory is always
/// included.
fn barrier(root: &Path, dirs: &BTreeSet<PathBuf>) -> Result<(), ApplyError> {
    let mut seen = BTreeSet::new();
    let state = PathBuf::from(STATE_DIR);
    for d in dirs.iter().chain(std::iter::once(&state)) {
        let host = under(root, d);
        let Ok(m) = fs::metadata(&host) else {
            continue;
        };
        if seen.insert(m.dev()) {
            let dir = File::open(&host).map_err(io_err(&host))?;
            nix::unistd::syncfs(&dir).map_err(|e| io_err(&host)(e.into()))?;
        }
    }
    Ok(())
}

fn remove_if_exists(host: &Path) -> Result<(), ApplyError> {
    match fs::remove_file(host) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(host)(e)),
        _ => Ok(()),
    }
}

/// Whether the file at `host` already has exactly this content, mode and owner.
fn is_same(host: &Path, content: &[u8], mode: u32, owner: Owner) -> bool {
    match fs::symlink_metadata(host) {
        Ok(m)
            if m.is_file()
                && m.mode() & 0o7777 == mode
                && m.uid() == owner.uid
                && m.gid() == owner.gid
                && m.len() == content.len() as u64 =>
        {
            fs::read(host).is_ok_and(|c| c == content)
        }
        _ => false,
    }
}

/// Writes a small file atomically and durably (temp, fsync, rename, fsync dir).
pub(crate) fn write_atomic(
    root: &Path,
    path: &str,
    tmp: &str,
    content: &[u8],
) -> Result<(), ApplyError> {
    let (host, host_tmp) = (under(root, Path::new(path)), under(root, Path::new(tmp)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&host_tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        fs::rename(&host_tmp, &host)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&host_tmp);
        return Err(io_err(&host)(e));
    }
    sync_dir(&parent(&host))
}

/// Replaces the journal atomically (temp + rename). Not synced here: the caller's next
/// [`barrier`] makes it durable together with what it describes.
fn write_journal(root: &Path, journal: &Journal) -> Result<(), ApplyError> {
    let host = under(root, Path::new(JOURNAL));
    let json = serde_json::to_vec_pretty(journal).map_err(|e| ApplyError::Journal {
        path: host.clone(),
        message: e.to_string(),
    })?;
    let tmp = under(root, Path::new(JOURNAL_TMP));
    let result = fs::write(&tmp, json).and_then(|()| fs::rename(&tmp, &host));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&host)(e));
    }
    Ok(())
}

fn read_journal(root: &Path) -> Result<Option<Journal>, ApplyError> {
    let host = under(root, Path::new(JOURNAL));
    match fs::read(&host) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApplyError::Journal {
                path: host,
                message: format!("{e}; move it away to start over (the backups it names are kept next to each file)"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&host)(e)),
    }
}

/// The digest of the apply in progress, if one was interrupted.
pub fn pending(root: &Path) -> Result<Option<String>, ApplyError> {
    Ok(read_journal(root)?.map(|j| j.digest))
}

/// Every directory that matters for durability: parents of targets and of created dirs.
fn touched_dirs(journal: &Journal) -> BTreeSet<PathBuf> {
    let mut dirs: BTreeSet<PathBuf> = journal.entries.iter().map(|e| parent(&e.path)).collect();
    dirs.extend(journal.created_dirs.iter().map(|d| parent(d)));
    dirs
}

/// Missing directories the plan needs (parents of the targets and the plan's own `dirs`, with
/// their missing ancestors), parents first, with their mode and owner.
pub(crate) fn missing_dirs(root: &Path, plan: &Plan, targets: &[PathBuf]) -> Vec<DirSpec> {
    let needed = targets
        .iter()
        .map(|t| parent(t))
        .chain(plan.dirs.iter().map(|d| d.path.clone()));
    let mut wanted: Vec<PathBuf> = Vec::new();
    for dir in needed {
        for a in dir.ancestors() {
            if a == Path::new("/") || under(root, a).is_dir() {
                break;
            }
            if !wanted.iter().any(|w| w == a) {
                wanted.push(a.to_owned());
            }
        }
    }
    wanted.sort_by_key(|p| p.components().count());
    wanted
        .into_iter()
        .map(|path| {
            plan.dirs
                .iter()
                .find(|d| d.path == path)
                .cloned()
                .unwrap_or(DirSpec {
                    path,
                    mode: 0o755,
                    owner: Owner::ROOT,
                })
        })
        .collect()
}

fn set_owner(file: &File, host: &Path, owner: Owner) -> Result<(), ApplyError> {
    let m = file.metadata().map_err(io_err(host))?;
    if m.uid() != owner.uid || m.gid() != owner.gid {
        std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid)).map_err(io_err(host))?;
    }
    Ok(())
}

/// Carries out `plan` under `root`; returns the paths (inside the root) that changed. Entries
/// whose target already has the wanted content, mode and owner are left alone. On an error the
/// root is rolled back to its old content before returning.
pub fn execute(
    root: &Path,
    plan: &Plan,
    digest: &str,
    observer: &mut dyn FnMut(Step),
) -> Result<Vec<PathBuf>, ApplyError> {
    let state_dir = under(root, Path::new(STATE_DIR));
    fs::create_dir_all(&state_dir).map_err(io_err(&state_dir))?;

    let mut work = Vec::new();
    for entry in &plan.entries {
        let host = under(root, &entry.path);
        let keep = match &entry.change {
            Change::Remove => !exists(&host),
            Change::Write(f) => is_same(&host, &f.content, f.mode, f.owner),
            Change::Symlink(to) => fs::read_link(&host).is_ok_and(|l| &l == to),
        };
        if !keep {
            work.push(entry);
        }
    }
    if work.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<PathBuf> = work.iter().map(|e| e.path.clone()).collect();
    let dirs = missing_dirs(root, plan, &targets);
    let mut journal = Journal {
        digest: digest.to_owned(),
        phase: Phase::Prepare,
        entries: work
            .iter()
            .map(|e| JournalEntry {
                path: e.path.clone(),
                write: !matches!(e.change, Change::Remove),
                staged: sibling(&e.path, "new"),
                backup: sibling(&e.path, "old"),
                old_exists: exists(&under(root, &e.path)),
                expect: expected_for(&e.change),
            })
            .collect(),
        created_dirs: dirs.iter().map(|d| d.path.clone()).collect(),
    };
    write_journal(root, &journal)?;
    observer(Step::JournalPrepared);
    let synced = touched_dirs(&journal);

    let prepared = (|| -> Result<(), ApplyError> {
        for d in &dirs {
            let host = under(root, &d.path);
            fs::create_dir(&host).map_err(io_err(&host))?;
            fs::set_permissions(&host, fs::Permissions::from_mode(d.mode))
                .map_err(io_err(&host))?;
            let m = fs::metadata(&host).map_err(io_err(&host))?;
            if m.uid() != d.owner.uid || m.gid() != d.owner.gid {
                std::os::unix::fs::chown(&host, Some(d.owner.uid), Some(d.owner.gid))
                    .map_err(io_err(&host))?;
            }
            observer(Step::DirCreated);
        }
        for (i, (entry, j)) in work.iter().zip(&journal.entries).enumerate() {
            if let Change::Symlink(to) = &entry.change {
                let host = under(root, &j.staged);
                remove_if_exists(&host)?;
                std::os::unix::fs::symlink(to, &host).map_err(io_err(&host))?;
                observer(Step::Staged(i));
            }
            if let Change::Write(f) = &entry.change {
                let host = under(root, &j.staged);
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&host)
                    .map_err(io_err(&host))?;
                file.write_all(&f.content).map_err(io_err(&host))?;
                set_owner(&file, &host, f.owner)?;
                file.set_permissions(fs::Permissions::from_mode(f.mode))
                    .map_err(io_err(&host))?;
                observer(Step::Staged(i));
            }
        }
        for j in journal.entries.iter().filter(|j| j.old_exists) {
            let (target, backup) = (under(root, &j.path), under(root, &j.backup));
            remove_if_exists(&backup)?;
            fs::hard_link(&target, &backup).map_err(io_err(&backup))?;
        }
        observer(Step::BackedUp);
        journal.phase = Phase::Commit;
        write_journal(root, &journal)?;
        barrier(root, &synced)?;
        observer(Step::JournalCommitted);
        Ok(())
    })();
    if let Err(e) = prepared {
        journal.phase = Phase::Prepare;
        if let Err(rb) = roll_back(root, &journal) {
            tracing::error!(error = %rb, "rolling back a failed apply");
        }
        return Err(e);
    }

    let replaced = (|| -> Result<(), ApplyError> {
        for (i, j) in journal.entries.iter().enumerate() {
            let target = under(root, &j.path);
            if j.write {
                let staged = under(root, &j.staged);
                fs::rename(&staged, &target).map_err(io_err(&target))?;
            } else {
                remove_if_exists(&target)?;
            }
            observer(Step::Replaced(i));
        }
        barrier(root, &synced)?;
        observer(Step::ReplacedSynced);
        Ok(())
    })();
    if let Err(e) = replaced {
        journal.phase = Phase::Rollback;
        // Without a durable rollback journal the commit journal stays, and the next start
        // rolls forward instead: either way one whole configuration.
        if write_journal(root, &journal).is_ok() && barrier(root, &synced).is_ok() {
            if let Err(rb) = roll_back(root, &journal) {
                tracing::error!(error = %rb, "rolling back a failed apply");
            }
        }
        return Err(e);
    }
    // The new configuration is in place and durable: a failure to clean up is not a failed
    // apply. The commit journal then stays, and the next recover() finishes the cleanup.
    if let Err(e) = finish(root, &journal, observer) {
        tracing::warn!(error = %e, "cleaning up after an apply; the next start finishes it");
    }
    Ok(targets)
}

/// Removes backups and the journal once every target is in place and durable, then makes the
/// removals durable too: on a configured node the agent's unit is skipped at boot (its
/// condition is the apply record), so no start would come to finish a cleanup that a power cut
/// lost, and the old files' backups and a commit journal would stay for good (the VM suite's
/// powerloss scenario found them after a cut during the reboot).
fn finish(
    root: &Path,
    journal: &Journal,
    observer: &mut dyn FnMut(Step),
) -> Result<(), ApplyError> {
    for j in &journal.entries {
        remove_if_exists(&under(root, &j.backup))?;
    }
    observer(Step::BackupsRemoved);
    remove_if_exists(&under(root, Path::new(JOURNAL)))?;
    barrier(root, &touched_dirs(journal))?;
    observer(Step::Done);
    Ok(())
}

/// Puts the old configuration back from the journal's backups.
fn roll_back(root: &Path, journal: &Journal) -> Result<(), ApplyError> {
    for j in &journal.entries {
        let (target, backup) = (under(root, &j.path), under(root, &j.backup));
        if exists(&backup) {
            if same_inode(&backup, &target) {
                // Not replaced yet. rename(2) between two links of one inode does nothing and
                // would leave the backup behind.
                remove_if_exists(&backup)?;
            } else {
                fs::rename(&backup, &target).map_err(io_err(&target))?;
            }
        } else if !j.old_exists {
            remove_if_exists(&target)?;
        }
        if j.write {
            remove_if_exists(&under(root, &j.staged))?;
        }
    }
    for d in journal.created_dirs.iter().rev() {
        let _ = fs::remove_dir(under(root, d));
    }
    barrier(root, &touched_dirs(journal))?;
    remove_if_exists(&under(root, Path::new(JOURNAL)))?;
    barrier(root, &BTreeSet::new())
}

/// Completes an interrupted commit.
fn roll_forward(root: &Path, journal: &Journal) -> Result<(), ApplyError> {
    for j in &journal.entries {
        let target = under(root, &j.path);
        if j.write {
            let staged = under(root, &j.staged);
            if exists(&staged) {
                fs::rename(&staged, &target).map_err(io_err(&target))?;
            }
        } else {
            remove_if_exists(&target)?;
        }
    }
    barrier(root, &touched_dirs(journal))?;
    finish(root, journal, &mut |_| {})
}

/// Finishes or rolls back an interrupted apply; returns what happened, for the log.
pub fn recover(root: &Path) -> Result<Option<Recovered>, ApplyError> {
    remove_if_exists(&under(root, Path::new(JOURNAL_TMP)))?;
    let Some(journal) = read_journal(root)? else {
        return Ok(None);
    };
    match journal.phase {
        Phase::Commit if commit_is_complete(root, &journal) => {
            roll_forward(root, &journal)?;
            Ok(Some(Recovered::RolledForward(journal.digest)))
        }
        // A commit record without all its staged files: the machine stopped inside the commit
        // barrier, before any target was touched.
        Phase::Commit | Phase::Prepare | Phase::Rollback => {
            roll_back(root, &journal)?;
            Ok(Some(Recovered::RolledBack(journal.digest)))
        }
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The interrupted apply of this digest was completed.
    RolledForward(String),
    /// The interrupted apply of this digest was undone.
    RolledBack(String),
}
