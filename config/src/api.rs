//! The wire contract between the agent's endpoint and its clients (`nodeboot push`,
//! `nodeboot status`, the tests): the paths, the node's states, the status document, the reply
//! to an upload and the refusal every route may answer.
//!
//! One type on both sides: the agent serializes these, the provisioner deserializes the same
//! types, so a renamed field breaks the build or the contract test, not an operator's run.
//! Data only; no I/O, no HTTP.

use serde::{Deserialize, Serialize};

use crate::Diagnostic;

/// `POST` the XML (or a `multipart/form-data` form) here to configure an unconfigured node.
pub const BOOTSTRAP_PATH: &str = "/configuration/bootstrap";
/// `GET` the [`StatusReport`] here.
pub const STATUS_PATH: &str = "/api/v1/status";
/// `GET` the HTML page with the upload form here.
pub const PAGE_PATH: &str = "/";
/// The port the agent listens on by default.
pub const DEFAULT_PORT: u16 = 8443;

/// Where a node stands. Transitions: `Unconfigured` → `Applying` → `Configured` or
/// `Failed`; `Failed` → `Applying` (a new upload); `Configured` → `Unconfigured` only by
/// `nodeboot-agent reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// No configuration applied yet: uploads are accepted.
    Unconfigured,
    /// A configuration is being applied.
    Applying,
    /// A configuration has been applied: uploads are refused until `nodeboot-agent reset`.
    Configured,
    /// The last apply failed (nothing was changed): uploads are accepted again.
    Failed,
}

impl NodeState {
    /// The name on the wire and in messages (`unconfigured`, `applying`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Unconfigured => "unconfigured",
            NodeState::Applying => "applying",
            NodeState::Configured => "configured",
            NodeState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `GET /api/v1/status` document. Bounded: at most a few KiB whatever was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Where the node stands.
    pub state: NodeState,
    /// SHA-256 of the configuration in place (or being applied, or that failed).
    pub digest: Option<String>,
    /// The first validation findings of the last attempt (empty when it had none), then one
    /// entry counting the rest.
    pub errors: Vec<Diagnostic>,
    /// Why the last apply failed, if it did (a message for the client, not the logged detail).
    pub error: Option<String>,
    /// The last upload attempt since the agent started.
    pub last_attempt: Option<Attempt>,
    /// The certificate fingerprint (`SHA256:` colon-hex).
    pub fingerprint: String,
    /// The agent's version.
    pub version: String,
    /// What the boot-time configuration sources found when it was not usable (`nodeboot-acquire`);
    /// absent when no source was tried, none had a configuration, or an agent
    /// older than this field answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceReport>,
    /// The checks of the first boot after an apply (`nodeboot-check`), while that boot serves
    /// its status read-only; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Why the last configuration was rolled back, on a node that did so; absent otherwise
    /// (and once a later configuration is applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,
}

/// Where `nodeboot-acquire` writes its [`SourceReport`] under the node's root.
pub const SOURCE_REPORT_PATH: &str = "run/nodeboot/source.json";

/// What a boot-time configuration source had that could not be used: written by
/// `nodeboot-acquire` (to [`SOURCE_REPORT_PATH`]), read by `serve` for its status, page
/// and console banner. The chain failed closed: nothing was applied, no later source tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    /// Where the configuration came from, for people ("/etc/nodeboot/node.json",
    /// "NoCloud disc CIDATA (user-data)").
    pub origin: String,
    /// Why it was not used.
    #[serde(flatten)]
    pub outcome: SourceOutcome,
}

/// Why a source's configuration was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SourceOutcome {
    /// The source had a configuration and it is invalid (the findings, bounded).
    Invalid {
        /// The first findings, then one entry counting the rest.
        findings: Vec<Diagnostic>,
    },
    /// The source is there but could not be read (a link, a FIFO, too large, an I/O error,
    /// a metadata service that did not answer within its budget).
    Unreadable {
        /// What went wrong, for a person.
        message: String,
    },
    /// The source's configuration is the one the node rolled back after it cut the node off
    /// ([`RolledBack`]): applying it again would loop (apply, reboot, roll back), so it waits
    /// for a corrected one.
    RolledBack {
        /// SHA-256 of the configuration (the source's and the rollback's).
        digest: String,
        /// Why it was rolled back, one line for a person.
        reason: String,
        /// When the rollback happened (seconds since the epoch).
        at_unix: u64,
    },
}

