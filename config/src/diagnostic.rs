//! Validation findings with their place in the file: what is wrong, where, and how to fix it.
//!
//! A [`Diagnostic`] is data; rendering it compiler-style (file:line:col, the line, a caret) is
//! done by [`Diagnostic::render`], which needs the source text but nothing else.

use serde::{Deserialize, Serialize};

use crate::secret::MaskedSource;

/// Whether a finding makes the file invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something deserves attention (e.g. a certificate expiring soon).
    Warning,
}

/// One finding: severity, element path, 1-based line and column, message and fix hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Element path, e.g. `/node-config/network/ipv4@gateway`.
    pub path: String,
    /// 1-based line of the element or attribute; 0 when the source has no lines (JSON
    /// metadata: then `path` names the JSON field).
    pub line: u32,
    /// 1-based column (in characters) of the element or attribute; 0 with line 0.
    pub column: u32,
    /// What is wrong, in plain words.
    pub message: String,
    /// What would be valid.
    pub help: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {sev}: {}: {}",
            self.line, self.column, self.path, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// The entry that ends a list cut at [`MAX_DIAGNOSTICS`](crate::MAX_DIAGNOSTICS): no place
    /// (line 0, empty path), the message `and N more errors` (or `warnings`), and a fixed help.
    /// Every consumer that shows a list (the CLI, the agent's reply, page and status) shows it
    /// as it shows any other entry; [`Diagnostic::omitted`] reads the count back.
    pub fn more(severity: Severity, n: usize) -> Diagnostic {
        let what = match severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        Diagnostic {
            severity,
            path: String::new(),
            line: 0,
            column: 0,
            message: format!("and {n} more {what}{}", if n == 1 { "" } else { "s" }),
            help: Some(MORE_HELP.into()),
        }
    }

    /// For the entry made by [`Diagnostic::more`], how many findings it stands for.
    pub fn omitted(&self) -> Option<usize> {
        if self.line != 0 || !self.path.is_empty() || self.help.as_deref() != Some(MORE_HELP) {
            return None;
        }
        self.message
            .strip_prefix("and ")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    }

    /// How many findings a list stands for: its length, the "and N more" entry counted as N.
    pub fn count(list: &[Diagnostic]) -> usize {
        list.iter().map(|d| d.omitted().unwrap_or(1)).sum()
    }

    /// Compiler-style text: `file:line:col: error: message`, the source line with a caret
    /// under the column, the fix, and the element path. `source` is the file's text with its
    /// secrets masked, so the quoted line never shows one (the line is omitted when the
    /// diagnostic has no position, e.g. one from JSON metadata). Everything printed goes
    /// through [`crate::text`]: no control character or bidi override of the file reaches the
    /// terminal, and a long line is quoted only around the column.
    pub fn render(&self, file: &str, source: &MaskedSource) -> String {
        use crate::text::{is_unsafe_char, printable_line};
        use std::fmt::Write as _;
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let file = printable_line(file);
        let message = printable_line(&self.message);
        let mut out = String::new();
        if self.line == 0 {
            let _ = writeln!(out, "{file}: {sev}: {message}");
        } else {
            let _ = writeln!(
                out,
                "{file}:{}:{}: {sev}: {message}",
                self.line, self.column
            );
            let idx = usize::try_from(self.line).unwrap_or(usize::MAX) - 1;
            if let Some(text) = source.line(idx) {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                let col = usize::try_from(self.column).unwrap_or(1).saturating_sub(1);
                // Only a window of a long line: QUOTE characters on either side of the column.
                let skip = col.saturating_sub(QUOTE);
                let mut chars = text.chars().skip(skip);
                let window: String = chars.by_ref().take(col - skip + 1 + QUOTE).collect();
                let cut_end = chars.next().is_some();
                // Tabs keep their width in the caret line so the caret lands under the column.
                let shown: String = window
                    .chars()
                    .map(|c| {
                        if c == '\t' {
                            c
                        } else if c.is_control() || is_unsafe_char(c) {
                            ' '
                        } else {
                            c
                        }
                    })
                    .collect();
                let (open, close) = (
                    if skip > 0 { "…" } else { "" },
                    if cut_end { "…" } else { "" },
                );
                let lead: String = open
                    .chars()
                    .chain(shown.chars().take(col - skip))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {open}{shown}{close}");
                let _ = writeln!(out, "{pad} | {lead}^");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {}", printable_line(help));
        }
        if !self.path.is_empty() {
            let _ = writeln!(out, "  = at: {}", printable_line(&self.path));
        }
        out
    }
}

/// The help of the "and N more" entry (see [`Diagnostic::more`]).
const MORE_HELP: &str = "only the first 100 are listed; fix these and check the file again";

/// Characters quoted on either side of the column when a source line is shown.
const QUOTE: usize = 80;

