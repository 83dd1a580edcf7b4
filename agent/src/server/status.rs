//! What the endpoint remembers of the last upload attempt, and the pure functions that cut
//! findings and messages down to size, so that the status document of `GET /api/v1/status`
//! (an [`nodeboot_config::api::StatusReport`]) stays a few KiB whatever was uploaded.

use nodeboot_config::api::{Attempt, AttemptOutcome};
use nodeboot_config::text::{printable, printable_line};
use nodeboot_config::{Diagnostic, Severity};

/// The last upload attempt ([`Attempt`], as the status reports it) and, beside it, the
/// findings of a rejected file (bounded): the status lists them once, as its `errors`, and the
/// page under the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAttempt {
    /// The attempt as reported.
    pub attempt: Attempt,
    /// The first findings when the file was rejected (empty otherwise).
    pub findings: Vec<Diagnostic>,
}

impl LastAttempt {
    /// An attempt without findings.
    pub fn new(at_unix: u64, digest: Option<String>, outcome: AttemptOutcome) -> Self {
        LastAttempt {
            attempt: Attempt {
                at_unix,
                digest,
                outcome,
            },
            findings: Vec::new(),
        }
    }
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
        let a = LastAttempt::new(
            5,
            Some("ab".into()),
            AttemptOutcome::Refused {
                code: 413,
                message: "too large".into(),
            },
        );
        assert_eq!(
            serde_json::to_string(&a.attempt).unwrap(),
            r#"{"at_unix":5,"digest":"ab","outcome":"refused","code":413,"message":"too large"}"#
        );
    }
}
