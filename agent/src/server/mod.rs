//! The HTTPS configuration receiver on port 8443.

/// Arguments of `nodeboot-agent serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `nodeboot-agent serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot-agent serve is not built yet")
}
