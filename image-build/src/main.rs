//! `nodeboot-image`: parses arguments and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nodeboot_image::cmdline::{Cli, Command};
use nodeboot_image::{bake, build, ova};

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
