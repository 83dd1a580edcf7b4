//! The command line of `nodeboot-image`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.
//! The subcommands' `run` take these structs and hand plain values ([`Hardware`],
//! [`Format`]) further down; nothing below them knows clap.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Parser, Subcommand};

use crate::build::parse_size;
use crate::output::Format;
use crate::ova::Hardware;

/// Builds nodeboot node images with the agent inside, and packages disks as OVAs.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-image", version, max_term_width = 80)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The image builder's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a Debian 12 node image from packages
    Build(BuildArgs),
    /// Put the agent into an existing image (raw, qcow2, VMDK, OVA)
    Bake(BakeArgs),
    /// Package a disk image as an OVA (and a streamOptimized VMDK)
    Ova(OvaArgs),
}

/// Arguments of `nodeboot-image build`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  \
    nodeboot-image build --agent-deb target/debian/nodeboot-agent_0.1.0_amd64.deb --output-dir out\n\n\
    Needs root (mmdebstrap --mode=root, loop devices) and the Debian packages mmdebstrap,\n\
    e2fsprogs, dosfstools, gdisk, qemu-utils, mount and util-linux.")]
pub struct BuildArgs {
    /// The agent's Debian package to install (made by packaging/build-deb)
    #[arg(long)]
    pub agent_deb: PathBuf,
    /// Where the images are written
    #[arg(long, short, default_value = "out")]
    pub output_dir: PathBuf,
    /// Base name of the output files
    #[arg(long, default_value = "nodeboot-node")]
    pub name: String,
    /// Disk size, in bytes or with a K, M or G suffix (powers of 1024)
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub size: u64,
    /// Outputs to write, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "raw,qcow2,vmdk,ova")]
    pub formats: Vec<Format>,
    /// apt sources (one-line or deb822 file) for mmdebstrap [default: the machine's own
    /// /etc/apt sources that name bookworm]
    #[arg(long)]
    pub sources: Vec<PathBuf>,
    /// Another package to install (repeatable)
    #[arg(long = "package")]
    pub packages: Vec<String>,
    /// Working directory for the tree and the raw disk [default: OUTPUT_DIR/.work]
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub hardware: HardwareArgs,
}

/// Arguments of `nodeboot-image bake`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  \
    nodeboot-image bake vendor.ova --agent-deb nodeboot-agent_0.1.0_amd64.deb -o out\n\n\
    The image must be a Debian-based system on a GPT or MBR disk; needs root (loop devices).")]
pub struct BakeArgs {
    /// The image to bake into: raw, qcow2, VMDK or OVA
    pub image: PathBuf,
    /// The agent's Debian package to install
    #[arg(long)]
    pub agent_deb: PathBuf,
    /// Where the baked images are written
    #[arg(long, short, default_value = "out")]
    pub output_dir: PathBuf,
    /// Base name of the output files [default: the input's file stem]
    #[arg(long)]
    pub name: Option<String>,
    /// Outputs to write, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "raw,qcow2,vmdk,ova")]
    pub formats: Vec<Format>,
    /// A node's configuration (schema-1 XML or the Management Node JSON) to bake in as
    /// /etc/nodeboot/node.xml or node.json (mode 0600): the node configures itself at its
    /// first boot. Checked by the image's own agent before any output is written.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub hardware: HardwareArgs,
}

/// Arguments of `nodeboot-image ova`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  nodeboot-image ova node.qcow2 --output node.ova --cpus 4 --memory 8192"
)]
pub struct OvaArgs {
    /// The disk image to package (raw, qcow2, VMDK: anything qemu-img reads)
    pub disk: PathBuf,
    /// The OVA to write; the VMDK is written beside it as NAME-disk1.vmdk
    #[arg(long, short)]
    pub output: PathBuf,
    #[command(flatten)]
    pub hardware: HardwareArgs,
}

/// The virtual hardware the OVF descriptor asks for.
#[derive(Debug, Clone, clap::Args)]
pub struct HardwareArgs {
    /// The virtual machine's name in the OVF [default: the output's base name]
    #[arg(long)]
    pub vm_name: Option<String>,
    /// Virtual CPUs
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory in MiB
    #[arg(long, default_value_t = 4096)]
    pub memory: u32,
    /// VMware virtual hardware version, written both as the OVF's vmx-N and into the VMDK
    /// (13: ESXi 6.5 and later)
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(u32).range(4..=21))]
    pub hw_version: u32,
}

impl HardwareArgs {
    /// The hardware the options ask for.
    pub fn hardware(&self) -> Hardware {
        Hardware {
            vm_name: self.vm_name.clone(),
            cpus: self.cpus,
            memory: self.memory,
            hw_version: self.hw_version,
        }
    }
}

/// `--formats`' values; the type itself is the output module's and knows nothing of clap.
impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Format::Raw,
            Format::Qcow2,
            Format::Vmdk,
            Format::Ova,
            Format::Gce,
            Format::Vhd,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Format::Raw => PossibleValue::new("raw").help("The raw disk (`NAME.raw`)"),
            Format::Qcow2 => PossibleValue::new("qcow2").help("QCOW2 (`NAME.qcow2`), compressed"),
            Format::Vmdk => PossibleValue::new("vmdk")
                .help("A streamOptimized VMDK on its own (`NAME-disk1.vmdk`)"),
            Format::Ova => {
                PossibleValue::new("ova").help("An OVF 1.0 package (`NAME.ova`) holding that VMDK")
            }
            Format::Gce => PossibleValue::new("gce")
                .help("Google Compute Engine: `NAME.tar.gz` holding `disk.raw` (GNU tar)"),
            Format::Vhd => {
                PossibleValue::new("vhd").help("Azure: a fixed VHD (`NAME.vhd`), whole MiB")
            }
        })
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
