//! `nodeboot-agent`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nodeboot_agent::cmdline::{Cli, Command};
use nodeboot_agent::{apply, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => server::run(args),
        Command::Apply(args) => apply::run(args),
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
