//! The end of a run: each node's result, as a table for people or JSON for machines.
//!
//! Pure: results in, text out. Nothing here sees a configuration's content or a token.
//! The table is for a terminal: every cell and error line goes through
//! `nodeboot_config::text::printable_line` (no control characters, no bidi overrides, one
//! line), whatever the caller cleaned before; JSON escapes what it carries.

use std::fmt::Write as _;
use std::time::Duration;

use nodeboot_config::api::{CheckResult, FileChange, PlanReply};
use nodeboot_config::text::{is_unsafe_char, printable_line};
use serde::Serialize;

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `--wait`: back after its reboot with our file, every check passed.
    Healthy,
    /// `--wait`: back after its reboot with our file, a check failed (kept configured).
    Unhealthy,
    /// `--wait`: the node rolled our file back after its checks failed.
    RolledBack,
    /// Accepted; not followed further (no `--wait`).
    Accepted,
    /// The node already runs this very file (same SHA-256): nothing to do.
    Unchanged,
    /// `--dry-run`: would have been sent.
    WouldSend,
    /// `status`: the node answered.
    Answered,
    /// `push --plan`: the node said what an apply would do.
    Planned,
    /// The local file is invalid (`--skip-invalid`): not sent.
    Invalid,
    /// The node refused the file (4xx) and said why.
    Rejected,
    /// The certificate did not match the pin: nothing was sent.
    Untrusted,
    /// No answer before the deadline.
    Unreachable,
    /// Another failure (busy, unexpected answer, `--wait` deadline).
    Failed,
}

impl Outcome {
    /// Whether this outcome counts as success for the exit status.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Outcome::Healthy
                | Outcome::Accepted
                | Outcome::Unchanged
                | Outcome::WouldSend
                | Outcome::Answered
                | Outcome::Planned
        )
    }

    /// The word shown in the table and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Healthy => "healthy",
            Outcome::Unhealthy => "unhealthy",
            Outcome::RolledBack => "rolled-back",
            Outcome::Accepted => "accepted",
            Outcome::Unchanged => "unchanged",
            Outcome::WouldSend => "would-send",
            Outcome::Answered => "answered",
            Outcome::Planned => "planned",
            Outcome::Invalid => "invalid",
            Outcome::Rejected => "rejected",
            Outcome::Untrusted => "untrusted",
            Outcome::Unreachable => "unreachable",
            Outcome::Failed => "failed",
        }
    }
}

/// One error a node (or the local validation) reported about a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileError {
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// Element path, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{l}:{c}: ")?,
            (Some(l), None) => write!(f, "{l}: ")?,
            _ => {}
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything known about one node at the end.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    /// The node's name.
    pub node: String,
    /// Its endpoint, `host:port`.
    pub address: String,
    /// How it ended.
    pub result: Outcome,
    /// Seconds from its first attempt to its end.
    pub seconds: f64,
    /// Connection attempts made.
    pub attempts: u32,
    /// The certificate fingerprint it presented, when a handshake got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The SHA-256 of the file sent (push), or the node's configuration digest (status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The node's state (status, or push with `--wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The agent's version (status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A one-line reason, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every error reported about the file, on rejection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FileError>,
    /// `push --plan`: what the node said an apply would do (the wire contract's type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReply>,
    /// `push --wait`: the verdict of the first boot after the apply, one line
    /// (`healthy: 6 checks passed`, `unhealthy: …`, `rolled back: …`, `timed out (…)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// `push --wait`: every check of that boot as the node reported it (the wire contract's
    /// type), passed ones included.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

impl NodeResult {
    /// A result with only the identity filled in.
    pub fn new(node: &str, address: &str, result: Outcome, elapsed: Duration) -> Self {
        NodeResult {
            node: node.to_string(),
            address: address.to_string(),
            result,
            seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            attempts: 0,
            fingerprint: None,
            digest: None,
            state: None,
            version: None,
            error: None,
            errors: Vec::new(),
            plan: None,
            verdict: None,
            checks: Vec::new(),
        }
    }
}

/// The JSON document of `--json`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Whether every node succeeded.
    pub ok: bool,
    /// How many succeeded.
    pub succeeded: usize,
    /// How many failed.
    pub failed: usize,
    /// Whole-run wall time.
    pub seconds: f64,
    /// One entry per node, in inventory order.
    pub nodes: &'a [NodeResult],
    /// `push --plan`: for each file and change, how many nodes would see it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan_summary: Vec<FileCount>,
}

