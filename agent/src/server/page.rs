//! The HTML the endpoint shows a browser: the upload page (state, last attempt, form) and the
//! result pages. Pure functions from data to strings; no JavaScript, one small stylesheet,
//! readable on a phone.

use nodeboot_config::api::{
    AttemptOutcome, BOOTSTRAP_PATH, CheckResult, HealthPhase, HealthStatus, NodeState, RolledBack,
    SourceOutcome, SourceReport,
};
use nodeboot_config::{Diagnostic, Severity};

use super::status::LastAttempt;

/// What the upload page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeView {
    /// The node's state.
    pub state: NodeState,
    /// The digest of the configuration in place (or failed).
    pub digest: Option<String>,
    /// The certificate fingerprint.
    pub fingerprint: String,
    /// The last upload, if any since the agent started.
    pub last: Option<LastAttempt>,
    /// Whether the form asks for the bootstrap token.
    pub token_required: bool,
    /// The agent's version.
    pub version: &'static str,
    /// What the boot-time configuration sources could not use.
    pub source: Option<SourceReport>,
    /// The checks of the first boot after an apply, during the read-only window.
    pub health: Option<HealthStatus>,
    /// When the read-only window ends (seconds since the epoch), during one.
    pub window_ends_unix: Option<u64>,
    /// The configuration this node rolled back, while it is not configured again.
    pub rolled_back: Option<RolledBack>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;\
