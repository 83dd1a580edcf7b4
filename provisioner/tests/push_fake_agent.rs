//! `nodeboot push` and `nodeboot status`, the real binary, against a small in-test HTTPS
//! agent (see `fake_agent`): the behaviours a real agent shows rarely (503 while starting, a
//! reboot that takes the endpoint away) and what is sent on the wire (token, body).
//! The suites against real `nodeboot-agent serve` processes are in the `tests` crate.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod fake_agent;

use std::process::{Command, Output};

use fake_agent::{Behaviour, Checks, FakeAgent};
use nodeboot_tests::fixtures::{config_xml, write, write_private};
use nodeboot_tests::run::{json as report, shown as text};

fn nodeboot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodeboot"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `nodeboot push` of `file` to `agent`, its certificate pinned, with `extra` arguments.
fn push_to(agent: &FakeAgent, file: &str, extra: &[&str]) -> Output {
    let node = agent.addr.to_string();
    let mut args = vec!["push", &node, file, "--fingerprint", &agent.fingerprint];
    args.extend_from_slice(extra);
    nodeboot(&args)
}

#[test]
fn push_sends_the_file_and_token_and_trusts_on_first_use_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let xml = config_xml(1);
    let file = write(dir.path(), "conf001.xml", &xml);
    let token = write_private(dir.path(), "token", "tok-5ecret\n");
    let known = dir.path().join("known_nodes");
    let node = agent.addr.to_string();
    let out = nodeboot(&[
        "push",
        &node,
        &file,
        "--token-file",
        &token,
        "--known-nodes",
        known.to_str().unwrap(),
        "--trust-first-use",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains(&format!("{node}  accepted")), "{shown}");
    assert!(shown.contains("first contact"), "{shown}");
    assert!(
        !shown.contains("5ecret"),
        "the token must never be printed: {shown}"
    );
    let seen = agent.seen.lock().unwrap();
    assert_eq!(seen.uploads, vec![xml.into_bytes()]);
    assert_eq!(
        seen.authorization,
        vec![Some("Bearer tok-5ecret".to_string())]
    );
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("{node} {}\n", agent.fingerprint)),
        "{recorded}"
    );
}

#[test]
fn a_known_node_presenting_another_certificate_is_refused_and_sent_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let node = agent.addr.to_string();
    let old = "SHA256:0000000000000000000000000000000000000000000000000000000000000000";
    let known = write(dir.path(), "known_nodes", &format!("{node} {old}\n"));
    let file = write(dir.path(), "c.xml", &config_xml(2));
    let out = nodeboot(&["push", &node, &file, "--known-nodes", &known]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("untrusted"), "{shown}");
    assert!(
        shown.contains(&format!(
            "the node presents certificate {}",
            agent.fingerprint
        )),
        "the fingerprint seen is printed: {shown}"
    );
    assert!(shown.contains("nothing was sent"), "{shown}");
    assert!(agent.seen.lock().unwrap().requests.is_empty());
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        format!("{node} {old}\n")
    );
}

#[test]
fn a_node_answering_503_while_it_starts_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Unavailable(2));
    let file = write(dir.path(), "c.xml", &config_xml(3));
    let out = push_to(&agent, &file, &["--json"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["result"], "accepted", "{shown}");
    assert_eq!(json["nodes"][0]["attempts"], 3, "{shown}");
    assert_eq!(agent.seen.lock().unwrap().uploads.len(), 1);
}

#[test]
fn wait_follows_the_node_through_its_reboot_until_its_checks_pass() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Reboot);
    let xml = config_xml(4);
    let file = write(dir.path(), "c.xml", &xml);
    let out = push_to(&agent, &file, &["--wait", "--wait-timeout", "30", "--json"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["result"], "healthy", "{shown}");
    assert_eq!(json["nodes"][0]["state"], "configured", "{shown}");
    assert_eq!(
        json["nodes"][0]["verdict"], "healthy: 2 checks passed",
        "{shown}"
    );
    assert_eq!(json["nodes"][0]["checks"].as_array().unwrap().len(), 2);
    let seen = agent.seen.lock().unwrap();
    assert!(seen.came_back, "the verdict came before the reboot");
    assert_eq!(seen.applied.as_deref(), json["nodes"][0]["digest"].as_str());
    assert!(seen.requests.iter().any(|r| r == "GET /api/v1/status"));
}

