//! The command lines of the agent crate's four binaries, `nodeboot-agent` ([`Cli`]),
//! `nodeboot-acquire` ([`AcquireCli`]), `nodeboot-wizard` ([`WizardCli`]) and `nodeboot-check`
//! ([`CheckCli`]): the clap definitions and nothing else. `main.rs` and `bin/*.rs` dispatch on
//! them; `nodeboot-docgen` renders the man pages and
//! completions from them.
//!
//! Each subcommand is a variant of [`Command`] holding its own `…Args` struct below; options
//! several commands share are one struct flattened into each ([`RebootArgs`],
//! [`ApplyRebootArgs`], [`NodeRootArg`]), so their help reads the same everywhere. A
//! new subcommand is a variant, its struct, and a line in `main.rs`. The modules the entry
//! points live in (`server`, `apply`, `wizard`) take these structs at their `run` and hand
//! plain values further down; nothing below them knows clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::builder::PossibleValue;
use clap::{Parser, Subcommand};
use ipnet::IpNet;

use crate::apply::reboot::{self, Reboot, RebootMethod};

/// Turns an unconfigured node into a configured one: receive, validate, apply, reboot.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-agent", version, max_term_width = 80)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The agent's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTPS configuration receiver (port 8443)
    Serve(ServeArgs),
    /// Validate and apply a configuration file, then reboot
    Apply(ApplyArgs),
    /// Show whether the node is unconfigured, applying or configured
    Status(StatusArgs),
    /// Return the node to its unconfigured image state (for image builders)
    Reset(ResetArgs),
}

/// Arguments of `nodeboot-agent serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    nodeboot-agent serve\n  \
    nodeboot-agent serve --listen 127.0.0.1:8443 --root /tmp/node --reboot none\n  \
    nodeboot-agent serve --token-file /etc/nodeboot/token --allow 10.0.0.0/24")]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Root of the node's file system (a temporary directory in tests and demos)
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Certificate chain (PEM) to serve instead of the generated one
    #[arg(long, requires = "key", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert
    #[arg(long, requires = "cert", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Accept only uploads carrying the token in this file (form field or Bearer)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept clients from this network only (repeatable), e.g. 10.0.0.0/24
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<IpNet>,
    /// Seconds between a finished apply and the reboot
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub reboot_delay: u64,
    #[command(flatten)]
    pub reboot: RebootArgs,
    /// Connections served at once (lowered to fit the descriptor limit)
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Connections served at once from one client address (IPv6: one /64)
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_per_address: usize,
    /// Seconds a connection may stay open, however busy
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub max_lifetime: u64,
    /// Requests served on one connection before it is closed
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_requests: usize,
    /// Upload bodies read at once; more wait up to 2 s, then get 503
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_uploads: usize,
}

/// Arguments of `nodeboot-agent apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    nodeboot-agent apply node.xml\n  \
    nodeboot-agent apply --dry-run node.xml\n  \
    nodeboot-agent apply --root /mnt/image --reboot=none node.xml")]
pub struct ApplyArgs {
    /// The node's XML configuration file.
    pub file: PathBuf,
    /// The node's root directory (an image mounted elsewhere, or a test directory).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Show the plan and a diff of every file against the disk (secrets masked); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub reboot: ApplyRebootArgs,
}

/// Arguments of `nodeboot-agent status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  nodeboot-agent status\n  nodeboot-agent status --json")]
pub struct StatusArgs {
    /// The node's root directory.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Print JSON: {"state": ..., "digest": ..., ...}.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `nodeboot-agent reset`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (image builder, before sealing an image):\n  \
    nodeboot-agent reset --root /mnt/image")]
pub struct ResetArgs {
    /// The node's root directory.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

/// The reboot options every command that applies a configuration takes (`apply`, `serve`,
/// `nodeboot-wizard`), flattened into its arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RebootArgs {
    /// How to reboot after a successful apply (none: demos, tests)
    #[arg(long, value_enum, default_value_t = RebootMethod::Auto, value_name = "METHOD")]
    pub reboot: RebootMethod,
    /// Reboot by running this shell command instead (overrides --reboot)
    #[arg(long, value_name = "CMD")]
    pub reboot_command: Option<String>,
}

impl RebootArgs {
    /// The reboot the options ask for.
    pub fn reboot(&self) -> Arc<dyn Reboot> {
        reboot::chosen(self.reboot, self.reboot_command.as_deref())
    }

