//! The real `nodeboot-wizard` on a pty, typed at like a plain serial console: LF, CRLF
//! and CR line endings, backspace, a pasted ^V in a password (refused with a message), ^C
//! (cancels, nothing changed); and `--answers FILE`, which asks nothing. The daemon,
//! `nodeboot-agent`, has no `wizard` subcommand.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use nodeboot_tests::fixtures::{OS_PASSWORD, node_root};
use nodeboot_tests::pty::Pty;
use nodeboot_tests::run::reports_configured;

fn wizard() -> &'static str {
    env!("CARGO_BIN_EXE_nodeboot-wizard")
}

fn agent() -> &'static str {
    env!("CARGO_BIN_EXE_nodeboot-agent")
}

/// The wizard on the slave side of a pty; the test types on the master.
fn start(root: &Path) -> Pty {
    let mut cmd = Command::new(wizard());
    cmd.args(["--reboot", "none", "--skip-checks", "--root"])
        .arg(root);
    Pty::spawn(cmd)
}

/// Waits for the question (its default in brackets, then ": ") and types the answer.
fn answer(w: &mut Pty, question: &str, typed: &[u8]) {
    w.expect(question);
    w.expect(": ");
    w.send(typed);
}

#[test]
fn the_wizard_works_on_a_plain_serial_console() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let mut w = start(&root);
    answer(&mut w, "IP address", b"10.0.0.10\n"); // LF
    answer(&mut w, "Network mask", b"255.255.255.0\r\n"); // CRLF
    answer(&mut w, "Gateway", b"10.0.1.1\r"); // CR; outside the subnet
    let shown = w.expect("Gateway");
    assert!(
        shown.contains("Invalid: gateway 10.0.1.1 is not in the subnet 10.0.0.0/24 of the IP address\r\n  use an address from 10.0.0.1 to 10.0.0.254\r\n"),
        "{shown:?}"
    );
    w.expect(": ");
    w.send(b"10.0.0.1\r");
    w.expect("Hostname: ");
    w.send(b"mgrx\x7f01\r"); // a typo erased with backspace
    let shown = w.expect("Domain suffix: ");
    assert!(shown.contains("mgrx\x08 \x0801\r\n"), "{shown:?}");
    w.send(b"example.com\r");
    answer(&mut w, "DNS servers", b"10.0.0.2\r");
    answer(&mut w, "NTP servers", b"pool.ntp.org\r");
    w.expect("Web administration username [admin]: ");
    w.send(b"\r"); // the default
    w.expect("Web administration password: ");
    w.send(b"\x16Web-pass 2?\r"); // pasted with Ctrl-V
    let shown = w.expect("Web administration password: ");
    assert!(
        shown.contains("Invalid: the password contains the control character ^V\r\n  type it again; to paste, use the terminal's Paste menu rather than Ctrl-V\r\n"),
        "{shown:?}"
    );
    assert!(
        !shown.contains("Web-pass"),
        "the password was echoed: {shown:?}"
    );
    w.send(b"Web-pass 2?\r");
    w.expect("Re-enter the web administration password: ");
    w.send(b"Web-pass 2?\r");
    w.expect("Enable incident reporting? (y/n): ");
    w.send(b"y\r");
    w.expect("Send deployment and usage statistics? (y/n): ");
    w.send(b"n\r");
    let summary = w.expect("Apply this configuration and restart? (y/n): ");
    assert!(
        summary.contains("  Hostname                      mgr01\r\n"),
        "{summary:?}"
    );
    assert!(
        summary.contains("  Web administration username   admin\r\n"),
        "{summary:?}"
    );
    assert!(!summary.contains("Web-pass"));
    for line in summary.split("\r\n") {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    w.send(b"y\r");
    w.expect("The configuration is applied. The node restarts now.\r\n");
    assert_eq!(w.wait(), 0);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "mgr01\n"
    );
    assert!(reports_configured(Path::new(agent()), &root));
    // Run again on the configured node: it says so and shows what the node is, no hash.
    let again = Command::new(wizard())
        .args(["--reboot=none", "--root"])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(again.status.success());
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("This node is already configured"), "{text}");
    assert!(
        text.contains("  Role                                  management\n"),
        "{text}"
    );
    assert!(
        text.contains("  Web administration username           admin\n"),
        "{text}"
    );
    assert!(!text.contains("$6$"), "{text}");
}

#[test]
fn ctrl_c_cancels_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let before = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let mut w = start(&root);
    answer(&mut w, "IP address", b"10.0.0.10\r");
    answer(&mut w, "Network mask", b"\x03");
    w.expect("Cancelled; nothing was changed.");
    assert_eq!(w.wait(), 130);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "pexipmcumgr\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/shadow")).unwrap(),
        before
    );
}

#[test]
fn answers_file_runs_without_questions() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let os = nodeboot_config::hash_password(OS_PASSWORD).unwrap();
    let web = nodeboot_config::hash_password("Web-pass 2?").unwrap();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<node-config schema="1">
  <role>management</role>
  <name>mgr01</name>
  <hostname>mgr01</hostname>
  <domain>example.com</domain>
  <network>
    <ipv4 address="10.0.0.10" netmask="255.255.255.0" gateway="10.0.0.1"/>
    <dns-server>10.0.0.2</dns-server>
    <ntp-server>pool.ntp.org</ntp-server>
  </network>
  <ssh enabled="global"><password-hash>{}</password-hash></ssh>
  <web-admin username="admin" password-hash="{}"/>
  <incident-reporting>false</incident-reporting>
  <usage-statistics>false</usage-statistics>
</node-config>
"#,
        os.expose(),
        web.expose()
    );
    let file = dir.path().join("mgr01.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new(wizard())
        .args(["--reboot", "none", "--skip-checks", "--root"])
        .arg(&root)
        .arg("--answers")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("applied sha256 "), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "mgr01\n"
    );
    // a broken file: the parser's diagnostics, exit 2, nothing changed
    std::fs::write(
        &file,
        "<node-config schema=\"1\"><role>management</role></node-config>",
    )
    .unwrap();
    let root2 = node_root(&dir.path().join("second"));
    let out = Command::new(wizard())
        .args(["--reboot", "none", "--root"])
        .arg(&root2)
        .arg("--answers")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mgr01.xml:1:"), "{stderr}");
    // printed as `apply` prints them: compiler-style, then the count
    assert!(stderr.contains(": error: "), "{stderr}");
    assert!(
        stderr.contains("mgr01.xml: ") && stderr.contains("found; nothing was changed"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(root2.join("etc/hostname")).unwrap(),
        "pexipmcumgr\n"
    );
}

/// The wizard is a binary of its own: `nodeboot-agent` (the daemon) has no `wizard`
/// subcommand, so none of the dialog, terminal or hashing code is in its pages;
/// `nodeboot-wizard` answers `--help` with today's options under its own name.
#[test]
fn wizard_is_its_own_binary_and_not_a_subcommand_of_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path());
    let out = Command::new(agent())
        .args(["wizard", "--reboot=none", "--root"])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unrecognized subcommand 'wizard'"), "{err}");
    assert!(!root.join("var/lib/nodeboot/configured.json").exists());
    let help = Command::new(wizard()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: nodeboot-wizard [OPTIONS]"), "{help}");
    for option in [
        "--answers",
        "--root",
        "--interface",
        "--reboot",
        "--reboot-command",
        "--reboot-delay",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    let version = Command::new(wizard()).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("nodeboot-wizard "), "{version}");
}