/// `push --wait --json` of configuration `i` to `before`, following the node at `after`'s
/// address, where it comes back after its reboot running that file, for at most `timeout`
/// seconds.
fn push_and_follow(before: &FakeAgent, after: &FakeAgent, i: u32, timeout: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let xml = config_xml(i);
    let file = write(dir.path(), "c.xml", &xml);
    after.seen.lock().unwrap().applied = Some(nodeboot_config::digest(xml.as_bytes()));
    let back = after.addr.to_string();
    let args = [
        "--wait",
        "--wait-address",
        &back,
        "--wait-timeout",
        timeout,
        "--json",
    ];
    push_to(before, &file, &args)
}

/// `push --wait --json` of a fresh file to `agent` (whose checks say `checks`), with
/// `timeout` seconds of wait: the run's output and its one node's JSON.
fn push_and_wait(agent: &FakeAgent, checks: Checks, timeout: &str) -> (Output, serde_json::Value) {
    agent.seen.lock().unwrap().checks = checks;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.xml", &config_xml(5));
    let out = push_to(
        agent,
        &file,
        &["--wait", "--wait-timeout", timeout, "--json"],
    );
    let node = report(&out)["nodes"][0].clone();
    (out, node)
}

#[test]
fn wait_reports_an_unhealthy_node_with_its_failed_check_and_fails() {
    let agent = FakeAgent::start(any_port(), Behaviour::Reboot);
    let (out, node) = push_and_wait(&agent, Checks::Unhealthy, "30");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(node["result"], "unhealthy", "{shown}");
    let why = "unhealthy: gateway 10.0.0.1 did not answer ARP on eth0[2J within 120 s";
    assert_eq!(node["verdict"], why, "{shown}");
    assert_eq!(node["checks"][1]["passed"], false, "{shown}");
    assert_eq!(node["checks"][0]["passed"], true, "{shown}");
    assert!(agent.seen.lock().unwrap().came_back);
}

#[test]
fn the_table_shows_the_verdict_and_the_failed_checks_cleaned() {
    let agent = FakeAgent::start(any_port(), Behaviour::Reboot);
    agent.seen.lock().unwrap().checks = Checks::Unhealthy;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.xml", &config_xml(6));
    let out = push_to(&agent, &file, &["--wait", "--wait-timeout", "30"]);
    let table = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(table.contains("VERDICT"), "{table}");
    assert!(
        table.contains("unhealthy  ") && table.contains("unhealthy: gateway 10.0.0.1"),
        "{table}"
    );
    assert!(table.contains("): 1 of 2 check(s) failed:\n"), "{table}");
    assert!(
        table.contains(
            "  gateway 10.0.0.1 on eth0: gateway 10.0.0.1 did not answer ARP on eth0[2J within 120 s (6 attempt(s), 120000 ms)\n"
        ),
        "{table}"
    );
    assert!(!table.contains('\u{1b}'), "{table:?}");
}

#[test]
fn wait_reports_a_rollback_of_the_file_with_its_reason_and_fails() {
    let agent = FakeAgent::start(any_port(), Behaviour::Reboot);
    let (out, node) = push_and_wait(&agent, Checks::RolledBack, "30");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(node["result"], "rolled-back", "{shown}");
    assert_eq!(
        node["verdict"], "rolled back: gateway 10.0.0.1 did not answer ARP on eth0[2J within 120 s",
        "{shown}"
    );
    assert_eq!(node["state"], "unconfigured", "{shown}");
    assert_eq!(node["checks"].as_array().unwrap().len(), 2, "{shown}");
}

