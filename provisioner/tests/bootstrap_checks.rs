//! `nodeboot bootstrap` against the real `nodeboot-wizard` whose checks before the apply run
//! for real, inside a network namespace (`nodeboot_tests::netlab`: a veth gateway answering
//! ARP, DNS and NTP responders): a DNS server that does not answer makes bootstrap quit the
//! wizard (nothing applied) and fail with the findings, in its output and its JSON;
//! `--continue-on-failed-checks` applies anyway and still reports them. Needs root and `ip`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{OS_PASSWORD, WEB_PASSWORD};
use nodeboot_tests::fixtures::secrets_file;
use nodeboot_tests::netlab::{self, DNS, GATEWAY, Lab, NOBODY, NTP_NAME, answers_file};
use nodeboot_tests::run::reports_configured;

/// Bootstrap over `exec:` the wizard in the lab's node namespace, with `--json`.
fn bootstrap(lab: &Lab, dir: &Path, root: &Path, dns: &str, extra: &[&str]) -> Output {
    let file = answers_file(dir, GATEWAY, dns);
    let secrets = secrets_file(dir);
    let console = format!(
        "exec:{} {} --check-timeout 1 --root {} --reboot-command \"printf 'mgr01 login: '\"",
        lab.exec_prefix(),
        common::wizard().display(),
        root.display()
    );
    Command::new(common::nodeboot())
        .args(["bootstrap", "--json", "--console", &console])
        .arg("--answers")
        .arg(&file)
        .arg("--secrets-file")
        .arg(&secrets)
        .arg("--transcript")
        .arg(dir.join("transcript.log"))
        .args(extra)
        .output()
        .unwrap()
}

fn configured(root: &Path) -> bool {
    reports_configured(&common::agent(), root)
}

fn checks(stdout: &[u8]) -> (serde_json::Value, Vec<(String, String, bool)>) {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    let list = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["subject"].as_str().unwrap().to_owned(),
                c["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    (v, list)
}

#[test]
fn failed_checks_make_bootstrap_quit_the_wizard_and_report_them() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("boot");
    let dir = tempfile::tempdir().unwrap();
    let root = nodeboot_tests::fixtures::node_root(dir.path());
    let out = bootstrap(&lab, dir.path(), &root, NOBODY, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the wizard's checks before the apply: 1 passed, 2 failed\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "  Check failed: dns {NOBODY}: DNS server {NOBODY} did not answer mgr01.lab.test A within 1 s\n"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("] checks-failed\n"), "{stderr}");
    assert!(
        stderr.contains("nodeboot: 2 of the wizard's checks before the apply failed (DNS server"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was applied (help: correct the answers file, or pass --continue-on-failed-checks to apply anyway)"),
        "{stderr}"
    );
    // the wizard was told to quit: the console's own words end the error
    assert!(
        stderr.contains("Not applied: the checks failed"),
        "{stderr}"
    );
    assert!(!configured(&root));

    let (json, list) = checks(&out.stdout);
    assert_eq!(json["configured"], false);
    assert_eq!(json["node"], "mgr01.lab.test");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("nothing was applied")
    );
    assert_eq!(
        list,
        [
            ("gateway".to_owned(), format!("{GATEWAY} on eth0"), true),
            ("dns".to_owned(), NOBODY.to_owned(), false),
            ("ntp".to_owned(), NTP_NAME.to_owned(), false),
        ]
    );
    let transcript = std::fs::read_to_string(dir.path().join("transcript.log")).unwrap();
    assert!(transcript.contains("[>q]"), "{transcript}");
    assert!(!transcript.contains(OS_PASSWORD) && !transcript.contains(WEB_PASSWORD));
}

#[test]
fn continue_on_failed_checks_applies_and_still_reports_them() {
    if !netlab::can_run() {
        return;
    }
    let lab = Lab::new("bootc");
    let dir = tempfile::tempdir().unwrap();
    let root = nodeboot_tests::fixtures::node_root(dir.path());
    let out = bootstrap(
        &lab,
        dir.path(),
        &root,
        NOBODY,
        &["--continue-on-failed-checks"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bootstrap complete: mgr01.lab.test"),
        "{stderr}"
    );
    assert!(configured(&root));
    let (json, list) = checks(&out.stdout);
    assert_eq!(json["configured"], true);
    assert!(json["error"].is_null());
    assert_eq!(list.iter().filter(|c| !c.2).count(), 2, "{list:?}");
    let transcript = std::fs::read_to_string(dir.path().join("transcript.log")).unwrap();
    assert!(transcript.contains("[>c]"), "{transcript}");

    // a good DNS server: every check passes, the prompt never comes
    let dir = tempfile::tempdir().unwrap();
    let root = nodeboot_tests::fixtures::node_root(dir.path());
    let out = bootstrap(&lab, dir.path(), &root, DNS, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the wizard's checks before the apply: 3 passed, 0 failed\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("checks-failed"), "{stderr}");
    let (_, list) = checks(&out.stdout);
    assert!(list.iter().all(|c| c.2), "{list:?}");
    assert!(configured(&root));
}
