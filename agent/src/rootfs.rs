//! The node's root directory as a directory descriptor: every path the agent opens under
//! `--root` is resolved from it, one way, without following a symbolic link.
//!
//! A [`Root`] holds an fd of the root. A path inside it (`/etc/hosts`, always read as relative
//! to the root) is reached with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` where the
//! kernel has it (Linux 5.6+), else by a walk that opens one component at a time with
//! `O_NOFOLLOW | O_DIRECTORY` (systemd's `chase()` and runc's `securejoin` are the models).
//! Either way a link anywhere on the path is an error that names it, and `..` is refused
//! before any system call. The last component is then handled relative to its parent's fd
//! ([`Dir`]): files are read only after `fstat` says they are regular (opened with
//! `O_NONBLOCK`, so a FIFO can neither block the open nor the read), new files are created
//! with `O_CREAT | O_EXCL | O_NOFOLLOW` and given their owner on the fd before any byte is
//! written, and renames, links and removals use the `*at` calls, which never follow the last
//! component.
//!
//! This module knows nothing of configurations or of what the files mean; docs/apply.md lists
//! what the agent refuses and why.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

/// How paths below the root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// One `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS` (Linux 5.6 and later).
    Openat2,
    /// One `openat(2)` per component with `O_NOFOLLOW | O_DIRECTORY` (any kernel).
    Walk,
}

thread_local! {
    static FORCED: Cell<Option<Resolver>> = const { Cell::new(None) };
}

/// Runs `f` with every [`Root`] opened on this thread using `resolver`, whatever the kernel
/// offers: the tests run each attack through both resolvers this way.
#[doc(hidden)]
pub fn with_resolver<T>(resolver: Resolver, f: impl FnOnce() -> T) -> T {
    let before = FORCED.with(|c| c.replace(Some(resolver)));
    let out = f();
    FORCED.with(|c| c.set(before));
    out
}

/// A failed operation under the root: the host path it was on and the system error (or one of
/// this module's refusals, whose text says what was found and what to do).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct RootError {
    /// The host path (the root joined with the path inside it).
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: io::Error,
}

impl RootError {
    fn new(path: PathBuf, source: io::Error) -> Self {
        RootError { path, source }
    }

    fn errno(path: PathBuf, e: Errno) -> Self {
        RootError::new(path, io::Error::from(e))
    }

    /// Whether the path (or a directory on the way to it) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

type Result<T> = std::result::Result<T, RootError>;

/// One of the agent's own refusals of what it found under the root (a link, a FIFO, a name
/// it did not create, a directory of the wrong owner): the text says what and how to fix it.
/// Its type, not its text, tells a failed apply's class (see [`is_refusal`]).
#[derive(Debug)]
pub struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A refusal as an `io::Error` of `kind`, carrying a [`Refused`].
pub fn refusal(kind: io::ErrorKind, text: impl Into<String>) -> io::Error {
    io::Error::new(kind, Refused(text.into()))
}

/// Whether `e` is one of the agent's refusals rather than a system error.
pub fn is_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Refused>())
}

fn link_refused() -> io::Error {
    refusal(
        io::ErrorKind::InvalidInput,
        "is a symbolic link; nodeboot never follows links under the root (replace the link \
         with the real file or directory)",
    )
}

fn kind_name(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFREG => "a regular file",
        _ => "of an unknown kind",
    }
}

/// The file type bits of a stat.
pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Whether a stat is of a regular file.
pub fn is_regular(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFREG
}

/// Whether a stat is of a symbolic link.
pub fn is_link(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFLNK
}

fn not_regular(st: &FileStat) -> io::Error {
    if is_link(st) {
        return link_refused();
    }
    refusal(
        io::ErrorKind::InvalidInput,
        format!(
            "is {}, not a regular file; nodeboot reads and replaces only regular files here \
             (remove it)",
            kind_name(st.st_mode)
        ),
    )
}

/// The components of a path inside the root; `..` and anything but plain names is refused.
fn components(path: &Path) -> io::Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refusal(
                    io::ErrorKind::InvalidInput,
                    "has a `..` component; paths under the root must go straight down",
                ));
            }
        }
    }
    Ok(out)
}

/// A file read through [`Dir::read`]: its bytes and what `fstat` said of it.
pub struct Regular {
    /// The content.
    pub content: Vec<u8>,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Inode number (a backup is recognised by it).
    pub ino: u64,
}

