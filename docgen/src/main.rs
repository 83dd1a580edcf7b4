//! `nodeboot-docgen BINARY OUT`: writes the man pages and completions of one of nodeboot's
//! binaries (`nodeboot-agent`, `nodeboot-acquire`, `nodeboot-wizard`, `nodeboot-check`,
//! `nodeboot`, `nodeboot-image`) under OUT. Run by `packaging/build-deb`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Writes man pages (OUT/man/*.1) and completions (OUT/completions/*) for one binary.
#[derive(Debug, Parser)]
#[command(name = "nodeboot-docgen", version, max_term_width = 80)]
struct Cli {
    /// Which binary's documentation to write
    #[arg(value_parser = [
        "nodeboot-agent",
        "nodeboot-acquire",
        "nodeboot-wizard",
        "nodeboot-check",
        "nodeboot",
        "nodeboot-image",
    ])]
    binary: String,
    /// Directory to write into (created when missing)
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.binary.as_str() {
        "nodeboot-agent" => nodeboot_agent::cmdline::Cli::command(),
        "nodeboot-acquire" => nodeboot_agent::cmdline::AcquireCli::command(),
        "nodeboot-wizard" => nodeboot_agent::cmdline::WizardCli::command(),
        "nodeboot-check" => nodeboot_agent::cmdline::CheckCli::command(),
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

    /// `nodeboot-check` has no subcommand: one page, and completions under its own name.
    #[test]
    fn nodeboot_check_gets_its_own_page() {
        let dir = tempfile::tempdir().unwrap();
        nodeboot_docgen::write_docs(nodeboot_agent::cmdline::CheckCli::command(), dir.path())
            .unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-check.1")).unwrap();
        assert!(page.contains(".TH nodeboot-check 1"), "{page}");
        assert!(page.contains("\\-\\-grace"), "{page}");
        assert!(dir.path().join("completions/_nodeboot-check").is_file());
    }

    /// `nodeboot-acquire` has no subcommand: one page, and completions under its own name.
    #[test]
    fn nodeboot_acquire_gets_its_own_page_and_completions() {
        let dir = tempfile::tempdir().unwrap();
        let written =
            nodeboot_docgen::write_docs(nodeboot_agent::cmdline::AcquireCli::command(), dir.path())
                .unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/nodeboot-acquire.1",
                "completions/nodeboot-acquire.bash",
                "completions/_nodeboot-acquire",
                "completions/nodeboot-acquire.fish"
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-acquire.1")).unwrap();
        assert!(page.contains(".TH nodeboot-acquire 1"), "{page}");
        assert!(page.contains("\\-\\-check"), "{page}");
    }

    /// `nodeboot-wizard` has no subcommand: one page, and completions under its own name; the
    /// agent's pages hold no `wizard` subcommand any more.
    #[test]
    fn nodeboot_wizard_gets_its_own_page_and_completions() {
        let dir = tempfile::tempdir().unwrap();
        let written =
            nodeboot_docgen::write_docs(nodeboot_agent::cmdline::WizardCli::command(), dir.path())
                .unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/nodeboot-wizard.1",
                "completions/nodeboot-wizard.bash",
                "completions/_nodeboot-wizard",
                "completions/nodeboot-wizard.fish"
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/nodeboot-wizard.1")).unwrap();
        assert!(page.contains(".TH nodeboot-wizard 1"), "{page}");
        assert!(page.contains("\\-\\-answers"), "{page}");

        let agent = tempfile::tempdir().unwrap();
        let written =
            nodeboot_docgen::write_docs(nodeboot_agent::cmdline::Cli::command(), agent.path())
                .unwrap();
        assert!(
            written.iter().all(|p| !p
                .strip_prefix(agent.path())
                .unwrap()
                .to_string_lossy()
                .contains("wizard")),
            "{written:?}"
        );
        assert!(
            !std::fs::read_to_string(agent.path().join("man/nodeboot-agent.1"))
                .unwrap()
                .contains("wizard")
        );
    }
}