/// One upload that got past the access checks, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it arrived (seconds since the epoch).
    pub at_unix: u64,
    /// The file's SHA-256, when a file was read.
    pub digest: Option<String>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

/// What became of an upload attempt. Transitions: `Accepted` → `Applied` or `Failed`; the
/// others are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Valid; the reply went out and the apply is running.
    Accepted {
        /// Seconds between the end of the apply and the reboot.
        reboot_delay_secs: u64,
    },
    /// Applied; the reboot follows after the delay.
    Applied {
        /// Seconds between the end of the apply and the reboot.
        reboot_delay_secs: u64,
    },
    /// The file is invalid (its findings are the status document's `errors`).
    Rejected {
        /// How many findings the file had in all.
        total: usize,
    },
    /// The apply failed; the node keeps its previous configuration.
    Failed {
        /// Why, for the client.
        message: String,
    },
    /// The request was refused before validation (size, type, busy, configured).
    Refused {
        /// The HTTP status sent.
        code: u16,
        /// Why.
        message: String,
    },
}

/// The JSON answer to `POST /configuration/bootstrap`: accepted (202), rejected (422), or
/// refused (any other code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum UploadReply {
    /// 202: valid; the node applies it, then reboots.
    Accepted(Accepted),
    /// 422: invalid; nothing was changed.
    Rejected(Rejected),
    /// Refused before validation, or by the node's state.
    Refused(Refusal),
}

/// The body of a 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// SHA-256 of the configuration accepted.
    pub digest: String,
    /// Seconds between the end of the apply and the reboot.
    pub reboot_delay_seconds: u64,
    /// Findings that do not refuse the file.
    pub warnings: Vec<Diagnostic>,
    /// One sentence for a person.
    pub message: String,
}

/// The body of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// One sentence for a person.
    pub message: String,
    /// How many findings the file had in all.
    pub total: usize,
    /// The first findings, each with its line, column and element, then one entry counting
    /// the rest.
    pub errors: Vec<Diagnostic>,
}

/// The body of every other error answer of every route (400, 401, 404, 408, 409, 413, 415,
/// 503): `{"status":"refused","code":…,"error":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The HTTP status code sent.
    pub code: u16,
    /// Why, and what to do about it, for the client.
    pub error: String,
}

