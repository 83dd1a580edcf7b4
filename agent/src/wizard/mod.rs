//! The console installation wizard.

/// Arguments of `nodeboot-agent wizard`.
#[derive(Debug, clap::Args)]
pub struct WizardArgs {}

/// Runs `nodeboot-agent wizard`.
pub fn run(_args: WizardArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("nodeboot-agent wizard is not built yet")
}