    /// True when the options ask for no reboot at all.
    pub fn is_none(&self) -> bool {
        self.reboot == RebootMethod::None && self.reboot_command.is_none()
    }
}

/// The reboot options of the commands a person runs to apply a file (`apply`,
/// `nodeboot-wizard`): how to reboot, then how long to wait first. `serve` takes [`RebootArgs`]
/// with a delay of its own (5 s by default: its reply must reach the browser first).
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyRebootArgs {
    #[command(flatten)]
    pub method: RebootArgs,
    /// Seconds to wait before rebooting.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub reboot_delay: u64,
}

impl ApplyRebootArgs {
    /// The reboot the options ask for.
    pub fn reboot(&self) -> Arc<dyn Reboot> {
        self.method.reboot()
    }

    /// True when the options ask for no reboot at all.
    pub fn is_none(&self) -> bool {
        self.method.is_none()
    }

    /// The wait before the reboot.
    pub fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.reboot_delay)
    }
}

/// `--reboot`'s values; the type itself is the apply module's and knows nothing of clap.
impl clap::ValueEnum for RebootMethod {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            RebootMethod::Auto,
            RebootMethod::Systemd,
            RebootMethod::Syscall,
            RebootMethod::None,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            RebootMethod::Auto => PossibleValue::new("auto")
                .help("systemd's reboot when systemd is PID 1, else the reboot system call"),
            RebootMethod::Systemd => PossibleValue::new("systemd").help("`systemctl reboot`"),
            RebootMethod::Syscall => PossibleValue::new("syscall").help("sync, then reboot(2)"),
            RebootMethod::None => PossibleValue::new("none")
                .help("Do not reboot (the new configuration takes effect at the next boot)"),
        })
    }
}

/// `--root` of the boot-time one-shots (`nodeboot-acquire`, `nodeboot-check`): `/` on a node,
/// a temporary directory in tests.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeRootArg {
    /// The node's root directory
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
}

/// Where udev puts the links of devices by file system label.
const DEFAULT_BY_LABEL: &str = "/dev/disk/by-label";