/// How many nodes of a `push --plan` would see one change to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCount {
    /// The path on the nodes (`/etc/hostname`).
    pub path: String,
    /// Created, changed or removed.
    pub change: FileChange,
    /// How many nodes.
    pub nodes: usize,
}

/// For every file a plan would create, change or remove on some node, how many nodes:
/// sorted by path, then change. Unchanged files are not counted.
pub fn plan_counts(results: &[NodeResult]) -> Vec<FileCount> {
    let mut counts: std::collections::BTreeMap<(String, FileChange), usize> =
        std::collections::BTreeMap::new();
    for plan in results.iter().filter_map(|r| r.plan.as_ref()) {
        for f in plan
            .files
            .iter()
            .filter(|f| f.change != FileChange::Unchanged)
        {
            *counts.entry((f.path.clone(), f.change)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((path, change), nodes)| FileCount {
            path,
            change,
            nodes,
        })
        .collect()
}

/// Each planned node's files with their diffs (every line cleaned), then the counts of
/// [`plan_counts`] across the nodes. Empty when no node was planned.
pub fn render_plans(results: &[NodeResult]) -> String {
    let mut out = String::new();
    for r in results {
        let Some(plan) = &r.plan else { continue };
        let changing = plan
            .files
            .iter()
            .filter(|f| f.change != FileChange::Unchanged)
            .count();
        let _ = writeln!(
            out,
            "\n{} ({}): plan for sha256 {}: {changing} of {} file(s) would change",
            printable_line(&r.node),
            printable_line(&r.address),
            printable_line(&plan.digest),
            plan.files.len()
        );
        for f in &plan.files {
            let _ = writeln!(
                out,
                "  {:<9} {}",
                f.change.as_str(),
                printable_line(&f.path)
            );
            for line in f.diff.iter().flat_map(|d| d.lines()) {
                let _ = writeln!(out, "    {}", printable_line(line));
            }
        }
    }
    let counts = plan_counts(results);
    let planned = results.iter().filter(|r| r.plan.is_some()).count();
    if planned > 0 {
        let _ = writeln!(out, "\nacross {planned} planned node(s):");
        if counts.is_empty() {
            let _ = writeln!(out, "  no file would change");
        }
        for c in &counts {
            let _ = writeln!(
                out,
                "  {}: {} node{} {}",
                printable_line(&c.path),
                c.nodes,
                if c.nodes == 1 { "" } else { "s" },
                c.change.as_str()
            );
        }
    }
    out
}

/// Renders `--json` output.
pub fn render_json(results: &[NodeResult], elapsed: Duration) -> String {
    let failed = results.iter().filter(|r| !r.result.is_ok()).count();
    let report = Report {
        ok: failed == 0,
        succeeded: results.len() - failed,
        failed,
        seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        nodes: results,
        plan_summary: plan_counts(results),
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Renders the summary table, the errors of rejected nodes below it, and a count line.
/// With `status_columns`, shows state and digest instead of attempts.
pub fn render_table(results: &[NodeResult], elapsed: Duration, status_columns: bool) -> String {
    let verdicts = results.iter().any(|r| r.verdict.is_some());
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(results.len() + 1);
    let mut header: Vec<String> = if status_columns {
        ["NODE", "ADDRESS", "STATE", "DIGEST"]
            .map(String::from)
            .to_vec()
    } else {
        ["NODE", "ADDRESS", "RESULT", "TIME"]
            .map(String::from)
            .to_vec()
    };
    if verdicts {
        header.push("VERDICT".into());
    }
    header.push("ERROR".into());
    rows.push(header);
    for r in results {
        // The verdict's column already says why: the error column does not repeat it.
        let error = r
            .error
            .clone()
            .filter(|e| Some(e) != r.verdict.as_ref())
            .unwrap_or_default();
        let mut row: Vec<String> = if status_columns {
            vec![
                r.node.clone(),
                r.address.clone(),
                r.state
                    .clone()
                    .unwrap_or_else(|| r.result.as_str().to_string()),
                r.digest
                    .as_deref()
                    .map(|d| d.chars().take(12).collect())
                    .unwrap_or_default(),
            ]
        } else {
            vec![
                r.node.clone(),
                r.address.clone(),
                r.result.as_str().to_string(),
                format!("{:.2}s", r.seconds),
            ]
        };
        if verdicts {
            row.push(r.verdict.clone().unwrap_or_default());
        }
        row.push(error);
        rows.push(row);
    }
    for row in &mut rows {
        for cell in row.iter_mut() {
            if cell
                .chars()
                .any(|c| c == '\n' || c == '\t' || is_unsafe_char(c))
            {
                *cell = printable_line(cell);
            }
        }
    }
    let mut widths = vec![0usize; rows.first().map_or(0, Vec::len)];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, &w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for r in results.iter().filter(|r| !r.errors.is_empty()) {
        let _ = writeln!(
            out,
            "\n{} ({}): {} error(s):",
            printable_line(&r.node),
            printable_line(&r.address),
            r.errors.len()
        );
        for e in &r.errors {
            let _ = writeln!(out, "  {}", printable_line(&e.to_string()));
        }
    }
    for r in results {
        let failed: Vec<&CheckResult> = r.checks.iter().filter(|c| !c.passed).collect();
        if failed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} ({}): {} of {} check(s) failed:",
            printable_line(&r.node),
            printable_line(&r.address),
            failed.len(),
            r.checks.len()
        );
        for c in failed {
            let _ = writeln!(
                out,
                "  {} {}: {} ({} attempt(s), {} ms)",
                c.kind,
                printable_line(&c.subject),
                printable_line(&c.reason),
                c.attempts,
                c.elapsed_ms
            );
        }
    }
    out.push_str(&render_plans(results));
    let failed = results.iter().filter(|r| !r.result.is_ok()).count();
    let mut counts: Vec<(Outcome, usize)> = Vec::new();
    for r in results {
        match counts.iter_mut().find(|(o, _)| *o == r.result) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.result, 1)),
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(o, n)| format!("{n} {}", o.as_str()))
        .collect();
    let _ = writeln!(
        out,
        "\n{} node(s) in {:.2}s: {}{}",
        results.len(),
        elapsed.as_secs_f64(),
        counts.join(", "),
        if failed > 0 {
            format!(" — {failed} FAILED")
        } else {
            String::new()
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NodeResult> {
        let mut ok = NodeResult::new(
            "conf01",
            "10.0.0.31:8443",
            Outcome::Healthy,
            Duration::from_millis(1234),
        );
        ok.attempts = 1;
        let mut bad = NodeResult::new(
            "conf02",
            "10.0.0.32:8443",
            Outcome::Rejected,
            Duration::from_millis(50),
        );
        bad.error = Some("the node refused the file (422)".into());
        bad.errors.push(FileError {
            line: Some(7),
            column: Some(5),
            path: Some("/node-config/hostname".into()),
            message: "`-x` is not a valid hostname".into(),
        });
        vec![ok, bad]
    }

    #[test]
    fn table_lists_every_node_then_errors_then_counts() {
        let table = render_table(&sample(), Duration::from_millis(1500), false);
        assert_eq!(
            table,
            "NODE    ADDRESS         RESULT    TIME   ERROR\n\
             conf01  10.0.0.31:8443  healthy   1.23s\n\
             conf02  10.0.0.32:8443  rejected  0.05s  the node refused the file (422)\n\
             \n\
             conf02 (10.0.0.32:8443): 1 error(s):\n  \
             7:5: /node-config/hostname: `-x` is not a valid hostname\n\
             \n\
             2 node(s) in 1.50s: 1 healthy, 1 rejected — 1 FAILED\n"
        );
    }

    #[test]
    fn table_cells_and_error_lines_carry_no_control_or_bidi_character() {
        let mut r = sample();
        r[1].error = Some("bad\u{1b}[2J\u{7}\u{9b}31m\u{202e}txt.exe\u{2066}\nnext".into());
        r[1].errors[0].message = "x\u{1b}]0;title\u{7}\u{85}y\r\nz".into();
        let table = render_table(&r, Duration::from_millis(1500), false);
        assert!(
            !table.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{table:?}"
        );
        assert!(table.contains("bad[2J31mtxt.exe next\n"), "{table}");
        assert!(
            table.contains("  7:5: /node-config/hostname: x]0;titley z\n"),
            "{table}"
        );
    }

    #[test]
    fn json_counts_and_lists_nodes() {
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&sample(), Duration::from_millis(1500))).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["succeeded"], 1);
        assert_eq!(json["failed"], 1);
        assert_eq!(json["nodes"][0]["result"], "healthy");
        assert_eq!(json["nodes"][0]["seconds"], 1.234);
        assert_eq!(json["nodes"][1]["errors"][0]["line"], 7);
        assert!(json["nodes"][0].get("errors").is_none());
    }

    #[test]
    fn wait_verdicts_get_their_column_then_the_failed_checks_and_json_every_check() {
        use nodeboot_config::api::CheckKind;
        let check = |subject: &str, passed: bool, reason: &str| CheckResult {
            kind: CheckKind::Ntp,
            subject: subject.into(),
            passed,
            attempts: 2,
            elapsed_ms: 900,
            tried: vec!["resolved ntp.example".into()],
            reason: reason.into(),
        };
        let mut healthy = NodeResult::new("n1", "h1:8443", Outcome::Healthy, Duration::ZERO);
        healthy.verdict = Some("healthy: 1 checks passed".into());
        healthy.checks = vec![check("10.0.0.9", true, "answered")];
        let mut sick = NodeResult::new("n2", "h2:8443", Outcome::Unhealthy, Duration::ZERO);
        let why = "unhealthy: ntp 10.0.0.9 did not answer\u{1b}[2J";
        sick.verdict = Some(why.into());
        sick.error = Some(why.into());
        sick.checks = vec![
            check("10.0.0.8", true, "answered"),
            check("10.0.0.9", false, "ntp 10.0.0.9 did not answer\u{1b}[2J"),
        ];
        let results = vec![healthy, sick];
        let table = render_table(&results, Duration::from_millis(1000), false);
        assert_eq!(
            table,
            "NODE  ADDRESS  RESULT     TIME   VERDICT                                    ERROR\n\
             n1    h1:8443  healthy    0.00s  healthy: 1 checks passed\n\
             n2    h2:8443  unhealthy  0.00s  unhealthy: ntp 10.0.0.9 did not answer[2J\n\
             \n\
             n2 (h2:8443): 1 of 2 check(s) failed:\n  \
             ntp 10.0.0.9: ntp 10.0.0.9 did not answer[2J (2 attempt(s), 900 ms)\n\
             \n\
             2 node(s) in 1.00s: 1 healthy, 1 unhealthy — 1 FAILED\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&results, Duration::ZERO)).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["nodes"][1]["result"], "unhealthy");
        assert_eq!(json["nodes"][1]["verdict"], why);
        assert_eq!(json["nodes"][1]["checks"].as_array().unwrap().len(), 2);
        assert_eq!(json["nodes"][1]["checks"][1]["kind"], "ntp");
        assert_eq!(json["nodes"][1]["checks"][1]["passed"], false);
        assert_eq!(
            json["nodes"][0]["checks"][0]["tried"][0],
            "resolved ntp.example"
        );
    }

    #[test]
    fn plans_show_each_nodes_files_cleaned_then_the_counts_across_nodes() {
        use nodeboot_config::api::PlannedFile;
        let planned = |node: &str, files: Vec<PlannedFile>| {
            let mut r = NodeResult::new(node, "h:8443", Outcome::Planned, Duration::ZERO);
            r.plan = Some(PlanReply {
                digest: "ab".into(),
                files,
                warnings: vec![],
            });
            r
        };
        let file = |path: &str, change, diff: Option<&str>| PlannedFile {
            path: path.into(),
            change,
            diff: diff.map(String::from),
        };
        let results = vec![
            planned(
                "n1",
                vec![
                    file(
                        "/etc/hostname",
                        FileChange::Changed,
                        Some("-a\n+b\u{1b}[2J\n"),
                    ),
                    file("/etc/hosts", FileChange::Unchanged, None),
                ],
            ),
            planned(
                "n2",
                vec![
                    file("/etc/hostname", FileChange::Changed, Some("+c\n")),
                    file("/etc/old", FileChange::Removed, None),
                ],
            ),
        ];
        assert_eq!(
            render_plans(&results),
            "\nn1 (h:8443): plan for sha256 ab: 1 of 2 file(s) would change\n  \
             changed   /etc/hostname\n    -a\n    +b[2J\n  unchanged /etc/hosts\n\
             \nn2 (h:8443): plan for sha256 ab: 2 of 2 file(s) would change\n  \
             changed   /etc/hostname\n    +c\n  removed   /etc/old\n\
             \nacross 2 planned node(s):\n  /etc/hostname: 2 nodes changed\n  \
             /etc/old: 1 node removed\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&results, Duration::ZERO)).unwrap_or_default();
        assert_eq!(
            json["plan_summary"][0],
            serde_json::json!({"path": "/etc/hostname", "change": "changed", "nodes": 2})
        );
        assert_eq!(json["nodes"][0]["plan"]["files"][0]["change"], "changed");
    }
}
