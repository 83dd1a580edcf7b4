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
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