/// `nodeboot-acquire`: the unattended first boot, a one-shot run by `nodeboot-acquire.service`
/// before `nodeboot-agent serve` starts. A binary of its own, not a subcommand of the daemon:
/// the platform code (HTTP client, OVF and goal-state XML, gzip) is in no page of `serve`, whose
/// resident size follows its file's (see docs/benchmarks.md, "Agent size budget").
#[derive(Debug, Parser)]
#[command(
    name = "nodeboot-acquire",
    version,
    max_term_width = 80,
    about = "Look for the node's configuration at boot: baked file, local media, platform",
    after_help = "Sources, in order: /etc/nodeboot/node.xml or node.json, media \
    labelled cidata or config-2 and an OVF environment disc, the platform's metadata service. \
    The first that has a configuration wins; an invalid one is shown and nothing is applied.\n\n\
    Examples:\n  \
    nodeboot-acquire\n  \
    nodeboot-acquire --check\n  \
    nodeboot-acquire --root /tmp/node --devices /tmp/by-label --disc /dev/loop3 --no-reboot"
)]
pub struct AcquireCli {
    #[command(flatten)]
    pub node: NodeRootArg,
    /// The DMI directory the platform is detected from
    #[arg(long, default_value = "/sys/class/dmi/id", value_name = "DIR")]
    pub dmi: std::path::PathBuf,
    /// The kernel command line (nodeboot.platform=, nodeboot.token=)
    #[arg(long, default_value = "/proc/cmdline", value_name = "FILE")]
    pub cmdline: std::path::PathBuf,
    /// The directory of devices by file system label
    #[arg(long, default_value = DEFAULT_BY_LABEL, value_name = "DIR")]
    pub devices: std::path::PathBuf,
    /// An optical drive to look for an OVF environment disc in (repeatable; default /dev/sr*)
    #[arg(long = "disc", value_name = "DEV")]
    pub discs: Vec<std::path::PathBuf>,
    /// A file system to try on a medium, in order (repeatable; default iso9660, vfat, udf)
    #[arg(long = "fs-type", value_name = "TYPE")]
    pub file_systems: Vec<String>,
    /// Only check the baked file (/etc/nodeboot/node.xml or .json) and print its findings;
    /// read no other source, apply nothing (exit 0 valid, 1 absent, 2 invalid)
    #[arg(long)]
    pub check: bool,
    /// Apply but do not reboot (tests, demos)
    #[arg(long)]
    pub no_reboot: bool,
    /// Seconds between the apply and the reboot
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub reboot_delay: u64,
}

impl AcquireCli {
    /// The options of the domain code.
    pub fn options(self) -> crate::source::acquire::Options {
        let mut devices = if self.discs.is_empty() {
            crate::source::media::Devices::system()
        } else {
            crate::source::media::Devices {
                discs: self.discs,
                ..crate::source::media::Devices::none()
            }
        };
        // udev is waited for only when the media are the system's own.
        let sys_block = (self.devices == std::path::Path::new(DEFAULT_BY_LABEL))
            .then(|| PathBuf::from("/sys/class/block"));
        devices.by_label = self.devices;
        if !self.file_systems.is_empty() {
            devices.file_systems = self.file_systems;
        }
        crate::source::acquire::Options {
            root: self.node.root,
            dmi: self.dmi,
            cmdline: self.cmdline,
            devices,
            reboot: (!self.no_reboot).then(crate::apply::default_reboot),
            reboot_delay: self.reboot_delay,
            check: self.check,
            sys_block,
        }
    }
}

/// `nodeboot-wizard`: the console installation wizard, run through sudo by the `admin` login
/// of an unconfigured node (`/etc/profile.d/nodeboot-wizard.sh`). A binary of its own, not a
/// subcommand of the daemon: the dialog, the terminal code and the password hashing are in no
/// page of `serve`, whose resident size follows its file's (see docs/benchmarks.md, "Agent
/// size budget").
#[derive(Debug, Parser)]
#[command(
    name = "nodeboot-wizard",
    version,
    max_term_width = 80,
    about = "Run the console installation wizard",
    after_help = "Examples:\n  \
    sudo nodeboot-wizard\n  \
    nodeboot-wizard --answers mgr01.xml\n  \
    nodeboot-wizard --answers mgr01.xml --continue-on-failed-checks\n  \
    nodeboot-wizard --root /tmp/node --reboot=none --skip-checks\n\n\
    Before applying, the wizard checks that the gateway answers ARP, that each DNS\n\
    server answers and that each NTP server resolves and answers."
)]
pub struct WizardCli {
    /// Take every answer from this schema-1 Management Node file; ask nothing.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// The node's root directory (an image mounted elsewhere, or a test directory).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The interface whose current settings are offered as defaults.
    #[arg(long, default_value = "eth0")]
    pub interface: String,
    #[command(flatten)]
    pub reboot: ApplyRebootArgs,
    /// With --answers: apply even when a pre-apply check fails (the failures are printed).
    #[arg(long, requires = "answers", conflicts_with = "skip_checks")]
    pub continue_on_failed_checks: bool,
    /// Do not check the gateway, DNS and NTP servers before applying (labs without them).
    #[arg(long)]
    pub skip_checks: bool,
    /// Seconds each pre-apply check may take (retries included).
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub check_timeout: u64,
}

