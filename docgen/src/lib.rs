//! Man pages and shell completions generated from the clap definitions of nodeboot's five
//! binaries, for the Debian packages: nothing is written by hand, so a change to an argument
//! changes the man page with it.
//!
//! A crate of its own so that the shipped binaries carry no man-page or completion renderer
//! (`nodeboot-docgen` runs at packaging time only).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;

/// Writes one man page per visible command (`tool.1`, `tool-serve.1`, …) under `out/man` and
/// completions for bash, zsh and fish under `out/completions`; returns the files written.
pub fn write_docs(mut cmd: clap::Command, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let man_dir = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    let mut pages = vec![(name.clone(), cmd.clone())];
    // After build(), a subcommand's display name is `parent-sub` and its bin name `parent sub`.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let page = sub
            .get_display_name()
            .map_or_else(|| format!("{name}-{}", sub.get_name()), str::to_string);
        pages.push((page, sub.clone()));
    }
    for (page, command) in pages {
        let path = man_dir.join(format!("{page}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut buf)
            .with_context(|| format!("rendering {page}.1"))?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, &name, &completions)
            .with_context(|| format!("writing {shell} completions"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_are_written_for_every_visible_command() {
        let cmd = clap::Command::new("tool")
            .about("Does things")
            .subcommand(
                clap::Command::new("serve")
                    .about("Serves")
                    .arg(clap::arg!(--listen <ADDR> "Where")),
            )
            .subcommand(clap::Command::new("secret").hide(true));
        let dir = tempfile::tempdir().unwrap();
        let written = write_docs(cmd, dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/tool.1",
                "man/tool-serve.1",
                "completions/tool.bash",
                "completions/_tool",
                "completions/tool.fish"
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/tool-serve.1")).unwrap();
        assert!(page.contains(".TH tool-serve 1"), "{page}");
        assert!(page.contains("\\-\\-listen"), "{page}");
        let bash = std::fs::read_to_string(dir.path().join("completions/tool.bash")).unwrap();
        assert!(bash.contains("--listen"));
    }
}
