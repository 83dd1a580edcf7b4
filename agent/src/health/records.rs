//! The records of the first boot after an apply, read back: the checks' [`HealthStatus`] that
//! `nodeboot-check` keeps in `run/nodeboot/health.json` and the [`RolledBack`] record a
//! rollback leaves in `var/lib/nodeboot/rolled-back.json`. Read by `serve` (status, page,
//! banner), `nodeboot-acquire` (a rolled-back configuration is not applied again) and
//! `nodeboot-agent status`.
//!
//! Both files are read through [`crate::rootfs`] (a link anywhere on the path is refused, never
//! followed), bounded in size, parsed as the wire types and cleaned (every text printable, one
//! line, cut short; lists bounded) before anything shows them. A file that is a link, too
//! large or not the type is an error the caller logs and treats as absent. Nothing here
//! writes a file.

use std::path::Path;

use nodeboot_config::api::{
    CheckResult, HEALTH_RECORD_PATH, HEALTH_STATUS_PATH, HealthStatus, ROLLED_BACK_PATH, RolledBack,
};

use crate::rootfs::Root;

/// The most bytes of either file read; a larger file is refused (the checker writes a few KiB).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The most checks kept from a file (a node has a dozen at most).
pub const MAX_CHECKS: usize = 32;
/// The most "tried" entries kept per check.
pub const MAX_TRIED: usize = 8;
/// The most characters of one text field (reason, subject, tried entry).
pub const MAX_TEXT: usize = 240;

/// Why a record was not used (a link, too large, not the type): for the log.
pub type ReadError = String;

/// The checks of this boot, if `nodeboot-check` left them under `root`.
pub fn read_health(root: &Path) -> Result<Option<HealthStatus>, ReadError> {
    Ok(read_json::<HealthStatus>(root, HEALTH_STATUS_PATH)?.map(clean_health))
}

/// The last verdict `nodeboot-check` kept for good, if any.
pub fn read_health_record(root: &Path) -> Result<Option<HealthStatus>, ReadError> {
    Ok(read_json::<HealthStatus>(root, HEALTH_RECORD_PATH)?.map(clean_health))
}

/// The rollback record under `root`, if any.
pub fn read_rolled_back(root: &Path) -> Result<Option<RolledBack>, ReadError> {
    Ok(read_json::<RolledBack>(root, ROLLED_BACK_PATH)?.map(clean_rolled_back))
}

fn read_json<T: serde::de::DeserializeOwned>(
    root: &Path,
    path: &str,
) -> Result<Option<T>, ReadError> {
    let root = Root::open(root).map_err(|e| e.to_string())?;
    let Some(bytes) = crate::source::read_bounded(&root, Path::new(path), MAX_RECORD_BYTES)? else {
        return Ok(None);
    };
    serde_json::from_slice::<T>(&bytes)
        .map(Some)
        .map_err(|e| format!("{path}: not a record of the expected shape: {e}"))
}

/// One line of outside text, printable and cut to `chars`.
fn line(s: &str, chars: usize) -> String {
    crate::server::status::shorten(&nodeboot_config::text::printable_line(s), chars)
}

fn clean_check(mut c: CheckResult) -> CheckResult {
    c.subject = line(&c.subject, MAX_TEXT);
    c.reason = line(&c.reason, MAX_TEXT);
    c.tried.truncate(MAX_TRIED);
    for t in &mut c.tried {
        *t = line(t, MAX_TEXT);
    }
    c
}

fn clean_checks(checks: Vec<CheckResult>) -> Vec<CheckResult> {
    checks
        .into_iter()
        .take(MAX_CHECKS)
        .map(clean_check)
        .collect()
}

/// Bounds and cleans a health status read back (whoever wrote the file).
pub fn clean_health(mut h: HealthStatus) -> HealthStatus {
    h.digest = line(&h.digest, 64);
    h.report.checks = clean_checks(std::mem::take(&mut h.report.checks));
    h
}

/// Bounds and cleans a rollback record read back.
pub fn clean_rolled_back(mut r: RolledBack) -> RolledBack {
    r.digest = line(&r.digest, 64);
    r.reason = line(&r.reason, MAX_TEXT);
    r.checks = clean_checks(std::mem::take(&mut r.checks));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeboot_config::api::CheckKind;

    fn check(reason: &str) -> CheckResult {
        CheckResult {
            kind: CheckKind::Gateway,
            subject: "10.0.0.1 on eth0".into(),
            passed: false,
            attempts: 1,
            elapsed_ms: 5,
            tried: vec!["a\u{1b}[31m".into(); 20],
            reason: reason.into(),
        }
    }

    #[test]
    fn records_are_cleaned_and_bounded() {
        let r = clean_rolled_back(RolledBack {
            digest: "x".repeat(500),
            reason: format!("bad\u{7}\nline{}", "y".repeat(1000)),
            at_unix: 1,
            checks: vec![check("r\u{1b}]0;title\u{7}"); 100],
        });
        assert_eq!(r.digest.chars().count(), 64); // 63 and the ellipsis
        assert!(!r.reason.chars().any(|c| c.is_control()));
        assert!(r.reason.chars().count() <= MAX_TEXT);
        assert_eq!(r.checks.len(), MAX_CHECKS);
        assert_eq!(r.checks[0].tried.len(), MAX_TRIED);
        assert!(!r.checks[0].reason.chars().any(|c| c.is_control()));
        assert!(!r.checks[0].tried[0].chars().any(|c| c.is_control()));
    }
}