impl UploadReply {
    /// A refusal with `code` and the client's message.
    pub fn refused(code: u16, error: impl Into<String>) -> Self {
        UploadReply::Refused(Refusal {
            code,
            error: error.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Severity;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &T,
        json: &str,
    ) {
        assert_eq!(serde_json::to_string(value).unwrap(), json);
        assert_eq!(&serde_json::from_str::<T>(json).unwrap(), value);
    }

    #[test]
    fn replies_have_their_documented_shape() {
        round_trip(
            &UploadReply::refused(409, "busy"),
            r#"{"status":"refused","code":409,"error":"busy"}"#,
        );
        round_trip(
            &UploadReply::Accepted(Accepted {
                digest: "ab".into(),
                reboot_delay_seconds: 5,
                warnings: vec![],
                message: "ok".into(),
            }),
            r#"{"status":"accepted","digest":"ab","reboot_delay_seconds":5,"warnings":[],"message":"ok"}"#,
        );
        round_trip(
            &UploadReply::Rejected(Rejected {
                message: "bad".into(),
                total: 1,
                errors: vec![Diagnostic {
                    severity: Severity::Error,
                    path: "/node-config".into(),
                    line: 1,
                    column: 2,
                    message: "m".into(),
                    help: None,
                }],
            }),
            r#"{"status":"rejected","message":"bad","total":1,"errors":[{"severity":"error","path":"/node-config","line":1,"column":2,"message":"m","help":null}]}"#,
        );
    }

    #[test]
    fn status_round_trips_with_a_flat_attempt() {
        round_trip(
            &StatusReport {
                state: NodeState::Failed,
                digest: Some("ab".into()),
                errors: vec![],
                error: Some("disk full".into()),
                last_attempt: Some(Attempt {
                    at_unix: 5,
                    digest: Some("ab".into()),
                    outcome: AttemptOutcome::Refused {
                        code: 413,
                        message: "too large".into(),
                    },
                }),
                fingerprint: "SHA256:00".into(),
                version: "0.1.0".into(),
                source: None,
                health: None,
                rolled_back: None,
            },
            r#"{"state":"failed","digest":"ab","errors":[],"error":"disk full","last_attempt":{"at_unix":5,"digest":"ab","outcome":"refused","code":413,"message":"too large"},"fingerprint":"SHA256:00","version":"0.1.0"}"#,
        );
    }

    #[test]
    fn source_reports_round_trip_and_old_status_reads() {
        round_trip(
            &SourceReport {
                origin: "/etc/nodeboot/node.xml".into(),
                outcome: SourceOutcome::Unreadable {
                    message: "a link".into(),
                },
            },
            r#"{"origin":"/etc/nodeboot/node.xml","outcome":"unreadable","message":"a link"}"#,
        );
        round_trip(
            &SourceReport {
                origin: "o".into(),
                outcome: SourceOutcome::Invalid { findings: vec![] },
            },
            r#"{"origin":"o","outcome":"invalid","findings":[]}"#,
        );
        round_trip(
            &SourceReport {
                origin: "o".into(),
                outcome: SourceOutcome::RolledBack {
                    digest: "ab".into(),
                    reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s".into(),
                    at_unix: 7,
                },
            },
            r#"{"origin":"o","outcome":"rolled_back","digest":"ab","reason":"gateway 10.0.2.1 did not answer ARP on eth0 within 120 s","at_unix":7}"#,
        );
        // A status from an agent without the field reads, with no source.
        let old = r#"{"state":"unconfigured","digest":null,"errors":[],"error":null,"last_attempt":null,"fingerprint":"f","version":"0.1.0"}"#;
        assert_eq!(
            serde_json::from_str::<StatusReport>(old).unwrap().source,
            None
        );
    }

    #[test]
    fn an_unknown_state_is_an_error_not_a_guess() {
        assert!(serde_json::from_str::<NodeState>(r#""applied""#).is_err());
    }
}

// ---- Checks after the reboot (issue 13): what the first boot with a new configuration found.

/// What kind of check a [`CheckResult`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An interface has exactly its configured addresses.
    Addresses,
    /// The default gateway answers ARP (IPv4) or neighbour discovery (IPv6).
    Gateway,
    /// A DNS server answers a query.
    Dns,
    /// An NTP server resolves and answers a client request.
    Ntp,
    /// The management node accepts a TCP connection.
    Management,
    /// A route is in the kernel's table.
    Route,
}

impl CheckKind {
    /// The name on the wire and in messages (`addresses`, `gateway`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Addresses => "addresses",
            CheckKind::Gateway => "gateway",
            CheckKind::Dns => "dns",
            CheckKind::Ntp => "ntp",
            CheckKind::Management => "management",
            CheckKind::Route => "route",
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one check: whether it passed, what was tried, how long it took and one line
/// for a person. Holds no secret: the checks read addresses and names only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// What kind of check.
    pub kind: CheckKind,
    /// What was checked, e.g. `eth0`, `10.0.0.1 on eth0`, `10.0.0.53`, `0.0.0.0/0 via 10.0.0.1`.
    pub subject: String,
    /// Whether the check passed.
    pub passed: bool,
    /// How many attempts were made (1 when the first one settled it).
    pub attempts: u32,
    /// Milliseconds from the check's start to its outcome.
    pub elapsed_ms: u64,
    /// What was tried or seen: addresses asked, addresses found, names resolved.
    pub tried: Vec<String>,
    /// One line for a person: "gateway 10.0.0.1 did not answer ARP on eth0 within 20 s".
    pub reason: String,
}

/// Every check of one run, in the planned order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// True when every check passed.
    pub healthy: bool,
    /// Milliseconds from the first check's start to the last one's outcome (the checks run
    /// at once, so this is the slowest check, not the sum).
    pub elapsed_ms: u64,
    /// The checks' outcomes.
    pub checks: Vec<CheckResult>,
}

impl HealthReport {
    /// A report of `checks` that took `elapsed_ms` in all: healthy when every one passed.
    pub fn new(checks: Vec<CheckResult>, elapsed_ms: u64) -> Self {
        HealthReport {
            healthy: checks.iter().all(|c| c.passed),
            elapsed_ms,
            checks,
        }
    }

    /// The checks that failed, in order.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

#[cfg(test)]
mod health_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_report_round_trips_with_its_documented_shape() {
        let report = HealthReport::new(
            vec![CheckResult {
                kind: CheckKind::Gateway,
                subject: "10.0.0.1 on eth0".into(),
                passed: false,
                attempts: 3,
                elapsed_ms: 20000,
                tried: vec!["ARP who-has 10.0.0.1".into()],
                reason: "gateway 10.0.0.1 did not answer ARP on eth0 within 20 s".into(),
            }],
            20001,
        );
        assert!(!report.healthy);
        assert_eq!(report.failures().count(), 1);
        let json = r#"{"healthy":false,"elapsed_ms":20001,"checks":[{"kind":"gateway","subject":"10.0.0.1 on eth0","passed":false,"attempts":3,"elapsed_ms":20000,"tried":["ARP who-has 10.0.0.1"],"reason":"gateway 10.0.0.1 did not answer ARP on eth0 within 20 s"}]}"#;
        assert_eq!(serde_json::to_string(&report).unwrap(), json);
        assert_eq!(serde_json::from_str::<HealthReport>(json).unwrap(), report);
        assert!(HealthReport::new(vec![], 0).healthy);
    }
}

// ---- Remote plan (issue 13): what an apply of a file would do, with nothing changed.

/// `POST` the XML (or the same form as to [`BOOTSTRAP_PATH`]) here to see what an apply would
/// do: same token, size and time limits as an upload; nothing on the node changes.
pub const PLAN_PATH: &str = "/configuration/plan";

/// The most bytes of diff text a [`PlanReply`] carries in all; the rest of a diff is replaced
/// by one line `… N more lines`.
pub const MAX_PLAN_DIFF_BYTES: usize = 64 * 1024;

/// The JSON answer (200) to `POST /configuration/plan` for a valid file. An invalid file gets
/// the [`UploadReply::Rejected`] an upload gets (422), a refusal the same [`UploadReply::Refused`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReply {
    /// SHA-256 of the configuration planned.
    pub digest: String,
    /// Every file the apply would create, change or remove (or leave as it is), in the order
    /// the apply would write them.
    pub files: Vec<PlannedFile>,
    /// Findings that do not refuse the file.
    pub warnings: Vec<Diagnostic>,
}

/// One file of a [`PlanReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// The path on the node (`/etc/hostname`).
    pub path: String,
    /// What the apply would do to it.
    pub change: FileChange,
    /// A unified diff against the file on the node, secrets masked (as `nodeboot-agent apply
    /// --dry-run` prints it), or a line saying what is not shown (a secret file's size);
    /// `None` for a file unchanged or removed.
    pub diff: Option<String>,
}

