//! The real `nodeboot-agent` binary: `apply` (dry run, apply, unchanged, refused, invalid
//! file, reboot command), `status` (text and JSON) and `reset`, on a temporary root. Secrets
//! must never appear in anything it prints.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_nodeboot-agent");

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> PathBuf {
    repo_dir().join(name)
}

/// Nothing secret in the output: no password hash, no key material.
fn assert_no_secrets(out: &str) {
    for needle in [
        "$6$",
        "PRIVATE KEY",
        "MIGHAgEAMBMGByqGSM49",
        "Nodeboot.Salt12",
    ] {
        assert!(!out.contains(needle), "secret {needle:?} printed:\n{out}");
    }
}

#[test]
fn dry_run_shows_the_plan_and_masked_diffs_and_writes_nothing() {
    let root = image_root();
    let before = tree(root.path());
    let xml = fixture("tests/fixtures/rendered/inputs/edge-tls.xml");
    let o = agent(&["apply", "--dry-run", xml.to_str().unwrap()], root.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("plan for sha256 "), "{out}");
    assert!(
        out.contains("  write   /etc/nodeboot/tls/node.key"),
        "{out}"
    );
    assert!(out.contains("0600 0:0 241 bytes"), "{out}");
    assert!(out.contains("  then reboot"), "{out}");
    assert!(
        out.contains("--- /etc/hosts (on disk)\n+++ /etc/hosts (planned)"),
        "{out}"
    );
    assert!(out.contains("-127.0.1.1\tnodeboot\n"), "{out}");
    assert!(
        out.contains("+10.0.0.42\tedge02.sip.example.com edge02\t# nodeboot\n"),
        "{out}"
    );
    assert!(out.contains("-admin:***:0:0:99999:7:::"), "{out}");
    assert!(
        out.contains("/etc/nodeboot/tls/node.key: secret, 241 bytes (new)"),
        "{out}"
    );
    assert!(out.ends_with("dry run: nothing was written\n"), "{out}");
    assert_no_secrets(&out);
    assert_no_secrets(&err);
    assert_eq!(tree_diff(&before, &tree(root.path())), Vec::<String>::new());
}

#[test]
fn apply_status_unchanged_refused_and_reset() {
    let root = image_root();
    let r = root.path();
    let image = tree(r);
    let xml = fixture("tests/fixtures/valid/transcoding.xml");
    let digest = nodeboot_config::digest(&std::fs::read(&xml).unwrap());

    let o = agent(&["status"], r);
    assert_eq!(text(&o).0, "state: unconfigured\n");

    let o = agent(&["apply", "--reboot=none", xml.to_str().unwrap()], r);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains(&format!("applied sha256 {digest}: ")), "{out}");
    assert!(out.contains("not rebooting (--reboot=none)"), "{out}");
    assert!(
        out.starts_with(&format!("plan for sha256 {digest} under ")),
        "{out}"
    );
    assert!(out.contains("\n  write   /etc/hosts "), "{out}");
    assert!(
        !out.contains("remove"),
        "nothing to remove on a fresh image: {out}"
    );
    assert_no_secrets(&out);
    assert_no_secrets(&err);

    let o = agent(&["status"], r);
    let (out, _) = text(&o);
    assert!(
        out.starts_with(&format!("state: configured\nsha256: {digest}\napplied: 20")),
        "{out}"
    );
    let o = agent(&["status", "--json"], r);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "configured");
    assert_eq!(v["digest"], digest.as_str());
    assert!(v["applied_at_unix"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let o = agent(&["apply", "--reboot=none", xml.to_str().unwrap()], r);
    assert!(o.status.success());
    assert_eq!(
        text(&o).0,
        format!("unchanged: sha256 {digest} is already applied; nothing written, no reboot\n")
    );

    let other = fixture("tests/fixtures/valid/management.xml");
    let o = agent(&["apply", "--reboot=none", other.to_str().unwrap()], r);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        format!(
            "nodeboot-agent: the node is already configured (sha256 {digest}); run `nodeboot-agent reset` before applying a different configuration\n"
        )
    );

    let o = agent(&["reset"], r);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        text(&o).0,
        format!("reset: {} is unconfigured again\n", r.display())
    );
    assert_eq!(tree_diff(&image, &tree(r)), Vec::<String>::new());
    let v: serde_json::Value =
        serde_json::from_slice(&agent(&["status", "--json"], r).stdout).unwrap();
    assert_eq!(v["state"], "unconfigured");
}

