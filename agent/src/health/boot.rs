//! The first boot with a new configuration (`nodeboot-check`, before the gettys and the agent):
//! run the checks, write where they stand for `serve` and the banner, and give a verdict —
//! healthy or unhealthy (the node stays configured) — or, when a check the policy rolls back
//! for keeps failing for the whole grace period, return the node to its generic state and
//! reboot into it. It does not serve anything (`nodeboot-agent serve` reads the status file).
//!
//! The apply that committed the configuration left `/var/lib/nodeboot/check-pending.json`
//! (see [`crate::apply::state::CHECK_PENDING`]); without it there is nothing to check. The
//! verdict and the rollback remove it, so a node never checks (or rolls back) twice.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use nodeboot_config::api::{
    HEALTH_RECORD_PATH, HEALTH_STATUS_PATH, HealthPhase, HealthReport, HealthStatus, RollbackOn,
    RolledBack,
};
use nodeboot_config::text::printable_line;
use tokio::time::{Instant, sleep};

use super::plan::plan_checks;
use super::probe::Probe;
use super::run::{Policy, report};
use crate::apply::Reboot;
use crate::apply::state::{APPLIED_XML, CHECK_PENDING, CheckPending};
use crate::rootfs::Root;

/// The largest marker read (it holds a digest and a time).
const MAX_MARKER: usize = 4096;
/// The largest status written: the lists of what was tried go first, then the checks.
pub const MAX_STATUS: usize = 64 * 1024;
/// The most rounds of checks one boot runs, whatever the grace and the pause.
pub const MAX_ROUNDS: u32 = 1000;

/// What `nodeboot-check` is asked to do; the configuration's `<health>` values override
/// `rollback`, `grace` and `report_secs`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The node's root.
    pub root: PathBuf,
    /// How long a blocking failure may last before the rollback.
    pub grace: Duration,
    /// Which failed checks roll the node back.
    pub rollback: RollbackOn,
    /// Seconds the status is served read-only after the reboot (`window_ends_unix`).
    pub report_secs: u64,
    /// Each check's deadline, attempt and pause.
    pub policy: Policy,
    /// The pause between two rounds of checks.
    pub round_pause: Duration,
    /// How to reboot after a rollback.
    pub reboot: Arc<dyn Reboot>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An interrupted transaction was finished or undone at start: a reboot was requested
    /// and nothing was checked.
    Recovered(String),
    /// No marker: no configuration waits for its checks.
    NothingToCheck,
    /// A marker that names no configuration in place (removed).
    Stale,
    /// Every check passed.
    Healthy,
    /// A check failed that the policy does not roll back for: the node stays configured.
    Unhealthy,
    /// The grace period ended with a blocking failure: the generic state is back and a
    /// reboot was requested.
    RolledBack(RolledBack),
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Writes `content` at `path` under the root, atomically, mode 0644, no link followed.
fn write_file(root: &Root, path: &str, content: &[u8]) -> anyhow::Result<()> {
    let path = Path::new(path);
    let (parent, file) = match (path.parent(), path.file_name()) {
        (Some(p), Some(f)) => (p, f),
        _ => anyhow::bail!("{}: not a file path", path.display()),
    };
    let dir = root
        .create_dir_all(parent, 0o755)
        .with_context(|| format!("creating {}", root.host_path(parent).display()))?;
    dir.write_replace(file, content, 0o644, None, true)
        .with_context(|| format!("writing {}", root.host_path(path).display()))
}

/// `status` as JSON within [`MAX_STATUS`].
pub fn status_json(status: &HealthStatus) -> Vec<u8> {
    let mut status = status.clone();
    let encode = |s: &HealthStatus| serde_json::to_vec_pretty(s).unwrap_or_default();
    let mut json = encode(&status);
    if json.len() > MAX_STATUS {
        status
            .report
            .checks
            .iter_mut()
            .for_each(|c| c.tried.clear());
        json = encode(&status);
    }
    while json.len() > MAX_STATUS && status.report.checks.pop().is_some() {
        json = encode(&status);
    }
    json.push(b'\n');
    json
}

fn remove_marker(root: &Root) -> anyhow::Result<()> {
    match root.remove_file(Path::new(CHECK_PENDING)) {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(anyhow::Error::msg(e.to_string())).with_context(|| {
            format!(
                "removing {}",
                root.host_path(Path::new(CHECK_PENDING)).display()
            )
        }),
    }
}

