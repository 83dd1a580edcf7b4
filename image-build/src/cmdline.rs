//! The command line of `nodeboot-image`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.

use clap::{Parser, Subcommand};

use crate::{bake, build, ova};

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
    Build(build::BuildArgs),
    /// Put the agent into an existing image (raw, qcow2, VMDK, OVA)
    Bake(bake::BakeArgs),
    /// Package a disk image as an OVA (and a streamOptimized VMDK)
    Ova(ova::OvaArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
