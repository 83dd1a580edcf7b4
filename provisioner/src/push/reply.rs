//! Reading a node's answers as the wire contract's types (`nodeboot_config::api`): the
//! [`UploadReply`] to a `POST` of the file, the [`StatusReport`] of `GET /api/v1/status`.
//!
//! Pure: an HTTP code and a body in, a typed value or a [`ContractError`] out. An answer that
//! does not fit the contract is reported as it is (HTTP code, what did not parse), never
//! guessed at. Everything a node wrote that may reach the operator's terminal goes through
//! `nodeboot_config::text` (no control characters, no bidi overrides, one line) and is cut to
//! [`MAX_SHOWN`] characters.

use nodeboot_config::api::{
    MAX_PLAN_DIFF_BYTES, PlanReply, StatusReport, UploadReply, bound_diffs,
};
use nodeboot_config::text::{printable_line, printable_lossy};
use nodeboot_config::{Diagnostic, Severity};

use super::summary::FileError;

/// The most characters shown of any one text a node sent.
pub const MAX_SHOWN: usize = 300;

/// A node's text, safe to show: one line, no control or bidi characters, at most
/// [`MAX_SHOWN`] characters.
pub fn shown(text: &str) -> String {
    let line = printable_line(text);
    let line = line.trim();
    match line.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// An answer that does not fit the wire contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} answered {code}, but not as a nodeboot agent does: {detail}")]
pub struct ContractError {
    /// The request: `the upload` or `status`.
    pub what: &'static str,
    /// The HTTP status code.
    pub code: u16,
    /// What did not parse (cleaned, bounded).
    pub detail: String,
}

fn contract_error(what: &'static str, code: u16, body: &[u8], error: &str) -> ContractError {
    let start = shown(&printable_lossy(&body[..body.len().min(MAX_SHOWN * 4)]));
    let detail = if body.is_empty() {
        "an empty body".to_string()
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        format!("not JSON ({}); it starts: {start}", shown(error))
    } else {
        shown(error)
    };
    ContractError { what, code, detail }
}

/// The answer to an upload: `accepted` with a 2xx, `rejected` or `refused` with a 4xx or
/// 5xx, as the contract pairs them.
pub fn read_upload(code: u16, body: &[u8]) -> Result<UploadReply, ContractError> {
    let what = "the upload";
    let reply = serde_json::from_slice::<UploadReply>(body)
        .map_err(|e| contract_error(what, code, body, &e.to_string()))?;
    let success = (200..300).contains(&code);
    let fits = match &reply {
        UploadReply::Accepted(_) => success,
        UploadReply::Rejected(_) | UploadReply::Refused(_) => !success,
    };
    if fits {
        Ok(reply)
    } else {
        let status = match reply {
            UploadReply::Accepted(_) => "accepted",
            UploadReply::Rejected(_) => "rejected",
            UploadReply::Refused(_) => "refused",
        };
        Err(ContractError {
            what,
            code,
            detail: format!("a reply with status `{status}` does not go with HTTP {code}"),
        })
    }
}

/// The answer to a plan (a 2xx): what an apply would do, its diffs cut to
/// [`MAX_PLAN_DIFF_BYTES`] in all whatever the node sent (the agent cuts them so too). Other
/// codes carry an upload's rejection or refusal: read them with [`read_upload`].
pub fn read_plan(code: u16, body: &[u8]) -> Result<PlanReply, ContractError> {
    let what = "the plan";
    let mut plan = serde_json::from_slice::<PlanReply>(body)
        .map_err(|e| contract_error(what, code, body, &e.to_string()))?;
    bound_diffs(&mut plan.files, MAX_PLAN_DIFF_BYTES);
    Ok(plan)
}

/// The status document (a 2xx), or why the node refused to give it (its refusal's message).
pub fn read_status(code: u16, body: &[u8]) -> Result<Result<StatusReport, String>, ContractError> {
    let what = "status";
    if (200..300).contains(&code) {
        return serde_json::from_slice::<StatusReport>(body)
            .map(Ok)
            .map_err(|e| contract_error(what, code, body, &e.to_string()));
    }
    match serde_json::from_slice::<UploadReply>(body) {
        Ok(UploadReply::Refused(r)) => Ok(Err(shown(&r.error))),
        Ok(_) => Err(ContractError {
            what,
            code,
            detail: "an upload's reply instead of a refusal".into(),
        }),
        Err(e) => Err(contract_error(what, code, body, &e.to_string())),
    }
}

/// A node's finding as a line of the summary: cleaned and bounded, a warning marked, the help
/// after the message, no line or column for the entry that counts the rest (line 0).
pub fn file_error(d: &Diagnostic) -> FileError {
    let mut message = shown(&d.message);
    if d.severity == Severity::Warning {
        message = format!("warning: {message}");
    }
    if let Some(help) = &d.help {
        message = format!("{message} (help: {})", shown(help));
    }
    FileError {
        line: (d.line > 0).then_some(u64::from(d.line)),
        column: (d.line > 0).then_some(u64::from(d.column)),
        path: (!d.path.is_empty()).then(|| shown(&d.path)),
        message,
    }
}

/// Every finding of a list, as [`file_error`] shows each.
pub fn file_errors(diagnostics: &[Diagnostic]) -> Vec<FileError> {
    diagnostics.iter().map(file_error).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use nodeboot_config::api::NodeState;

    fn diag(
        severity: Severity,
        path: &str,
        line: u32,
        message: &str,
        help: Option<&str>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            path: path.into(),
            line,
            column: if line > 0 { 7 } else { 0 },
            message: message.into(),
            help: help.map(String::from),
        }
    }

    #[test]
    fn node_findings_are_shown_with_position_path_severity_and_help() {
        let errors = file_errors(&[
            diag(
                Severity::Error,
                "/node-config/role",
                3,
                "bad role",
                Some("management"),
            ),
            diag(Severity::Error, "/x", 0, "m", None),
            diag(Severity::Warning, "/w", 0, "expires soon", None),
            diag(Severity::Error, "", 0, "plain", None),
        ]);
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "3:7: /node-config/role: bad role (help: management)",
                "/x: m",
                "/w: warning: expires soon",
                "plain"
            ]
        );
    }

    #[test]
    fn replies_are_read_as_the_contract_types() {
        let body = br#"{"status":"accepted","digest":"ab","reboot_delay_seconds":5,"warnings":[],"message":"ok"}"#;
        assert!(matches!(read_upload(202, body), Ok(UploadReply::Accepted(a)) if a.digest == "ab"));
        let body = br#"{"status":"refused","code":409,"error":"configured"}"#;
        assert!(
            matches!(read_upload(409, body), Ok(UploadReply::Refused(r)) if r.error == "configured")
        );
        let status = br#"{"state":"configured","digest":"ab","errors":[],"error":null,"last_attempt":null,"fingerprint":"SHA256:00","version":"0.1.0"}"#;
        let report = read_status(200, status).unwrap().unwrap();
        assert_eq!(
            (report.state, report.digest.as_deref()),
            (NodeState::Configured, Some("ab"))
        );
        assert_eq!(
            read_status(
                401,
                br#"{"status":"refused","code":401,"error":"token\u001b[2J"}"#
            ),
            Ok(Err("token[2J".into()))
        );
    }

    #[test]
    fn an_answer_off_the_contract_is_reported_as_it_is_cleaned_and_bounded() {
        // Another state name, as an older or foreign agent might use.
        let err = read_status(200, br#"{"state":"applied","digest":null}"#).unwrap_err();
        assert_eq!(err.code, 200);
        assert!(
            err.to_string().starts_with(
                "status answered 200, but not as a nodeboot agent does: unknown variant `applied`"
            ),
            "{err}"
        );
        // A proxy's page.
        let page = format!("<html>\u{1b}[2J{}</html>", "x".repeat(5000));
        let err = read_upload(502, page.as_bytes()).unwrap_err();
        assert!(
            err.detail.starts_with(
                "not JSON (expected value at line 1 column 1); it starts: <html>[2Jxxx"
            ),
            "{err}"
        );
        assert!(err.detail.chars().count() < 2 * MAX_SHOWN + 80, "{err}");
        assert!(!err.detail.contains('\u{1b}'));
        // The right shape with the wrong code.
        let err = read_upload(500, br#"{"status":"accepted","digest":"ab","reboot_delay_seconds":5,"warnings":[],"message":"ok"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the upload answered 500, but not as a nodeboot agent does: a reply with status `accepted` does not go with HTTP 500"
        );
        let err = read_upload(413, b"").unwrap_err();
        assert_eq!(err.detail, "an empty body");
        // A field missing.
        let err = read_upload(202, br#"{"status":"accepted","message":"ok"}"#).unwrap_err();
        assert!(err.detail.starts_with("missing field `digest`"), "{err}");
    }
}
