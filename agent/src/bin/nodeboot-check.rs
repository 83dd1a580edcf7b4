//! `nodeboot-check`: parses arguments and runs the checks of the first boot after an apply
//! once; the work lives in the library (`nodeboot_agent::health::boot`). A binary apart from
//! `nodeboot-agent` (see `nodeboot_agent::cmdline::CheckCli`).

use std::process::ExitCode;

use clap::Parser;
use nodeboot_agent::cmdline::CheckCli;
use nodeboot_agent::health::SystemProbe;
use nodeboot_agent::health::boot::{self, Verdict};

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
    let cli = CheckCli::parse();
    let opts = cli.options();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nodeboot-check: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    // READY=1 lets the gettys and the agent (ordered after this unit) start; without systemd
    // (no NOTIFY_SOCKET) it does nothing.
    let mut ready = || {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    };
    let result = runtime.block_on(boot::run(
        &opts,
        &SystemProbe::default(),
        &mut out,
        &mut ready,
    ));
    match result {
        Ok(Verdict::RolledBack(_) | Verdict::Healthy | Verdict::Unhealthy) => ExitCode::SUCCESS,
        Ok(Verdict::NothingToCheck | Verdict::Stale | Verdict::Recovered(_)) => ExitCode::SUCCESS,
        Err(e) => {
            // The gettys must not wait for a failed check: say ready before exiting.
            ready();
            eprintln!("nodeboot-check: {e:#}");
            ExitCode::FAILURE
        }
    }
}
