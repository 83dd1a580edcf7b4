//! Running commands in tests, and showing what they did in assertion messages.

use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// Exit status, stdout and stderr, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON a `--json` run printed (its whole output in the panic message when it is not
/// JSON).
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown(out)))
}

/// Reads a server's log (its stderr) line by line on a thread of its own into a shared text
/// kept up to date, and sends the address of each `listening on https://ADDR/` line; the
/// sender is dropped when the log ends (the server exited).
pub fn follow_log(stderr: impl Read + Send + 'static) -> (Arc<Mutex<String>>, Receiver<String>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, listening) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on https://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap().to_string());
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    (log, listening)
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
