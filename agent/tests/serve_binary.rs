//! `nodeboot-agent serve` as a process: certificate kept across restarts, banner, an image
//! builder's certificate, SIGTERM, token file and logs, and the README's curl commands.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use https::{Client, valid_xml, valid_xml_path};

/// A running agent process whose stderr is collected.
struct Agent {
    child: Child,
    addr: std::net::SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Agent {
    fn start(root: &Path, extra: &[&str]) -> Agent {
        Agent::start_under(&[], root, extra)
    }

    /// Starts the agent as the last argument of `wrapper` (e.g. `prlimit --nofile=…`).
    fn start_under(wrapper: &[&str], root: &Path, extra: &[&str]) -> Agent {
        let agent = env!("CARGO_BIN_EXE_nodeboot-agent");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(agent);
                c
            }
            None => Command::new(agent),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--reboot", "none"])
            .arg("--root")
            .arg(root)
            .args(extra);
        let (child, addr, log) = common::spawn_serve(command);
        let addr = addr.unwrap_or_else(|| panic!("agent did not start: {}", log.lock().unwrap()));
        Agent { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Agent {
    /// A test that fails leaves no agent running (it would keep the test's output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fingerprint_of(agent: &Agent) -> String {
    let log = agent.log();
    let fp = log
        .split("fingerprint=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint logged: {log}"));
    fp.to_string()
}

#[tokio::test]
async fn restart_reuses_the_certificate_and_sigterm_stops_cleanly() {
    let root = common::image_root();
    let first = Agent::start(root.path(), &[]);
    let fp = fingerprint_of(&first);
    assert!(first.log().contains("certificate=Generated"));
    // The pinned client proves the served certificate is the one logged.
    let status = Client::new(first.addr, &fp)
        .get("/api/v1/status", "*/*")
        .await
        .json();
    assert_eq!(status["fingerprint"], fp.as_str());
    let banner = std::fs::read_to_string(root.path().join("run/issue.d/nodeboot.issue")).unwrap();
    assert!(
        banner.contains(&format!("https://{}/", first.addr)),
        "{banner}"
    );
    assert!(banner.contains(&fp), "{banner}");
    let code = first.terminate();
    assert!(code.success(), "exit after SIGTERM: {code}");

    let second = Agent::start(root.path(), &[]);
    assert!(second.log().contains("certificate=Reused"));
    assert_eq!(fingerprint_of(&second), fp);
    let status = Client::new(second.addr, &fp)
        .get("/api/v1/status", "*/*")
        .await;
    assert_eq!(status.status, 200);
    assert!(second.terminate().success());
}

#[tokio::test]
async fn an_image_builders_certificate_is_served() {
    let root = common::image_root();
    let (cert_pem, key_pem) =
        nodeboot_agent::server::tls::generate(&nodeboot_agent::server::tls::SubjectNames {
            hostname: "builder-cert".into(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    let identity = nodeboot_agent::server::tls::load(&cert, &key).unwrap();
    let agent = Agent::start(
        root.path(),
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(agent.log().contains("certificate=Supplied"));
    assert_eq!(fingerprint_of(&agent), identity.fingerprint);
    let r = Client::new(agent.addr, &identity.fingerprint)
        .get("/", "text/html")
        .await;
    assert_eq!(r.status, 200);
    assert!(!root.path().join("var/lib/nodeboot/tls/key.pem").exists());
    assert!(agent.terminate().success());
}

#[tokio::test]
async fn token_file_is_enforced_and_no_secret_reaches_the_log() {
    let root = common::image_root();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "bootstrap-tok-9c2e\n").unwrap();
    let agent = Agent::start(root.path(), &["--token-file", token_file.to_str().unwrap()]);
    let client = Client::new(agent.addr, &fingerprint_of(&agent));
    let xml = valid_xml();
    let r = client
        .post_xml(&xml, &[("authorization", "Bearer not-the-token")])
        .await;
    assert_eq!(r.status, 401);
    let r = client
        .post_xml(&xml, &[("authorization", "Bearer bootstrap-tok-9c2e")])
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Wait until applied, then look at everything the agent logged.
    client.wait_for_state("configured").await;
    let log = agent.log();
    assert!(log.contains("configuration applied"), "{log}");
    assert!(!log.contains("bootstrap-tok-9c2e"), "{log}");
    assert!(!log.contains("not-the-token"), "{log}");
    assert!(!log.contains("$6$"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    assert!(agent.terminate().success());
}

#[tokio::test]
async fn a_failed_apply_shows_clients_its_class_and_logs_its_detail() {
    const HTML: &str = "text/html,*/*;q=0.8";
    const MESSAGE: &str = "the configuration could not be applied: a path under the node's \
                           root is a link, not a regular file, or not owned as it must be; the \
                           node keeps its previous configuration; see `journalctl -u nodeboot-agent`";
    // A FIFO and a link planted where the apply writes: both fail on a host path.
    for plant in ["fifo", "link"] {
        let root = common::image_root();
        let target = root.path().join("etc/hostname");
        let _ = std::fs::remove_file(&target);
        match plant {
            "fifo" => nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .unwrap(),
            _ => std::os::unix::fs::symlink("/etc/hostname", &target).unwrap(),
        }
        let host_path = root.path().to_str().unwrap().to_string();
        let agent = Agent::start(root.path(), &[]);
        let client = Client::new(agent.addr, &fingerprint_of(&agent));
        let r = client.post_xml(&valid_xml(), &[]).await;
        assert_eq!(r.status, 202, "{plant}: {}", r.body);
        assert!(!r.body.contains(&host_path));

        let v = client.wait_for_state("failed").await;
        let status = v.to_string();
        assert_eq!(v["error"], MESSAGE, "{plant}");
        assert_eq!(v["last_attempt"]["outcome"], "failed");
        assert_eq!(v["last_attempt"]["message"], MESSAGE, "{plant}");
        let page = client.get("/", HTML).await;
        assert!(page.body.contains("Apply failed"), "{plant}");
        for (what, body) in [("status", &status), ("page", &page.body)] {
            assert!(
                !body.contains(&host_path),
                "{plant}: {what} shows {host_path}: {body}"
            );
            assert!(!body.contains("os error"), "{plant}: {what}: {body}");
        }
        // The journal has the detail: the host path and what was found there.
        let log = agent.log();
        let found = if plant == "fifo" {
            "is a FIFO, not a regular file"
        } else {
            "is a symbolic link"
        };
        assert!(
            log.contains(&format!("{host_path}/etc/hostname")) && log.contains(found),
            "{plant}: {log}"
        );
        assert!(agent.terminate().success());

        // After a restart the failure comes from the node's record: still no detail.
        let agent = Agent::start(root.path(), &[]);
        let client = Client::new(agent.addr, &fingerprint_of(&agent));
        let v = client.wait_for_state("failed").await;
        assert_eq!(v["error"], MESSAGE, "{plant} after a restart");
        let status = v.to_string();
        let page = client.get("/", HTML).await;
        for body in [&status, &page.body] {
            assert!(
                !body.contains(&host_path),
                "{plant} after a restart: {body}"
            );
        }
        assert!(agent.terminate().success());
    }
}

fn curl(args: &[&str]) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-sS", "-k", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/apt-packages)");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.trim_end().rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn the_readme_curl_commands_work() {
    let file = valid_xml_path();
    let file = file.to_str().unwrap();

    let root = common::image_root();
    let agent = Agent::start(root.path(), &[]);
    let url = format!("https://{}/configuration/bootstrap", agent.addr);
    let (code, body) = curl(&["-F", &format!("file=@{file}"), &url]);
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(agent.terminate().success());

    let root = common::image_root();
    let agent = Agent::start(root.path(), &[]);
    let url = format!("https://{}/configuration/bootstrap", agent.addr);
    let (code, body) = curl(&[
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        &format!("@{file}"),
        &url,
    ]);
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(agent.terminate().success());
}

#[tokio::test]
async fn connections_are_kept_below_the_descriptor_limit() {
    let root = common::image_root();
    // Soft 200, hard 300: the agent raises its soft limit to 300 and serves 300 - 64. (The
    // shell execs the agent, so the pid is the agent's; prlimit would fork and wait.)
    let agent = Agent::start_under(
        &[
            "sh",
            "-c",
            "ulimit -S -n 200 && ulimit -H -n 300 && exec \"$0\" \"$@\"",
        ],
        root.path(),
        &["--max-connections", "1024"],
    );
    let log = agent.log();
    assert!(
        log.contains("--max-connections 1024 lowered to 236: the descriptor limit is 300"),
        "{log}"
    );
    assert!(log.contains("descriptors=300 max_connections=236"), "{log}");
    let pid = agent.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["300", "300"],
        "{line}"
    );
    assert!(agent.terminate().success());
}

fn warnings_of(log: &str) -> usize {
    log.matches("accepting a connection failed").count()
}

#[tokio::test]
async fn out_of_descriptors_the_agent_pauses_warns_once_per_interval_and_recovers() {
    let root = common::image_root();
    let mut agent = Agent::start(root.path(), &["--max-per-address", "1000"]);
    let fp = fingerprint_of(&agent);
    let pid = agent.child.id();
    // Lower the running agent's descriptor limit to 20 above what it holds now.
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open + 20;
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("prlimit (util-linux) is installed");
    assert!(status.success());
    // Plain TCP connections that never start TLS: the agent holds each accepted one for its
    // 10 s handshake timeout, and runs out of descriptors after about 20.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(tokio::net::TcpStream::connect(agent.addr).await.unwrap());
    }
    let mut first = None;
    for _ in 0..2000 {
        if warnings_of(&agent.log()) > 0 {
            first = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = first.unwrap_or_else(|| panic!("no warning: {}", agent.log()));
    // Accept retries every 100 ms meanwhile; the log says so once per 5 s interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = agent.log();
    let intervals = first.elapsed().as_secs() / 5 + 1;
    assert!(
        warnings_of(&log) as u64 <= intervals,
        "{} warnings in {:?}: {log}",
        warnings_of(&log),
        first.elapsed()
    );
    assert!(log.contains("Too many open files"), "{log}");
    assert!(agent.child.try_wait().unwrap().is_none(), "the agent died");

    // Once the clients leave, the agent serves again.
    drop(held);
    let client = Client::new(agent.addr, &fp);
    let mut served = false;
    for _ in 0..200 {
        let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client.config.clone());
        let hs = tokio::time::timeout(
            Duration::from_secs(1),
            connector.connect(
                rustls::pki_types::ServerName::IpAddress(agent.addr.ip().into()),
                tcp,
            ),
        )
        .await;
        if matches!(hs, Ok(Ok(_))) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the agent did not serve again: {}", agent.log());
    assert_eq!(client.get("/api/v1/status", "*/*").await.status, 200);
    assert!(agent.terminate().success());
}

/// A power cut after the commit point: the next start completes the apply, but the running
/// system booted from the old files, so the agent reboots into the configuration instead of
/// serving (found by the VM suite's powerloss scenario: the node kept its generic hostname and
/// served a "configured" banner until someone rebooted it).
#[test]
fn an_apply_completed_at_start_reboots_instead_of_serving() {
    use nodeboot_agent::apply::{NodeState, Step, apply_config_with, read_state};
    let root = common::image_root();
    let config = common::proxying_dual();
    let doc = common::doc_for(&config);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        apply_config_with(root.path(), &doc, common::NOW, &mut |s| {
            if s == Step::JournalCommitted {
                panic!("power cut after the commit point");
            }
        })
    }));
    std::panic::set_hook(quiet);
    assert!(cut.is_err(), "the apply was not cut");

    let marker = root.path().join("rebooted");
    let child = Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"))
        .args(["serve", "--listen", "127.0.0.1:0", "--reboot-command"])
        .arg(format!("touch {}", marker.display()))
        .arg("--root")
        .arg(root.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !marker.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(marker.exists(), "no reboot requested: {log}");
    assert!(
        log.contains("recovered an interrupted apply at start; rebooting into the result"),
        "{log}"
    );
    assert!(
        !log.contains("listening on"),
        "served after completing: {log}"
    );
    assert!(matches!(
        read_state(root.path()).unwrap(),
        NodeState::Configured { .. }
    ));
}