/// A reason whose "within N s" is the grace period: the failure lasted that long.
pub fn reason_over(reason: &str, grace: Duration) -> String {
    let reason = printable_line(reason);
    let Some(at) = reason.rfind(" within ") else {
        return reason;
    };
    let rest = &reason[at + " within ".len()..];
    let tail = rest.find(" (").map_or("", |i| &rest[i..]);
    format!("{} within {} s{tail}", &reason[..at], grace.as_secs())
}

/// What the marker says.
enum Marked {
    /// No marker.
    Absent,
    /// A marker that names no configuration in place, or is damaged: removed.
    Stale,
    /// The configuration in place, the one the marker names.
    Document(Box<nodeboot_config::Document>),
}

/// The configuration in place, when it is the one the marker names.
fn marked_document(root: &Root, out: &mut dyn Write) -> anyhow::Result<Marked> {
    let marker = match crate::source::read_bounded(root, Path::new(CHECK_PENDING), MAX_MARKER) {
        Ok(Some(bytes)) => serde_json::from_slice::<CheckPending>(&bytes)
            .ok()
            .filter(|m| is_digest(&m.digest)),
        Ok(None) => return Ok(Marked::Absent),
        Err(e) => {
            writeln!(out, "unusable check marker: {}", printable_line(&e))?;
            None
        }
    };
    let Some(marker) = marker else {
        writeln!(
            out,
            "the check marker is damaged; removing it, nothing to check"
        )?;
        remove_marker(root)?;
        return Ok(Marked::Stale);
    };
    let doc =
        crate::source::read_bounded(root, Path::new(APPLIED_XML), nodeboot_config::MAX_FILE_SIZE)
            .ok()
            .flatten()
            // Validated as of the apply: a certificate that expired since does not hide it.
            .and_then(|xml| {
                let applied = UNIX_EPOCH + Duration::from_secs(marker.applied_at_unix);
                nodeboot_config::parse_at(&xml, applied).ok()
            });
    match doc {
        Some(doc) if doc.digest() == marker.digest => Ok(Marked::Document(Box::new(doc))),
        _ => {
            writeln!(
                out,
                "the check marker names sha256 {} but that configuration is not in place; removing it, nothing to check",
                marker.digest
            )?;
            remove_marker(root)?;
            Ok(Marked::Stale)
        }
    }
}

/// One journal line per check, then the summary.
fn print_round(out: &mut dyn Write, round: u32, status: &HealthStatus) -> std::io::Result<()> {
    for c in &status.report.checks {
        writeln!(
            out,
            "{} {} {}: {} ({} ms, {} attempt{})",
            if c.passed { "pass" } else { "FAIL" },
            c.kind,
            printable_line(&c.subject),
            printable_line(&c.reason),
            c.elapsed_ms,
            c.attempts,
            if c.attempts == 1 { "" } else { "s" }
        )?;
    }
    writeln!(
        out,
        "round {round} ({} ms): {}",
        status.report.elapsed_ms,
        status.summary()
    )?;
    out.flush()
}

