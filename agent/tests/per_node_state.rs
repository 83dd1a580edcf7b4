//! One key per node: every node made from a reset image, and every copy of a disk whose
//! machine-id changed, presents its own certificate. Real files on temporary roots, the real
//! `reset` and the TLS module's load-or-generate that `serve` uses at start.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use nodeboot_agent::apply;
use nodeboot_agent::server::tls::{self, Origin, SubjectNames};

fn names() -> SubjectNames {
    SubjectNames {
        hostname: "conf01".into(),
        addresses: vec!["127.0.0.1".parse().unwrap()],
    }
}

/// `cp -a`: a disk copied as an image builder or a hypervisor would.
fn copy_root(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn configured_root() -> (tempfile::TempDir, String) {
    let root = image_root();
    fs::write(
        root.path().join("etc/machine-id"),
        "11111111111111111111111111111111\n",
    )
    .unwrap();
    let config = transcoding();
    apply::apply_config(root.path(), &doc_for(&config)).unwrap();
    let id = tls::load_or_generate(root.path(), &names()).unwrap();
    assert_eq!(id.origin, Origin::Generated);
    (root, id.fingerprint)
}

#[test]
fn two_roots_reset_from_one_configured_root_present_different_fingerprints() {
    let (configured, original) = configured_root();
    let mut seen = vec![original];
    for _ in 0..2 {
        let copy = tempfile::tempdir().unwrap();
        copy_root(configured.path(), copy.path());
        // The real command an image builder runs.
        let o = Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"))
            .args(["reset", "--root"])
            .arg(copy.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let tls_dir = copy.path().join(tls::TLS_DIR);
        assert_eq!(
            fs::read_dir(&tls_dir).unwrap().count(),
            0,
            "reset left per-node files in {}",
            tls_dir.display()
        );
        // Same machine-id (a reset image copied before its first boot): still a new key.
        let id = tls::load_or_generate(copy.path(), &names()).unwrap();
        assert_eq!(id.origin, Origin::Generated);
        assert!(!seen.contains(&id.fingerprint), "{} reused", id.fingerprint);
        seen.push(id.fingerprint);
    }
}

#[test]
fn a_copied_root_with_a_changed_machine_id_makes_a_new_key() {
    let (configured, original) = configured_root();
    let copy = tempfile::tempdir().unwrap();
    copy_root(configured.path(), copy.path());
    let same = tls::load_or_generate(copy.path(), &names()).unwrap();
    assert_eq!(
        (same.origin, &same.fingerprint),
        (Origin::Reused, &original)
    );
    fs::write(
        copy.path().join("etc/machine-id"),
        "22222222222222222222222222222222\n",
    )
    .unwrap();
    let new = tls::load_or_generate(copy.path(), &names()).unwrap();
    assert_eq!(new.origin, Origin::Regenerated);
    assert_ne!(new.fingerprint, original);
    let again = tls::load_or_generate(copy.path(), &names()).unwrap();
    assert_eq!(
        (again.origin, &again.fingerprint),
        (Origin::Reused, &new.fingerprint)
    );
}