#[test]
fn apply_runs_the_reboot_command_once_after_applying() {
    let root = image_root();
    let marker = root.path().join("rebooted");
    let xml = fixture("tests/fixtures/valid/management.xml");
    let o = agent(
        &[
            "apply",
            "--reboot-command",
            &format!("echo reboot >> {}", marker.display()),
            "--reboot-delay=0",
            xml.to_str().unwrap(),
        ],
        root.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("rebooting in 0 s"), "{out}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    // the same file again: unchanged, so no second reboot
    let o = agent(
        &[
            "apply",
            "--reboot-command",
            &format!("echo reboot >> {}", marker.display()),
            xml.to_str().unwrap(),
        ],
        root.path(),
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
}

#[test]
fn an_invalid_file_gets_compiler_style_errors_and_changes_nothing() {
    let root = image_root();
    let before = tree(root.path());
    let good = std::fs::read_to_string(fixture("tests/fixtures/valid/transcoding.xml")).unwrap();
    let bad = good
        .replace("address=\"10.0.0.31\"", "address=\"10.0.0.300\"")
        .replace(
            "<hostname>conf01</hostname>",
            "<hostname>-conf01</hostname>",
        );
    let file = root.path().join("bad.xml");
    std::fs::write(&file, bad).unwrap();
    let before_with_file = {
        let mut b = before.clone();
        b.extend(
            tree(root.path())
                .into_iter()
                .filter(|(p, _)| p == Path::new("bad.xml")),
        );
        b
    };
    let o = agent(
        &["apply", "--reboot=none", file.to_str().unwrap()],
        root.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains(&format!("{}:6:13: error: ", file.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:10:11: error: ", file.display())),
        "{err}"
    );
    assert!(err.contains("6 |   <hostname>-conf01</hostname>"), "{err}");
    assert!(err.contains("  = help: "), "{err}");
    assert!(
        err.ends_with(": 2 errors found; nothing was changed\n"),
        "{err}"
    );
    assert_no_secrets(&err);
    assert_eq!(
        tree_diff(&before_with_file, &tree(root.path())),
        Vec::<String>::new()
    );
}

#[test]
fn errors_never_echo_a_secret_line() {
    let root = image_root();
    let good = std::fs::read_to_string(fixture("tests/fixtures/valid/transcoding.xml")).unwrap();
    let start = good.find("<password-hash>").unwrap() + "<password-hash>".len();
    let end = good.find("</password-hash>").unwrap();
    let bad = format!("{}hunter2-plain{}", &good[..start], &good[end..]);
    let file = root.path().join("plain.xml");
    std::fs::write(&file, bad).unwrap();
    let o = agent(
        &["apply", "--reboot=none", file.to_str().unwrap()],
        root.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.contains("<password-hash>*************</password-hash>"),
        "{err}"
    );
}

#[test]
fn help_fits_80_columns_and_has_examples() {
    for sub in ["apply", "status", "reset"] {
        let o = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(o.status.success());
        assert!(out.contains("Example"), "{sub}: {out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 80, "{sub}: too wide: {line:?}");
        }
    }
}

#[test]
fn the_next_start_finishes_an_interrupted_apply_before_anything_else() {
    let root = image_root();
    let r = root.path();
    let xml_path = fixture("tests/fixtures/valid/transcoding.xml");
    let xml = std::fs::read(&xml_path).unwrap();
    let doc = nodeboot_config::parse(&xml).unwrap();
    let digest = doc.digest().to_owned();
    // the process "dies" right after the commit point
    cut_power_after(r, &doc, nodeboot_agent::apply::Step::Replaced(2));
    let (out, _) = text(&agent(&["status"], r));
    assert_eq!(
        out,
        format!("state: applying (interrupted or in progress)\nsha256: {digest}\n")
    );
    // the next start: apply of the same file finds it complete after recovery
    let o = agent(&["apply", "--reboot=none", xml_path.to_str().unwrap()], r);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        text(&o).0,
        format!("unchanged: sha256 {digest} is already applied; nothing written, no reboot\n")
    );
    assert!(!r.join("var/lib/nodeboot/journal.json").exists());
}

#[test]
fn status_shows_the_checks_of_the_first_boot_and_a_rollback() {
    use nodeboot_config::api::{
        CheckKind, CheckResult, HEALTH_STATUS_PATH, HealthPhase, HealthReport, HealthStatus,
        ROLLED_BACK_PATH, RollbackOn, RolledBack,
    };
    let root = image_root();
    let r = root.path();
    let xml = fixture("tests/fixtures/valid/transcoding.xml");
    let digest = nodeboot_config::digest(&std::fs::read(&xml).unwrap());
    assert!(
        agent(&["apply", "--reboot=none", xml.to_str().unwrap()], r)
            .status
            .success()
    );
    let check = |kind, passed: bool, reason: &str| CheckResult {
        kind,
        subject: "10.0.0.1 on eth0".into(),
        passed,
        attempts: 1,
        elapsed_ms: 3,
        tried: vec![],
        reason: reason.into(),
    };
    let health = HealthStatus {
        digest: digest.clone(),
        phase: HealthPhase::Unhealthy,
        rollback_on: RollbackOn::Gateway,
        grace_secs: 120,
        started_unix: 1,
        window_ends_unix: 601,
        report: HealthReport::new(
            vec![
                check(CheckKind::Gateway, true, "gateway answered ARP in 3 ms"),
                // Outside text with a terminal escape: printed cleaned.
                check(CheckKind::Ntp, false, "ntp \u{1b}[2Jdid not answer"),
            ],
            20,
        ),
    };
    let path = r.join(HEALTH_STATUS_PATH);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&health).unwrap()).unwrap();
    let (out, err) = text(&agent(&["status"], r));
    assert!(
        out.contains("checks: unhealthy: ntp [2Jdid not answer\n"),
        "{out}{err}"
    );
    assert!(out.contains("  pass gateway 10.0.0.1 on eth0: gateway answered ARP in 3 ms\n"));
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let v: serde_json::Value =
        serde_json::from_slice(&agent(&["status", "--json"], r).stdout).unwrap();
    assert_eq!(v["health"]["phase"], "unhealthy");

    // Rolled back: the node is unconfigured again and says why.
    assert!(agent(&["reset"], r).status.success());
    std::fs::remove_file(&path).unwrap();
    let record = RolledBack {
        digest: digest.clone(),
        reason: "gateway 10.0.0.1 did not answer ARP on eth0 within 120 s".into(),
        at_unix: 2,
        checks: vec![],
    };
    let path = r.join(ROLLED_BACK_PATH);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let (out, _) = text(&agent(&["status"], r));
    assert_eq!(
        out,
        format!(
            "state: unconfigured\nrolled back: gateway 10.0.0.1 did not answer ARP on eth0 within 120 s (sha256 {digest})\n"
        )
    );
    // A record that is a link is not followed: the status says nothing of it.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
    let o = agent(&["status"], r);
    assert!(o.status.success());
    assert_eq!(text(&o).0, "state: unconfigured\n");
}
