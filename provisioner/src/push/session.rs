//! What a run's node tasks share: the trust decisions (the known-nodes file, first use, the
//! question on the terminal, the words that refuse an unknown or changed certificate), the
//! display, and the deadlines.
//!
//! The messages are pure; [`Trust::load`] reads the known-nodes file, [`Trust::save`] writes
//! it, [`Trust::confirm`] asks on the terminal.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;

use super::client::Endpoint;
use super::inventory::{self, Target};
use super::progress::Display;
use super::trust::{self, Fingerprint, KnownNodes, PinSource, Policy};
use crate::cmdline::FleetArgs;

/// What a run shares between its node tasks.
#[derive(Debug)]
pub struct Run {
    /// Where `--wait` also looks for a node after its reboot.
    pub wait_at: WaitAt,
    /// The trust decisions.
    pub trust: Trust,
    /// Where a pin on a target came from (`--fingerprint` or the inventory).
    pub pin_source: PinSource,
    /// The progress display.
    pub display: Display,
    /// How long a node may take to accept its file (or answer, for `status`).
    pub timeout: Duration,
    /// `--wait`: how long to follow a node after it accepted.
    pub wait: Option<Duration>,
    /// `--plan`: ask each node what an apply would do instead of sending the file to apply.
    pub plan: bool,
}

/// Where `--wait` looks for a node after its reboot, besides where it was pushed to.
#[derive(Debug, Clone)]
pub enum WaitAt {
    /// Only there.
    Same,
    /// Also at this endpoint (`--wait-address`).
    Given(Endpoint),
    /// Also at the address the node's file configures (`--wait-configured-address`).
    Configured,
}

/// Where the operator pins a node's certificate, for the message that refuses an unknown one.
#[derive(Debug, Clone)]
pub enum PinHint {
    /// `--fingerprint` on the command line.
    Flag,
    /// `fingerprint = "…"` in the node's `[[node]]` table of this TOML inventory.
    Toml(PathBuf),
    /// A third column in this folder inventory's addresses.csv.
    Folder(PathBuf),
}

impl PinHint {
    pub fn of(fleet: &FleetArgs) -> Self {
        match &fleet.inventory {
            Some(p) if p.is_dir() => PinHint::Folder(p.join(inventory::FOLDER_ADDRESSES)),
            Some(p) => PinHint::Toml(p.clone()),
            None => PinHint::Flag,
        }
    }

    pub fn how(&self, target: &Target, seen: Fingerprint) -> String {
        match self {
            PinHint::Flag => format!("--fingerprint {seen}"),
            PinHint::Toml(p) => format!(
                "fingerprint = \"{seen}\" in node `{}` of {}",
                target.name,
                p.display()
            ),
            PinHint::Folder(p) => format!(
                "`,{seen}` at the end of the line of `{}` in {}",
                target.name,
                p.display()
            ),
        }
    }
}

/// The trust decisions of a run: the known-nodes file and what first use added to it.
#[derive(Debug)]
pub struct Trust {
    /// `--insecure`: any certificate, nothing recorded.
    insecure: bool,
    /// `--trust-first-use`: an unknown node is trusted and recorded.
    first_use: bool,
    /// Ask on the terminal about an unknown node (stdin and stderr are terminals, and
    /// neither `--trust-first-use` nor `--insecure` decided already).
    pub ask: bool,
    /// One question at a time, however many nodes run at once.
    asking: tokio::sync::Mutex<()>,
    /// Where the operator pins a certificate, for the refusal's fix.
    hint: PinHint,
    /// The known-nodes file (none with `--insecure`).
    path: Option<PathBuf>,
    /// Its entries, and what first use added.
    known: Mutex<KnownNodes>,
}

impl Trust {
    pub fn load(fleet: &FleetArgs) -> anyhow::Result<Self> {
        let path = if fleet.insecure {
            None
        } else {
            Some(
                fleet
                    .known_nodes
                    .clone()
                    .or_else(trust::default_known_nodes_path)
                    .context("no known-nodes file: set HOME or pass --known-nodes FILE")?,
            )
        };
        let known = match &path {
            Some(p) => KnownNodes::load(p)?,
            None => KnownNodes::default(),
        };
        use std::io::IsTerminal as _;
        let ask = !fleet.insecure
            && !fleet.trust_first_use
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal();
        Ok(Trust::new(
            fleet.insecure,
            fleet.trust_first_use,
            ask,
            PinHint::of(fleet),
            path,
            known,
        ))
    }

