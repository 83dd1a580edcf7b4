//! `nodeboot-image`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nodeboot_image::{bake, build, ova};

/// Builds nodeboot node images with the agent inside, and packages disks as OVAs.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-image", version, max_term_width = 80)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a Debian 12 node image from packages
    Build(build::BuildArgs),
    /// Put the agent into an existing image (raw, qcow2, VMDK, OVA)
    Bake(bake::BakeArgs),
    /// Package a disk image as an OVA (and a streamOptimized VMDK)
    Ova(ova::OvaArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => build::run(args),
        Command::Bake(args) => bake::run(args),
        Command::Ova(args) => ova::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodeboot-image: {e:#}");
            ExitCode::FAILURE
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
