//! Offline commands: validate and generate configuration files.

/// Arguments of `nodeboot validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {}

/// Runs `nodeboot validate`.
pub fn run(_args: ValidateArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot validate is not built yet")
}