max-width:46rem;margin:auto;line-height:1.45;color:#1b1f24;background:#f6f7f9}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin-top:1.5rem}\
.card{background:#fff;border:1px solid #d6dae0;border-radius:8px;padding:1rem;margin:.8rem 0}\
.ok{border-left:6px solid #1a7f37}.bad{border-left:6px solid #cf222e}\
.info{border-left:6px solid #0969da}\
code,.fp{font-family:ui-monospace,monospace;font-size:.85rem;overflow-wrap:anywhere}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}\
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
input[type=file],input[type=password]{display:block;width:100%;margin:.4rem 0 .8rem;\
font-size:1rem}button{font-size:1.05rem;padding:.6rem 1.4rem;border-radius:6px;\
border:0;background:#0969da;color:#fff}\
table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{text-align:left;vertical-align:top;padding:.25rem .4rem;border-top:1px solid #d6dae0}\
td.pass{color:#1a7f37;font-weight:600}td.fail{color:#cf222e;font-weight:600}\
ol{padding-left:1.2rem}li{margin:.5rem 0}.where{font-family:ui-monospace,monospace;\
font-size:.85rem;color:#57606a}.help{color:#57606a}a{color:#0969da}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

fn state_text(state: NodeState) -> &'static str {
    match state {
        NodeState::Unconfigured => "Unconfigured — waiting for its configuration",
        NodeState::Applying => "Applying a configuration",
        NodeState::Configured => "Configured",
        NodeState::Failed => "The last apply failed — the node kept its previous state",
    }
}

fn diagnostics_list(diags: &[Diagnostic]) -> String {
    let mut s = String::from("<ol class=\"errors\">");
    for d in diags {
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        s.push_str(&format!(
            "<li><span class=\"where\">line {}, column {} · {} · {sev}</span><br>{}",
            d.line,
            d.column,
            escape(&d.path),
            escape(&d.message)
        ));
        if let Some(help) = &d.help {
            s.push_str(&format!("<br><span class=\"help\">{}</span>", escape(help)));
        }
        s.push_str("</li>");
    }
    s.push_str("</ol>");
    s
}

fn attempt_card(last: &LastAttempt) -> String {
    let a = &last.attempt;
    let when = nodeboot_config::format_utc(i64::try_from(a.at_unix).unwrap_or(i64::MAX));
    let digest = a
        .digest
        .as_deref()
        .map(|d| format!("<br>sha256 <code>{}</code>", escape(d)))
        .unwrap_or_default();
    match &a.outcome {
        AttemptOutcome::Accepted { reboot_delay_secs } => format!(
            "<div class=\"card info\"><b>Accepted</b> at {when}: applying, then rebooting \
             in {reboot_delay_secs} s.{digest}</div>"
        ),
        AttemptOutcome::Applied { reboot_delay_secs } => format!(
            "<div class=\"card ok\"><b>Applied</b> at {when}; rebooting in \
             {reboot_delay_secs} s.{digest}</div>"
        ),
        AttemptOutcome::Rejected { total } => format!(
            "<div class=\"card bad\"><b>Rejected</b> at {when}: {} in the file.{digest}\
             {}</div>",
            problems(*total),
            diagnostics_list(&last.findings)
        ),
        AttemptOutcome::Failed { message } => format!(
            "<div class=\"card bad\"><b>Apply failed</b> at {when}: {}{digest}</div>",
            escape(message)
        ),
        AttemptOutcome::Refused { code, message } => format!(
            "<div class=\"card bad\"><b>Refused ({code})</b> at {when}: {}</div>",
            escape(message)
        ),
    }
}

/// The card of a configuration source that failed closed (its text is bounded and cleaned
/// by `crate::source`; escaped here).
pub fn source_card(r: &SourceReport) -> String {
    match &r.outcome {
        SourceOutcome::Invalid { findings } => format!(
            "<div class=\"card bad\" id=\"source\"><b>The configuration from {} is invalid</b>: \
             nothing was applied; fix it there and reboot, or upload a configuration here.{}</div>",
            escape(&r.origin),
            diagnostics_list(findings)
        ),
        SourceOutcome::Unreadable { message } => format!(
            "<div class=\"card bad\" id=\"source\"><b>The configuration from {} cannot be read</b>: \
             {}; nothing was applied.</div>",
            escape(&r.origin),
            escape(message)
        ),
        SourceOutcome::RolledBack {
            reason, at_unix, ..
        } => format!(
            "<div class=\"card bad\" id=\"source\"><b>The configuration from {} is not applied \
             again</b>: it was {}. Correct it and upload it here, or run the wizard.</div>",
            escape(&r.origin),
            escape(&crate::source::rolled_back_text(*at_unix, reason))
        ),
    }
}

/// A table of every check: kind, subject, result, attempts, time, and the reason with what
/// was tried (text cleaned by `super::window`; escaped here).
pub fn checks_table(checks: &[CheckResult]) -> String {
    let mut s = String::from(
        "<table class=\"checks\"><tr><th>Check</th><th>Subject</th><th>Result</th>\
         <th>Attempts</th><th>Time</th><th>Details</th></tr>",
    );
    for c in checks {
        let (class, result) = if c.passed {
            ("pass", "passed")
        } else {
            ("fail", "failed")
        };
        let mut details = escape(&c.reason);
        if !c.tried.is_empty() {
            details.push_str(&format!(
                "<br><span class=\"help\">tried: {}</span>",
                escape(&c.tried.join("; "))
            ));
        }
        s.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"{class}\">{result}</td>\
             <td>{}</td><td>{} ms</td><td>{details}</td></tr>",
            escape(c.kind.as_str()),
            escape(&c.subject),
            c.attempts,
            c.elapsed_ms
        ));
    }
    s.push_str("</table>");
    s
}

/// The card of the checks after the reboot: the summary line, every check, and the window.
pub fn health_card(h: &HealthStatus, window_ends_unix: Option<u64>) -> String {
    let class = match h.phase {
        HealthPhase::Healthy => "ok",
        HealthPhase::Checking => "info",
        HealthPhase::Unhealthy | HealthPhase::RollingBack => "bad",
    };
    let mut s = format!(
        "<div class=\"card {class}\" id=\"health\"><b id=\"health-summary\">{}</b>\
         <br>sha256 <code>{}</code>; started {}, grace period {} s.{}",
        escape(&h.summary()),
        escape(&h.digest),
        nodeboot_config::format_utc(i64::try_from(h.started_unix).unwrap_or(i64::MAX)),
        h.grace_secs,
        checks_table(&h.report.checks)
    );
    if let Some(end) = window_ends_unix {
        s.push_str(&format!(
            "<p class=\"help\">This status is served read-only until {}; the node accepts no \
             configuration, and this page then stops answering.</p>",
            escape(&super::window::hh_mm_utc(end))
        ));
    }
    s.push_str("</div>");
    s
}

/// The card of a rollback: the reason first, then the checks that led to it.
pub fn rolled_back_card(r: &RolledBack) -> String {
    format!(
        "<div class=\"card bad\" id=\"rolled-back\"><b>{}</b><br>The configuration sha256 \
         <code>{}</code> was rolled back at {}: the node is back in its generic state. \
         Upload a corrected configuration below.{}</div>",
        escape(&r.summary()),
        escape(&r.digest),
        nodeboot_config::format_utc(i64::try_from(r.at_unix).unwrap_or(i64::MAX)),
        checks_table(&r.checks)
    )
}

/// "1 problem", "2 problems".
pub fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".to_string()
    } else {
        format!("{n} problems")
    }
}

/// The upload page (`GET /`).
pub fn render_home(v: &HomeView) -> String {
    let mut body = String::from("<h1>nodeboot — node configuration</h1>");
    if let Some(r) = &v.rolled_back {
        body.push_str(&rolled_back_card(r));
    }
    body.push_str(&format!(
        "<div class=\"card\"><dl><dt>State</dt><dd id=\"state\">{}</dd>",
        escape(state_text(v.state))
    ));
    if let Some(d) = &v.digest {
        body.push_str(&format!(
            "<dt>Configuration</dt><dd><code>sha256 {}</code></dd>",
            escape(d)
        ));
    }
    body.push_str(&format!(
        "<dt>Certificate</dt><dd class=\"fp\">{}</dd><dt>Agent</dt><dd>{}</dd></dl></div>",
        escape(&v.fingerprint),
        escape(v.version)
    ));
    if let Some(h) = &v.health {
        body.push_str("<h2>Checks after the reboot</h2>");
        body.push_str(&health_card(h, v.window_ends_unix));
    }
    if let Some(r) = &v.source {
        body.push_str("<h2>Configuration source</h2>");
        body.push_str(&source_card(r));
    }
    if let Some(a) = &v.last {
        body.push_str("<h2>Last upload</h2>");
        body.push_str(&attempt_card(a));
    }
    if matches!(v.state, NodeState::Unconfigured | NodeState::Failed) {
        body.push_str(&format!(
            "<h2>Upload the configuration</h2><div class=\"card\">\
             <form method=\"post\" action=\"{BOOTSTRAP_PATH}\" \
             enctype=\"multipart/form-data\">"
        ));
        // The token field comes first: browsers send fields in page order, and the agent reads
        // only a few KiB of a form before its token has arrived.
        if v.token_required {
            body.push_str(
                "<label for=\"token\">Bootstrap token</label>\
                 <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" \
                 required>",
            );
        }
        body.push_str(&format!(
            "<label for=\"file\">Configuration file (XML, at most 1 MiB)</label>\
             <input type=\"file\" id=\"file\" name=\"file\" accept=\".xml,text/xml,application/xml\" \
             required>\
             <button type=\"submit\" id=\"upload\">Upload</button></form>\
             <p class=\"help\">The node validates the file, applies it and reboots. \
             Scripts can POST the XML to <code>{BOOTSTRAP_PATH}</code> with \
             <code>Content-Type: text/xml</code>.</p></div>"
        ));
    } else if v.state == NodeState::Configured && v.window_ends_unix.is_none() {
        body.push_str(
            "<div class=\"card info\">This node is configured: it accepts no further \
             configuration until <code>nodeboot-agent reset</code> is run on it.</div>",
        );
    }
    layout("nodeboot — node configuration", &body)
}

/// The page after an accepted upload.
pub fn render_accepted(digest: &str, reboot_delay_secs: u64, warnings: &[Diagnostic]) -> String {
    let mut body = format!(
        "<h1>Configuration accepted</h1><div class=\"card ok\" id=\"result\">\
         <b>Applied, rebooting in {reboot_delay_secs} s.</b><br>The node now applies the \
         configuration and then reboots into it; this page will stop answering.<br>\
         sha256 <code>{}</code></div>",
        escape(digest)
    );
    if !warnings.is_empty() {
        body.push_str("<h2>Warnings</h2><div class=\"card\">");
        body.push_str(&diagnostics_list(warnings));
        body.push_str("</div>");
    }
    body.push_str("<p><a href=\"/\">Back to the node's page</a></p>");
    layout("Configuration accepted", &body)
}

/// The page after a file was refused for what is in it: its findings (`errors`, already
/// bounded) out of `total`.
pub fn render_rejected(errors: &[Diagnostic], total: usize) -> String {
    let body = format!(
        "<h1>Configuration rejected</h1><div class=\"card bad\" id=\"result\">\
         <b>The file has {}; nothing was changed on the node.</b>{}</div>\
         <p><a href=\"/\">Back to the upload form</a></p>",
        problems(total),
        diagnostics_list(errors)
    );
    layout("Configuration rejected", &body)
}

/// The page for a refused request (wrong type, too large, busy, configured, not allowed).
pub fn render_refused(code: u16, reason: &str, message: &str) -> String {
    let body = format!(
        "<h1>{code} {}</h1><div class=\"card bad\" id=\"result\">{}</div>\
         <p><a href=\"/\">Back to the node's page</a></p>",
        escape(reason),
        escape(message)
    );
    layout(&format!("{code} {reason}"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    fn diag() -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: "/node-config/hostname".into(),
            line: 4,
            column: 3,
            message: "hostname \"-x\" starts with a hyphen".into(),
            help: Some("use letters, digits and inner hyphens".into()),
        }
    }

    #[test]
    fn rejected_page_lists_every_error_escaped() {
        let html = render_rejected(&[diag(), diag()], 2);
        assert!(html.contains("The file has 2 problems;"));
        assert_eq!(
            html.matches("line 4, column 3 · /node-config/hostname")
                .count(),
            2
        );
        assert!(html.contains("hostname &quot;-x&quot; starts with a hyphen"));
        assert!(html.contains("use letters, digits and inner hyphens"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_source_card_shows_the_origin_and_findings_escaped() {
        let r = SourceReport {
            origin: "NoCloud disc cidata (<user-data>)".into(),
            outcome: SourceOutcome::Invalid {
                findings: vec![Diagnostic {
                    severity: Severity::Error,
                    path: "management_node_config.gw".into(),
                    line: 0,
                    column: 0,
                    message: "<script>".into(),
                    help: None,
                }],
            },
        };
        let html = source_card(&r);
        assert!(
            html.contains(
                "The configuration from NoCloud disc cidata (&lt;user-data&gt;) is invalid"
            )
        );
        assert!(html.contains("management_node_config.gw"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
    }

    #[test]
    fn the_source_card_of_a_rolled_back_configuration_says_so() {
        let r = SourceReport {
            origin: "/etc/nodeboot/node.xml".into(),
            outcome: SourceOutcome::RolledBack {
                digest: "ab".into(),
                reason: "gateway <10.0.2.1> did not answer ARP on eth0 within 120 s".into(),
                at_unix: 1_796_000_000,
            },
        };
        assert_eq!(
            source_card(&r),
            "<div class=\"card bad\" id=\"source\"><b>The configuration from \
             /etc/nodeboot/node.xml is not applied again</b>: it was rolled back on 2026-11-30 \
             00:53:20 UTC: gateway &lt;10.0.2.1&gt; did not answer ARP on eth0 within 120 s. \
             Correct it and upload it here, or run the wizard.</div>"
        );
    }

    #[test]
    fn home_page_has_form_only_when_uploads_are_accepted() {
        let mut v = HomeView {
            state: NodeState::Unconfigured,
            digest: None,
            fingerprint: "SHA256:aa:bb".into(),
            last: None,
            source: None,
            health: None,
            window_ends_unix: None,
            rolled_back: None,
            token_required: true,
            version: "0.1.0",
        };
        let html = render_home(&v);
        assert!(html.contains("enctype=\"multipart/form-data\""));
        assert!(html.contains("name=\"token\""));
        assert!(
            html.find("name=\"token\"") < html.find("name=\"file\""),
            "the token is sent before the file"
        );
        assert!(html.contains("SHA256:aa:bb"));
        assert!(html.contains("width=device-width"));
        v.state = NodeState::Configured;
        v.digest = Some("abc".into());
        let html = render_home(&v);
        assert!(!html.contains("<form"));
        assert!(html.contains("sha256 abc"));
    }
}
