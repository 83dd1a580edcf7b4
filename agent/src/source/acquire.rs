//! `nodeboot-acquire`: at boot of an unconfigured node, run the chain of sources and act
//! on its outcome — apply a valid configuration and reboot; record an unusable one for
//! `serve` (and exit 0: the boot goes on to 8443 and the wizard); record a bootstrap token.
//! The clap definitions are in `crate::cmdline`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nodeboot_config::api::SourceOutcome;

use super::platform::{self, Env, FetchError, Platform};
use super::{Chain, Found, Outcome, PlatformSource, media, record};
use crate::apply::{NodeState, Outcome as Applied, Reboot};
use crate::rootfs::Root;

/// What `acquire` is asked to do.
#[derive(Debug)]
pub struct Options {
    /// The node's root.
    pub root: PathBuf,
    /// The DMI directory platform detection reads.
    pub dmi: PathBuf,
    /// The kernel command line file.
    pub cmdline: PathBuf,
    /// Where the media are.
    pub devices: media::Devices,
    /// How to reboot after an apply (`None`: do not).
    pub reboot: Option<Arc<dyn Reboot>>,
    /// Seconds before the reboot.
    pub reboot_delay: u64,
    /// Only check the baked file (`nodeboot-image bake --config` runs this in the image).
    pub check: bool,
    /// The kernel's block devices (`/sys/class/block`) when the media are the system's: if a
    /// disk other than the root's holds a medium, udev is waited for (at most 10 s) so that
    /// its by-label link exists. `None` (tests): no wait.
    pub sys_block: Option<PathBuf>,
}

/// Waits for udev to have processed the devices when a disk could be a configuration medium;
/// at once otherwise, so a node with no medium boots to its banner as fast as before.
fn settle_if_media(opts: &Options) {
    let Some(sys_block) = &opts.sys_block else {
        return;
    };
    let media = media::candidate_media(sys_block, media::disk_of(&opts.root).as_deref());
    if media.is_empty() {
        return;
    }
    tracing::info!(disks = %media.join(" "), "waiting for udev to name the media");
    match std::process::Command::new("udevadm")
        .args(["settle", "--timeout=10"])
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => tracing::warn!(status = %s, "udevadm settle did not finish"),
        Err(e) => tracing::warn!(error = %e, "running udevadm settle"),
    }
}

/// The largest kernel command line read (the kernel's own limit is 2,048 to 4,096 bytes).
const MAX_CMDLINE: u64 = 8192;

/// The kernel command line (`nodeboot.platform=`, `nodeboot.token=`); empty when unreadable.
fn kernel_cmdline(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_CMDLINE).read_to_string(&mut text);
    }
    text
}

/// Source 3 as the chain sees it: the detected platform and where its services are.
struct Detected {
    platform: Platform,
    env: Env,
}

impl PlatformSource for Detected {
    fn name(&self) -> String {
        self.platform.title().to_owned()
    }

    fn fetch(&self) -> Result<Option<Found>, FetchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FetchError::unavailable(format!("starting the HTTP client: {e}")))?;
        runtime.block_on(platform::fetch(&self.platform, &self.env))
    }

    fn forget(&self) {
        if let Err(e) = platform::forget(&self.platform, &self.env) {
            tracing::warn!(platform = %self.platform.title(), error = %e, "deleting the configuration from the platform");
        }
    }
}

/// Source 3 for this node: the platform DMI or `nodeboot.platform=` names (`None`: nothing is
/// probed on the network). Azure's customData comes from its provisioning disc's ovf-env.xml.
fn detect_platform(opts: &Options, cmdline: &str) -> Option<Detected> {
    let platform = platform::detect(&opts.dmi, cmdline)?;
    let mut env = Env::production();
    if platform == Platform::Azure {
        env.azure_ovf_env = media::disc_file(
            &opts.devices,
            &opts.root.join("run/nodeboot"),
            "ovf-env.xml",
            media::MAX_OVF_ENV,
        );
    }
    tracing::info!(platform = %platform.title(), "platform detected");
    Some(Detected { platform, env })
}