impl std::fmt::Debug for Regular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regular")
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

/// The node's root directory, open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    host: PathBuf,
    resolver: Resolver,
}

/// A directory below the root, open (reached without a link), with its host path for errors.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    host: PathBuf,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn open_dir_at(at: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(at, name, DIR_FLAGS, Mode::empty())
}

impl Root {
    /// Opens the root directory. The root path itself is the operator's choice and may be
    /// reached through links; nothing below it is.
    pub fn open(host: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            host,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootError::errno(host.to_owned(), e))?;
        let resolver = match FORCED.with(Cell::get) {
            Some(r) => r,
            None => match nix::fcntl::openat2(&fd, ".", Self::how()) {
                Err(Errno::ENOSYS) => Resolver::Walk,
                _ => Resolver::Openat2,
            },
        };
        Ok(Root {
            fd,
            host: host.to_owned(),
            resolver,
        })
    }

    fn how() -> OpenHow {
        OpenHow::new().flags(DIR_FLAGS).resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// The resolver in use.
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The root's host path.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// The host path of `path` (inside the root), for messages.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        self.host.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// The root directory itself as a [`Dir`].
    pub fn top(&self) -> Result<Dir> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| RootError::new(self.host.clone(), e))?;
        Ok(Dir {
            fd,
            host: self.host.clone(),
        })
    }

    /// The root's file descriptor (for a lock on the root).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory at `path` (inside the root). A link anywhere on the way, or a
    /// component that is not a directory, is an error naming it.
    pub fn dir(&self, path: &Path) -> Result<Dir> {
        let names = components(path).map_err(|e| RootError::new(self.host_path(path), e))?;
        if names.is_empty() {
            return self.top();
        }
        if self.resolver == Resolver::Openat2 {
            let rel: PathBuf = names.iter().collect();
            match nix::fcntl::openat2(&self.fd, &rel, Self::how()) {
                Ok(fd) => {
                    return Ok(Dir {
                        fd,
                        host: self.host.join(&rel),
                    });
                }
                Err(Errno::ENOENT) => {
                    return Err(RootError::errno(self.host.join(&rel), Errno::ENOENT));
                }
                // A link or a non-directory on the way (ELOOP, ENOTDIR), or a rename race
                // (EAGAIN): the walk finds which component and says so.
                Err(_) => {}
            }
        }
        self.walk(&names)
    }

    fn walk(&self, names: &[&OsStr]) -> Result<Dir> {
        let mut host = self.host.clone();
        let mut cur: Option<OwnedFd> = None;
        for name in names {
            let at = cur.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
            host.push(name);
            match open_dir_at(at, name) {
                Ok(fd) => cur = Some(fd),
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                    let why = match nix::sys::stat::fstatat(at, *name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    {
                        Ok(st) if is_link(&st) => link_refused(),
                        Ok(st) if file_type(&st) != SFlag::S_IFDIR => refusal(
                            io::ErrorKind::InvalidInput,
                            format!("is {}, not a directory", kind_name(st.st_mode)),
                        ),
                        _ => io::Error::from(e),
                    };
                    return Err(RootError::new(host, why));
                }
                Err(e) => return Err(RootError::errno(host, e)),
            }
        }
        match cur {
            Some(fd) => Ok(Dir { fd, host }),
            None => self.top(),
        }
    }

    /// The directory holding `path` and the last component's name.
    pub fn parent(&self, path: &Path) -> Result<(Dir, OsString)> {
        let names = components(path).map_err(|e| RootError::new(self.host_path(path), e))?;
        let Some((last, dirs)) = names.split_last() else {
            return Err(RootError::new(
                self.host.clone(),
                refusal(io::ErrorKind::InvalidInput, "is the root, not a file"),
            ));
        };
        let rel: PathBuf = dirs.iter().collect();
        Ok((self.dir(&rel)?, (*last).to_owned()))
    }

    /// The parent of `path` when it exists, `None` when a directory on the way is missing.
    pub fn parent_if_exists(&self, path: &Path) -> Result<Option<(Dir, OsString)>> {
        match self.parent(path) {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the regular file at `path`; `None` when it (or a directory on the way) does not
    /// exist.
    pub fn read(&self, path: &Path) -> Result<Option<Regular>> {
        match self.parent_if_exists(path)? {
            Some((dir, name)) => dir.read(&name),
            None => Ok(None),
        }
    }

    /// What is at `path`, without following a link; `None` when absent.
    pub fn stat(&self, path: &Path) -> Result<Option<FileStat>> {
        match self.parent_if_exists(path)? {
            Some((dir, name)) => dir.stat(&name),
            None => Ok(None),
        }
    }

    /// Creates the directories of `path` that are missing (mode `mode`, root-owned), refusing
    /// links on the way; returns the directory.
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> Result<Dir> {
        let names = components(path).map_err(|e| RootError::new(self.host_path(path), e))?;
        let mut cur = self.top()?;
        for name in names {
            cur = match cur.open_dir(name) {
                Ok(d) => d,
                Err(e) if e.is_not_found() => cur.mkdir(name, mode, None)?,
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    /// Replaces the small file `path` atomically and durably, mode 0600 (a record of the
    /// agent's): [`Dir::write_replace`] with an fsync, then an fsync of its directory.
    pub fn write_atomic(&self, path: &Path, content: &[u8]) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        dir.write_replace(&name, content, 0o600, None, true)?;
        dir.sync()
    }

    /// Removes the file at `path` (a link is removed, never followed); absent is fine.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        match self.parent_if_exists(path)? {
            Some((dir, name)) => dir.unlink(&name),
            None => Ok(()),
        }
    }
}

impl Dir {
    /// The host path, for messages.
    pub fn host(&self) -> &Path {
        &self.host
    }

    fn child(&self, name: &OsStr) -> PathBuf {
        self.host.join(name)
    }

    /// The host path of an entry, for messages.
    pub fn host_of(&self, name: &OsStr) -> PathBuf {
        self.child(name)
    }

    /// What is at `name`, not following a link; `None` when absent.
    pub fn stat(&self, name: &OsStr) -> Result<Option<FileStat>> {
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(RootError::errno(self.child(name), e)),
        }
    }

    /// Opens the subdirectory `name`, refusing a link or anything else.
    pub fn open_dir(&self, name: &OsStr) -> Result<Dir> {
        match open_dir_at(self.fd.as_fd(), name) {
            Ok(fd) => Ok(Dir {
                fd,
                host: self.child(name),
            }),
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let why = match self.stat(name)? {
                    Some(st) if is_link(&st) => link_refused(),
                    Some(st) => refusal(
                        io::ErrorKind::InvalidInput,
                        format!("is {}, not a directory", kind_name(st.st_mode)),
                    ),
                    None => io::Error::from(e),
                };
                Err(RootError::new(self.child(name), why))
            }
            Err(e) => Err(RootError::errno(self.child(name), e)),
        }
    }

    /// Opens the regular file `name` for reading: never through a link, never blocking (a
    /// FIFO or a device is refused by `fstat` before any read). `None` when absent.
    pub fn open_regular(&self, name: &OsStr) -> Result<Option<(File, FileStat)>> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(RootError::new(self.child(name), link_refused())),
            Err(e) => return Err(RootError::errno(self.child(name), e)),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| RootError::errno(self.child(name), e))?;
        if !is_regular(&st) {
            return Err(RootError::new(self.child(name), not_regular(&st)));
        }
        Ok(Some((File::from(fd), st)))
    }

    /// Reads the regular file `name` (see [`Dir::open_regular`]). `None` when absent.
    pub fn read(&self, name: &OsStr) -> Result<Option<Regular>> {
        let Some((mut file, st)) = self.open_regular(name)? else {
            return Ok(None);
        };
        let mut content = Vec::with_capacity(usize::try_from(st.st_size).unwrap_or(0));
        file.read_to_end(&mut content)
            .map_err(|e| RootError::new(self.child(name), e))?;
        Ok(Some(Regular {
            content,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            ino: st.st_ino,
        }))
    }

    /// Creates `name` as a new file: `O_CREAT | O_EXCL | O_NOFOLLOW` (so nothing already there,
    /// link or file, is ever opened), mode 0600, given `owner` on the fd at once when it is not
    /// the process's. The caller writes the content and sets the final mode.
    pub fn create_new(&self, name: &OsStr, owner: Option<(u32, u32)>) -> Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                let what = match self.stat(name)? {
                    Some(st) => kind_name(st.st_mode),
                    None => "something",
                };
                return Err(RootError::new(
                    self.child(name),
                    refusal(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "already exists ({what}); nodeboot creates this name itself and \
                             will not open or replace what it did not create (remove it)"
                        ),
                    ),
                ));
            }
            Err(e) => return Err(RootError::errno(self.child(name), e)),
        };
        if let Some((uid, gid)) = owner {
            let st =
                nix::sys::stat::fstat(&fd).map_err(|e| RootError::errno(self.child(name), e))?;
            if st.st_uid != uid || st.st_gid != gid {
                nix::unistd::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                    .map_err(|e| RootError::errno(self.child(name), e))?;
            }
        }
        Ok(File::from(fd))
    }

    /// The agent's one atomic write of a small file, by way of a fresh temporary name
    /// (`.NAME.tmp` beside it): remove a stale temporary, create it new (mode 0600 and the
    /// owner first, never through a link), write, set `mode`, fsync when `sync`, rename over
    /// `name`. Does not sync the directory (see [`Dir::sync`]; [`Root::write_atomic`] does).
    pub fn write_replace(
        &self,
        name: &OsStr,
        content: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
        sync: bool,
    ) -> Result<()> {
        let tmp = temporary_name(name);
        let tmp = tmp.as_os_str();
        self.unlink(tmp)?;
        let result = (|| {
            let mut f = self.create_new(tmp, owner)?;
            let io = |e| RootError::new(self.child(tmp), e);
            f.write_all(content).map_err(io)?;
            nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(mode))
                .map_err(|e| RootError::errno(self.child(tmp), e))?;
            if sync {
                f.sync_all().map_err(io)?;
            }
            self.rename(tmp, self, name)
        })();
        if result.is_err() {
            let _ = self.unlink(tmp);
        }
        result
    }

    /// Creates the subdirectory `name` (mkdirat, then opened without following and given its
    /// mode and owner on the fd).
    pub fn mkdir(&self, name: &OsStr, mode: u32, owner: Option<(u32, u32)>) -> Result<Dir> {
        nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700))
            .map_err(|e| RootError::errno(self.child(name), e))?;
        let dir = self.open_dir(name)?;
        let err = |e| RootError::errno(self.child(name), e);
        if let Some((uid, gid)) = owner {
            nix::unistd::fchown(&dir.fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(err)?;
        }
        nix::sys::stat::fchmod(&dir.fd, Mode::from_bits_truncate(mode)).map_err(err)?;
        Ok(dir)
    }

    /// Renames `from` (in this directory) to `to` in `dest`; neither name is followed.
    pub fn rename(&self, from: &OsStr, dest: &Dir, to: &OsStr) -> Result<()> {
        nix::fcntl::renameat(&self.fd, from, &dest.fd, to)
            .map_err(|e| RootError::errno(dest.child(to), e))
    }

    /// Makes `to` a second hard link of `from` (the entry itself, a link is not followed).
    pub fn link(&self, from: &OsStr, to: &OsStr) -> Result<()> {
        nix::unistd::linkat(&self.fd, from, &self.fd, to, AtFlags::empty()).map_err(|e| {
            let err = if e == Errno::EEXIST {
                refusal(
                    io::ErrorKind::AlreadyExists,
                    "already exists; nodeboot creates this name itself and will not replace \
                     what it did not create (remove it)",
                )
            } else {
                io::Error::from(e)
            };
            RootError::new(self.child(to), err)
        })
    }

    /// Makes `name` a symbolic link to `target` (the name must not exist).
    pub fn symlink(&self, target: &Path, name: &OsStr) -> Result<()> {
        nix::unistd::symlinkat(target, &self.fd, name)
            .map_err(|e| RootError::errno(self.child(name), e))
    }

    /// The target of the link `name`, `None` when absent or not a link.
    pub fn read_link(&self, name: &OsStr) -> Result<Option<PathBuf>> {
        match nix::fcntl::readlinkat(&self.fd, name) {
            Ok(t) => Ok(Some(PathBuf::from(t))),
            Err(Errno::ENOENT | Errno::EINVAL) => Ok(None),
            Err(e) => Err(RootError::errno(self.child(name), e)),
        }
    }

    /// Removes the entry `name` (a link itself, never its target); absent is fine.
    pub fn unlink(&self, name: &OsStr) -> Result<()> {
        match nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(RootError::errno(self.child(name), e)),
        }
    }

    /// Removes the subdirectory `name` when it is empty.
    pub fn rmdir(&self, name: &OsStr) -> Result<()> {
        nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::RemoveDir)
            .map_err(|e| RootError::errno(self.child(name), e))
    }

    /// fsync of the directory (its entries are durable).
    pub fn sync(&self) -> Result<()> {
        nix::unistd::fsync(&self.fd).map_err(|e| RootError::errno(self.host.clone(), e))
    }

    /// syncfs(2) of the file system holding the directory.
    pub fn syncfs(&self) -> Result<()> {
        nix::unistd::syncfs(&self.fd).map_err(|e| RootError::errno(self.host.clone(), e))
    }

    /// `fstat` of the directory itself.
    pub fn fstat(&self) -> Result<FileStat> {
        nix::sys::stat::fstat(&self.fd).map_err(|e| RootError::errno(self.host.clone(), e))
    }
}

