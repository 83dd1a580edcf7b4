//! The command line of `nodeboot`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.

use clap::{Parser, Subcommand};

use crate::{console, offline, push};

/// Validate, generate and push node configurations; bootstrap nodes over their console.
#[derive(Debug, Parser)]
#[command(name = "nodeboot", version, max_term_width = 80)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The operator's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files offline
    Validate(offline::validate::Args),
    /// Write a valid configuration file from flags or an inventory
    Generate(Box<offline::generate::Args>),
    /// Send configurations to nodes
    Push(push::PushArgs),
    /// Show nodes' state (from their endpoint's /api/v1/status)
    Status(push::StatusArgs),
    /// Drive a node's console wizard unattended
    Bootstrap(console::BootstrapArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
