//! The first boot after an apply, for real: the apply leaves its marker, `nodeboot-check` (the
//! binary) runs in a network namespace whose peer is the gateway, DNS and NTP server and
//! management node (or is not), and gives a verdict or rolls the temporary root back to the
//! generic image; `nodeboot-acquire` then refuses to apply the rolled-back configuration
//! again. Needs root (namespaces, the image's owners) and `ip`; traffic stays in the
//! namespaces made here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod https;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use nodeboot_agent::apply::{self, NoReboot};
use nodeboot_agent::health::Policy;
use nodeboot_agent::health::boot::{self, Verdict};
use nodeboot_config::api::{
    CheckKind, CheckResult, HealthPhase, HealthStatus, RollbackOn, RolledBack,
};
use nodeboot_tests::netlab::{DNS, GATEWAY, Lab, MANAGEMENT, NOBODY, NODE, NTP, can_run};
use nodeboot_tests::run::{runtime, shown};

/// Runs the real `nodeboot-check` inside the lab's node namespace; it must succeed.
fn check(lab: &Lab, root: &Path, args: &[&str]) -> std::process::Output {
    let out = lab
        .exec(env!("CARGO_BIN_EXE_nodeboot-check"))
        .arg("--root")
        .arg(root)
        .args(["--reboot", "none", "--check-deadline", "1"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "nodeboot-check: {}", shown(&out));
    out
}

/// Runs the real `nodeboot-check` outside any lab (nothing to reach); it must succeed.
fn check_outside(root: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nodeboot-check"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "nodeboot-check: {}", shown(&out));
    out
}

/// The lab's node (`conf01.lab.test`, which the lab's DNS answers): every check has its
/// responder, but NTP when `ntp` names a silent address.
fn config(ntp: &str) -> String {
    format!(
        r#"<node-config schema="1">
  <role>transcoding</role><name>conf01</name><hostname>conf01</hostname>
  <domain>lab.test</domain><system-location>Lab</system-location>
  <network>
    <ipv4 address="{NODE}" netmask="255.255.255.0" gateway="{GATEWAY}"/>
    <dns-server>{DNS}</dns-server>
    <ntp-server>{ntp}</ntp-server>
  </network>
  <ssh enabled="global"><password-hash>$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/</password-hash></ssh>
  <management-node address="{MANAGEMENT}"/>
</node-config>"#
    )
}

/// The node's TLS identity, as `serve` made it before the apply.
fn plant_identity(root: &Path) {
    let tls = root.join("var/lib/nodeboot/tls");
    std::fs::create_dir_all(&tls).unwrap();
    for (f, body) in [
        ("key.pem", "KEY\n"),
        ("cert.pem", "CERT\n"),
        ("machine-id", "0123\n"),
    ] {
        std::fs::write(tls.join(f), body).unwrap();
    }
}

/// The tree without `/run` (the status of this boot lives there, a tmpfs on a node).
fn node_files(root: &Path) -> std::collections::BTreeMap<std::path::PathBuf, common::Node> {
    let mut t = common::tree(root);
    t.retain(|p, _| !p.starts_with("run"));
    t
}

const MARKER: &str = "var/lib/nodeboot/check-pending.json";
const ROLLED_BACK: &str = "var/lib/nodeboot/rolled-back.json";
const CONFIGURED: &str = "var/lib/nodeboot/configured.json";

fn read_json<T: serde::de::DeserializeOwned>(root: &Path, path: &str) -> T {
    serde_json::from_slice(&std::fs::read(root.join(path)).unwrap()).unwrap()
}

/// An image root with the TLS identity, configured with `xml`; returns the generic tree.
fn configured(
    xml: &str,
) -> (
    tempfile::TempDir,
    std::collections::BTreeMap<std::path::PathBuf, common::Node>,
) {
    let root = common::image_root();
    plant_identity(root.path());
    let generic = node_files(root.path());
    let doc = nodeboot_config::parse(xml.as_bytes()).unwrap();
    apply::apply_config(root.path(), &doc).unwrap();
    let marker: serde_json::Value = read_json(root.path(), MARKER);
    assert_eq!(marker["digest"], doc.digest());
    (root, generic)
}

#[test]
fn a_rollback_returns_the_root_to_the_generic_image_but_keeps_the_identity() {
    if !can_run() {
        return;
    }
    let root = common::image_root();
    plant_identity(root.path());
    let generic = node_files(root.path());
    let doc = common::doc_for(&common::transcoding());
    apply::apply_config_with(root.path(), &doc, common::NOW, &mut |_| {}).unwrap();
    assert_ne!(node_files(root.path()), generic);
    let record = RolledBack {
        digest: doc.digest().to_owned(),
        reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s".into(),
        at_unix: common::NOW + 200,
        checks: vec![CheckResult {
            kind: CheckKind::Gateway,
            subject: "10.0.2.1 on eth0".into(),
            passed: false,
            attempts: 9,
            elapsed_ms: 20_000,
            tried: vec!["x".repeat(40_000)],
            reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 20 s".into(),
        }],
    };
    apply::rollback(root.path(), &record).unwrap();
    let mut after = node_files(root.path());
    let kept = after.remove(Path::new(ROLLED_BACK));
    assert!(kept.is_some(), "rolled-back.json is written");
    let diff = common::tree_diff(&generic, &after);
    assert!(diff.is_empty(), "{diff:#?}");
    let back: RolledBack = read_json(root.path(), ROLLED_BACK);
    assert_eq!(back.reason, record.reason);
    assert_eq!(back.digest, record.digest);
    // Bounded: the oversized list of what was tried is dropped, the check stays.
    assert!(back.checks[0].tried.is_empty());
    assert_eq!(
        apply::read_state(root.path()).unwrap(),
        apply::NodeState::Unconfigured
    );
    // A corrected file is accepted, and its apply removes the record.
    apply::apply_config(root.path(), &doc).unwrap();
    assert!(!root.path().join(ROLLED_BACK).exists());
    // reset removes everything, the identity too.
    apply::reset(root.path()).unwrap();
    assert!(!root.path().join(MARKER).exists());
    assert!(!root.path().join("var/lib/nodeboot/tls/key.pem").exists());
}

#[test]
fn a_node_whose_gateway_answers_is_healthy_and_keeps_its_configuration() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("ok");
    let (root, _) = configured(&config(NTP));
    let out = check(&lab, root.path(), &["--grace", "30"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pass gateway 10.78.0.1 on eth0: gateway 10.78.0.1 answered ARP on eth0"),
        "{text}"
    );
    assert!(text.contains("round 1 ("), "{text}");
    assert!(text.contains("): healthy: 6 checks passed\n"), "{text}");
    assert!(!root.path().join(MARKER).exists(), "the marker is gone");
    let record: HealthStatus = read_json(root.path(), "var/lib/nodeboot/health.json");
    assert_eq!(record.phase, HealthPhase::Healthy);
    assert_eq!(record.grace_secs, 30);
    assert_eq!(record.window_ends_unix, record.started_unix + 600);
    let live: HealthStatus = read_json(root.path(), "run/nodeboot/health.json");
    assert_eq!(
        live, record,
        "the live status stays for the read-only window"
    );
    assert!(root.path().join(CONFIGURED).exists());
    // Run again (the next boot): nothing to check.
    let out = check(&lab, root.path(), &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nothing to check\n");
}

#[test]
fn a_node_whose_gateway_is_silent_rolls_back_within_the_grace() {
    if !can_run() {
        return;
    }
    let lab = Lab::without_gateway("nogw");
    let (root, generic) = configured(&config(NTP));
    let digest: serde_json::Value = read_json(root.path(), MARKER);
    let out = check(&lab, root.path(), &["--grace", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL gateway 10.78.0.1 on eth0: gateway 10.78.0.1 did not answer ARP on eth0 within 1 s"),
        "{text}"
    );
    assert!(
        text.contains("rolled back: gateway 10.78.0.1 did not answer ARP on eth0 within 3 s; restoring the generic state\n"),
        "{text}"
    );
    assert!(
        text.ends_with("generic state restored; rebooting\n"),
        "{text}"
    );
    let back: RolledBack = read_json(root.path(), ROLLED_BACK);
    assert_eq!(back.digest, digest["digest"]);
    assert_eq!(
        back.reason,
        "gateway 10.78.0.1 did not answer ARP on eth0 within 3 s"
    );
    let live: HealthStatus = read_json(root.path(), "run/nodeboot/health.json");
    assert_eq!(live.phase, HealthPhase::RollingBack);
    let mut after = node_files(root.path());
    after.remove(Path::new(ROLLED_BACK));
    let diff = common::tree_diff(&generic, &after);
    assert!(diff.is_empty(), "{diff:#?}");
}

#[test]
fn a_silent_ntp_server_makes_the_node_unhealthy_but_not_rolled_back() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("nontp");
    let (root, _) = configured(&config(NOBODY));
    let out = check(
        &lab,
        root.path(),
        &["--grace", "3", "--rollback", "gateway"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("): unhealthy: NTP server 10.78.0.99 did not answer within 1 s"),
        "{text}"
    );
    let record: HealthStatus = read_json(root.path(), "var/lib/nodeboot/health.json");
    assert_eq!(record.phase, HealthPhase::Unhealthy);
    assert_eq!(record.rollback_on, RollbackOn::Gateway);
    assert!(!root.path().join(MARKER).exists());
    assert!(!root.path().join(ROLLED_BACK).exists());
    assert!(root.path().join(CONFIGURED).exists());
}

/// `boot::run` (the library entry of `nodeboot-check`) with the real probes: its verdict, what
/// it printed and how many times it said ready.
fn run_library(opts: &boot::Options) -> (Verdict, String, usize) {
    let mut readies = 0;
    let mut out = Vec::new();
    let verdict = runtime()
        .block_on(boot::run(
            opts,
            &nodeboot_agent::health::SystemProbe::default(),
            &mut out,
            &mut || readies += 1,
        ))
        .unwrap();
    (verdict, String::from_utf8(out).unwrap(), readies)
}

#[test]
fn the_library_entry_requests_the_reboot_after_a_rollback_and_says_ready_once() {
    if !can_run() {
        return;
    }
    let lab = Lab::without_gateway("lib");
    let (root, _) = configured(&config(NTP));
    let reboot = Arc::new(NoReboot::new());
    let opts = boot::Options {
        root: root.path().to_owned(),
        grace: Duration::from_secs(2),
        rollback: RollbackOn::Any,
        report_secs: 0,
        policy: Policy {
            deadline: Duration::from_secs(1),
            attempt: Duration::from_millis(500),
            pause: Duration::from_millis(100),
        },
        round_pause: Duration::from_millis(200),
        reboot: reboot.clone(),
    };
    let (verdict, _, readies) = lab
        .spawn(move || Ok(run_library(&opts)))
        .join()
        .unwrap()
        .unwrap();
    assert!(matches!(verdict, Verdict::RolledBack(_)), "{verdict:?}");
    assert_eq!(readies, 1);
    assert_eq!(reboot.calls(), 1);
}

#[test]
fn a_marker_for_another_configuration_is_removed_and_nothing_is_checked() {
    if !can_run() {
        return;
    }
    let (root, _) = configured(&config(NTP));
    std::fs::write(
        root.path().join(MARKER),
        format!(r#"{{"digest":"{}","applied_at_unix":1}}"#, "ab".repeat(32)),
    )
    .unwrap();
    let out = check_outside(root.path(), &["--reboot", "none"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is not in place; removing it, nothing to check"),
        "{text}"
    );
    assert!(!root.path().join(MARKER).exists());
    assert!(root.path().join(CONFIGURED).exists());
    // A damaged marker (not JSON, or a digest that is no digest) is removed too.
    for junk in [
        "\u{1b}[2J not json".to_owned(),
        r#"{"digest":"../../etc/shadow","applied_at_unix":1}"#.to_owned(),
    ] {
        std::fs::write(root.path().join(MARKER), junk).unwrap();
        let out = check_outside(root.path(), &[]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "the check marker is damaged; removing it, nothing to check\n"
        );
        assert!(!root.path().join(MARKER).exists());
    }
    assert!(!root.path().join("run/nodeboot/health.json").exists());
}

#[test]
fn acquire_does_not_apply_a_rolled_back_configuration_again() {
    if !can_run() {
        return;
    }
    let root = common::image_root();
    let baked = root.path().join("etc/nodeboot/node.xml");
    std::fs::create_dir_all(baked.parent().unwrap()).unwrap();
    std::fs::write(&baked, https::valid_xml()).unwrap();
    let media = tempfile::tempdir().unwrap();
    let by_label = media.path().display().to_string();
    let disc = media.path().join("no-drive").display().to_string();
    let args = ["--no-reboot", "--devices", &by_label, "--disc", &disc];
    let out = common::acquire(&args, root.path());
    assert!(out.status.success());
    let doc = nodeboot_config::parse(&https::valid_xml()).unwrap();
    apply::rollback(
        root.path(),
        &RolledBack {
            digest: doc.digest().to_owned(),
            reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s".into(),
            at_unix: common::NOW,
            checks: vec![],
        },
    )
    .unwrap();
    let before = node_files(root.path());
    let out = common::acquire(&args, root.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rolled back on 2026-11-30 00:53:20 UTC: gateway 10.0.2.1 did not answer ARP on eth0 within 120 s; not applied again"),
        "{text}"
    );
    assert_eq!(node_files(root.path()), before, "nothing applied");
    // The source report says "rolled back", with the digest, the reason and when: not a
    // source that "cannot be read".
    let report: nodeboot_config::api::SourceReport =
        read_json(root.path(), "run/nodeboot/source.json");
    assert_eq!(
        report,
        nodeboot_config::api::SourceReport {
            origin: "/etc/nodeboot/node.xml".into(),
            outcome: nodeboot_config::api::SourceOutcome::RolledBack {
                digest: doc.digest().to_owned(),
                reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s".into(),
                at_unix: common::NOW,
            },
        }
    );
    let raw: serde_json::Value = read_json(root.path(), "run/nodeboot/source.json");
    assert_eq!(raw["outcome"], "rolled_back", "{raw}");
    // A corrected file is applied, and the record goes with its transaction.
    let corrected = String::from_utf8(https::valid_xml())
        .unwrap()
        .replace("<system-location>", "<system-location>Corrected ");
    std::fs::write(&baked, corrected).unwrap();
    let out = common::acquire(&args, root.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("applied sha256 "), "{text}");
    assert!(!root.path().join(ROLLED_BACK).exists());
    assert!(root.path().join(MARKER).exists());
}

/// A power cut in the middle of the apply, after its commit point: the marker is in place, so
/// `nodeboot-check` runs first at the next boot (`nodeboot-acquire` is skipped on a node whose
/// record exists). It must finish the apply and reboot into it — that boot read files from the
/// middle of the transaction — and check nothing, saying ready only if the reboot fails.
#[test]
fn an_apply_cut_after_its_commit_point_is_finished_and_rebooted_into_before_any_check() {
    use nodeboot_agent::apply::{NodeState, Step, read_state};
    let root = common::image_root();
    let doc = nodeboot_config::parse(config(NTP).as_bytes()).unwrap();
    common::cut_power_after(root.path(), &doc, Step::Replaced(1));
    let reboot = Arc::new(NoReboot::new());
    let opts = boot::Options {
        root: root.path().to_owned(),
        grace: Duration::from_secs(2),
        rollback: RollbackOn::Gateway,
        report_secs: 0,
        policy: Policy::default(),
        round_pause: Duration::from_millis(200),
        reboot: reboot.clone(),
    };
    let (verdict, out, readies) = run_library(&opts);
    assert!(
        matches!(&verdict, Verdict::Recovered(d) if d == doc.digest()),
        "{verdict:?}"
    );
    assert_eq!(
        out,
        format!(
            "recovered an interrupted apply (sha256 {}); rebooting into the result\n",
            doc.digest()
        )
    );
    assert_eq!(reboot.calls(), 1);
    assert_eq!(readies, 0, "the consoles of the mixed boot were let start");
    assert!(matches!(
        read_state(root.path()).unwrap(),
        NodeState::Configured { .. }
    ));
    // The next boot, after that reboot, checks the configuration as usual.
    assert!(root.path().join(MARKER).exists());
}
