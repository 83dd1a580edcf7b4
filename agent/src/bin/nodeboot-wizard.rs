//! `nodeboot-wizard`: parses arguments and runs the console installation wizard; the work
//! lives in the library (`nodeboot_agent::wizard`). A binary apart from `nodeboot-agent` so
//! that the daemon carries none of the dialog, terminal or password-hashing code (see
//! `nodeboot_agent::cmdline::WizardCli`).

use std::process::ExitCode;

use clap::Parser;
use nodeboot_agent::cmdline::WizardCli;

fn main() -> ExitCode {
    let cli = WizardCli::parse();
    match nodeboot_agent::wizard::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodeboot-wizard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
