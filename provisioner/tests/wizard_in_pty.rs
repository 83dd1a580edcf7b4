//! The real `nodeboot-wizard`, run in a pty by `nodeboot bootstrap --console exec:…`,
//! ends in a configured temporary root. The "restart" is a reboot command that prints the
//! new login prompt, as the node's console would after its reboot.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{OS_PASSWORD, WEB_PASSWORD};

#[test]
fn bootstrap_drives_the_real_wizard_to_a_configured_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = nodeboot_tests::fixtures::node_root(dir.path());
    let console = format!(
        "exec:{} --skip-checks --root {} --reboot-command \"printf 'Debian GNU/Linux 12 mgr01 ttyS0\\r\\n\\r\\nmgr01 login: '\"",
        common::wizard().display(),
        root.display()
    );
    let out = common::bootstrap(dir.path(), &console).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let transcript = std::fs::read_to_string(dir.path().join("transcript.log")).unwrap();
    assert!(
        out.status.success(),
        "{stderr}\n--- transcript:\n{transcript}"
    );
    // the optional login, password change and sudo steps were skipped: the wizard runs
    // directly in the pty
    assert!(stderr.contains("[ 6/20] ip-address"), "{stderr}");
    assert!(!stderr.contains("] login\n"), "{stderr}");
    assert!(stderr.contains("[20/20] login-after-restart"), "{stderr}");
    assert!(!transcript.contains(OS_PASSWORD) && !transcript.contains(WEB_PASSWORD));
    assert!(transcript.contains("Summary:"), "{transcript}");
    assert!(transcript.contains("The configuration is applied. The node restarts now."));

    // the root now holds the configuration, applied by the apply engine
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "mgr01\n"
    );
    let status = Command::new(common::agent())
        .args(["status", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("\"configured\""), "{status}");
    // the OS password hash is the one the forced change set; the web admin password is the
    // one typed, hashed by the wizard
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let admin = shadow.lines().find(|l| l.starts_with("admin:")).unwrap();
    let hash = nodeboot_config::PasswordHash::parse(admin.split(':').nth(1).unwrap()).unwrap();
    assert!(nodeboot_config::verify_password(OS_PASSWORD, &hash));
}
