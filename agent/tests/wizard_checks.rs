//! The wizard's checks before it applies, run for real: the real `nodeboot-wizard` on a pty
//! (or with `--answers`) inside a network namespace whose `eth0` holds a "DHCP" address,
//! next to a peer namespace holding the gateway (answering the ARP probe), a DNS server and
//! an NTP server (`nodeboot_tests::netlab`). Each failure branch: re-enter the failing value,
//! quit, and `--answers` failing without `--continue-on-failed-checks` and applying with it.
//! Needs root and `ip` (iproute2).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;

use nodeboot_tests::fixtures::node_root;
use nodeboot_tests::netlab::{self, DNS, GATEWAY, Lab, NOBODY, NTP, NTP_NAME, answers_file};
use nodeboot_tests::pty::Pty;

fn wizard() -> &'static str {
    env!("CARGO_BIN_EXE_nodeboot-wizard")
}

/// The wizard on the slave side of a pty inside the lab's node namespace.
fn start(lab: &Lab, root: &Path) -> Pty {
    let mut cmd = lab.exec(wizard());
    cmd.args(["--reboot", "none", "--check-timeout", "1", "--root"])
        .arg(root);
    Pty::spawn(cmd)
}

/// Answers every question up to the summary; the network values as given.
fn answer_all(w: &mut Pty, gateway: &str, dns: &str, ntp: &str) {
    // the defaults are the lab's "DHCP" settings of eth0
    w.answer("IP address [10.78.0.31]: ", "10.78.0.10");
    w.answer("Network mask [255.255.255.0]: ", "");
    w.answer("Gateway [10.78.0.1]: ", gateway);
    w.answer("Hostname: ", "mgr01");
    w.answer("Domain suffix: ", "lab.test");
    w.answer("DNS servers", dns);
    w.answer("NTP servers: ", ntp);
    w.answer("Web administration username [admin]: ", "");
    w.answer("Web administration password: ", "Web-pass 2?");
    w.answer("Re-enter the web administration password: ", "Web-pass 2?");
    w.answer("Enable incident reporting? (y/n): ", "n");
    w.answer("Send deployment and usage statistics? (y/n): ", "n");
}

/// Whether the agent reports the root as configured.
fn configured(root: &Path) -> bool {
    nodeboot_tests::run::reports_configured(Path::new(env!("CARGO_BIN_EXE_nodeboot-agent")), root)
}

#[test]
fn a_failed_dns_check_is_reentered_and_the_checks_pass_the_second_time() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("reenter");
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let mut w = start(&lab, &root);
    answer_all(&mut w, GATEWAY, NOBODY, &format!("{NTP_NAME} {NTP}"));
    w.answer("Apply this configuration and restart? (y/n): ", "y");
    let shown = w.expect("Re-enter the values, continue anyway, or quit? (r/c/q): ");
    // the gateway answered the ARP probe; the DNS server did not answer; the NTP name could
    // not be resolved through it, the NTP address answered
    assert!(
        shown.contains("Checking the gateway, the DNS servers and the NTP servers...\r\n"),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!(
            "Check passed: gateway {GATEWAY} on eth0: gateway {GATEWAY} answered ARP on eth0 from "
        )),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!(
            "Check failed: dns {NOBODY}: DNS server {NOBODY} did not answer mgr01.lab.test A within 1 s"
        )),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!("Check failed: ntp {NTP_NAME}: ")),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!("Check passed: ntp {NTP}: ")),
        "{shown:?}"
    );
    assert!(
        shown.contains("2 of 4 checks failed; nothing has been applied yet.\r\n"),
        "{shown:?}"
    );
    assert!(
        shown.contains("  r  re-enter: DNS servers, NTP servers, then confirm and check again\r\n"),
        "{shown:?}"
    );
    assert!(!configured(&root));
    w.send_line("r");
    w.answer(&format!("DNS servers [{NOBODY}]: "), DNS);
    w.answer(&format!("NTP servers [{NTP_NAME} {NTP}]: "), "");
    let summary = w.answer("Apply this configuration and restart? (y/n): ", "y");
    assert!(summary.contains(&format!("  DNS servers                   {DNS}\r\n")));
    let shown = w.expect("The configuration is applied. The node restarts now.\r\n");
    assert!(
        shown.contains(&format!("Check passed: dns {DNS}: DNS server {DNS} answered mgr01.lab.test A: no such name (NXDOMAIN)\r\n")),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!("Check passed: ntp {NTP_NAME}: ")),
        "{shown:?}"
    );
    assert!(!shown.contains("Check failed"), "{shown:?}");
    assert_eq!(w.wait(), 0);
    assert!(configured(&root));
    let hostname = std::fs::read_to_string(root.join("etc/hostname")).unwrap();
    assert_eq!(hostname, "mgr01\n");
}

