//! Validation findings with their place in the file: what is wrong, where, and how to fix it.
//!
//! A [`Diagnostic`] is data; rendering it compiler-style (file:line:col, the line, a caret) is
//! done by [`Diagnostic::render`], which needs the source text but nothing else.

use serde::Serialize;

use crate::secret::MaskedSource;

/// Whether a finding makes the file invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something deserves attention (e.g. a certificate expiring soon).
    Warning,
}

/// One finding: severity, element path, 1-based line and column, message and fix hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Compiler-style text: `file:line:col: error: message`, the source line with a caret
    /// under the column, the fix, and the element path. `source` is the file's text with its
    /// secrets masked, so the quoted line never shows one (the line is omitted when the diagnostic has no position, e.g. one from JSON metadata).
    pub fn render(&self, file: &str, source: &MaskedSource) -> String {
        use std::fmt::Write as _;
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        if self.line == 0 {
            let _ = writeln!(out, "{file}: {sev}: {}", self.message);
        } else {
            let _ = writeln!(
                out,
                "{file}:{}:{}: {sev}: {}",
                self.line, self.column, self.message
            );
            let idx = usize::try_from(self.line).unwrap_or(usize::MAX) - 1;
            if let Some(text) = source.as_str().lines().nth(idx) {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                // Tabs keep their width in the caret line so the caret lands under the column.
                let shown: String = text
                    .chars()
                    .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                    .collect();
                let col = usize::try_from(self.column).unwrap_or(1).saturating_sub(1);
                let lead: String = shown
                    .chars()
                    .take(col)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {shown}");
                let _ = writeln!(out, "{pad} | {lead}^");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        if !self.path.is_empty() {
            let _ = writeln!(out, "  = at: {}", self.path);
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
}