/// Reads the regular file at `path` under the root at `root` in one call (opens the root,
/// resolves without links, checks the type): for the few reads outside an apply (the wizard's
/// DHCP lease, resolv.conf, shadow, the node identity). `None` when absent.
pub fn read_under(root: &Path, path: &Path) -> Result<Option<Vec<u8>>> {
    Ok(Root::open(root)?.read(path)?.map(|f| f.content))
}

/// [`read_under`] as text (UTF-8, lossy), `None` when absent or refused (the refusal is
/// logged): for reads that only offer defaults.
pub fn read_text_or_none(root: &Path, path: &Path) -> Option<String> {
    match read_under(root, path) {
        Ok(found) => found.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "not read");
            None
        }
    }
}

/// The temporary name [`Dir::write_replace`] writes `name` under first: `.NAME.tmp`.
pub fn temporary_name(name: &OsStr) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp");
    tmp
}

/// A name as an `OsStr` (for the `*at` calls), from a string.
pub fn name(s: &str) -> &OsStr {
    OsStr::from_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(f: impl Fn(Resolver)) {
        for r in [Resolver::Openat2, Resolver::Walk] {
            with_resolver(r, || f(r));
        }
    }

    #[test]
    fn the_kernel_here_has_openat2() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Root::open(t.path()).unwrap().resolver(), Resolver::Openat2);
    }

    #[test]
    fn links_on_the_way_are_refused_and_named() {
        both(|r| {
            let t = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(t.path().join("etc")).unwrap();
            symlink(outside.path(), t.path().join("etc/chrony")).unwrap();
            std::fs::write(outside.path().join("chrony.conf"), "x").unwrap();
            let root = Root::open(t.path()).unwrap();
            assert_eq!(root.resolver(), r);
            let e = root.read(Path::new("/etc/chrony/chrony.conf")).unwrap_err();
            assert_eq!(e.path, t.path().join("etc/chrony"), "{r:?}");
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
            // An absolute link, a relative one, a dangling one: all refused the same way.
            symlink("../../", t.path().join("etc/up")).unwrap();
            symlink("/nonexistent", t.path().join("etc/gone")).unwrap();
            for p in ["/etc/up/x", "/etc/gone/x"] {
                let e = root.dir(Path::new(p).parent().unwrap()).unwrap_err();
                assert!(e.to_string().contains("is a symbolic link"), "{r:?} {e}");
            }
        });
    }

    #[test]
    fn dot_dot_is_refused_before_any_call() {
        both(|_| {
            let t = tempfile::tempdir().unwrap();
            let root = Root::open(t.path()).unwrap();
            let e = root.read(Path::new("/etc/../../x")).unwrap_err();
            assert!(e.to_string().contains("`..`"), "{e}");
        });
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let t = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&t.path().join("f"), Mode::from_bits_truncate(0o600)).unwrap();
        let root = Root::open(t.path()).unwrap();
        let e = root.read(Path::new("f")).unwrap_err();
        assert!(
            e.to_string().contains("is a FIFO, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn create_new_never_opens_what_is_there() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path().join("new"), t.path().join("dangling")).unwrap();
        let root = Root::open(t.path()).unwrap();
        let e = root
            .top()
            .unwrap()
            .create_new(name("dangling"), None)
            .unwrap_err();
        assert!(
            e.to_string().contains("already exists (a symbolic link)"),
            "{e}"
        );
        assert!(!outside.path().join("new").exists());
    }

    #[test]
    fn a_missing_directory_is_not_found() {
        both(|_| {
            let t = tempfile::tempdir().unwrap();
            let root = Root::open(t.path()).unwrap();
            assert!(root.read(Path::new("/no/such/file")).unwrap().is_none());
            assert!(root.dir(Path::new("/no/such")).unwrap_err().is_not_found());
        });
    }
}