#[test]
fn wait_times_out_while_the_checks_run_and_fails() {
    let agent = FakeAgent::start(any_port(), Behaviour::Reboot);
    let (out, node) = push_and_wait(&agent, Checks::Checking, "4");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(node["result"], "failed", "{shown}");
    assert_eq!(
        node["verdict"],
        "timed out (checking: gateway 10.0.0.1 did not answer ARP on eth0[2J within 120 s)",
        "{shown}"
    );
    assert!(
        node["error"]
            .as_str()
            .unwrap()
            .starts_with("accepted, but not back healthy before the --wait-timeout"),
        "{shown}"
    );
}

#[test]
fn configured_without_checks_is_the_agent_before_its_reboot_never_success() {
    // Where the node answers after the upload, it says configured with our file and has no
    // checks (the agent before its reboot, which never comes).
    let before = FakeAgent::start(any_port(), Behaviour::Vanish);
    let after = FakeAgent::start_as(any_port(), Behaviour::Reboot, before.identity());
    let out = push_and_follow(&before, &after, 7, "3");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let json = report(&out);
    let node = &json["nodes"][0];
    assert_eq!(node["result"], "failed", "{shown}");
    assert_eq!(
        node["verdict"], "timed out (configured; waiting for the reboot and its checks)",
        "{shown}"
    );
}

#[test]
fn a_step_is_logged_once_however_often_the_node_is_polled() {
    // Without --json (a log, not a terminal): the node answers that its checks are running
    // at every poll for 3 s, and that step is logged once.
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    agent.seen.lock().unwrap().checks = Checks::Checking;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.xml", &config_xml(8));
    let out = push_to(&agent, &file, &["--wait", "--wait-timeout", "3"]);
    let log = String::from_utf8_lossy(&out.stderr);
    let steps: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("s] ").map(|(_, step)| step))
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] != w[1]),
        "a step logged twice in a row:\n{log}"
    );
    assert!(steps.iter().any(|s| s.contains("checking")), "{log}");
}

#[test]
fn a_node_back_with_another_certificate_is_untrusted_never_answered() {
    let before = FakeAgent::start(any_port(), Behaviour::Vanish);
    // Something at the address the node should come back at, healthy, but another key.
    let impostor = FakeAgent::start(any_port(), Behaviour::Accept);
    let out = push_and_follow(&before, &impostor, 8, "20");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let json = report(&out);
    let node = &json["nodes"][0];
    assert_eq!(node["result"], "untrusted", "{shown}");
    assert!(
        node["error"]
            .as_str()
            .unwrap()
            .contains(&format!("presents certificate {}", impostor.fingerprint)),
        "{shown}"
    );
}

#[test]
fn pushing_the_same_file_again_reports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(5));
    assert!(push_to(&agent, &file, &[]).status.success());
    let out = push_to(&agent, &file, &[]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("unchanged"), "{shown}");
    let other = write(dir.path(), "d.xml", &config_xml(6));
    let out = push_to(&agent, &other, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("the node refused (409 configured)"),
        "{shown}"
    );
}

#[test]
fn dry_run_validates_and_contacts_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(7));
    let node = agent.addr.to_string();
    let known = dir.path().join("known");
    let out = nodeboot(&[
        "push",
        &node,
        &file,
        "--dry-run",
        "--known-nodes",
        known.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("would-send"), "{shown}");
    assert!(
        shown.contains(&format!("POST https://{node}/configuration/bootstrap")),
        "{shown}"
    );
    assert!(
        shown.contains("unknown certificate: refused unless pinned, --trust-first-use"),
        "{shown}"
    );
    assert!(agent.seen.lock().unwrap().requests.is_empty());
    assert!(!known.exists());
}

