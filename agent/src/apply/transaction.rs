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
//! Every path goes through [`crate::rootfs`]: no link under the root is followed. Before the
//! prepare journal is written, [`check`] refuses (and nothing is written) a link or anything
//! but a regular file at a target (except the targets the plan lists as replaceable links,
//! which are replaced whole), anything at all at a staged or backup name, a directory on the
//! way that is a link or not a directory, and a user's directory (`~admin`, `.ssh`) that is a
//! link or not owned by that user. Staged files are created `O_EXCL | O_NOFOLLOW` and given
//! their owner before their content; a backup is put back only when it is still the inode the
//! target had (recorded in the journal), so nothing planted at a backup name is ever renamed
//! over a target.
//!
//! This module knows nothing of configurations; it moves bytes.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::plan::{Change, DirSpec, Owner, Plan};
use crate::rootfs::{self, Dir, Root, RootError};

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
    /// The target's inode number before the apply: a backup is put back only when it is still
    /// that inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_ino: Option<u64>,
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

/// Whether the file `name` in `dir` is what the journal expects (read without following a
/// link, and only when it is a regular file).
fn matches(dir: &Dir, name: &std::ffi::OsStr, expect: &Expected) -> bool {
    match expect {
        Expected::Link { target } => dir.read_link(name).ok().flatten().as_ref() == Some(target),
        Expected::File {
            sha256,
            mode,
            uid,
            gid,
        } => match dir.read(name) {
            Ok(Some(f)) => {
                f.mode == *mode
                    && f.uid == *uid
                    && f.gid == *gid
                    && &sha256_hex(&f.content) == sha256
            }
            _ => false,
        },
    }
}

