//! What a client is told when an apply fails, apart from what is logged (dropshot's external
//! and internal messages). The detail of a failed apply names host paths and system errors:
//! it goes to the journal only. Clients (the status, the page) get a short, stable sentence
//! that names the class of failure and where to read the rest. Pure; no I/O, no logging.

/// The kind of failure a client may know about. Derived from the logged detail, never
/// carrying any of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// No space left (ENOSPC, EDQUOT).
    DiskFull,
    /// A read-only file system (EROFS).
    ReadOnly,
    /// The system refused an operation (EACCES, EPERM).
    PermissionDenied,
    /// The storage failed (EIO).
    Storage,
    /// A path under the node's root is a link, a FIFO or another non-regular file, a
    /// directory on the way is not a directory (ELOOP, ENOTDIR, EISDIR), or a user's directory
    /// is not owned by that user (the agent's own refusals of such paths).
    UnexpectedFile,
    /// The node image lacks something the configuration needs (an `admin` account, …).
    Image,
    /// Anything else.
    Other,
}

impl FailureClass {
    /// Sorts the logged detail of a failed apply into a class. `std::io::Error` shows system
    /// errors as `… (os error N)`: the number decides; the agent's own refusals are known by
    /// their fixed wording.
    pub fn of(detail: &str) -> Self {
        use nix::errno::Errno;
        if let Some(code) = os_error(detail) {
            return match Errno::from_raw(code) {
                Errno::ENOSPC | Errno::EDQUOT => FailureClass::DiskFull,
                Errno::EROFS => FailureClass::ReadOnly,
                Errno::EACCES | Errno::EPERM => FailureClass::PermissionDenied,
                Errno::EIO => FailureClass::Storage,
                Errno::ELOOP | Errno::ENOTDIR | Errno::EISDIR | Errno::ENXIO => {
                    FailureClass::UnexpectedFile
                }
                _ => FailureClass::Other,
            };
        }
        if detail.contains("is a symbolic link")
            || detail.contains("not a regular file")
            || detail.contains("is owned by uid")
        {
            FailureClass::UnexpectedFile
        } else if detail.starts_with("the node image is not ready") {
            FailureClass::Image
        } else {
            FailureClass::Other
        }
    }

    /// The class in a few words, for a client.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::DiskFull => "the disk is full",
            FailureClass::ReadOnly => "the file system is read-only",
            FailureClass::PermissionDenied => "the system refused a file operation",
            FailureClass::Storage => "the storage reported an input/output error",
            FailureClass::UnexpectedFile => {
                "a path under the node's root is a link, not a regular file, or not owned as it must be"
            }
            FailureClass::Image => "the node image lacks something the configuration needs",
            FailureClass::Other => "an unexpected error",
        }
    }
}

/// The last `(os error N)` in `detail`, if any.
fn os_error(detail: &str) -> Option<i32> {
    let start = detail.rfind("(os error ")? + "(os error ".len();
    let rest = &detail[start..];
    rest[..rest.find(')')?].parse().ok()
}

/// The sentence a client sees for a failed apply whose logged detail is `detail`.
pub fn client_message(detail: &str) -> String {
    format!(
        "the configuration could not be applied: {}; the node keeps its previous \
         configuration; see `journalctl -u nodeboot-agent`",
        FailureClass::of(detail).as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_from_the_errno_or_the_agents_own_wording() {
        for (detail, class) in [
            (
                "/tmp/x/root/etc/.hostname.nodeboot: No space left on device (os error 28)",
                FailureClass::DiskFull,
            ),
            (
                "/r/etc: Read-only file system (os error 30)",
                FailureClass::ReadOnly,
            ),
            (
                "/r/etc: Permission denied (os error 13)",
                FailureClass::PermissionDenied,
            ),
            (
                "/r/etc: Operation not permitted (os error 1)",
                FailureClass::PermissionDenied,
            ),
            (
                "/r/etc: Input/output error (os error 5)",
                FailureClass::Storage,
            ),
            (
                "/r/etc/hostname: Too many levels of symbolic links (os error 40)",
                FailureClass::UnexpectedFile,
            ),
            (
                "/r/etc/hostname: is a FIFO, not a regular file; nodeboot reads …",
                FailureClass::UnexpectedFile,
            ),
            (
                "/r/home/admin: is owned by uid 0, but the files written into it belong to uid 1000 …",
                FailureClass::UnexpectedFile,
            ),
            (
                "/r/etc: is a symbolic link; nodeboot never follows links",
                FailureClass::UnexpectedFile,
            ),
            (
                "the node image is not ready: /etc/passwd: no account named admin",
                FailureClass::Image,
            ),
            ("/r: Bad file descriptor (os error 9)", FailureClass::Other),
            ("apply task: task 7 panicked", FailureClass::Other),
            ("(os error x)", FailureClass::Other),
            ("", FailureClass::Other),
        ] {
            assert_eq!(FailureClass::of(detail), class, "{detail}");
        }
    }

    #[test]
    fn the_client_message_carries_no_detail() {
        let detail = "/tmp/.tmpAbC/root/etc/hostname: No space left on device (os error 28)";
        let m = client_message(detail);
        assert_eq!(
            m,
            "the configuration could not be applied: the disk is full; the node keeps its \
             previous configuration; see `journalctl -u nodeboot-agent`"
        );
        assert!(!m.contains("/tmp") && !m.contains("os error"));
    }
}
