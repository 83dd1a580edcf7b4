//! Driving a node's console wizard unattended: transports, expect engine, profiles.

/// Arguments of `nodeboot bootstrap`.
#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {}

/// Runs `nodeboot bootstrap`.
pub fn run(_args: BootstrapArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot bootstrap is not built yet")
}