#[test]
fn status_shows_each_nodes_state() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = FakeAgent::start(any_port(), Behaviour::Accept);
    let done = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(8));
    let done_node = done.addr.to_string();
    assert!(
        nodeboot(&["push", &done_node, &file, "--insecure"])
            .status
            .success()
    );
    let out = nodeboot(&[
        "status",
        &fresh.addr.to_string(),
        &done_node,
        "--insecure",
        "--json",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["state"], "unconfigured", "{shown}");
    assert_eq!(json["nodes"][1]["state"], "configured", "{shown}");
    assert_eq!(
        json["nodes"][1]["digest"],
        done.seen.lock().unwrap().applied.clone().unwrap().as_str()
    );
    assert_eq!(json["nodes"][1]["version"], "fake");
}

#[test]
fn one_invalid_file_stops_the_whole_push_unless_skip_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let good = FakeAgent::start(any_port(), Behaviour::Accept);
    let other = FakeAgent::start(any_port(), Behaviour::Accept);
    write(dir.path(), "good.xml", &config_xml(10));
    let bad = config_xml(11).replace("<hostname>conf011</hostname>", "<hostname>-bad-</hostname>");
    write(dir.path(), "bad.xml", &bad);
    let inventory = write(
        dir.path(),
        "fleet.toml",
        &format!(
            "[[node]]\nname = \"good\"\naddress = \"{}\"\nfile = \"good.xml\"\nfingerprint = \"{}\"\n\
             [[node]]\nname = \"bad\"\naddress = \"{}\"\nfile = \"bad.xml\"\nfingerprint = \"{}\"\n",
            good.addr, good.fingerprint, other.addr, other.fingerprint
        ),
    );
    let out = nodeboot(&["push", "--inventory", &inventory]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("bad.xml:5:"),
        "compiler-style error with line: {shown}"
    );
    assert!(
        shown.contains("1 of 2 file(s) invalid: nothing was sent"),
        "{shown}"
    );
    assert!(good.seen.lock().unwrap().requests.is_empty());
    assert!(other.seen.lock().unwrap().requests.is_empty());

    let out = nodeboot(&[
        "push",
        "--inventory",
        &inventory,
        "--skip-invalid",
        "--json",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["result"], "accepted", "{shown}");
    assert_eq!(json["nodes"][1]["result"], "invalid", "{shown}");
    assert_eq!(json["nodes"][1]["errors"][0]["line"], 5, "{shown}");
    assert_eq!(good.seen.lock().unwrap().uploads.len(), 1);
    assert!(other.seen.lock().unwrap().requests.is_empty());
}

#[test]
fn a_node_that_never_answers_is_retried_until_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.xml", &config_xml(12));
    // A port nobody listens on (bound, then released).
    let node = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = nodeboot(&[
        "push",
        &node,
        &file,
        "--insecure",
        "--timeout",
        "1.5",
        "--json",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let json = report(&out);
    let n = &json["nodes"][0];
    assert_eq!(n["result"], "unreachable", "{shown}");
    assert!(n["attempts"].as_u64().unwrap() >= 3, "{shown}");
    assert!(
        n["error"].as_str().unwrap().contains("Connection refused"),
        "{shown}"
    );
}

#[test]
fn wait_finds_the_node_at_its_new_address_after_the_reboot() {
    let before = FakeAgent::start(any_port(), Behaviour::Vanish);
    // The same node (same certificate) after its reboot, at another address, configured.
    let after = FakeAgent::start_as(any_port(), Behaviour::Accept, before.identity());
    let out = push_and_follow(&before, &after, 13, "20");
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["result"], "healthy", "{shown}");
    assert_eq!(json["nodes"][0]["state"], "configured", "{shown}");
    assert_eq!(before.seen.lock().unwrap().uploads.len(), 1);
    assert!(after.seen.lock().unwrap().uploads.is_empty());
    assert!(
        after
            .seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r == "GET /api/v1/status")
    );
}