/// The longest message, help or path kept in a diagnostic, in characters; longer ones (a
/// value or name of the file quoted in full) end in `…`.
pub const MAX_FIELD_CHARS: usize = 512;

/// `s` made printable on one line and cut to [`MAX_FIELD_CHARS`].
fn bounded(s: &str) -> String {
    let clean = crate::text::printable_line(s);
    if clean.chars().count() <= MAX_FIELD_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_FIELD_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Collects findings with bounded memory: keeps [`MAX_DIAGNOSTICS`](crate::MAX_DIAGNOSTICS)
/// of them (the first ones by position, or in the order found) and counts the rest, which
/// [`Findings::finish`] reports as one [`Diagnostic::more`] entry.
#[derive(Debug)]
pub(crate) struct Findings {
    kept: std::collections::BinaryHeap<Ranked>,
    by_position: bool,
    seq: u64,
    omitted: usize,
    severity: Option<Severity>,
}

/// A finding with the key it is kept by: line, column, then the order it was found in.
#[derive(Debug)]
struct Ranked {
    key: (u32, u32, u64),
    d: Diagnostic,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl Findings {
    /// Keeps the first findings by line and column (ties in the order found).
    pub fn by_position() -> Self {
        Findings {
            kept: std::collections::BinaryHeap::new(),
            by_position: true,
            seq: 0,
            omitted: 0,
            severity: None,
        }
    }

    /// Keeps the first findings in the order found.
    pub fn in_order() -> Self {
        Findings {
            by_position: false,
            ..Findings::by_position()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.severity.get_or_insert(d.severity);
        self.seq += 1;
        let key = if self.by_position {
            (d.line, d.column, self.seq)
        } else {
            (0, 0, self.seq)
        };
        if self.kept.len() < crate::MAX_DIAGNOSTICS {
            self.kept.push(Ranked { key, d });
            return;
        }
        self.omitted += 1;
        if self.kept.peek().is_some_and(|last| key < last.key) {
            self.kept.pop();
            self.kept.push(Ranked { key, d });
        }
    }

    /// The kept findings in order, each field printable and bounded, then "and N more".
    pub fn finish(self) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|r| {
                let mut d = r.d;
                d.message = bounded(&d.message);
                d.path = bounded(&d.path);
                d.help = d.help.as_deref().map(bounded);
                d
            })
            .collect();
        if self.omitted > 0 {
            out.push(Diagnostic::more(
                self.severity.unwrap_or(Severity::Error),
                self.omitted,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_column() {
        let d = Diagnostic {
            severity: Severity::Error,
            path: "/a@b".into(),
            line: 2,
            column: 4,
            message: "bad".into(),
            help: Some("fix it".into()),
        };
        assert_eq!(
            d.render("f.xml", &MaskedSource::new(b"<a>\n<a b=\"x\"/>\n")),
            "f.xml:2:4: error: bad\n  |\n2 | <a b=\"x\"/>\n  |    ^\n  = help: fix it\n  = at: /a@b\n"
        );
    }

    #[test]
    fn render_removes_control_characters_and_quotes_a_window() {
        let d = Diagnostic {
            severity: Severity::Error,
            path: "/a\u{1b}[2J".into(),
            line: 1,
            column: 200,
            message: "bad \u{7}\u{9b}\u{202e}name".into(),
            help: Some("fix\u{1b}".into()),
        };
        let line = format!("{}\u{1b}X{}", "a".repeat(198), "b".repeat(300));
        let out = d.render("f\u{1b}.xml", &MaskedSource::new(line.as_bytes()));
        assert!(!out.chars().any(crate::text::is_unsafe_char), "{out:?}");
        let quoted = format!("1 | …{} X{}…\n", "a".repeat(79), "b".repeat(80));
        assert!(out.contains(&quoted), "{out}");
        assert!(out.contains(&format!("  | {}^\n", " ".repeat(81))), "{out}");
        assert!(out.starts_with("f.xml:1:200: error: bad name\n"), "{out}");
    }

    #[test]
    fn findings_keep_the_first_by_position_and_count_the_rest() {
        let mut f = Findings::by_position();
        for i in (1..=250u32).rev() {
            f.push(Diagnostic {
                severity: Severity::Error,
                path: String::new(),
                line: i,
                column: 1,
                message: "x".repeat(2000),
                help: None,
            });
        }
        let out = f.finish();
        assert_eq!(out.len(), crate::MAX_DIAGNOSTICS + 1);
        assert_eq!(out[0].line, 1);
        assert_eq!(out[99].line, 100);
        assert_eq!(out[0].message.chars().count(), MAX_FIELD_CHARS);
        let more = &out[100];
        assert_eq!(more.message, "and 150 more errors");
        assert_eq!(more.omitted(), Some(150));
        assert_eq!(out[0].omitted(), None);
        assert_eq!(Diagnostic::count(&out), 250);
    }
}
