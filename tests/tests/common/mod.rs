//! Shared by the end-to-end suites: finds (building if needed) the workspace's binaries and
//! runs real `nodeboot-agent serve` processes on loopback with temporary roots.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nodeboot_tests::fixtures::{health, rolled_back};

/// The folder the test binary's cargo profile builds into (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The path of one of the workspace's binaries, built once per test process.
///
/// `cargo test` builds only the binaries of packages that have integration tests of their
/// own, so the suites ask cargo for the two they drive; cargo does nothing when they are
/// up to date. The build lock is free while tests run.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = profile_dir();
    let built = BUILT.get_or_init(|| {
        let mut cmd =
            nodeboot_tests::fixtures::cargo_build(&dir, &["--workspace", "--all-targets"]);
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build of the binaries failed: {s}")),
            Err(e) => Err(format!("running cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A free loopback port (bound, then released for the agent to take).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A real `nodeboot-agent serve` on loopback, with a temporary root and no reboot; its log
/// (stderr) is collected. Killed when dropped.
pub struct Agent {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    log: Arc<Mutex<String>>,
    listening: std::sync::mpsc::Receiver<String>,
    child: Child,
    extra: Vec<String>,
}

/// What the first boot after an apply shows, for [`Agent::reboot_after_apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterReboot {
    /// Checks in this phase (`run/nodeboot/health.json`): the read-only window.
    Checks(nodeboot_config::api::HealthPhase),
    /// The configuration was rolled back: the node is unconfigured again, with the record.
    RolledBack,
}

/// The reason of the gateway check that fails in the checks and the rollback record
/// [`Agent::reboot_after_apply`] leaves.
pub const GATEWAY_FAILED: &str = "gateway 10.0.0.1 did not answer ARP on eth0 within 120 s";

impl Agent {
    /// Starts an agent on a port of its choosing and waits until it listens.
    pub fn start() -> Agent {
        let mut agent = Agent::spawn("127.0.0.1:0".parse().unwrap());
        agent.wait_listening();
        agent
    }

    /// Starts an agent with extra `serve` arguments; `image` false leaves its root empty
    /// (not a node image: every apply fails).
    pub fn start_with(extra: &[&str], image: bool) -> Agent {
        let mut agent = Agent::spawn_with("127.0.0.1:0".parse().unwrap(), extra, image);
        agent.wait_listening();
        agent
    }

    /// Starts an agent on `addr` without waiting for it.
    pub fn spawn(addr: SocketAddr) -> Agent {
        Agent::spawn_with(addr, &[], true)
    }

    fn spawn_with(addr: SocketAddr, extra: &[&str], image: bool) -> Agent {
        let root = tempfile::tempdir().unwrap();
        if image {
            // the owners only where the test may set them (as root)
            let _ = nodeboot_tests::fixtures::populate_image(root.path());
        }
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Agent::spawn_in(addr, root, extra)
    }

    /// The node's reboot: stops the agent, lets `between` change its root (what the boot
    /// finds), and starts it again on the same address and root (same certificate).
    pub fn reboot(&mut self, between: impl FnOnce(&Path)) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        between(self.root.path());
        let root = std::mem::replace(&mut self.root, tempfile::tempdir().unwrap());
        let log = self.log();
        let again = Agent::spawn_in(self.addr, root, std::mem::take(&mut self.extra));
        again.log.lock().unwrap().insert_str(0, &log);
        *self = again;
        self.wait_listening();
    }

    /// Waits (at most 60 s) until the agent applied a configuration, then reboots it into
    /// `after`: the read-only window with checks of `digest` in a phase, or a rollback.
    pub fn reboot_after_apply(&mut self, digest: &str, after: AfterReboot) {
        self.wait_applied();
        let digest = digest.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.reboot(move |root| {
            let (rel, bytes) = match after {
                AfterReboot::Checks(phase) => (
                    nodeboot_config::api::HEALTH_STATUS_PATH,
                    serde_json::to_vec(&health(&digest, phase, now, GATEWAY_FAILED)).unwrap(),
                ),
                AfterReboot::RolledBack => {
                    std::fs::remove_file(root.join("var/lib/nodeboot/configured.json")).unwrap();
                    (
                        nodeboot_config::api::ROLLED_BACK_PATH,
                        serde_json::to_vec(&rolled_back(&digest, GATEWAY_FAILED, 1_796_000_000))
                            .unwrap(),
                    )
                }
            };
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        });
    }

    /// Waits (at most 60 s) until the agent logged that it applied a configuration (every
    /// file written and synced: a reboot from then on finds it whole).
    pub fn wait_applied(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.log().contains("configuration applied") {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent applied nothing: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_in(addr: SocketAddr, root: tempfile::TempDir, extra: Vec<String>) -> Agent {
        let mut child = Command::new(binary("nodeboot-agent"))
            .args(agent_args(addr, root.path()))
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (log, listening) = nodeboot_tests::run::follow_log(child.stderr.take().unwrap());
        Agent {
            addr,
            root,
            log,
            listening,
            child,
            extra,
        }
    }

    /// Waits (at most 30 s) until the agent says it listens, and learns its address.
    pub fn wait_listening(&mut self) {
        let addr = self
            .listening
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("agent did not start: {}", self.log()));
        self.addr = addr.parse().unwrap();
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The certificate fingerprint the agent logged at start (as its console shows it).
    pub fn fingerprint(&self) -> String {
        let log = self.log();
        log.split("fingerprint=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no fingerprint logged: {log}"))
            .trim_matches('"')
            .to_string()
    }

    /// Every file under the root, relative paths, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// The arguments that run the agent's endpoint on `addr` over `root`, with no reboot.
pub fn agent_args(addr: SocketAddr, root: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        addr.to_string(),
        "--root".into(),
        root.display().to_string(),
        "--reboot".into(),
        "none".into(),
    ]
}

/// Starts `nodeboot` with `args` (output collected; wait with `wait_with_output`), for a run
/// that goes on while the test reboots its nodes.
pub fn nodeboot_spawn(args: &[&str]) -> Child {
    Command::new(binary("nodeboot"))
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `nodeboot push … --wait` with `args` while `agents` apply what they are sent and
/// reboot into `after` (each with the digest it was sent: `digests`, in the same order).
pub fn push_through_reboots(
    args: &[&str],
    agents: &mut [&mut Agent],
    digests: &[String],
    after: AfterReboot,
) -> std::process::Output {
    let child = nodeboot_spawn(args);
    for (agent, digest) in agents.iter_mut().zip(digests) {
        agent.reboot_after_apply(digest, after);
    }
    child.wait_with_output().unwrap()
}

/// What `nodeboot` says of an answer it cannot read as the wire contract's types.
pub const OFF_CONTRACT: &str = "not as a nodeboot agent does";

/// `nodeboot push FILE --json` to `agent` (its certificate pinned, `token` the bootstrap token
/// file) with `extra` arguments, asserting that no answer was off the contract: the node's
/// entry in the report, and the run's output for assertion messages.
pub fn push_on_contract(
    agent: &Agent,
    file: &str,
    token: &str,
    extra: &[&str],
) -> (serde_json::Value, String) {
    let (node, fp) = (agent.addr.to_string(), agent.fingerprint());
    let out = nodeboot(&contract_args(&node, &fp, file, token, extra));
    let text = nodeboot_tests::run::shown(&out);
    assert!(!text.contains(OFF_CONTRACT), "{text}");
    (nodeboot_tests::run::json(&out)["nodes"][0].clone(), text)
}

/// The arguments of `nodeboot push FILE --json` to `node` with `fingerprint` pinned and `token`
/// the bootstrap token file, then `extra`.
fn contract_args<'a>(
    node: &'a str,
    fingerprint: &'a str,
    file: &'a str,
    token: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "push",
        node,
        file,
        "--fingerprint",
        fingerprint,
        "--token-file",
        token,
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

/// `nodeboot push FILE --json --wait` to `agent` (as [`push_on_contract`]) while the agent
/// applies it (`digest`) and reboots into `after`, asserting that no answer was off the
/// contract: the run's output.
pub fn push_through_reboot_on_contract(
    agent: &mut Agent,
    file: &str,
    token: &str,
    digest: &str,
    after: AfterReboot,
) -> std::process::Output {
    let (node, fp) = (agent.addr.to_string(), agent.fingerprint());
    let wait = ["--wait", "--wait-timeout", "60"];
    let args = contract_args(&node, &fp, file, token, &wait);
    let out = push_through_reboots(&args, &mut [agent], &[digest.to_string()], after);
    let text = nodeboot_tests::run::shown(&out);
    assert!(!text.contains(OFF_CONTRACT), "{text}");
    out
}

/// Runs `nodeboot` with `args`; HOME points nowhere so no real known-nodes file is touched.
pub fn nodeboot(args: &[&str]) -> std::process::Output {
    Command::new(binary("nodeboot"))
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap()
}