/// What an apply would do to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileChange {
    /// The file is not there yet.
    Created,
    /// The file is there with other contents.
    Changed,
    /// The file is there and would be removed.
    Removed,
    /// The file is there with these very contents.
    Unchanged,
}

impl FileChange {
    /// The name on the wire and in messages (`created`, `changed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FileChange::Created => "created",
            FileChange::Changed => "changed",
            FileChange::Removed => "removed",
            FileChange::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cuts the diffs of `files` so that their text adds up to at most `budget` bytes: a diff is
/// kept whole lines at a time, and what is left out is counted on a last line
/// `… N more lines`. Pure; the agent bounds its reply with it.
pub fn bound_diffs(files: &mut [PlannedFile], budget: usize) {
    let mut left = budget;
    for file in files.iter_mut() {
        let Some(diff) = file.diff.as_mut() else {
            continue;
        };
        if diff.len() <= left {
            left -= diff.len();
            continue;
        }
        let mut kept = 0;
        let mut lines = diff.split_inclusive('\n');
        for line in lines.by_ref() {
            if kept + line.len() > left {
                break;
            }
            kept += line.len();
        }
        let more = diff[kept..].split_inclusive('\n').count();
        diff.truncate(kept);
        diff.push_str(&format!(
            "… {more} more line{}\n",
            if more == 1 { "" } else { "s" }
        ));
        left -= kept;
    }
}

#[cfg(test)]
mod plan_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_plan_round_trips_with_its_documented_shape() {
        let reply = PlanReply {
            digest: "ab".into(),
            files: vec![PlannedFile {
                path: "/etc/hostname".into(),
                change: FileChange::Changed,
                diff: Some("-a\n+b\n".into()),
            }],
            warnings: vec![],
        };
        let json = r#"{"digest":"ab","files":[{"path":"/etc/hostname","change":"changed","diff":"-a\n+b\n"}],"warnings":[]}"#;
        assert_eq!(serde_json::to_string(&reply).unwrap(), json);
        assert_eq!(serde_json::from_str::<PlanReply>(json).unwrap(), reply);
        assert!(serde_json::from_str::<FileChange>(r#""moved""#).is_err());
    }

    #[test]
    fn diffs_are_cut_at_whole_lines_with_a_count_of_the_rest() {
        let file = |diff: &str| PlannedFile {
            path: "/f".into(),
            change: FileChange::Changed,
            diff: Some(diff.into()),
        };
        let mut files = vec![
            file("aaaa\nbbbb\n"),
            file("cccc\ndddd\neeee\n"),
            file("ffff\n"),
        ];
        bound_diffs(&mut files, 16);
        let diffs: Vec<&str> = files.iter().map(|f| f.diff.as_deref().unwrap()).collect();
        assert_eq!(
            diffs,
            ["aaaa\nbbbb\n", "cccc\n… 2 more lines\n", "… 1 more line\n"]
        );
    }
}

pub use crate::model::RollbackOn;

/// Where `nodeboot-check` keeps the [`HealthStatus`] of this boot under the node's root
/// (a runtime file: gone at the next boot). `serve` reads it for its status, page and banner.
pub const HEALTH_STATUS_PATH: &str = "run/nodeboot/health.json";
/// Where the last [`HealthStatus`] with a verdict is kept for good (for `nodeboot-agent status`).
pub const HEALTH_RECORD_PATH: &str = "var/lib/nodeboot/health.json";
/// Where a rollback leaves its [`RolledBack`] record under the node's root.
pub const ROLLED_BACK_PATH: &str = "var/lib/nodeboot/rolled-back.json";

/// Where the first boot after an apply stands with its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthPhase {
    /// Checks are running, or are retried within the grace period after a failure.
    Checking,
    /// Every check passed.
    Healthy,
    /// Some check failed and the policy does not roll back for it: the node stays configured.
    Unhealthy,
    /// The grace period ended with a check the policy rolls back for still failing: the node
    /// is restoring its generic state and will reboot into it.
    RollingBack,
}

impl HealthPhase {
    /// The name on the wire and in messages (`checking`, `healthy`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthPhase::Checking => "checking",
            HealthPhase::Healthy => "healthy",
            HealthPhase::Unhealthy => "unhealthy",
            HealthPhase::RollingBack => "rolling_back",
        }
    }
}

