//! `nodeboot-agent serve` in the first boot after an apply (the read-only status window, while
//! `run/nodeboot/health.json` is there) and on a node that rolled back
//! (`var/lib/nodeboot/rolled-back.json`): real processes on temporary roots, real HTTPS, the
//! banner file as getty reads it, and hostile records (links, oversize, garbage, control
//! characters).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use https::{Client, valid_xml};
use nodeboot_config::api::{
    CheckKind, CheckResult, HEALTH_STATUS_PATH, HealthPhase, HealthReport, HealthStatus,
    ROLLED_BACK_PATH, RollbackOn, RolledBack, StatusReport,
};

const BANNER: &str = "run/issue.d/nodeboot.issue";
const HOSTILE_REASON: &str = "gateway 10.0.0.1 did not answer\u{1b}[2J\u{7} <script>x</script>";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running agent whose stderr is collected; `addr` is None when it exited before listening.
struct Agent {
    child: Child,
    addr: Option<std::net::SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Agent {
    fn start(root: &Path) -> Agent {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--reboot", "none"])
            .arg("--root")
            .arg(root);
        let (child, addr, log) = common::spawn_serve(command);
        Agent { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn client(&self) -> Client {
        let addr = self
            .addr
            .unwrap_or_else(|| panic!("the agent did not listen: {}", self.log()));
        let log = self.log();
        let fp = log
            .split("fingerprint=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no fingerprint logged: {log}"));
        Client::new(addr, fp)
    }

    /// Waits (at most `within`) for the process to exit on its own.
    fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not stop: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A root with the generic image and a configuration applied to it; its digest.
fn configured_root() -> (tempfile::TempDir, String) {
    let root = common::image_root();
    let doc = common::doc_for(&common::proxying_dual());
    nodeboot_agent::apply::apply_config(root.path(), &doc).unwrap();
    (root, doc.digest().to_owned())
}

fn check(kind: CheckKind, subject: &str, passed: bool, reason: &str) -> CheckResult {
    CheckResult {
        kind,
        subject: subject.into(),
        passed,
        attempts: if passed { 1 } else { 4 },
        elapsed_ms: 1200,
        tried: vec![format!("asked {subject}")],
        reason: reason.into(),
    }
}

fn health(digest: &str, phase: HealthPhase, window_ends_unix: u64) -> HealthStatus {
    let gateway_passed = phase == HealthPhase::Healthy;
    HealthStatus {
        digest: digest.into(),
        phase,
        rollback_on: RollbackOn::Gateway,
        grace_secs: 120,
        started_unix: now(),
        window_ends_unix,
        report: HealthReport::new(
            vec![
                check(CheckKind::Addresses, "eth0", true, "eth0 has 10.0.0.31/24"),
                check(
                    CheckKind::Gateway,
                    "10.0.0.1 on eth0",
                    gateway_passed,
                    if gateway_passed {
                        "gateway 10.0.0.1 answered ARP on eth0"
                    } else {
                        HOSTILE_REASON
                    },
                ),
                check(CheckKind::Dns, "10.0.0.53", true, "10.0.0.53 answered"),
            ],
            1300,
        ),
    }
}

/// Writes `bytes` at `rel` under `root` as the checker and the rollback do (temp + rename).
fn write_record(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn banner(root: &Path) -> String {
    std::fs::read_to_string(root.join(BANNER)).unwrap()
}

fn no_control(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in {text:?}"
    );
}

#[tokio::test]
async fn the_first_boot_serves_its_checks_read_only_then_stops_at_the_window_end() {
    let (root, digest) = configured_root();
    let ends = now() + 12;
    let checking = health(&digest, HealthPhase::Checking, ends);
    write_record(
        root.path(),
        HEALTH_STATUS_PATH,
        &serde_json::to_vec(&checking).unwrap(),
    );
    let mut agent = Agent::start(root.path());
    let client = agent.client();

    let status: StatusReport = client.status_report().await;
    assert_eq!(status.state.as_str(), "configured");
    let shown = status.health.expect("the status carries the checks");
    assert_eq!(shown.phase, HealthPhase::Checking);
    assert_eq!(shown.digest, digest);
    assert_eq!(shown.report.checks.len(), 3);
    let reason = &shown.report.checks[1].reason;
    assert_eq!(
        reason,
        "gateway 10.0.0.1 did not answer[2J <script>x</script>"
    );

    let page = client.get("/", "text/html").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("checking: gateway 10.0.0.1 did not answer[2J &lt;script&gt;"),
        "{}",
        page.body
    );
    for subject in ["eth0", "10.0.0.1 on eth0", "10.0.0.53"] {
        assert!(page.body.contains(&format!("<code>{subject}</code>")));
    }
    assert!(!page.body.contains("<script>") && !page.body.contains("<form"));
    no_control(&page.body);

    let until = {
        let t = nodeboot_config::format_utc(ends as i64);
        format!("{} UTC", &t[11..16])
    };
    let refusal = format!("this node is configured; its status is served read-only until {until}");
    let upload = client.post_xml(&valid_xml(), &[]).await;
    assert_eq!(upload.status, 409, "{}", upload.body);
    assert_eq!(upload.json()["error"], refusal.as_str());
    let plan = client
        .send(
            "POST",
            "/configuration/plan",
            &[("content-type", "text/xml")],
            valid_xml(),
        )
        .await;
    assert_eq!(plan.status, 409, "{}", plan.body);
    assert_eq!(plan.json()["error"], refusal.as_str());

    let text = banner(root.path());
    assert!(
        text.contains("nodeboot: checks after the reboot: checking: gateway 10.0.0.1"),
        "{text}"
    );
    assert!(text.contains("    failed: gateway 10.0.0.1 on eth0: gateway"));
    assert!(text.contains(&format!("read-only until {until}")));
    assert!(!text.contains('\\'));
    no_control(&text);

    // The checker's next round: the status and the banner follow it.
    let healthy = health(&digest, HealthPhase::Healthy, ends);
    write_record(
        root.path(),
        HEALTH_STATUS_PATH,
        &serde_json::to_vec(&healthy).unwrap(),
    );
    let seen: StatusReport = serde_json::from_value(
        client
            .wait_for_status("the healthy phase", |s| s["health"]["phase"] == "healthy")
            .await,
    )
    .unwrap();
    assert_eq!(seen.health.unwrap().summary(), "healthy: 3 checks passed");
    let mut text = String::new();
    for _ in 0..100 {
        text = banner(root.path());
        if text.contains("healthy: 3 checks passed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("checks after the reboot: healthy: 3 checks passed"),
        "{text}"
    );
    assert!(!text.contains("failed:"), "{text}");

    // At the window's end the agent stops for good, successfully.
    let status = agent.exit_within(Duration::from_secs(60));
    assert!(status.success(), "{status}: {}", agent.log());
    assert!(agent.log().contains("stopping for good"), "{}", agent.log());
}

#[test]
fn a_configured_node_without_checks_or_past_its_window_exits_at_once() {
    let (root, digest) = configured_root();
    let mut agent = Agent::start(root.path());
    assert!(agent.addr.is_none(), "served: {}", agent.log());
    assert!(agent.exit_within(Duration::from_secs(30)).success());
    assert!(agent.log().contains("nothing to serve"), "{}", agent.log());

    let past = health(&digest, HealthPhase::Healthy, now() - 1);
    write_record(
        root.path(),
        HEALTH_STATUS_PATH,
        &serde_json::to_vec(&past).unwrap(),
    );
    let mut agent = Agent::start(root.path());
    assert!(agent.addr.is_none(), "served: {}", agent.log());
    assert!(agent.exit_within(Duration::from_secs(30)).success());
    assert!(
        agent.log().contains("window of this boot has ended"),
        "{}",
        agent.log()
    );
}

/// A link at a record's path to a valid record outside the root.
fn link_record(root: &Path, rel: &str, valid: &[u8], outside: &Path) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let target = outside.join("record.json");
    std::fs::write(&target, valid).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
}

/// Records over the size limit, and bytes that are no record.
fn hostile_variants(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut big = valid.to_vec();
    // still JSON-shaped at its start, but over the 64 KiB limit
    big.extend(std::iter::repeat_n(b' ', 70 * 1024));
    vec![
        ("oversize", big),
        ("garbage", b"\x00\xff{not json".to_vec()),
        ("wrong shape", br#"{"digest": 5}"#.to_vec()),
    ]
}

#[test]
fn hostile_health_records_are_served_as_absent() {
    let outside = tempfile::tempdir().unwrap();
    let (root, digest) = configured_root();
    let valid = serde_json::to_vec(&health(&digest, HealthPhase::Healthy, now() + 600)).unwrap();
    link_record(root.path(), HEALTH_STATUS_PATH, &valid, outside.path());
    let mut cases = vec![("link", None)];
    for (kind, bytes) in hostile_variants(&valid) {
        cases.push((kind, Some(bytes)));
    }
    for (kind, bytes) in cases {
        if let Some(b) = bytes {
            let _ = std::fs::remove_file(root.path().join(HEALTH_STATUS_PATH));
            std::fs::write(root.path().join(HEALTH_STATUS_PATH), b).unwrap();
        }
        let mut agent = Agent::start(root.path());
        assert!(agent.addr.is_none(), "{kind}: served: {}", agent.log());
        let status = agent.exit_within(Duration::from_secs(30));
        assert!(status.success(), "{kind}: {status}: {}", agent.log());
        let log = agent.log();
        assert!(log.contains("served as absent"), "{kind}: {log}");
        assert!(log.contains("nothing to serve"), "{kind}: {log}");
    }
}

fn rolled_back(digest: &str) -> RolledBack {
    RolledBack {
        digest: digest.into(),
        reason: HOSTILE_REASON.into(),
        at_unix: now(),
        checks: vec![check(
            CheckKind::Gateway,
            "10.0.0.1 on eth0",
            false,
            HOSTILE_REASON,
        )],
    }
}

#[tokio::test]
async fn a_rolled_back_node_shows_its_reason_and_accepts_a_corrected_file() {
    let root = common::image_root();
    let record = rolled_back(&"ab".repeat(32));
    write_record(
        root.path(),
        ROLLED_BACK_PATH,
        &serde_json::to_vec(&record).unwrap(),
    );
    let agent = Agent::start(root.path());
    let client = agent.client();

    let status: StatusReport = client.status_report().await;
    assert_eq!(status.state.as_str(), "unconfigured");
    assert!(status.health.is_none());
    let shown = status.rolled_back.expect("the status carries the rollback");
    assert_eq!(shown.digest, record.digest);
    assert_eq!(
        shown.summary(),
        "rolled back: gateway 10.0.0.1 did not answer[2J <script>x</script>"
    );

    let page = client.get("/", "text/html").await;
    let at = page
        .body
        .find("rolled back: gateway 10.0.0.1 did not answer[2J &lt;script&gt;")
        .unwrap_or_else(|| panic!("{}", page.body));
    assert!(
        at < page.body.find("id=\"state\"").unwrap(),
        "the reason comes first"
    );
    assert!(page.body.contains("<form") && !page.body.contains("<script>"));
    no_control(&page.body);

    let text = banner(root.path());
    assert!(
        text.starts_with(
            "nodeboot: ROLLED BACK. rolled back: gateway 10.0.0.1 did not answer[2J <script>"
        ),
        "{text}"
    );
    assert!(text.contains("this node is waiting for its configuration"));
    no_control(&text);

    // A corrected file is accepted; once it is applied the rollback is no longer shown.
    let upload = client.post_xml(&valid_xml(), &[]).await;
    assert_eq!(upload.status, 202, "{}", upload.body);
    let last = client.wait_for_state("configured").await;
    assert_eq!(last["rolled_back"], serde_json::Value::Null, "{last}");
}

#[tokio::test]
async fn hostile_rollback_records_are_served_as_absent() {
    let outside = tempfile::tempdir().unwrap();
    let root = common::image_root();
    let valid = serde_json::to_vec(&rolled_back(&"cd".repeat(32))).unwrap();
    link_record(root.path(), ROLLED_BACK_PATH, &valid, outside.path());
    let mut cases = vec![("link", None)];
    for (kind, bytes) in hostile_variants(&valid) {
        cases.push((kind, Some(bytes)));
    }
    for (kind, bytes) in cases {
        if let Some(b) = bytes {
            let _ = std::fs::remove_file(root.path().join(ROLLED_BACK_PATH));
            std::fs::write(root.path().join(ROLLED_BACK_PATH), b).unwrap();
        }
        let agent = Agent::start(root.path());
        let client = agent.client();
        let status: StatusReport = client.status_report().await;
        assert_eq!(status.state.as_str(), "unconfigured", "{kind}");
        assert!(status.rolled_back.is_none(), "{kind}");
        let page = client.get("/", "text/html").await;
        assert!(!page.body.contains("rolled back"), "{kind}");
        assert!(!banner(root.path()).contains("ROLLED BACK"), "{kind}");
        assert!(agent.log().contains("served as absent"), "{kind}");
    }
}