#[test]
fn an_invalid_password_hash_is_reported_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = config_xml(14).replace("$nodebootsalt$D911Z", "$nodebootsalt$D9!!Z");
    let file = write(dir.path(), "bad.xml", &bad);
    let out = nodeboot(&["push", "127.0.0.1:1", &file, "--insecure"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("bad.xml:14:20: error:"), "{shown}");
    assert!(shown.contains("<password-hash>*****"), "{shown}");
    assert!(
        !shown.contains("nodebootsalt"),
        "the hash must not be printed: {shown}"
    );
}

#[test]
fn an_unknown_node_is_refused_and_receives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(15));
    let known = dir.path().join("known_nodes");
    let known_s = known.to_str().unwrap();
    let node = agent.addr.to_string();
    let fp = &agent.fingerprint;
    let out = nodeboot(&["push", &node, &file, "--known-nodes", known_s]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("untrusted"), "{shown}");
    assert!(
        shown.contains(&format!(
            "REFUSED: unknown node: it presents certificate {fp}, which is neither pinned nor recorded in {known_s}; nothing was sent"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "pin it (--fingerprint {fp}), or pass --trust-first-use"
        )),
        "the fix is printed: {shown}"
    );
    assert!(
        agent.seen.lock().unwrap().requests.is_empty(),
        "the agent received a request"
    );
    assert!(!known.exists(), "nothing recorded");

    // status refuses it the same way
    let out = nodeboot(&["status", &node, "--known-nodes", known_s, "--json"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let json = report(&out);
    assert_eq!(json["nodes"][0]["result"], "untrusted", "{shown}");
    assert_eq!(json["nodes"][0]["fingerprint"], fp.as_str(), "{shown}");
    assert!(json["nodes"][0].get("state").is_none(), "{shown}");
    assert!(agent.seen.lock().unwrap().requests.is_empty());
    assert!(!known.exists());

    // in an inventory, the fix names the inventory's key
    let inventory = write(
        dir.path(),
        "fleet.toml",
        &format!("[[node]]\nname = \"n1\"\naddress = \"{node}\"\nfile = \"c.xml\"\n"),
    );
    let out = nodeboot(&["push", "--inventory", &inventory, "--known-nodes", known_s]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "fingerprint = \"{fp}\" in node `n1` of {inventory}"
        )),
        "{shown}"
    );
    assert!(agent.seen.lock().unwrap().requests.is_empty());

    // --trust-first-use records it and pushes; the next run knows it without the flag
    let out = nodeboot(&[
        "status",
        &node,
        "--known-nodes",
        known_s,
        "--trust-first-use",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("first contact, trusting {fp}")),
        "{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap().lines().last(),
        Some(format!("{node} {fp}").as_str())
    );
    let out = nodeboot(&["push", &node, &file, "--known-nodes", known_s]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(agent.seen.lock().unwrap().uploads.len(), 1);
}

#[test]
fn a_nodes_error_text_reaches_the_terminal_without_controls_or_bidi() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Hostile);
    let file = write(dir.path(), "c.xml", &config_xml(16));
    let node = agent.addr.to_string();
    let unsafe_in = |s: &str| {
        s.chars()
            .filter(|&c| c != '\n' && nodeboot_config::text::is_unsafe_char(c))
            .collect::<Vec<_>>()
    };
    for extra in [&[][..], &["--json"][..]] {
        let out = push_to(&agent, &file, extra);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let s = String::from_utf8(bytes.clone()).unwrap();
            assert_eq!(unsafe_in(&s), vec![], "{what} {extra:?}: {s:?}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        if extra.is_empty() {
            assert!(stdout.contains("rejected"), "{stdout}");
            assert!(
                stdout.contains("4:3: /node-config/hostname[31m: bad]0;pwnedname2J txt.exe"),
                "{stdout:?}"
            );
        } else {
            assert!(
                !stdout.contains("\\u001b"),
                "escaped controls in JSON: {stdout}"
            );
        }
    }
    // status of the same node: its state and error text too
    let out = nodeboot(&["status", &node, "--fingerprint", &agent.fingerprint]);
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(unsafe_in(&s), vec![], "{s:?}");
    assert!(s.contains("unconfigured[1m"), "{s:?}");
}

