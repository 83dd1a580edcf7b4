//! The command line of `nodeboot-agent`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.

use clap::{Parser, Subcommand};

use crate::{apply, server, wizard};

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
    Serve(server::ServeArgs),
    /// Validate and apply a configuration file, then reboot
    Apply(apply::ApplyArgs),
    /// Run the console installation wizard
    Wizard(wizard::WizardArgs),
    /// Show whether the node is unconfigured, applying or configured
    Status(apply::StatusArgs),
    /// Return the node to its unconfigured image state (for image builders)
    Reset(apply::ResetArgs),
    /// Look for the configuration at boot: baked file, local media, platform
    Acquire(AcquireArgs),
}

/// Arguments of `nodeboot-agent acquire`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Sources, in order: /etc/nodeboot/node.xml or node.json, media \
    labelled cidata or config-2 and an OVF environment disc, the platform's metadata service. \
    The first that has a configuration wins; an invalid one is shown and nothing is applied.\n\n\
    Examples:\n  \
    nodeboot-agent acquire\n  \
    nodeboot-agent acquire --root /tmp/node --devices /tmp/by-label --disc /dev/loop3 --no-reboot"
)]
pub struct AcquireArgs {
    /// The node's root directory
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: std::path::PathBuf,
    /// The DMI directory the platform is detected from
    #[arg(long, default_value = "/sys/class/dmi/id", value_name = "DIR")]
    pub dmi: std::path::PathBuf,
    /// The kernel command line (nodeboot.platform=, nodeboot.token=)
    #[arg(long, default_value = "/proc/cmdline", value_name = "FILE")]
    pub cmdline: std::path::PathBuf,
    /// The directory of devices by file system label
    #[arg(long, default_value = "/dev/disk/by-label", value_name = "DIR")]
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

impl AcquireArgs {
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
        devices.by_label = self.devices;
        if !self.file_systems.is_empty() {
            devices.file_systems = self.file_systems;
        }
        crate::source::acquire::Options {
            root: self.root,
            dmi: self.dmi,
            cmdline: self.cmdline,
            devices,
            reboot: (!self.no_reboot).then(crate::apply::default_reboot),
            reboot_delay: self.reboot_delay,
            check: self.check,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
