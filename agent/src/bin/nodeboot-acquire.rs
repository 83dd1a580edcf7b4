//! `nodeboot-acquire`: parses arguments and runs the chain of configuration sources once, at
//! boot; the work lives in the library (`nodeboot_agent::source`). A binary apart from
//! `nodeboot-agent` so that the daemon carries none of the platform code (see
//! `nodeboot_agent::cmdline::AcquireCli`).

use std::process::ExitCode;

use clap::Parser;
use nodeboot_agent::cmdline::AcquireCli;

fn main() -> ExitCode {
    let cli = AcquireCli::parse();
    match nodeboot_agent::source::acquire::run(cli.options()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodeboot-acquire: {e:#}");
            ExitCode::FAILURE
        }
    }
}
