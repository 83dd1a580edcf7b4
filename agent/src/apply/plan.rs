//! The plan: the files an apply writes or removes and the directories it needs, as plain data.
//!
//! `render` builds a plan from a configuration without touching the disk; `transaction` carries
//! it out. Paths are absolute *inside* the node's root (`/etc/hosts`), never host paths. A
//! plan's `Debug` form never shows file contents (some are secret).

use std::fmt;
use std::path::{Path, PathBuf};

/// Numeric owner of a file, resolved from the root's own `/etc/passwd` (never the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Owner {
    /// root:root.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

/// How a file's contents may be shown in a dry-run diff.
#[derive(Clone, PartialEq, Eq)]
pub enum Mask {
    /// Not secret: shown as is.
    None,
    /// Entirely secret (a private key, the applied XML): only its size is shown.
    Whole,
    /// `/etc/shadow`-style: the second `:`-separated field of every line is replaced by `***`.
    ShadowHashes,
    /// These exact strings are replaced by `***` wherever they occur.
    Values(Vec<String>),
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mask::None => f.write_str("None"),
            Mask::Whole => f.write_str("Whole"),
            Mask::ShadowHashes => f.write_str("ShadowHashes"),
            Mask::Values(v) => write!(f, "Values({} secrets)", v.len()),
        }
    }
}

/// A complete file to put in place.
#[derive(Clone, PartialEq, Eq)]
pub struct FileContent {
    /// The bytes.
    pub content: Vec<u8>,
    /// Permission bits, e.g. `0o600`.
    pub mode: u32,
    /// Owner and group.
    pub owner: Owner,
    /// What must not be shown.
    pub mask: Mask,
}

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileContent")
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("owner", &self.owner)
            .field("mask", &self.mask)
            .finish()
    }
}

/// What happens to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Replace (or create) the file with this content, mode and owner.
    Write(FileContent),
    /// Remove the file if it exists (e.g. the eth1 unit when eth1 is no longer configured).
    Remove,
    /// Make the path a symbolic link to this target (used by reset to restore an image's
    /// original `/etc/resolv.conf` link).
    Symlink(PathBuf),
}

/// One path and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path inside the root, e.g. `/etc/hosts`.
    pub path: PathBuf,
    /// Write or remove.
    pub change: Change,
}

/// A directory the plan needs; created with this mode and owner when missing, left as it is
/// when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// Absolute path inside the root.
    pub path: PathBuf,
    /// Permission bits for a new directory.
    pub mode: u32,
    /// Owner of a new directory.
    pub owner: Owner,
    /// When it exists, it must be a real directory owned by `owner`'s uid, or the apply is
    /// refused: a user's own directories (`~admin`, `~admin/.ssh`), where that user could
    /// have planted anything.
    pub owned: bool,
}

/// Something to do besides files, shown in the printed plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reboot into the new configuration.
    Reboot,
}

/// Everything one apply (or reset) does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Directories to create when missing (parents are created as needed with mode 0755,
    /// root-owned, unless listed here).
    pub dirs: Vec<DirSpec>,
    /// Files, in the order they are replaced.
    pub entries: Vec<Entry>,
    /// Actions after the files are in place.
    pub actions: Vec<Action>,
    /// Targets an image may hold as a symbolic link (`/etc/resolv.conf`): such a link is
    /// replaced as a whole, never followed. A link at any other target is refused.
    pub replaceable_links: Vec<PathBuf>,
}

impl Plan {
    /// Adds a file write.
    pub fn write(
        &mut self,
        path: impl Into<PathBuf>,
        content: impl Into<Vec<u8>>,
        mode: u32,
        owner: Owner,
        mask: Mask,
    ) {
        self.entries.push(Entry {
            path: path.into(),
            change: Change::Write(FileContent {
                content: content.into(),
                mode,
                owner,
                mask,
            }),
        });
    }

    /// Adds a removal.
    pub fn remove(&mut self, path: impl Into<PathBuf>) {
        self.entries.push(Entry {
            path: path.into(),
            change: Change::Remove,
        });
    }

    /// The entry for a path, if the plan has one.
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// The content the plan writes to a path, if it writes one.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        match self.entry(Path::new(path)).map(|e| &e.change) {
            Some(Change::Write(f)) => Some(&f.content),
            _ => None,
        }
    }
}

/// The host path of `path` (absolute inside the root) under `root`: for messages only; files
/// are opened through [`crate::rootfs`].
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Applies a mask to text for display: the text with every secret replaced by `***`, or
/// `None` when the whole file is secret.
pub fn masked_text(mask: &Mask, text: &str) -> Option<String> {
    match mask {
        Mask::None => Some(text.to_owned()),
        Mask::Whole => None,
        Mask::ShadowHashes => Some(
            text.split_inclusive('\n')
                .map(|line| {
                    let mut fields: Vec<&str> = line.splitn(3, ':').collect();
                    if fields.len() == 3 && !fields[1].is_empty() {
                        fields[1] = "***";
                    }
                    fields.join(":")
                })
                .collect(),
        ),
        Mask::Values(secrets) => {
            let mut out = text.to_owned();
            for s in secrets.iter().filter(|s| !s.is_empty()) {
                out = out.replace(s.as_str(), "***");
            }
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_secrets() {
        let shadow = "root:*:19000:0:99999:7:::\nadmin:$6$salt$hash:19000::::::\n";
        assert_eq!(
            masked_text(&Mask::ShadowHashes, shadow).unwrap(),
            "root:***:19000:0:99999:7:::\nadmin:***:19000::::::\n"
        );
        assert_eq!(masked_text(&Mask::Whole, "key"), None);
        assert_eq!(
            masked_text(&Mask::Values(vec!["s3cret".into()]), "a s3cret b").unwrap(),
            "a *** b"
        );
        let f = FileContent {
            content: b"s3cret".to_vec(),
            mode: 0o600,
            owner: Owner::ROOT,
            mask: Mask::Values(vec!["s3cret".into()]),
        };
        assert!(!format!("{f:?}").contains("s3cret"));
    }

    #[test]
    fn under_joins_inside_the_root() {
        assert_eq!(
            under(Path::new("/tmp/r"), Path::new("/etc/hosts")),
            PathBuf::from("/tmp/r/etc/hosts")
        );
    }
}