/// `--rollback`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RollbackArg {
    /// Roll back when the default gateway does not answer
    Gateway,
    /// Roll back when any check fails
    Any,
    /// Never roll back: report only
    Never,
}

impl From<RollbackArg> for nodeboot_config::api::RollbackOn {
    fn from(a: RollbackArg) -> Self {
        match a {
            RollbackArg::Gateway => Self::Gateway,
            RollbackArg::Any => Self::Any,
            RollbackArg::Never => Self::Never,
        }
    }
}

/// `--reboot`'s values for `nodeboot-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckReboot {
    /// systemd's reboot when systemd is PID 1, else the reboot system call
    Auto,
    /// `systemctl reboot`
    Systemd,
    /// Do not reboot after a rollback (tests, demos)
    None,
}

/// `nodeboot-check`: the first boot after an apply, a `Type=notify` service run by
/// `nodeboot-check.service` before the gettys and the agent when the apply left its marker
/// (`/var/lib/nodeboot/check-pending.json`). A binary of its own, not a subcommand of the
/// daemon: it runs once per configuration.
#[derive(Debug, Parser)]
#[command(
    name = "nodeboot-check",
    version,
    max_term_width = 80,
    about = "Check the configuration after its first reboot; roll it back if cut off",
    after_help = "Runs only when an apply left /var/lib/nodeboot/check-pending.json. The \
    configuration's <health rollback= grace= report=> values override the flags.\n\n\
    Examples:\n  \
    nodeboot-check\n  \
    nodeboot-check --rollback any --grace 300\n  \
    nodeboot-check --root /tmp/node --grace 3 --reboot none"
)]
pub struct CheckCli {
    #[command(flatten)]
    pub node: NodeRootArg,
    /// Seconds a blocking failure may last before the rollback (the file allows 10 to 3600)
    #[arg(long, default_value_t = 120, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub grace: u64,
    /// Which failed checks roll the node back
    #[arg(long, value_enum, default_value_t = RollbackArg::Gateway, value_name = "ON")]
    pub rollback: RollbackArg,
    /// Seconds the status is served read-only on 8443 after the reboot
    #[arg(long, default_value_t = 600, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub report_window: u64,
    /// Seconds each check keeps trying in one round
    #[arg(long, default_value_t = 20, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub check_deadline: u64,
    /// How to reboot after a rollback
    #[arg(long, value_enum, default_value_t = CheckReboot::Auto, value_name = "METHOD")]
    pub reboot: CheckReboot,
}

impl CheckCli {
    /// The options of the domain code.
    pub fn options(&self) -> crate::health::boot::Options {
        let deadline = std::time::Duration::from_secs(self.check_deadline);
        let defaults = crate::health::Policy::default();
        crate::health::boot::Options {
            root: self.node.root.clone(),
            grace: std::time::Duration::from_secs(self.grace),
            rollback: self.rollback.into(),
            report_secs: self.report_window,
            policy: crate::health::Policy {
                deadline,
                attempt: defaults.attempt.min(deadline),
                pause: defaults.pause,
            },
            round_pause: std::time::Duration::from_secs(2),
            reboot: match self.reboot {
                CheckReboot::Auto => reboot::default_reboot(),
                CheckReboot::Systemd => Arc::new(reboot::SystemdReboot),
                CheckReboot::None => Arc::new(reboot::NoReboot::new()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn check_cli_definition_is_consistent() {
        super::CheckCli::command().debug_assert();
    }

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn acquire_cli_definition_is_consistent() {
        super::AcquireCli::command().debug_assert();
    }

    #[test]
    fn wizard_cli_definition_is_consistent() {
        super::WizardCli::command().debug_assert();
    }
}
