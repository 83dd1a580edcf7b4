//! The apply engine on real files under a temporary root: what lands on disk, idempotence,
//! refusal of a second configuration, reset, byte-for-byte preservation, the lock.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use common::*;
use nodeboot_agent::apply::{
    self, ApplyError, FailureClass, NodeState, Outcome, Step, apply_config, apply_config_with,
    read_state,
};

fn meta(root: &Path, p: &str) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(root.join(p)).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p)).unwrap()
}

#[test]
fn apply_writes_every_file_with_its_mode_and_owner() {
    let root = image_root();
    let r = root.path();
    let config = proxying_dual();
    let doc = doc_for(&config);
    let outcome = apply_config_with(r, &doc, NOW, &mut |_| {}).unwrap();
    let digest = doc.digest().to_owned();
    let Outcome::Applied { digest: d, changed } = outcome else {
        panic!("expected Applied")
    };
    assert_eq!(d, digest);
    assert!(changed.contains(&PathBuf::from("/etc/hosts")));
    assert!(changed.contains(&PathBuf::from("/etc/ssh/sshd_not_to_be_run")));

    assert_eq!(read(r, "etc/hostname"), "edge01\n");
    assert_eq!(
        meta(r, "etc/shadow"),
        (0o640, 0, 42),
        "shadow keeps mode/owner"
    );
    assert_eq!(
        meta(r, "home/admin/.ssh/authorized_keys"),
        (0o600, 1000, 1000)
    );
    assert_eq!(meta(r, "home/admin/.ssh"), (0o700, 1000, 1000));
    assert_eq!(meta(r, "etc/nodeboot/tls/node.key"), (0o600, 0, 0));
    assert_eq!(meta(r, "etc/nodeboot/tls/node.crt"), (0o644, 0, 0));
    assert_eq!(meta(r, "etc/nodeboot/node.json"), (0o600, 0, 0));
    assert_eq!(meta(r, "var/lib/nodeboot/applied.xml"), (0o600, 0, 0));
    assert_eq!(
        fs::read(r.join("var/lib/nodeboot/applied.xml")).unwrap(),
        doc.bytes()
    );
    assert!(read(r, "etc/shadow").contains(&format!("admin:{HASH_ADMIN}:20787:0:99999:7:::\n")));
    assert!(read(r, "home/admin/.ssh/authorized_keys").contains(SSH_KEY));
    assert!(r.join("etc/ssh/sshd_not_to_be_run").exists(), "ssh off");
    // nothing of the transaction is left behind
    let leftovers: Vec<_> = tree(r)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".nodeboot-") || p.ends_with("journal.json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    assert_eq!(
        read_state(r).unwrap(),
        NodeState::Configured {
            digest: digest.clone(),
            applied_at_unix: NOW
        }
    );
    let json = serde_json::to_value(read_state(r).unwrap()).unwrap();
    assert_eq!(json["state"], "configured");
    assert_eq!(json["digest"], digest.as_str());
}

#[test]
fn the_same_file_again_writes_nothing_and_a_different_one_is_refused() {
    let root = image_root();
    let r = root.path();
    let config = transcoding();
    let doc = doc_for(&config);
    apply_config(r, &doc).unwrap();
    let before = tree(r);
    let inode = fs::metadata(r.join("etc/hosts")).unwrap().ino();
    let mtime = fs::metadata(r.join("etc/hosts")).unwrap().mtime_nsec();

    let again = apply_config(r, &doc).unwrap();
    assert_eq!(
        again,
        Outcome::Unchanged {
            digest: doc.digest().to_owned()
        }
    );
    assert_eq!(tree_diff(&before, &tree(r)), Vec::<String>::new());
    assert_eq!(fs::metadata(r.join("etc/hosts")).unwrap().ino(), inode);
    assert_eq!(
        fs::metadata(r.join("etc/hosts")).unwrap().mtime_nsec(),
        mtime
    );

    let other = management();
    let err = apply_config(r, &doc_for(&other)).unwrap_err();
    assert!(
        matches!(&err, ApplyError::AlreadyConfigured { digest } if *digest == doc.digest()),
        "{err:?}"
    );
    assert!(err.to_string().contains("run `nodeboot-agent reset`"));
    assert_eq!(tree_diff(&before, &tree(r)), Vec::<String>::new());
}

