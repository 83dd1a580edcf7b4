//! `nodeboot-docgen BINARY OUT`: writes the man pages and completions of one of nodeboot's
//! binaries (`nodeboot-agent`, `nodeboot-acquire`, `nodeboot-wizard`, `nodeboot-check`,
//! `nodeboot`, `nodeboot-image`) under OUT. Run by `packaging/build-deb`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Makes a binary's clap command.
type CommandOf = fn() -> clap::Command;

/// Every binary documented, and its command line.
const BINARIES: [(&str, CommandOf); 6] = [
    ("nodeboot-agent", nodeboot_agent::cmdline::Cli::command),
    (
        "nodeboot-acquire",
        nodeboot_agent::cmdline::AcquireCli::command,
    ),
    (
        "nodeboot-wizard",
        nodeboot_agent::cmdline::WizardCli::command,
    ),
    ("nodeboot-check", nodeboot_agent::cmdline::CheckCli::command),
    ("nodeboot", nodeboot::cmdline::Cli::command),
    ("nodeboot-image", nodeboot_image::cmdline::Cli::command),
];

/// Writes man pages (OUT/man/*.1) and completions (OUT/completions/*) for one binary.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-docgen", version, max_term_width = 80)]
struct Cli {
    /// Which binary's documentation to write
    #[arg(value_parser = BINARIES.map(|(name, _)| name))]
    binary: String,
    /// Directory to write into (created when missing)
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some((_, command)) = BINARIES.iter().find(|(name, _)| *name == cli.binary) else {
        // clap allows only the names above.
        eprintln!("nodeboot-docgen: no binary {}", cli.binary);
        return ExitCode::FAILURE;
    };
    let command = command();
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

    /// Writes `cmd`'s documentation into a new directory; the directory, and the files
    /// written relative to it.
    fn docs_of(cmd: clap::Command) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let written = nodeboot_docgen::write_docs(cmd, dir.path()).unwrap();
        let names = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        (dir, names)
    }

    /// The files a binary without subcommands gets: one page, three completions.
    fn one_page(name: &str) -> [String; 4] {
        [
            format!("man/{name}.1"),
            format!("completions/{name}.bash"),
            format!("completions/_{name}"),
            format!("completions/{name}.fish"),
        ]
    }

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// `nodeboot-check` has no subcommand: one page, and completions under its own name.
    #[test]
    fn nodeboot_check_gets_its_own_page() {
        let (dir, names) = docs_of(nodeboot_agent::cmdline::CheckCli::command());
        assert_eq!(names, one_page("nodeboot-check"));
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-check.1")).unwrap();
        assert!(page.contains(".TH nodeboot-check 1"), "{page}");
        assert!(page.contains("\\-\\-grace"), "{page}");
        assert!(dir.path().join("completions/_nodeboot-check").is_file());
    }

    /// `nodeboot-acquire` has no subcommand: one page, and completions under its own name.
    #[test]
    fn nodeboot_acquire_gets_its_own_page_and_completions() {
        let (dir, names) = docs_of(nodeboot_agent::cmdline::AcquireCli::command());
        assert_eq!(names, one_page("nodeboot-acquire"));
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-acquire.1")).unwrap();
        assert!(page.contains(".TH nodeboot-acquire 1"), "{page}");
        assert!(page.contains("\\-\\-check"), "{page}");
    }

    /// `nodeboot-wizard` has no subcommand: one page, and completions under its own name; the
    /// agent's pages hold no `wizard` subcommand any more.
    #[test]
    fn nodeboot_wizard_gets_its_own_page_and_completions() {
        let (dir, names) = docs_of(nodeboot_agent::cmdline::WizardCli::command());
        assert_eq!(names, one_page("nodeboot-wizard"));
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-wizard.1")).unwrap();
        assert!(page.contains(".TH nodeboot-wizard 1"), "{page}");
        assert!(page.contains("\\-\\-answers"), "{page}");

        let (agent, written) = docs_of(nodeboot_agent::cmdline::Cli::command());
        assert!(written.iter().all(|p| !p.contains("wizard")), "{written:?}");
        assert!(
            !std::fs::read_to_string(agent.path().join("man/nodeboot-agent.1"))
                .unwrap()
                .contains("wizard")
        );
    }
}
