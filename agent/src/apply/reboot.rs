//! The reboot seam: how the node restarts into its new configuration.
//!
//! A small trait with one real implementation per mechanism (systemd, the reboot(2) system
//! call, an operator-given command) and a recording fake for tests. Nothing here decides
//! *when* to reboot; [`after`] only waits a delay first so that a reply can leave.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Why a reboot could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RebootError {
    /// The reboot command could not be run or exited with a failure.
    #[error("running {command:?}: {message}")]
    Command {
        /// The command line.
        command: String,
        /// What went wrong (spawn error or exit status).
        message: String,
    },
    /// The reboot(2) system call failed (e.g. EPERM without CAP_SYS_BOOT).
    #[error("reboot system call: {0}")]
    Syscall(#[from] nix::Error),
}

/// How a command restarts the node after a successful apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootMethod {
    /// systemd's reboot when systemd is PID 1, else the reboot system call.
    Auto,
    /// `systemctl reboot`.
    Systemd,
    /// sync, then reboot(2).
    Syscall,
    /// Do not reboot (the new configuration takes effect at the next boot).
    None,
}

/// The reboot a method (or an operator's command, which overrides it) stands for.
pub fn chosen(method: RebootMethod, command: Option<&str>) -> Arc<dyn Reboot> {
    if let Some(cmd) = command {
        return Arc::new(CommandReboot(cmd.to_owned()));
    }
    match method {
        RebootMethod::Auto => default_reboot(),
        RebootMethod::Systemd => Arc::new(SystemdReboot),
        RebootMethod::Syscall => Arc::new(SyscallReboot),
        RebootMethod::None => Arc::new(NoReboot::new()),
    }
}

/// Restarts the machine. Implementations return once the restart has been requested; with
/// systemd that is before the machine actually goes down.
pub trait Reboot: Send + Sync + std::fmt::Debug {
    /// Requests a reboot.
    fn reboot(&self) -> Result<(), RebootError>;
}

/// `systemctl reboot`: the orderly way when systemd is PID 1 (services stop, file systems
/// unmount).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemdReboot;

impl Reboot for SystemdReboot {
    fn reboot(&self) -> Result<(), RebootError> {
        run_command("systemctl", &["reboot"])
    }
}

/// `sync` then reboot(2) directly: for images without systemd as PID 1 (e.g. a minimal init).
#[derive(Debug, Default, Clone, Copy)]
pub struct SyscallReboot;

impl Reboot for SyscallReboot {
    fn reboot(&self) -> Result<(), RebootError> {
        nix::unistd::sync();
        nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT)?;
        Ok(())
    }
}

/// An operator-given shell command (`--reboot-command`), run with `sh -c`: for special images
/// and for tests that want to see the reboot as a file or a message.
#[derive(Debug, Clone)]
pub struct CommandReboot(pub String);

impl Reboot for CommandReboot {
    fn reboot(&self) -> Result<(), RebootError> {
        run_command("sh", &["-c", &self.0])
    }
}

/// Does not reboot; counts the requests. `--reboot=none`, and the fake that tests of the
/// server and the wizard use to assert that exactly one reboot was requested.
#[derive(Debug, Default)]
pub struct NoReboot {
    calls: AtomicUsize,
}

impl NoReboot {
    /// A fresh counter at zero.
    pub fn new() -> Self {
        NoReboot::default()
    }

    /// How many times [`Reboot::reboot`] was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Reboot for NoReboot {
    fn reboot(&self) -> Result<(), RebootError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// True when systemd runs as PID 1 (the test systemd itself uses: `/run/systemd/system`
/// exists).
pub fn systemd_is_init() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// The production choice: systemd's reboot when systemd is PID 1, reboot(2) otherwise.
pub fn default_reboot() -> Arc<dyn Reboot> {
    if systemd_is_init() {
        Arc::new(SystemdReboot)
    } else {
        Arc::new(SyscallReboot)
    }
}

/// The one way a command reboots after an apply: wait `delay` (so that a reply or a message
/// can leave first), then request the reboot. Blocking: the apply CLI and the wizard call it
/// where they are; the server through [`schedule_reboot`].
pub fn after(delay: Duration, reboot: &dyn Reboot) -> Result<(), RebootError> {
    std::thread::sleep(delay);
    tracing::info!(delay_ms = delay.as_millis() as u64, "rebooting");
    reboot.reboot()
}

/// [`after`] on a separate thread, for the server, which must go on answering meanwhile. A
/// failure is logged; there is nobody left to tell.
pub fn schedule_reboot(reboot: Arc<dyn Reboot>, delay: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Err(e) = after(delay, reboot.as_ref()) {
            tracing::error!(error = %e, "reboot failed");
        }
    })
}

fn run_command(program: &str, args: &[&str]) -> Result<(), RebootError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| RebootError::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(RebootError::Command {
            command,
            message: format!("exited with {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_reboot_counts_calls() {
        let r = NoReboot::new();
        assert_eq!(r.calls(), 0);
        r.reboot().unwrap();
        r.reboot().unwrap();
        assert_eq!(r.calls(), 2);
    }

    #[test]
    fn command_reboot_runs_the_command_and_reports_failure() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("rebooted");
        let r = CommandReboot(format!("echo yes > {}", marker.display()));
        r.reboot().unwrap();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
        let e = CommandReboot("exit 3".into()).reboot().unwrap_err();
        assert_eq!(
            e.to_string(),
            "running \"sh -c exit 3\": exited with exit status: 3"
        );
    }

    #[test]
    fn schedule_reboot_calls_once_after_the_delay() {
        let r = Arc::new(NoReboot::new());
        let handle = schedule_reboot(r.clone(), Duration::from_millis(1));
        handle.join().unwrap();
        assert_eq!(r.calls(), 1);
    }
}
