//! Files that hold secrets on the operator's machine: bootstrap token files, the bootstrap
//! secrets file, and transcripts.
//!
//! Each is opened without following a symbolic link at its last component (`O_NOFOLLOW`),
//! checked on the open descriptor (`fstat`: a regular file, mode 0600 or stricter — no group
//! or other bits), and only then read or written; a transcript is created 0600, and an
//! existing one with a wider mode is refused before it is truncated. An error names the file,
//! what is wrong and the command that fixes it, and changes nothing. This module does not
//! check who owns the file (a 0600 file of another user cannot be read by us anyway, except
//! as root).

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};

/// The largest secret file read (a token or two passwords are a few dozen bytes).
const MAX_SIZE: u64 = 64 * 1024;

/// Why a file with `mode` (its permission bits) may not hold secrets, if it may not.
pub fn mode_problem(mode: u32) -> Option<String> {
    let mode = mode & 0o7777;
    (mode & 0o077 != 0).then(|| {
        format!("has mode {mode:04o}: its group or other users may access it (a file with secrets must be 0600 or stricter)")
    })
}

fn open_error(e: std::io::Error, what: &str, path: &Path) -> anyhow::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        anyhow::anyhow!(
            "{what} {} is a symbolic link: refused (a file with secrets is not opened through a link; help: give the path of the file itself)",
            path.display()
        )
    } else {
        anyhow::Error::new(e).context(format!("opening the {what} {}", path.display()))
    }
}

/// Checks an open file: a regular file with no group or other access.
fn check(file: &File, what: &str, path: &Path) -> anyhow::Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("reading the mode of the {what} {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!(
            "{what} {} is not a regular file: refused (help: give a regular file of mode 0600)",
            path.display()
        );
    }
    if let Some(problem) = mode_problem(meta.mode()) {
        bail!(
            "{what} {} {problem} (help: chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Reads a file with secrets (`what`: "token file", "secrets file") as text, after the
/// checks above.
pub fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    // O_NONBLOCK: a FIFO put in the file's place must not hang the open; fstat refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(e, what, path))?;
    check(&file, what, path)?;
    let mut text = String::new();
    file.take(MAX_SIZE)
        .read_to_string(&mut text)
        .with_context(|| {
            format!(
                "reading the {what} {} (UTF-8 text expected)",
                path.display()
            )
        })?;
    Ok(text)
}

/// Creates (mode 0600) or reopens a file secrets may pass through (`what`: "transcript"),
/// empty. An existing file is refused, untouched, when it is a link, not a regular file, or
/// open to group or others.
pub fn create(path: &Path, what: &str) -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(e, what, path))?;
    check(&file, what, path)?;
    file.set_len(0)
        .with_context(|| format!("emptying the {what} {}", path.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn only_owner_modes_pass() {
        for ok in [0o600, 0o400, 0o700, 0o100600] {
            assert_eq!(mode_problem(ok), None, "{ok:o}");
        }
        for bad in [0o640, 0o604, 0o644, 0o660, 0o601, 0o610] {
            assert!(mode_problem(bad).is_some(), "{bad:o}");
        }
        assert_eq!(
            mode_problem(0o100644).unwrap(),
            "has mode 0644: its group or other users may access it (a file with secrets must be 0600 or stricter)"
        );
    }

    #[test]
    fn a_wide_secret_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "s3cret\n").unwrap();
        chmod(&path, 0o644);
        let err = read(&path, "token file").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "token file {p} has mode 0644: its group or other users may access it (a file with secrets must be 0600 or stricter) (help: chmod 600 {p})",
                p = path.display()
            )
        );
        assert!(!err.contains("s3cret"));
        chmod(&path, 0o600);
        assert_eq!(read(&path, "token file").unwrap(), "s3cret\n");
    }

    #[test]
    fn links_fifos_and_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "x").unwrap();
        chmod(&real, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = read(&link, "secrets file").unwrap_err().to_string();
        assert!(err.contains("is a symbolic link: refused"), "{err}");
        let err = create(&link, "transcript").unwrap_err().to_string();
        assert!(err.contains("is a symbolic link: refused"), "{err}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "x");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read(&fifo, "token file").unwrap_err().to_string();
        assert!(err.contains("is not a regular file"), "{err}");
        let err = read(dir.path(), "token file").unwrap_err().to_string();
        assert!(err.contains("is not a regular file"), "{err}");
    }

    #[test]
    fn a_transcript_is_created_0600_and_a_wide_one_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        drop(create(&path, "transcript").unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        std::fs::write(&path, "old").unwrap();
        chmod(&path, 0o644);
        let err = create(&path, "transcript").unwrap_err().to_string();
        assert!(err.contains("has mode 0644"), "{err}");
        assert!(err.contains("(help: chmod 600 "), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        chmod(&path, 0o600);
        drop(create(&path, "transcript").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