/// Runs `nodeboot ARGS` with stdin and stderr on a new pseudo-terminal (stdout piped),
/// answers `answer` once the trust question shows, and returns (exit code, stdout, what
/// the terminal showed).
fn on_a_terminal(args: &[&str], answer: &str) -> (Option<i32>, String, String) {
    use std::io::{Read as _, Write as _};
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodeboot"));
    cmd.args(args)
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(pty.slave))
        .stdout(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(cmd); // our copies of the terminal's slave side: the master sees the end
    let mut master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child has exited and no slave descriptor is left
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("[y/N] ") {
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "no question on the terminal: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    writer.write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    while let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        seen.extend(chunk);
    }
    reader.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}

#[test]
fn on_a_terminal_an_unknown_node_is_trusted_only_after_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(17));
    let known = dir.path().join("known_nodes");
    let known_s = known.to_str().unwrap();
    let node = agent.addr.to_string();
    let fp = &agent.fingerprint;
    let args = [
        "push",
        node.as_str(),
        file.as_str(),
        "--known-nodes",
        known_s,
    ];

    let (code, stdout, terminal) = on_a_terminal(&args, "n\n");
    assert_eq!(code, Some(1), "{stdout}{terminal}");
    assert!(
        terminal.contains(&format!(
            "is not a known node. It presents the certificate\r\n  {fp}"
        )),
        "the question shows the fingerprint: {terminal}"
    );
    assert!(stdout.contains("not trusted at the prompt"), "{stdout}");
    assert!(agent.seen.lock().unwrap().requests.is_empty());
    assert!(!known.exists());

    let (code, stdout, terminal) = on_a_terminal(&args, "yes\n");
    assert_eq!(code, Some(0), "{stdout}{terminal}");
    assert!(stdout.contains("accepted"), "{stdout}");
    assert_eq!(agent.seen.lock().unwrap().uploads.len(), 1);
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains(&format!("{node} {fp}\n"))
    );
}

#[test]
fn a_token_file_open_to_others_or_behind_a_link_is_refused_and_nothing_is_sent() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(any_port(), Behaviour::Accept);
    let file = write(dir.path(), "c.xml", &config_xml(18));
    let node = agent.addr.to_string();
    let token = write(dir.path(), "token", "tok-5ecret\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let push = |token: &str| push_to(&agent, &file, &["--token-file", token]);
    let out = push(&token);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "token file {token} has mode 0640: its group or other users may access it (a file with secrets must be 0600 or stricter) (help: chmod 600 {token})"
        )),
        "{shown}"
    );
    assert!(!shown.contains("5ecret"), "{shown}");

    // the same token file in an inventory
    let inventory = write(
        dir.path(),
        "fleet.toml",
        &format!(
            "[[node]]\nname = \"n1\"\naddress = \"{node}\"\nfile = \"c.xml\"\nfingerprint = \"{}\"\ntoken_file = \"token\"\n",
            agent.fingerprint
        ),
    );
    let out = nodeboot(&["push", "--inventory", &inventory]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("has mode 0640"), "{shown}");

    // a 0600 file reached through a link
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("token.link");
    std::os::unix::fs::symlink(&token, &link).unwrap();
    let out = push(link.to_str().unwrap());
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "token file {} is a symbolic link: refused",
            link.display()
        )),
        "{shown}"
    );
    assert!(agent.seen.lock().unwrap().requests.is_empty());

    // 0600 and the file itself: sent
    let out = push(&token);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        agent.seen.lock().unwrap().authorization,
        vec![Some("Bearer tok-5ecret".to_string())]
    );
}
