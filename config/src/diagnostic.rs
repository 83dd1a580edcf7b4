//! Validation findings with their place in the file: what is wrong, where, and how to fix it.
//!
//! A [`Diagnostic`] is data; rendering it compiler-style (file:line:col, the line, a caret) is
//! done by [`Diagnostic::render`], which needs the source text but nothing else.

use serde::Serialize;

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
    /// 1-based line of the element or attribute.
    pub line: u32,
    /// 1-based column (in characters) of the element or attribute.
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
