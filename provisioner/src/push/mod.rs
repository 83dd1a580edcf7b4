//! Pushing configurations to nodes over HTTPS, and reading their status.

/// Arguments of `nodeboot push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {}

/// Runs `nodeboot push`.
pub fn run(_args: PushArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot push is not built yet")
}