#[test]
fn a_gateway_that_does_not_answer_can_be_quit_and_nothing_is_applied() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("quit");
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let shadow = std::fs::read(root.join("etc/shadow")).unwrap();
    let mut w = start(&lab, &root);
    answer_all(&mut w, NOBODY, DNS, NTP);
    w.answer("Apply this configuration and restart? (y/n): ", "y");
    let shown = w.answer(
        "Re-enter the values, continue anyway, or quit? (r/c/q): ",
        "q",
    );
    assert!(
        shown.contains(&format!(
            "Check failed: gateway {NOBODY} on eth0: gateway {NOBODY} did not answer ARP on eth0 within 1 s\r\n"
        )),
        "{shown:?}"
    );
    assert!(shown.contains("  r  re-enter: Gateway, then confirm and check again\r\n"));
    let shown = w.expect("nothing was changed.");
    assert!(
        shown.contains("Not applied: the checks failed"),
        "{shown:?}"
    );
    assert_eq!(w.wait(), 3);
    assert!(!configured(&root));
    assert_eq!(std::fs::read(root.join("etc/shadow")).unwrap(), shadow);
}

#[test]
fn continue_anyway_applies_what_failed_the_checks() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("cont");
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let mut w = start(&lab, &root);
    answer_all(&mut w, GATEWAY, DNS, NOBODY);
    w.answer("Apply this configuration and restart? (y/n): ", "y");
    w.answer(
        "Re-enter the values, continue anyway, or quit? (r/c/q): ",
        "c",
    );
    w.expect("The configuration is applied. The node restarts now.\r\n");
    assert_eq!(w.wait(), 0);
    assert!(configured(&root));
}

fn run_answers(lab: &Lab, root: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    lab.exec(wizard())
        .args(["--reboot", "none", "--check-timeout", "1", "--root"])
        .arg(root)
        .arg("--answers")
        .arg(file)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn an_answers_run_fails_on_a_failed_check_unless_the_flag_allows_it() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("answers");
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());

    // the gateway does not answer: the run fails, nothing applied
    let bad = answers_file(dir.path(), NOBODY, DNS);
    let out = run_answers(&lab, &root, &bad, &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("Check failed: gateway {NOBODY} on eth0: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Check passed: dns {DNS}: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Check passed: ntp {NTP_NAME}: ")),
        "{stdout}"
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "nodeboot-wizard: {}: 1 of 3 pre-apply checks failed, so nothing was applied: gateway {NOBODY} did not answer ARP on eth0 within 1 s (help: correct the file, or pass --continue-on-failed-checks to apply anyway)",
            bad.display()
        )
    );
    assert!(!configured(&root));

    // the same file with the flag: applied, the failure still printed
    let out = run_answers(&lab, &root, &bad, &["--continue-on-failed-checks"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 of 3 checks failed; applying anyway (--continue-on-failed-checks)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("applied sha256 "), "{stdout}");
    assert!(configured(&root));

    // a good file on a fresh root passes every check and applies without a flag
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let good = answers_file(dir.path(), GATEWAY, DNS);
    let out = run_answers(&lab, &root, &good, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("Check failed"), "{stdout}");
    assert!(
        stdout.contains(&format!("Check passed: gateway {GATEWAY} on eth0: ")),
        "{stdout}"
    );
    assert!(configured(&root));
}
