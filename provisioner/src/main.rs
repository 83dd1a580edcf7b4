//! `nodeboot`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nodeboot::cmdline::{Cli, Command};
use nodeboot::{console, offline, push};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => offline::validate::run(args),
        Command::Generate(args) => offline::generate::run(*args),
        Command::Push(args) => push::run(args),
        Command::Status(args) => push::run_status(args),
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
