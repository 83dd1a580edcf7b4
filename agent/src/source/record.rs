//! What `acquire` leaves for `serve` under the node's root, in `/run/nodeboot` (a tmpfs: gone
//! at the next boot, when the chain runs again): the fail-closed [`SourceReport`]
//! (`source.json`) and a bootstrap token a source supplied (`token`, mode 0600). Written and
//! read through [`crate::rootfs`], bounded.

use std::path::Path;

use nodeboot_config::Secret;
use nodeboot_config::api::{SOURCE_REPORT_PATH, SourceReport};

use crate::rootfs::{Root, name};

/// The token file `serve` reads when it has no `--token-file`.
pub const TOKEN_PATH: &str = "run/nodeboot/token";
const DIR: &str = "run/nodeboot";
/// The largest report read back (it is written bounded, well under this).
const MAX_REPORT: usize = 64 * 1024;

/// Removes what an earlier run left (a root that is not a tmpfs, a test root).
pub fn clear(root: &Root) -> Result<(), String> {
    for path in [SOURCE_REPORT_PATH, TOKEN_PATH] {
        match root.remove_file(Path::new(path)) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Writes the report (mode 0644: it names no secret).
pub fn write_report(root: &Root, report: &SourceReport) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    write(root, "source.json", &json, 0o644)
}

/// Writes the token (mode 0600, root's).
pub fn write_token(root: &Root, token: &Secret<String>) -> Result<(), String> {
    write(
        root,
        "token",
        format!("{}\n", token.expose()).as_bytes(),
        0o600,
    )
}

fn write(root: &Root, file: &str, content: &[u8], mode: u32) -> Result<(), String> {
    let dir = root
        .create_dir_all(Path::new(DIR), 0o755)
        .map_err(|e| e.to_string())?;
    dir.write_replace(name(file), content, mode, None, true)
        .map_err(|e| e.to_string())
}

/// The report `acquire` left, if any. A report that cannot be read is logged and ignored
/// (the node still serves 8443).
pub fn read_report(root: &Path) -> Option<SourceReport> {
    let root = Root::open(root).ok()?;
    match super::read_bounded(&root, Path::new(SOURCE_REPORT_PATH), MAX_REPORT) {
        Ok(Some(bytes)) => match serde_json::from_slice::<SourceReport>(&bytes) {
            Ok(r) => Some(clean(r)),
            Err(e) => {
                tracing::warn!(error = %e, "reading {SOURCE_REPORT_PATH}");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "reading {SOURCE_REPORT_PATH}");
            None
        }
    }
}

/// Bounds and cleans a report read back (whoever wrote the file).
fn clean(mut r: SourceReport) -> SourceReport {
    use nodeboot_config::api::SourceOutcome;
    r.origin = super::clean(&r.origin);
    r.outcome = match r.outcome {
        SourceOutcome::Invalid { findings } => SourceOutcome::Invalid {
            findings: crate::server::status::bounded_diagnostics(
                &findings,
                super::MAX_FINDINGS,
                super::MAX_FINDINGS_TEXT,
                super::MAX_CHARS,
            ),
        },
        SourceOutcome::Unreadable { message } => SourceOutcome::Unreadable {
            message: super::clean(&message),
        },
        SourceOutcome::RolledBack {
            digest,
            reason,
            at_unix,
        } => SourceOutcome::RolledBack {
            digest: super::clean(&digest),
            reason: super::clean(&reason),
            at_unix,
        },
    };
    r
}

/// Whether a recorded token exists under `root` (its path, for `serve`'s token reader).
pub fn token_file(root: &Path) -> Option<std::path::PathBuf> {
    let r = Root::open(root).ok()?;
    match r.stat(Path::new(TOKEN_PATH)) {
        Ok(Some(st)) if crate::rootfs::is_regular(&st) => Some(r.host_path(Path::new(TOKEN_PATH))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeboot_config::api::SourceOutcome;

    /// Whoever wrote `source.json` (a damaged disk, a hostile image), a rolled-back report read
    /// back is one clean line of bounded length, and its date never panics.
    #[test]
    fn a_hostile_rolled_back_report_is_read_back_clean_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(SOURCE_REPORT_PATH);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let hostile = "\u{1b}[2J\u{7}gateway\r\n\u{202e}".to_owned() + &"x".repeat(10_000);
        let report = serde_json::json!({
            "origin": "/etc/nodeboot/node.xml\u{1b}]0;owned\u{7}",
            "outcome": "rolled_back",
            "digest": "\u{1b}[31mab",
            "reason": hostile,
            "at_unix": u64::MAX,
        });
        std::fs::write(&file, serde_json::to_vec(&report).unwrap()).unwrap();
        let read = read_report(dir.path()).expect("the report is read");
        let SourceOutcome::RolledBack {
            digest,
            reason,
            at_unix,
        } = &read.outcome
        else {
            panic!("not a rolled-back report: {read:?}");
        };
        for text in [&read.origin, digest, reason] {
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{text:?} keeps a control character"
            );
        }
        // The escape characters go; the printable rest of a sequence is plain text.
        assert_eq!(read.origin, "/etc/nodeboot/node.xml]0;owned");
        assert_eq!(digest, "[31mab");
        assert!(reason.starts_with("[2Jgateway xxx"), "{reason:?}");
        assert!(reason.ends_with('…'), "{reason:?}");
        assert!(reason.chars().count() <= crate::source::MAX_CHARS);
        // A time no calendar holds is the epoch, not a panic.
        let line = crate::source::rolled_back_text(*at_unix, reason);
        assert!(
            line.starts_with("rolled back on 1970-01-01 00:00:00 UTC: [2Jgateway"),
            "{line}"
        );
    }
}
