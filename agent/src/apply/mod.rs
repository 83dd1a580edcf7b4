//! Applying a validated configuration under a root directory: plan, stage, journal, replace, reboot.

/// Arguments of `nodeboot-agent apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {}

/// Runs `nodeboot-agent apply`.
pub fn run(_args: ApplyArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot-agent apply is not built yet")
}