/// True when every write of a commit journal is durable: its staged file (or, once renamed,
/// its target) is exactly what the journal expects.
fn commit_is_complete(root: &Root, journal: &Journal) -> bool {
    journal.entries.iter().all(|j| match &j.expect {
        None => true,
        Some(e) => {
            let Ok((dir, target)) = root.parent(&j.path) else {
                return false;
            };
            let staged = file_name(&j.staged);
            match dir.stat(&staged) {
                Ok(Some(_)) => matches(&dir, &staged, e),
                Ok(None) => matches(&dir, &target, e),
                Err(_) => false,
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

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.nodeboot-{suffix}"))
}

fn file_name(path: &Path) -> OsString {
    path.file_name().map(ToOwned::to_owned).unwrap_or_default()
}

fn parent(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
}

/// Makes everything written so far under these directories durable: one syncfs(2) per file
/// system they live on (usually one), instead of an fsync per file and per directory. On ext4
/// each fsync is a journal commit (2–4 ms on this project's disks); one commit for the whole
/// batch is what keeps an apply under its 25 ms budget. The agent's state directory is always
/// included. A directory that is missing (or refused) has nothing of ours to sync.
fn barrier(root: &Root, dirs: &BTreeSet<PathBuf>) -> Result<(), ApplyError> {
    let mut seen = BTreeSet::new();
    let state = PathBuf::from(STATE_DIR);
    for d in dirs.iter().chain(std::iter::once(&state)) {
        let Ok(dir) = root.dir(d) else {
            continue;
        };
        if seen.insert(dir.fstat()?.st_dev) {
            dir.syncfs()?;
        }
    }
    Ok(())
}

/// Whether the target already has exactly this content, mode and owner.
fn is_same(
    root: &Root,
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Owner,
) -> Result<bool, ApplyError> {
    match root.stat(path)? {
        Some(st) if rootfs::is_regular(&st) => {}
        _ => return Ok(false),
    }
    Ok(match root.read(path)? {
        Some(f) => {
            f.mode == mode && f.uid == owner.uid && f.gid == owner.gid && f.content == content
        }
        None => false,
    })
}

/// Replaces the journal atomically (temp + rename). Not synced here: the caller's next
/// [`barrier`] makes it durable together with what it describes.
fn write_journal(root: &Root, journal: &Journal) -> Result<(), ApplyError> {
    let host = root.host_path(Path::new(JOURNAL));
    let json = serde_json::to_vec_pretty(journal).map_err(|e| ApplyError::Journal {
        path: host,
        message: e.to_string(),
    })?;
    let (dir, name) = root.parent(Path::new(JOURNAL))?;
    dir.write_replace(&name, &json, 0o600, None, false)?;
    Ok(())
}

fn read_journal(root: &Root) -> Result<Option<Journal>, ApplyError> {
    let host = root.host_path(Path::new(JOURNAL));
    match root.read(Path::new(JOURNAL))? {
        Some(f) => serde_json::from_slice(&f.content)
            .map(Some)
            .map_err(|e| ApplyError::Journal {
                path: host,
                message: format!("{e}; move it away to start over (the backups it names are kept next to each file)"),
            }),
        None => Ok(None),
    }
}

/// The digest of the apply in progress, if one was interrupted.
pub fn pending(root: &Root) -> Result<Option<String>, ApplyError> {
    Ok(read_journal(root)?.map(|j| j.digest))
}

/// Every directory that matters for durability: parents of targets and of created dirs.
fn touched_dirs(journal: &Journal) -> BTreeSet<PathBuf> {
    let mut dirs: BTreeSet<PathBuf> = journal.entries.iter().map(|e| parent(&e.path)).collect();
    dirs.extend(journal.created_dirs.iter().map(|d| parent(d)));
    dirs
}

/// Missing directories the plan needs (parents of the targets and the plan's own `dirs`, with
/// their missing ancestors), parents first, with their mode and owner. A directory on the way
/// that is a link or not a directory is an error.
pub(crate) fn missing_dirs(
    root: &Root,
    plan: &Plan,
    targets: &[PathBuf],
) -> Result<Vec<DirSpec>, ApplyError> {
    let needed = targets
        .iter()
        .map(|t| parent(t))
        .chain(plan.dirs.iter().map(|d| d.path.clone()));
    let mut wanted: Vec<PathBuf> = Vec::new();
    let mut present: BTreeSet<PathBuf> = BTreeSet::new();
    for dir in needed {
        for a in dir.ancestors() {
            if a == Path::new("/") || present.contains(a) {
                break;
            }
            match root.dir(a) {
                Ok(_) => {
                    present.insert(a.to_owned());
                    break;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            if !wanted.iter().any(|w| w == a) {
                wanted.push(a.to_owned());
            }
        }
    }
    wanted.sort_by_key(|p| p.components().count());
    Ok(wanted
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
                    owned: false,
                })
        })
        .collect())
}

fn refused(root: &Root, path: &Path, text: String) -> ApplyError {
    ApplyError::Io {
        path: root.host_path(path),
        source: crate::rootfs::refusal(io::ErrorKind::InvalidInput, text),
    }
}

/// Refuses, before anything is written, what the apply must not touch: see the module's
/// documentation. Directories that do not exist yet are fine (they are created).
fn check(root: &Root, plan: &Plan) -> Result<(), ApplyError> {
    for d in plan.dirs.iter().filter(|d| d.owned) {
        match root.dir(&d.path) {
            Ok(dir) => {
                let st = dir.fstat()?;
                if st.st_uid != d.owner.uid {
                    return Err(refused(
                        root,
                        &d.path,
                        format!(
                            "is owned by uid {}, but the files written into it belong to uid {} \
                             (from the root's /etc/passwd); nodeboot writes a user's files only \
                             into directories that user owns (chown -R {}:{} it, or remove it)",
                            st.st_uid, d.owner.uid, d.owner.uid, d.owner.gid
                        ),
                    ));
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    for e in &plan.entries {
        let Some((dir, name)) = root.parent_if_exists(&e.path)? else {
            continue;
        };
        if let Some(st) = dir.stat(&name)? {
            let link_ok = rootfs::is_link(&st) && plan.replaceable_links.contains(&e.path);
            if !rootfs::is_regular(&st) && !link_ok {
                // Reading it gives the precise refusal (link, FIFO, directory, device...).
                if let Err(err) = dir.open_regular(&name) {
                    return Err(err.into());
                }
                return Err(refused(root, &e.path, "is not a regular file".into()));
            }
        }
        for extra in [sibling(&e.path, "new"), sibling(&e.path, "old")] {
            let n = file_name(&extra);
            if dir.stat(&n)?.is_some() {
                return Err(refused(
                    root,
                    &extra,
                    "already exists; nodeboot stages and backs up files under this name \
                     itself and will not open or replace what it did not create (remove it)"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

fn owner_of(o: Owner) -> Option<(u32, u32)> {
    Some((o.uid, o.gid))
}

/// Carries out `plan` under `root`; returns the paths (inside the root) that changed. Entries
/// whose target already has the wanted content, mode and owner are left alone. On an error the
/// root is rolled back to its old content before returning.
pub fn execute(
    root: &Root,
    plan: &Plan,
    digest: &str,
    observer: &mut dyn FnMut(Step),
) -> Result<Vec<PathBuf>, ApplyError> {
    root.create_dir_all(Path::new(STATE_DIR), 0o755)?;
    check(root, plan)?;

    let mut work = Vec::new();
    for entry in &plan.entries {
        let keep = match &entry.change {
            Change::Remove => root.stat(&entry.path)?.is_none(),
            Change::Write(f) => is_same(root, &entry.path, &f.content, f.mode, f.owner)?,
            Change::Symlink(to) => match root.parent_if_exists(&entry.path)? {
                Some((dir, name)) => dir.read_link(&name)?.as_ref() == Some(to),
                None => false,
            },
        };
        if !keep {
            work.push(entry);
        }
    }
    if work.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<PathBuf> = work.iter().map(|e| e.path.clone()).collect();
    let dirs = missing_dirs(root, plan, &targets)?;
    let mut entries = Vec::with_capacity(work.len());
    for e in &work {
        let old = root.stat(&e.path)?;
        entries.push(JournalEntry {
            path: e.path.clone(),
            write: !matches!(e.change, Change::Remove),
            staged: sibling(&e.path, "new"),
            backup: sibling(&e.path, "old"),
            old_exists: old.is_some(),
            old_ino: old.map(|st| st.st_ino),
            expect: expected_for(&e.change),
        });
    }
    let mut journal = Journal {
        digest: digest.to_owned(),
        phase: Phase::Prepare,
        entries,
        created_dirs: dirs.iter().map(|d| d.path.clone()).collect(),
    };
    write_journal(root, &journal)?;
    observer(Step::JournalPrepared);
    let synced = touched_dirs(&journal);

    let prepared = (|| -> Result<(), ApplyError> {
        for d in &dirs {
            let (parent_dir, name) = root.parent(&d.path)?;
            parent_dir.mkdir(&name, d.mode, owner_of(d.owner))?;
            observer(Step::DirCreated);
        }
        for (i, (entry, j)) in work.iter().zip(&journal.entries).enumerate() {
            let (dir, _) = root.parent(&j.path)?;
            let staged = file_name(&j.staged);
            match &entry.change {
                Change::Symlink(to) => {
                    dir.symlink(to, &staged)?;
                    observer(Step::Staged(i));
                }
                Change::Write(f) => {
                    let mut file = dir.create_new(&staged, owner_of(f.owner))?;
                    let host = dir.host_of(&staged);
                    file.write_all(&f.content)
                        .map_err(|source| ApplyError::Io {
                            path: host.clone(),
                            source,
                        })?;
                    nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(f.mode)).map_err(
                        |e| ApplyError::Io {
                            path: host,
                            source: e.into(),
                        },
                    )?;
                    observer(Step::Staged(i));
                }
                Change::Remove => {}
            }
        }
        for j in journal.entries.iter().filter(|j| j.old_exists) {
            let (dir, target) = root.parent(&j.path)?;
            dir.link(&target, &file_name(&j.backup))?;
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
            let (dir, target) = root.parent(&j.path)?;
            if j.write {
                dir.rename(&file_name(&j.staged), &dir, &target)?;
            } else {
                dir.unlink(&target)?;
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
    root: &Root,
    journal: &Journal,
    observer: &mut dyn FnMut(Step),
) -> Result<(), ApplyError> {
    for j in &journal.entries {
        if let Some((dir, _)) = root.parent_if_exists(&j.path)? {
            dir.unlink(&file_name(&j.backup))?;
        }
    }
    observer(Step::BackupsRemoved);
    root.remove_file(Path::new(JOURNAL))?;
    barrier(root, &touched_dirs(journal))?;
    observer(Step::Done);
    Ok(())
}

/// Puts the old configuration back from the journal's backups.
fn roll_back(root: &Root, journal: &Journal) -> Result<(), ApplyError> {
    for j in &journal.entries {
        // A directory on the way that is missing was never created: nothing of ours is there.
        let Some((dir, target)) = root.parent_if_exists(&j.path)? else {
            continue;
        };
        let backup = file_name(&j.backup);
        match dir.stat(&backup)? {
            Some(b) if j.old_ino.is_none_or(|ino| ino == b.st_ino) => {
                if dir.stat(&target)?.is_some_and(|t| t.st_ino == b.st_ino) {
                    // Not replaced yet. rename(2) between two links of one inode does nothing
                    // and would leave the backup behind.
                    dir.unlink(&backup)?;
                } else {
                    dir.rename(&backup, &dir, &target)?;
                }
            }
            Some(_) => {
                // Not the inode the target had: not ours. Never renamed over a target.
                tracing::warn!(path = %dir.host_of(&backup).display(), "left alone: not the backup this apply made");
            }
            None if !j.old_exists => dir.unlink(&target)?,
            None => {}
        }
        if j.write {
            dir.unlink(&file_name(&j.staged))?;
        }
    }
    for d in journal.created_dirs.iter().rev() {
        if let Ok(Some((dir, name))) = root.parent_if_exists(d) {
            let _ = dir.rmdir(&name);
        }
    }
    barrier(root, &touched_dirs(journal))?;
    root.remove_file(Path::new(JOURNAL))?;
    barrier(root, &BTreeSet::new())
}

/// Completes an interrupted commit.
fn roll_forward(root: &Root, journal: &Journal) -> Result<(), ApplyError> {
    for j in &journal.entries {
        let (dir, target) = root.parent(&j.path)?;
        if j.write {
            let staged = file_name(&j.staged);
            if dir.stat(&staged)?.is_some() {
                dir.rename(&staged, &dir, &target)?;
            }
        } else {
            dir.unlink(&target)?;
        }
    }
    barrier(root, &touched_dirs(journal))?;
    finish(root, journal, &mut |_| {})
}

/// Finishes or rolls back an interrupted apply; returns what happened, for the log.
pub fn recover(root: &Root) -> Result<Option<Recovered>, ApplyError> {
    root.remove_file(Path::new(JOURNAL_TMP))?;
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

impl From<RootError> for ApplyError {
    fn from(e: RootError) -> Self {
        ApplyError::Io {
            path: e.path,
            source: e.source,
        }
    }
}
