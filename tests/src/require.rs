//! What a test needs from the machine (root, a tool), stated once: a test whose need is not
//! met FAILS with a message that says how to meet it, so a run that did not test something
//! never passes for one that did.
//!
//! A developer without root or without the Debian packages may set
//! `NODEBOOT_TESTS_ALLOW_SKIP=1`: the test then returns early instead, and records the skip in
//! `target/nodeboot-skipped.txt`, which `scripts/test` counts and prints at the end of the run.
//! CI never sets it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable that lets a test whose need is not met return instead of failing.
pub const ALLOW_SKIP: &str = "NODEBOOT_TESTS_ALLOW_SKIP";

/// Where skipped tests are recorded, one line each (`scripts/test` reads and removes it).
pub fn skipped_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), |p| p.join("target"))
        .join("nodeboot-skipped.txt")
}

/// Whether the test may go on: `true` when `met`. Otherwise panics with `need` (what is
/// missing and how to get it), or, when [`ALLOW_SKIP`] is `1`, records the skip and returns
/// `false` for the test to return.
///
/// ```no_run
/// # use nodeboot_tests::require::{require, tool};
/// if !require(tool("qemu-img"), "qemu-img (Debian qemu-utils; scripts/setup installs it)") {
///     return;
/// }
/// ```
pub fn require(met: bool, need: &str) -> bool {
    if met {
        return true;
    }
    if std::env::var(ALLOW_SKIP).as_deref() != Ok("1") {
        panic!(
            "this test needs {need}. Install it (bash scripts/setup) or run as root; \
             {ALLOW_SKIP}=1 skips such tests and counts them"
        );
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    let line = format!("{test}: needs {need}\n");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skipped_file())
    {
        let _ = f.write_all(line.as_bytes());
    }
    eprintln!("not run ({ALLOW_SKIP}=1): {line}");
    false
}

/// Whether the effective user is root.
pub fn root() -> bool {
    effective_uid() == 0
}

/// Whether `name` is an executable found on `PATH`, `/usr/sbin` or `/sbin`, or `name` is an
/// absolute path to an executable.
pub fn tool(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.starts_with('/') {
        return executable(Path::new(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|dir| executable(&dir.join(name)))
}

/// The effective uid, read from `/proc/self/status` (this crate has no libc binding).
fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|euid| euid.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_tool_is_found_and_a_missing_one_is_not() {
        assert!(tool("sh"));
        assert!(tool("/bin/sh"));
        assert!(!tool("nodeboot-no-such-tool"));
    }

    #[test]
    fn a_met_need_goes_on() {
        assert!(require(true, "nothing"));
    }

    #[test]
    #[should_panic(expected = "this test needs a missing thing")]
    fn an_unmet_need_fails_the_test() {
        // With the variable set, require() would return instead: the panic is then ours.
        if std::env::var(ALLOW_SKIP).as_deref() == Ok("1") {
            panic!("this test needs a missing thing (variable set: checked by hand)");
        }
        require(false, "a missing thing");
    }
}
