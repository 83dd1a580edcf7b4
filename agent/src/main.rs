//! `nodeboot-agent`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nodeboot_agent::{apply, server, wizard};

/// Turns an unconfigured node into a configured one: receive, validate, apply, reboot.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-agent", version, max_term_width = 80)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => server::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Wizard(args) => wizard::run(args),
        Command::Status(args) => apply::run_status(args),
        Command::Reset(args) => apply::run_reset(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodeboot-agent: {e:#}");
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
