//! The `apply`, `status` and `reset` subcommands: output and exit codes (their arguments are
//! [`crate::cmdline`]'s). The work is
//! done by the functions of the parent module; this file only talks to the operator.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use similar::TextDiff;

use super::plan::{Action, Change, Mask, Plan, masked_text};
use super::{NodeState, Outcome};
use crate::cmdline::{ApplyArgs, ResetArgs, StatusArgs};
use crate::rootfs::Root;
use nodeboot_config::api::FileChange;
use nodeboot_config::{Diagnostic, Document, MaskedSource};

/// Runs `nodeboot-agent apply`.
pub fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let Some(doc) = read_document(&args.file)? else {
        return Ok(ExitCode::from(2));
    };
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        return dry_run(&args.root, &doc, &mut out);
    }
    // The plan is printed from inside the apply, which renders it once and reads the node's
    // state once, under its lock.
    let mut shown = Ok(());
    let outcome = super::apply_config_showing(&args.root, &doc, &mut |plan| {
        shown = write!(out, "{}", render_plan(plan, doc.digest(), &args.root))
            .and_then(|()| out.flush());
    })?;
    shown?;
    match outcome {
        Outcome::Unchanged { digest } => {
            writeln!(
                out,
                "unchanged: sha256 {digest} is already applied; nothing written, no reboot"
            )?;
        }
        Outcome::Applied { digest, changed } => {
            writeln!(
                out,
                "applied sha256 {digest}: {} files changed",
                changed.len()
            )?;
            let reboot = args.reboot.reboot();
            if args.reboot.is_none() {
                writeln!(out, "not rebooting (--reboot=none)")?;
            } else {
                writeln!(out, "rebooting in {} s", args.reboot.reboot_delay)?;
                out.flush()?;
                super::reboot::after(args.reboot.delay(), reboot.as_ref()).context("rebooting")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `apply --dry-run`: notes on the node's state, the plan and a diff; nothing is written.
fn dry_run(root: &Path, doc: &Document, out: &mut impl std::io::Write) -> anyhow::Result<ExitCode> {
    if let Some(d) = super::pending(root)? {
        writeln!(
            out,
            "note: an interrupted apply of sha256 {d} is pending; it is finished or rolled back before the next apply"
        )?;
    }
    let digest = doc.digest();
    if let NodeState::Configured {
        digest: current, ..
    } = super::read_state(root)?
    {
        if current == digest {
            writeln!(
                out,
                "note: sha256 {digest} is already applied; apply would change nothing"
            )?;
        } else {
            writeln!(
                out,
                "note: the node is configured with sha256 {current}; apply would refuse this file until `nodeboot-agent reset`"
            )?;
        }
    }
    let plan = super::plan_config(root, doc)?;
    write!(out, "{}", render_plan(&plan, digest, root))?;
    write!(out, "{}", render_diff(root, &plan))?;
    writeln!(out, "dry run: nothing was written")?;
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates a configuration file given on the command line (`apply FILE`,
/// `wizard --answers FILE`), printing its warnings or errors on stderr the one way findings
/// are printed: compiler-style by [`Diagnostic::render`], secrets in quoted lines masked, then
/// a count. `None` when the file is invalid (nothing was changed).
pub fn read_document(file: &Path) -> anyhow::Result<Option<Document>> {
    let xml = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if xml.len() > nodeboot_config::MAX_FILE_SIZE {
        anyhow::bail!(
            "{}: the file is {} bytes, over the limit of {} bytes",
            file.display(),
            xml.len(),
            nodeboot_config::MAX_FILE_SIZE
        );
    }
    let result = nodeboot_config::parse(&xml);
    let findings = match &result {
        Ok(doc) => doc.warnings(),
        Err(diags) => diags.as_slice(),
    };
    if !findings.is_empty() {
        // One masked view for every finding: masking reads the file once.
        let masked = MaskedSource::new(&xml);
        let name = file.display().to_string();
        for d in findings {
            eprint!("{}", d.render(&name, &masked));
        }
    }
    match result {
        Ok(doc) => Ok(Some(doc)),
        Err(diags) => {
            let errors = Diagnostic::count(&diags);
            eprintln!(
                "{}: {errors} error{} found; nothing was changed",
                file.display(),
                if errors == 1 { "" } else { "s" }
            );
            Ok(None)
        }
    }
}

/// The printed plan: one line per file (removals only of files that exist under `root`), then
/// the actions.
pub fn render_plan(plan: &Plan, digest: &str, root: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "plan for sha256 {digest} under {}:", root.display());
    for e in &plan.entries {
        let _ = match &e.change {
            Change::Write(f) => writeln!(
                s,
                "  write   {:<52} {:04o} {}:{} {} bytes",
                e.path.display(),
                f.mode,
                f.owner.uid,
                f.owner.gid,
                f.content.len()
            ),
            // a removal of a file that is not there is no step worth showing
            Change::Remove if !exists(root, &e.path) => Ok(()),
            Change::Remove => writeln!(s, "  remove  {}", e.path.display()),
            Change::Symlink(to) => {
                writeln!(s, "  link    {} -> {}", e.path.display(), to.display())
            }
        };
    }
    for a in &plan.actions {
        let _ = match a {
            Action::Reboot => writeln!(s, "  then reboot"),
        };
    }
    s
}

/// Whether something is at `path` under `root` (a link is not followed).
fn exists(root: &Path, path: &Path) -> bool {
    Root::open(root).is_ok_and(|r| r.stat(path).is_ok_and(|st| st.is_some()))
}

/// A unified diff of every planned file against the disk, secrets masked: the text of
/// [`file_diffs`], one entry after the other.
pub fn render_diff(root: &Path, plan: &Plan) -> String {
    file_diffs(root, plan).into_iter().map(|d| d.text).collect()
}

/// What an apply would do to one file, and how `apply --dry-run` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The path inside the root (`/etc/hostname`).
    pub path: std::path::PathBuf,
    /// Created, changed, removed or unchanged.
    pub change: FileChange,
    /// The dry run's text for the file: a unified diff with secrets masked, or one line
    /// (`…: unchanged`, `…: removed`, `…: secret, N bytes (new)`, `…: link to …`).
    pub text: String,
    /// Whether `text` is a diff or a line about the file's contents worth showing (not the
    /// bare "unchanged" or "removed").
    pub shows_contents: bool,
}

/// Every planned file against the disk (the removal of a file that is not there is left out),
/// secrets masked as [`Mask`] says. Files are read through [`crate::rootfs`]: a link or a FIFO
/// at a target shows as absent, never followed. Reads only; what both `apply --dry-run` and
/// the endpoint's `POST /configuration/plan` show.
pub fn file_diffs(root: &Path, plan: &Plan) -> Vec<FileDiff> {
    let mut out = Vec::new();
    let root = Root::open(root).ok();
    for e in &plan.entries {
        let current = root
            .as_ref()
            .and_then(|r| r.read(&e.path).ok().flatten())
            .map(|f| f.content);
        let path = e.path.display();
        let mut s = String::new();
        let (change, shows_contents) = match (&e.change, current) {
            (Change::Remove, None) => continue,
            (Change::Remove, Some(_)) => {
                let _ = writeln!(s, "{path}: removed");
                (FileChange::Removed, false)
            }
            (Change::Symlink(to), current) => {
                let _ = writeln!(s, "{path}: link to {}", to.display());
                let change = if current.is_some() {
                    FileChange::Changed
                } else {
                    FileChange::Created
                };
                (change, true)
            }
            (Change::Write(f), current) => {
                if current.as_deref() == Some(f.content.as_slice()) {
                    let _ = writeln!(s, "{path}: unchanged");
                    out.push(FileDiff {
                        path: e.path.clone(),
                        change: FileChange::Unchanged,
                        text: s,
                        shows_contents: false,
                    });
                    continue;
                }
                let old = current
                    .as_deref()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
                let new = String::from_utf8_lossy(&f.content);
                let old_masked = old.as_deref().map(|o| masked_text(&f.mask, o));
                match (masked_text(&f.mask, &new), old_masked) {
                    (None, _) | (_, Some(None)) => {
                        let _ = writeln!(
                            s,
                            "{path}: secret, {} bytes ({})",
                            f.content.len(),
                            if old.is_some() { "changed" } else { "new" }
                        );
                    }
                    (Some(new_m), old_m) => {
                        let old_m = old_m.flatten().unwrap_or_default();
                        let diff = TextDiff::from_lines(&old_m, &new_m);
                        let old_label = if old.is_some() {
                            format!("{path} (on disk)")
                        } else {
                            "/dev/null".to_owned()
                        };
                        let _ = write!(
                            s,
                            "{}",
                            diff.unified_diff()
                                .context_radius(3)
                                .header(&old_label, &format!("{path} (planned)"))
                        );
                        if !new_m.ends_with('\n') {
                            s.push('\n');
                        }
                    }
                }
                if f.mask == Mask::None && old.is_none() && f.content.is_empty() {
                    let _ = writeln!(s, "{path}: new, empty");
                }
                let change = if old.is_some() {
                    FileChange::Changed
                } else {
                    FileChange::Created
                };
                (change, true)
            }
        };
        out.push(FileDiff {
            path: e.path.clone(),
            change,
            text: s,
            shows_contents,
        });
    }
    out
}

/// Runs `nodeboot-agent status`.
pub fn run_status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    use crate::health::records;
    let state = super::read_state(&args.root)?;
    // The checks of this boot, else the last verdict kept; a rollback on an unconfigured node.
    let health = records::read_health(&args.root)
        .ok()
        .flatten()
        .or_else(|| records::read_health_record(&args.root).ok().flatten());
    let rolled_back = match state {
        NodeState::Unconfigured | NodeState::Failed { .. } => {
            records::read_rolled_back(&args.root).ok().flatten()
        }
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&state)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "version".into(),
                serde_json::Value::String(env!("CARGO_PKG_VERSION").into()),
            );
            if let Some(h) = &health {
                obj.insert("health".into(), serde_json::to_value(h)?);
            }
            if let Some(r) = &rolled_back {
                obj.insert("rolled_back".into(), serde_json::to_value(r)?);
            }
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    match state {
        NodeState::Unconfigured => writeln!(out, "state: unconfigured")?,
        NodeState::Applying { digest } => writeln!(
            out,
            "state: applying (interrupted or in progress)\nsha256: {digest}"
        )?,
        NodeState::Configured {
            digest,
            applied_at_unix,
        } => writeln!(
            out,
            "state: configured\nsha256: {digest}\napplied: {} ({applied_at_unix})",
            nodeboot_config::format_utc(i64::try_from(applied_at_unix).unwrap_or(i64::MAX))
        )?,
        NodeState::Failed { digest, error, .. } => writeln!(
            out,
            "state: failed (the node is still unconfigured)\nsha256: {digest}\nerror: {error}"
        )?,
    }
    if let Some(h) = &health {
        writeln!(out, "checks: {}", h.summary())?;
        for c in &h.report.checks {
            let mark = if c.passed { "pass" } else { "FAIL" };
            writeln!(out, "  {mark} {} {}: {}", c.kind, c.subject, c.reason)?;
        }
    }
    if let Some(r) = &rolled_back {
        writeln!(out, "{} (sha256 {})", r.summary(), r.digest)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `nodeboot-agent reset`.
pub fn run_reset(args: ResetArgs) -> anyhow::Result<ExitCode> {
    super::reset(&args.root)?;
    println!("reset: {} is unconfigured again", args.root.display());
    Ok(ExitCode::SUCCESS)
}