/// Runs `nodeboot-acquire`. Exit 0 whatever the sources held (a boot must go on); an
/// error only when the node's root itself cannot be used.
pub fn run(opts: Options) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
    if opts.check {
        return check(&opts);
    }
    let mut out = std::io::stdout().lock();
    // An apply (or reset, or rollback) cut by a power loss: this boot read files from the
    // middle of it. Recovery finishes or undoes it; reboot into what it left, either way.
    if let Some(digest) =
        crate::apply::recover_at_boot(&opts.root).context("finishing an interrupted apply")?
    {
        writeln!(
            out,
            "recovered an interrupted apply (sha256 {digest}); rebooting into the result"
        )?;
        out.flush()?;
        if let Some(r) = &opts.reboot {
            crate::apply::reboot::after(Duration::ZERO, r.as_ref()).context("rebooting")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let NodeState::Configured { digest, .. } = crate::apply::read_state(&opts.root)? {
        writeln!(out, "configured (sha256 {digest}); no source read")?;
        return Ok(ExitCode::SUCCESS);
    }
    let root = Root::open(&opts.root).map_err(anyhow::Error::msg)?;
    record::clear(&root).map_err(anyhow::Error::msg)?;
    settle_if_media(&opts);
    let cmdline = kernel_cmdline(&opts.cmdline);
    let platform = detect_platform(&opts, &cmdline);
    let chain = Chain {
        root: &opts.root,
        devices: opts.devices.clone(),
        platform: platform.as_ref().map(|p| p as &dyn PlatformSource),
    };
    let looking = std::time::Instant::now();
    let outcome = chain.run();
    let looked_ms = looking.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Nothing { token } => {
            // A token on the kernel command line when no source supplied one.
            let token = token.or_else(|| platform::kernel_token(&cmdline));
            writeln!(
                out,
                "no configuration source (looked for {looked_ms:.1} ms); waiting for a person (8443, wizard)"
            )?;
            if let Some(t) = token {
                record::write_token(&root, &t).map_err(anyhow::Error::msg)?;
                writeln!(out, "a bootstrap token was supplied; uploads must carry it")?;
            }
        }
        Outcome::Failed { report, token } => fail_closed(&mut out, &root, &report, token)?,
        Outcome::Valid {
            origin,
            document,
            token,
        } => {
            writeln!(
                out,
                "configuration from {origin} (sha256 {}), found in {looked_ms:.1} ms",
                document.digest()
            )?;
            if let Some(report) = rolled_back_report(&opts.root, &origin, document.digest()) {
                // This configuration cut the node off once: applying it again would loop
                // (apply, reboot, roll back, reboot). A person must correct it.
                fail_closed(&mut out, &root, &report, token)?;
                return Ok(ExitCode::SUCCESS);
            }
            match crate::apply::apply_config(&opts.root, &document) {
                Ok(Applied::Applied { digest, changed }) => {
                    writeln!(
                        out,
                        "applied sha256 {digest}: {} files changed",
                        changed.len()
                    )?;
                    if let Some(p) = &platform {
                        p.forget();
                    }
                    match &opts.reboot {
                        None => writeln!(out, "not rebooting (--no-reboot)")?,
                        Some(r) => {
                            writeln!(out, "rebooting in {} s", opts.reboot_delay)?;
                            out.flush()?;
                            crate::apply::reboot::after(
                                Duration::from_secs(opts.reboot_delay),
                                r.as_ref(),
                            )
                            .context("rebooting")?;
                        }
                    }
                }
                Ok(Applied::Unchanged { digest }) => {
                    writeln!(out, "sha256 {digest} is already applied")?;
                }
                Err(e) => {
                    // The apply engine recorded the failure (the status shows it); a person
                    // can still configure the node, with the token if there was one.
                    tracing::warn!(error = %e, "applying the configuration from {origin}");
                    writeln!(out, "applying the configuration from {origin} failed: {e}")?;
                    if let Some(t) = token {
                        record::write_token(&root, &t).map_err(anyhow::Error::msg)?;
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A source's configuration that is not applied: its report and a token it gave are kept for
/// `serve` (banner, page, status), and the output says why.
fn fail_closed(
    out: &mut dyn std::io::Write,
    root: &Root,
    report: &nodeboot_config::api::SourceReport,
    token: Option<nodeboot_config::Secret<String>>,
) -> anyhow::Result<()> {
    record::write_report(root, report).map_err(anyhow::Error::msg)?;
    if let Some(t) = token {
        record::write_token(root, &t).map_err(anyhow::Error::msg)?;
    }
    let origin = &report.origin;
    match &report.outcome {
        SourceOutcome::Invalid { findings } => {
            writeln!(
                out,
                "configuration from {origin} is invalid; nothing applied:"
            )?;
            for f in findings {
                writeln!(out, "  {}: {}", f.path, f.message)?;
            }
        }
        SourceOutcome::Unreadable { message } => writeln!(
            out,
            "configuration from {origin} cannot be read; nothing applied: {message}"
        )?,
        SourceOutcome::RolledBack {
            reason, at_unix, ..
        } => writeln!(
            out,
            "configuration from {origin}: {}; not applied again (correct the configuration and upload it, or run the wizard)",
            super::rolled_back_text(*at_unix, reason)
        )?,
    }
    Ok(())
}

/// The report that keeps a rolled-back configuration from being applied again: `Some` when
/// `digest` is the one `/var/lib/nodeboot/rolled-back.json` names.
fn rolled_back_report(
    root: &Path,
    origin: &str,
    digest: &str,
) -> Option<nodeboot_config::api::SourceReport> {
    let rolled = crate::health::records::read_rolled_back(root)
        .ok()
        .flatten()?;
    (rolled.digest == digest).then(|| nodeboot_config::api::SourceReport {
        origin: origin.to_owned(),
        outcome: SourceOutcome::RolledBack {
            digest: rolled.digest,
            reason: super::clean(&rolled.reason),
            at_unix: rolled.at_unix,
        },
    })
}

/// `nodeboot-acquire --check`: the baked file read as at boot; findings on stderr.
fn check(opts: &Options) -> anyhow::Result<ExitCode> {
    let root = Root::open(&opts.root).map_err(anyhow::Error::msg)?;
    let found = match super::baked::read(&root) {
        super::Read::Absent => {
            eprintln!(
                "no baked file: none of /{} is present",
                super::baked::BAKED.join(", /")
            );
            return Ok(ExitCode::from(1));
        }
        super::Read::Unreadable { origin, message } => {
            eprintln!(
                "{}: cannot be read: {}",
                super::clean(&origin),
                super::clean(&message)
            );
            return Ok(ExitCode::from(2));
        }
        super::Read::Found(f) => f,
    };
    let mut token = None;
    match super::judge(found, &mut token) {
        Some(Outcome::Valid {
            origin, document, ..
        }) => {
            println!("{origin}: valid (sha256 {})", document.digest());
            for w in document.warnings() {
                eprintln!(
                    "{origin}: warning: {}: {}",
                    super::clean(&w.path),
                    super::clean(&w.message)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Outcome::Failed { report, .. }) => {
            if let SourceOutcome::Invalid { findings } = &report.outcome {
                for f in findings {
                    let at = if f.line > 0 {
                        format!("{}:{}: ", f.line, f.column)
                    } else {
                        String::new()
                    };
                    eprintln!("{}: {at}{}: {}", report.origin, f.path, f.message);
                }
            }
            eprintln!("{}: invalid; it would not be applied", report.origin);
            Ok(ExitCode::from(2))
        }
        Some(Outcome::Nothing { .. }) | None => {
            println!("/etc/nodeboot: a bootstrap token only, no configuration");
            Ok(ExitCode::SUCCESS)
        }
    }
}
