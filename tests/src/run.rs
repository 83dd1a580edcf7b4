//! Running commands in tests, and showing what they did in assertion messages.

use std::path::Path;
use std::process::{Command, Output};

/// Exit status, stdout and stderr, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, asserts it succeeded (the command and its stderr otherwise) and returns its
/// stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `nodeboot-agent status` (the binary `agent`) reports `root` as configured.
pub fn reports_configured(agent: &Path, root: &Path) -> bool {
    let out = Command::new(agent)
        .args(["status", "--json", "--root"])
        .arg(root)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("\"configured\"")
}

/// A current-thread tokio runtime with time and I/O, for a test's or benchmark's thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
