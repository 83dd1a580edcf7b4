//! `nodeboot-docgen BINARY OUT`: writes the man pages and completions of one of nodeboot's
//! binaries (`nodeboot-agent`, `nodeboot`, `nodeboot-image`) under OUT. Run by
//! `packaging/build-deb`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Writes man pages (OUT/man/*.1) and completions (OUT/completions/*) for one binary.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-docgen", version, max_term_width = 80)]
struct Cli {
    /// Which binary's documentation to write
    #[arg(value_parser = ["nodeboot-agent", "nodeboot", "nodeboot-image"])]
    binary: String,
    /// Directory to write into (created when missing)
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.binary.as_str() {
        "nodeboot-agent" => nodeboot_agent::cmdline::Cli::command(),
        "nodeboot" => nodeboot::cmdline::Cli::command(),
        _ => nodeboot_image::cmdline::Cli::command(),
    };
    match nodeboot_docgen::write_docs(command, &cli.out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodeboot-docgen: {e:#}");
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