    /// The decisions of a run, from what the flags and the known-nodes file said.
    pub fn new(
        insecure: bool,
        first_use: bool,
        ask: bool,
        hint: PinHint,
        path: Option<PathBuf>,
        known: KnownNodes,
    ) -> Self {
        Trust {
            insecure,
            first_use,
            ask,
            asking: tokio::sync::Mutex::new(()),
            hint,
            path,
            known: Mutex::new(known),
        }
    }

    /// The known-nodes file's name for messages.
    pub fn known_nodes_file(&self) -> String {
        self.path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the known-nodes file".into())
    }

    /// Why an unknown node was refused, the fingerprint it showed and how to pin it.
    pub fn refusal(&self, target: &Target, seen: Fingerprint, declined: bool) -> String {
        format!(
            "REFUSED: unknown node: it presents certificate {seen}, which is neither pinned nor \
             recorded in {}; nothing was sent{}. Compare it with the fingerprint on the node's \
             console, then pin it ({}), or pass --trust-first-use to record it",
            self.known_nodes_file(),
            if declined {
                " (not trusted at the prompt)"
            } else {
                ""
            },
            self.hint.how(target, seen)
        )
    }

    /// On a terminal, asks whether to trust an unknown node's certificate; a yes records it
    /// and returns the policy that pins it. One question at a time; the live display is
    /// paused meanwhile.
    pub async fn confirm(
        &self,
        display: &Display,
        target: &Target,
        seen: Fingerprint,
    ) -> Option<Policy> {
        if !self.ask {
            return None;
        }
        let _one = self.asking.lock().await;
        let question = format!(
            "\n{} ({}) is not a known node. It presents the certificate\n  {seen}\n\
             Compare it with the fingerprint on the node's console.\n\
             Trust it and record it in {}? [y/N] ",
            target.name,
            target.endpoint,
            self.known_nodes_file()
        );
        display.pause();
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{BufRead as _, Write as _};
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(question.as_bytes());
            let _ = err.flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        })
        .await;
        display.resume();
        let yes = matches!(answer, Ok(Ok(line)) if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"));
        if !yes {
            return None;
        }
        if let Some(notice) = self.record(target, seen) {
            display.note(&notice);
        }
        Some(Policy::Pinned(seen))
    }

    /// The policy for a node, and where a pin came from.
    pub fn policy(&self, target: &Target, pin_source: PinSource) -> (Policy, Option<PinSource>) {
        if self.insecure {
            return (Policy::Insecure, None);
        }
        if let Some(fp) = target.fingerprint {
            return (Policy::Pinned(fp), Some(pin_source));
        }
        let key = target.endpoint.to_string();
        match self.known.lock().ok().and_then(|k| k.get(&key)) {
            Some(fp) => (Policy::Pinned(fp), Some(PinSource::KnownNodes)),
            None if self.first_use => (Policy::FirstUse, None),
            None => (Policy::Unknown, None),
        }
    }

    /// Records a certificate seen on first use; returns the notice to show.
    pub fn record(&self, target: &Target, fp: Fingerprint) -> Option<String> {
        let path = self.path.as_ref()?;
        let mut known = self.known.lock().ok()?;
        known.add(&target.endpoint.to_string(), fp);
        Some(format!(
            "{}: first contact, trusting {fp} (recorded in {}; check it against the node's \
             console)",
            target.name,
            path.display()
        ))
    }

    /// Why a node presenting another certificate than its pin was refused, and what to fix.
    pub fn mismatch(
        &self,
        target: &Target,
        expected: Fingerprint,
        seen: Fingerprint,
        pin: Option<PinSource>,
    ) -> String {
        let (origin, fix) = match pin {
            Some(PinSource::KnownNodes) => (
                format!(
                    "recorded in {}",
                    self.path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                format!(
                    "if the node was reinstalled, compare {seen} with its console and remove the line `{}` from that file",
                    target.endpoint
                ),
            ),
            Some(PinSource::CommandLine) => (
                "given with --fingerprint".into(),
                "check the fingerprint on the node's console".into(),
            ),
            _ => (
                "pinned in the inventory".into(),
                "check the fingerprint on the node's console".into(),
            ),
        };
        format!(
            "REFUSED: the node presents certificate {seen}, but {expected} is {origin}; nothing was sent ({fix})"
        )
    }

    /// Writes the known-nodes file when first use added to it.
    pub fn save(&self) -> anyhow::Result<()> {
        let (Some(path), Ok(known)) = (&self.path, self.known.lock()) else {
            return Ok(());
        };
        if known.changed() {
            known.save(path)
        } else {
            Ok(())
        }
    }
}