/// Runs the checks of the first boot with a configuration (see the module). `ready` is called
/// once, after the first round's status is written (or at once when there is nothing to
/// check): the gettys and the agent wait for it. Lines for the journal and the console go to
/// `out`.
pub async fn run<P: Probe>(
    opts: &Options,
    probe: &P,
    out: &mut dyn Write,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<Verdict> {
    // A transaction cut by a power loss (the marker may be in place before its commit): this
    // boot read files from the middle of it. Finish or undo it and reboot into the result;
    // the checks are for a boot that read a whole configuration.
    if let Some(digest) = crate::apply::recover_at_boot(&opts.root)? {
        writeln!(
            out,
            "recovered an interrupted apply (sha256 {digest}); rebooting into the result"
        )?;
        // Not ready: the consoles of this boot would show its mixed files. (If the reboot
        // fails, the caller says ready before it exits.)
        crate::apply::reboot::after(Duration::ZERO, opts.reboot.as_ref())?;
        return Ok(Verdict::Recovered(digest));
    }
    let root = Root::open(&opts.root).map_err(anyhow::Error::msg)?;
    let doc = match marked_document(&root, out)? {
        Marked::Document(doc) => doc,
        Marked::Absent => {
            writeln!(out, "nothing to check")?;
            ready();
            return Ok(Verdict::NothingToCheck);
        }
        Marked::Stale => {
            ready();
            return Ok(Verdict::Stale);
        }
    };
    let health = &doc.config().health;
    let rollback_on = health.rollback.unwrap_or(opts.rollback);
    let grace = health
        .grace_secs
        .map_or(opts.grace, |s| Duration::from_secs(u64::from(s)));
    let report_secs = health.report_secs.map_or(opts.report_secs, u64::from);
    let started_unix = now_unix();
    let mut status = HealthStatus {
        digest: doc.digest().to_owned(),
        phase: HealthPhase::Checking,
        rollback_on,
        grace_secs: grace.as_secs(),
        started_unix,
        window_ends_unix: started_unix.saturating_add(report_secs),
        report: HealthReport::new(Vec::new(), 0),
    };
    write_file(&root, HEALTH_STATUS_PATH, &status_json(&status))?;
    let checks = plan_checks(doc.config());
    writeln!(
        out,
        "checking sha256 {}: {} checks, rollback on {rollback_on}, grace {} s",
        status.digest,
        checks.len(),
        grace.as_secs()
    )?;
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        round += 1;
        let remaining = grace.saturating_sub(start.elapsed());
        let policy = Policy {
            deadline: opts
                .policy
                .deadline
                .min(remaining)
                .max(Duration::from_secs(1)),
            ..opts.policy
        };
        status.report = report(&checks, probe, &policy).await;
        let blocking = status.blocking_failure().is_some();
        status.phase = match (blocking, status.report.healthy) {
            (true, _) => HealthPhase::Checking,
            (false, true) => HealthPhase::Healthy,
            (false, false) => HealthPhase::Unhealthy,
        };
        write_file(&root, HEALTH_STATUS_PATH, &status_json(&status))?;
        print_round(out, round, &status)?;
        if round == 1 {
            ready();
        }
        if !blocking {
            write_file(&root, HEALTH_RECORD_PATH, &status_json(&status))?;
            remove_marker(&root)?;
            return Ok(match status.phase {
                HealthPhase::Healthy => Verdict::Healthy,
                _ => Verdict::Unhealthy,
            });
        }
        let remaining = grace.saturating_sub(start.elapsed());
        if remaining.is_zero() || round >= MAX_ROUNDS {
            break;
        }
        sleep(opts.round_pause.min(remaining)).await;
    }
    status.phase = HealthPhase::RollingBack;
    write_file(&root, HEALTH_STATUS_PATH, &status_json(&status))?;
    let reason = status.blocking_failure().map_or_else(
        || "a check failed".to_owned(),
        |c| reason_over(&c.reason, grace),
    );
    let record = RolledBack {
        digest: status.digest.clone(),
        reason,
        at_unix: now_unix(),
        checks: status.report.checks.clone(),
    };
    writeln!(out, "{}; restoring the generic state", record.summary())?;
    out.flush()?;
    crate::apply::rollback(&opts.root, &record).context("rolling back")?;
    writeln!(out, "generic state restored; rebooting")?;
    out.flush()?;
    opts.reboot
        .reboot()
        .context("rebooting after the rollback")?;
    Ok(Verdict::RolledBack(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_of_a_rollback_says_how_long_the_failure_lasted() {
        let g = Duration::from_secs(120);
        assert_eq!(
            reason_over("gateway 10.0.2.1 did not answer ARP on eth0 within 20 s", g),
            "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s"
        );
        assert_eq!(
            reason_over(
                "DNS server 10.0.0.53 did not answer conf01.example within 1.5 s (connection refused)",
                g
            ),
            "DNS server 10.0.0.53 did not answer conf01.example within 120 s (connection refused)"
        );
        assert_eq!(
            reason_over("eth0 has 10.0.0.9/24 too", g),
            "eth0 has 10.0.0.9/24 too"
        );
        assert_eq!(
            reason_over("a\u{1b}[2Jb within 3 s", g),
            "a[2Jb within 120 s"
        );
    }

    #[test]
    fn digests_are_64_lowercase_hex_digits() {
        assert!(is_digest(&"ab".repeat(32)));
        assert!(!is_digest(&"AB".repeat(32)));
        assert!(!is_digest("ab"));
        assert!(!is_digest(&format!("{}/..", "a".repeat(60))));
    }
}
