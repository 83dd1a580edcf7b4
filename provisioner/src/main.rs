//! `nodeboot`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nodeboot::{console, offline, push};

/// Validate, generate and push node configurations; bootstrap nodes over their console.
#[derive(Debug, Parser)]
#[command(name = "nodeboot", version, max_term_width = 80)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check configuration files offline
    Validate(offline::validate::Args),
    /// Write a valid configuration file from flags or an inventory
    Generate(Box<offline::generate::Args>),
    /// Send configurations to nodes
    Push(push::PushArgs),
    /// Drive a node's console wizard unattended
    Bootstrap(console::BootstrapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => offline::validate::run(args),
        Command::Generate(args) => offline::generate::run(*args),
        Command::Push(args) => push::run(args),
        Command::Bootstrap(args) => console::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodeboot: {e:#}");
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
