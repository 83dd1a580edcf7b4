//! `nodeboot validate FILE...`: checks configuration files (schema-1 XML, or metadata JSON when
//! the name ends in `.json`) and reports like a compiler.
//!
//! Everything the text output shows from outside (file names, messages, quoted lines) goes
//! through `nodeboot_config::text`, and quoted lines come from a [`MaskedSource`], so neither a
//! terminal escape nor a secret of the file is ever printed. Lists are bounded by the
//! configuration crate (at most 100 findings and an "and N more" entry); the summary counts
//! what that entry stands for.

use std::io::Write as _;
use std::process::ExitCode;

use nodeboot_config::text::printable_line;
use nodeboot_config::{Diagnostic, Document, MaskedSource, Severity};
use serde::Serialize;

use crate::cmdline::ValidateArgs;

/// The outcome for one file.
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

#[derive(Debug, Serialize)]
struct Report {
    valid: usize,
    invalid: usize,
    files: Vec<FileReport>,
}

/// Checks one file's bytes. Pure apart from the clock: the effect (reading) is in [`run`].
fn check(name: &str, bytes: &[u8]) -> Result<Document, Vec<Diagnostic>> {
    if name.ends_with(".json") {
        nodeboot_config::from_metadata_json(bytes)
    } else {
        nodeboot_config::parse(bytes)
    }
}

/// Runs `nodeboot validate`: exit 0 only when every file is valid (and, with `--strict`, has
/// no warning).
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    let mut text = String::new();
    for path in &args.files {
        let name = path.display().to_string();
        let (masked, result) = match std::fs::read(path) {
            Ok(bytes) => {
                let r = check(&name, &bytes);
                // Only a report that quotes lines needs the masked text (a second read).
                let quotes = match &r {
                    Ok(p) => !p.warnings().is_empty(),
                    Err(_) => true,
                };
                let masked = match (quotes, name.ends_with(".json")) {
                    (false, _) => MaskedSource::new(b""),
                    (true, true) => MaskedSource::metadata_json(&bytes),
                    (true, false) => MaskedSource::new(&bytes),
                };
                (masked, r)
            }
            Err(e) => (
                MaskedSource::new(b""),
                Err(vec![Diagnostic {
                    severity: Severity::Error,
                    path: String::new(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the file: {e}"),
                    help: Some("check the path and the permissions".into()),
                }]),
            ),
        };
        let (errors, warnings, digest, role) = match result {
            Ok(p) => (
                Vec::new(),
                p.warnings().to_vec(),
                Some(p.digest().to_owned()),
                Some(p.config().role().to_string()),
            ),
            Err(e) => (e, Vec::new(), None, None),
        };
        for d in errors.iter().chain(&warnings) {
            text.push_str(&d.render(&name, &masked));
        }
        let valid = errors.is_empty() && (!args.strict || warnings.is_empty());
        if valid {
            text.push_str(&format!(
                "{}: valid {} configuration ({} warning{}), sha256 {}\n",
                printable_line(&name),
                role.as_deref().unwrap_or("?"),
                Diagnostic::count(&warnings),
                if Diagnostic::count(&warnings) == 1 {
                    ""
                } else {
                    "s"
                },
                digest.as_deref().unwrap_or("?"),
            ));
        }
        files.push(FileReport {
            file: name,
            valid,
            digest,
            role,
            errors,
            warnings,
        });
    }
    let valid = files.iter().filter(|f| f.valid).count();
    let invalid = files.len() - valid;
    let errors: usize = files.iter().map(|f| Diagnostic::count(&f.errors)).sum();
    let warnings: usize = files.iter().map(|f| Diagnostic::count(&f.warnings)).sum();
    let report = Report {
        valid,
        invalid,
        files,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        text.push_str(&format!(
            "{} checked: {valid} valid, {invalid} invalid ({}, {}){}\n",
            plural(valid + invalid, "file"),
            plural(errors, "error"),
            plural(warnings, "warning"),
            if args.strict {
                ", warnings fail (--strict)"
            } else {
                ""
            },
        ));
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