impl std::fmt::Display for HealthPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The checks of the first boot with a configuration, as the status document carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// SHA-256 of the configuration checked.
    pub digest: String,
    /// Where the checks stand.
    pub phase: HealthPhase,
    /// Which failed checks roll the node back.
    pub rollback_on: RollbackOn,
    /// Seconds failed checks may go on failing before the rollback.
    pub grace_secs: u64,
    /// When the checks started (seconds since the epoch).
    pub started_unix: u64,
    /// When the read-only status window ends and the agent stops for good.
    pub window_ends_unix: u64,
    /// The latest round of checks.
    pub report: HealthReport,
}

impl HealthStatus {
    /// One line for a person, the same on the banner, the page, the journal and `push --wait`:
    /// `healthy: 6 checks passed`, `unhealthy: ntp 10.0.0.9: …`, `checking: gateway …` or
    /// `rolling back: gateway …`. Outside text in it is already cleaned (the reasons are the
    /// agent's own sentences around addresses and names it validated).
    pub fn summary(&self) -> String {
        let first = self
            .blocking_failure()
            .or_else(|| self.report.failures().next());
        match (self.phase, first) {
            (HealthPhase::Healthy, _) => {
                format!("{}: {} checks passed", self.phase, self.report.checks.len())
            }
            (phase, Some(c)) => format!("{phase}: {}", c.reason),
            (phase, None) => phase.as_str().to_owned(),
        }
    }

    /// The first failed check the policy rolls back for, if any.
    pub fn blocking_failure(&self) -> Option<&CheckResult> {
        self.report.failures().find(|c| match self.rollback_on {
            RollbackOn::Gateway => c.kind == CheckKind::Gateway,
            RollbackOn::Any => true,
            RollbackOn::Never => false,
        })
    }
}

impl RolledBack {
    /// `rolled back: gateway 10.0.0.1 did not answer ARP on eth0 within 120 s`.
    pub fn summary(&self) -> String {
        format!("rolled back: {}", self.reason)
    }
}

/// A configuration the node rolled back, and why: written when the rollback restores the
/// generic state, shown by the banner, the page and the status until a configuration is
/// applied again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// SHA-256 of the configuration rolled back.
    pub digest: String,
    /// One line for a person: "gateway 10.0.0.1 did not answer ARP on eth0 within 120 s".
    pub reason: String,
    /// When the rollback happened (seconds since the epoch).
    pub at_unix: u64,
    /// The last round of checks before it.
    pub checks: Vec<CheckResult>,
}
