//! What the endpoint remembers and reports: the last upload attempt and the status document of
//! `GET /api/v1/status`, both bounded whatever the input (a few KiB). Data, serialization and
//! the pure functions that cut findings and messages down to size.

use nodeboot_config::text::{printable, printable_line};
use nodeboot_config::{Diagnostic, Severity};
use serde::Serialize;

use super::node::Phase;

/// One upload that got past the access checks, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// When it arrived (seconds since the epoch).
    pub at_unix: u64,
    /// The file's SHA-256, when a file was read.
    pub digest: Option<String>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of an upload attempt. Transitions: `Accepted` → `Applied` or `Failed`; the others
/// are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
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
    /// The file is invalid: its first findings.
    Rejected {
        /// The first errors (and warnings) with their line, column and element, then one
        /// entry counting the rest ([`bounded_diagnostics`]). Serialized once, as the status
        /// document's `errors`, not again inside `last_attempt`.
        #[serde(skip)]
        errors: Vec<Diagnostic>,
        /// How many findings the file had in all.
        total: usize,
    },
    /// The apply failed; the node keeps its previous configuration.
    Failed {
        /// Why.
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

/// The `GET /api/v1/status` document.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    /// `unconfigured`, `applying`, `configured` or `failed`.
    pub state: Phase,
    /// SHA-256 of the configuration in place (or being applied, or that failed).
    pub digest: Option<&'a str>,
    /// The validation errors of the last attempt (empty when it had none).
    pub errors: &'a [Diagnostic],
    /// Why the last apply failed, if it did.
    pub error: Option<&'a str>,
    /// The last upload attempt since the agent started.
    pub last_attempt: Option<&'a Attempt>,
    /// The certificate fingerprint (`SHA256:` colon-hex).
    pub fingerprint: &'a str,
    /// The agent's version.
    pub version: &'a str,
}

/// What a reply, the status and the page show of a file's findings, bounded whatever the
/// file: the first of `diags`, each with its path, message and help cut to `chars`
/// characters and cleaned of control characters, at most `keep` of them and at most
/// `text_bytes` bytes of such text in all; when some are left out, one more entry (line 0)
/// says how many.
pub fn bounded_diagnostics(
    diags: &[Diagnostic],
    keep: usize,
    text_bytes: usize,
    chars: usize,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut used = 0usize;
    for d in diags.iter().take(keep) {
        let shown = Diagnostic {
            severity: d.severity,
            path: shorten(&printable_line(&d.path), chars),
            line: d.line,
            column: d.column,
            message: shorten(&printable(&d.message), chars),
            help: d.help.as_deref().map(|h| shorten(&printable(h), chars)),
        };
        let size =
            shown.path.len() + shown.message.len() + shown.help.as_ref().map_or(0, String::len);
        if used + size > text_bytes {
            break;
        }
        used += size;
        out.push(shown);
    }
    let rest = diags.len() - out.len();
    if rest > 0 {
        out.push(Diagnostic {
            severity: Severity::Error,
            path: "/".into(),
            line: 0,
            column: 0,
            message: format!(
                "and {rest} more {} not shown",
                if rest == 1 { "problem" } else { "problems" }
            ),
            help: Some("fix the problems listed and upload the file again".into()),
        });
    }
    out
}

/// `s` cut to at most `chars` characters, ending in `…` when something was cut.
pub fn shorten(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        None => s.to_string(),
        Some((end, _)) => {
            let keep = s[..end]
                .char_indices()
                .nth(chars.saturating_sub(1))
                .map_or(end, |(i, _)| i);
            format!("{}…", &s[..keep])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: "/node-config/x".into(),
            line: 1,
            column: 4,
            message,
            help: Some("remove it".into()),
        }
    }

    #[test]
    fn findings_are_cut_to_a_count_and_a_length() {
        let many: Vec<Diagnostic> = (0..250).map(|i| diag(format!("number {i}"))).collect();
        let b = bounded_diagnostics(&many, 20, 4096, 300);
        assert_eq!(b.len(), 21);
        assert_eq!(b[19].message, "number 19");
        assert_eq!(b[20].message, "and 230 more problems not shown");
        assert_eq!((b[20].line, b[20].column), (0, 0));
        assert_eq!(
            bounded_diagnostics(&many[..2], 20, 4096, 300),
            many[..2].to_vec()
        );
        assert_eq!(
            bounded_diagnostics(&many[..21], 20, 4096, 300)[20].message,
            "and 1 more problem not shown"
        );

        let long = diag(format!("\u{1b}[31m{}", "é".repeat(10_000)));
        let b = bounded_diagnostics(std::slice::from_ref(&long), 20, 4096, 300);
        assert_eq!(b[0].message.chars().count(), 300);
        assert!(b[0].message.ends_with('…'));
        assert!(!b[0].message.contains('\u{1b}'));

        // The text budget stops the list early, whatever the count allows.
        let b = bounded_diagnostics(&vec![long; 50], 20, 2048, 300);
        assert_eq!(b.len(), 4, "three of ~620 bytes, then the count");
        assert_eq!(b[3].message, "and 47 more problems not shown");
    }

    #[test]
    fn shorten_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("ééé", 2), "é…");
        assert_eq!(shorten("", 0), "");
    }

    #[test]
    fn attempt_serializes_flat() {
        let a = Attempt {
            at_unix: 5,
            digest: Some("ab".into()),
            outcome: Outcome::Refused {
                code: 413,
                message: "too large".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"at_unix":5,"digest":"ab","outcome":"refused","code":413,"message":"too large"}"#
        );
    }
}