#[test]
fn foreign_lines_of_shadow_and_hosts_survive_byte_for_byte() {
    let root = image_root();
    let r = root.path();
    let old_shadow = fs::read(r.join("etc/shadow")).unwrap();
    let old_hosts = fs::read(r.join("etc/hosts")).unwrap();
    let config = proxying_dual();
    apply_config(r, &doc_for(&config)).unwrap();

    let new_shadow = fs::read(r.join("etc/shadow")).unwrap();
    let foreign = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|c| *c == b'\n')
            .filter(|l| !l.starts_with(b"admin:"))
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(foreign(&old_shadow), foreign(&new_shadow));
    // the odd ones: trailing spaces and a last line without a newline
    assert!(
        new_shadow.ends_with(b"19701:0:99999:7:::   \n# trailing comment line without newline")
    );

    let new_hosts = read(r, "etc/hosts");
    assert_eq!(
        new_hosts,
        "127.0.0.1\tlocalhost\n\
         10.0.0.41\tedge01.example.com edge01\t# nodeboot\n\
         2001:db8:0:1::41\tedge01.example.com edge01\t# nodeboot\n\
         \n\
         # The following lines are desirable for IPv6 capable hosts\n\
         ::1     localhost ip6-localhost ip6-loopback\n\
         ff02::1 ip6-allnodes\n\
         ff02::2 ip6-allrouters\n\
         192.0.2.10   backup.internal   backup  # added by hand, keep me\n"
    );
    let kept: Vec<&[u8]> = old_hosts
        .split_inclusive(|c| *c == b'\n')
        .filter(|l| !l.starts_with(b"127.0.1.1"))
        .collect();
    for line in kept {
        assert!(
            new_hosts.as_bytes().windows(line.len()).any(|w| w == line),
            "lost {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn reset_returns_the_exact_image() {
    let root = image_root();
    let r = root.path();
    // an image whose resolv.conf is a link, as with systemd-resolved
    fs::remove_file(r.join("etc/resolv.conf")).unwrap();
    std::os::unix::fs::symlink("../run/resolvconf/resolv.conf", r.join("etc/resolv.conf")).unwrap();
    let image = tree(r);
    for config in [proxying_dual(), management(), transcoding()] {
        apply_config(r, &doc_for(&config)).unwrap();
        assert!(matches!(
            read_state(r).unwrap(),
            NodeState::Configured { .. }
        ));
        apply::reset(r).unwrap();
        assert_eq!(read_state(r).unwrap(), NodeState::Unconfigured);
        assert_eq!(
            tree_diff(&image, &tree(r)),
            Vec::<String>::new(),
            "{}",
            config.name
        );
    }
    // reset of an unconfigured node changes nothing
    apply::reset(r).unwrap();
    assert_eq!(tree_diff(&image, &tree(r)), Vec::<String>::new());
}

#[test]
fn reset_keeps_changes_made_to_other_accounts_and_hosts_lines() {
    let root = image_root();
    let r = root.path();
    let config = transcoding();
    apply_config(r, &doc_for(&config)).unwrap();
    // after configuration, someone changes ops's password and adds a hosts line
    let shadow = read(r, "etc/shadow").replace("ops:$y$j9T$kFOREIGN", "ops:$y$j9T$kCHANGED");
    fs::write(r.join("etc/shadow"), &shadow).unwrap();
    let hosts = read(r, "etc/hosts") + "192.0.2.99 later\n";
    fs::write(r.join("etc/hosts"), &hosts).unwrap();
    apply::reset(r).unwrap();
    let shadow = read(r, "etc/shadow");
    assert!(shadow.contains("ops:$y$j9T$kCHANGED"));
    assert!(
        shadow.contains("admin:$6$imagesalt$"),
        "admin's image line is back"
    );
    let hosts = read(r, "etc/hosts");
    assert!(hosts.contains("127.0.1.1\tnodeboot\n"));
    assert!(hosts.ends_with("192.0.2.99 later\n"));
    assert!(!hosts.contains("# nodeboot"));
}

#[test]
fn a_second_apply_while_one_runs_is_busy() {
    let root = image_root();
    let r = root.path().to_owned();
    let (reached, wait_reached) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let r2 = r.clone();
    let first = std::thread::spawn(move || {
        let config = transcoding();
        apply_config_with(&r2, &doc_for(&config), NOW, &mut |step| {
            if step == Step::JournalCommitted {
                reached.send(()).unwrap();
                wait_release.recv().unwrap();
            }
        })
    });
    wait_reached.recv().unwrap();
    let config = management();
    let err = apply_config(&r, &doc_for(&config)).unwrap_err();
    assert!(matches!(err, ApplyError::Busy), "{err:?}");
    assert!(matches!(apply::recover(&r).unwrap_err(), ApplyError::Busy));
    assert!(matches!(apply::reset(&r).unwrap_err(), ApplyError::Busy));
    assert!(matches!(
        read_state(&r).unwrap(),
        NodeState::Applying { .. }
    ));
    release.send(()).unwrap();
    assert!(matches!(
        first.join().unwrap().unwrap(),
        Outcome::Applied { .. }
    ));
    assert!(matches!(
        read_state(&r).unwrap(),
        NodeState::Configured { .. }
    ));
}

#[test]
fn a_root_without_an_admin_account_is_refused_and_left_alone() {
    let root = image_root();
    let r = root.path();
    let passwd = read(r, "etc/passwd").replace("admin:x:1000", "adm1n:x:1000");
    fs::write(r.join("etc/passwd"), passwd).unwrap();
    let before = tree(r);
    let config = transcoding();
    let err = apply_config(r, &doc_for(&config)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the node image is not ready: /etc/passwd: no \"admin\" account; the image must have one (useradd -m admin)"
    );
    let mut after = tree(r);
    after.remove(Path::new("var/lib/nodeboot/failed.json"));
    assert_eq!(tree_diff(&before, &after), Vec::<String>::new());
    assert_eq!(
        read_state(r).unwrap(),
        NodeState::Failed {
            digest: doc_for(&config).digest().to_owned(),
            error: err.to_string(),
            class: FailureClass::Image,
        }
    );
    // a later good apply clears the failure
    fs::write(
        r.join("etc/passwd"),
        read(r, "etc/passwd").replace("adm1n:x:1000", "admin:x:1000"),
    )
    .unwrap();
    apply_config(r, &doc_for(&config)).unwrap();
    assert!(!r.join("var/lib/nodeboot/failed.json").exists());
}

#[test]
fn secrets_never_reach_debug_output_of_plans_or_errors() {
    let root = image_root();
    let config = proxying_dual();
    let plan = apply::plan_config(root.path(), &doc_for(&config)).unwrap();
    let debug = format!("{plan:?}");
    assert!(!debug.contains(HASH_ADMIN));
    assert!(!debug.contains("PRIVATE KEY"));
    let diff = apply::cli::render_diff(root.path(), &plan);
    assert!(!diff.contains(HASH_ADMIN), "{diff}");
    assert!(!diff.contains("PRIVATE KEY"), "{diff}");
    assert!(!diff.contains("$6$imagesalt"), "{diff}");
    assert!(
        diff.contains("/etc/nodeboot/tls/node.key: secret, 241 bytes (new)"),
        "{diff}"
    );
    assert!(diff.contains("-admin:***:0:0:99999:7:::"), "{diff}");
    assert!(diff.contains("+admin:***:"), "{diff}");
    let mgmt = management();
    let plan = apply::plan_config(root.path(), &doc_for(&mgmt)).unwrap();
    let diff = apply::cli::render_diff(root.path(), &plan);
    assert!(!diff.contains(HASH_WEB), "{diff}");
    assert!(
        diff.contains("\"web_admin_password_hash\": \"***\""),
        "{diff}"
    );
}
