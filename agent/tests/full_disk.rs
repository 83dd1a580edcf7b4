//! A full disk: the image lives on a small tmpfs made by the test. For every size from "the
//! image barely fits" to "everything fits", the apply either succeeds with the whole new
//! configuration or fails with a clean error and the image exactly as it was.
//! Needs root (mount); without it the test prints a notice and passes nothing off as checked.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nodeboot_agent::apply::{ApplyError, NodeState, apply_config_with, read_state};
use nodeboot_tests::require::{require, root};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size_kib: u32) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k,mode=0755")])
            .arg("tmpfs")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_old_configuration() {
    if !require(root(), "root (to mount a tmpfs)") {
        return;
    }
    let config = proxying_dual();
    let doc = doc_for(&config);
    let new_root = image_root();
    apply_config_with(new_root.path(), &doc, NOW, &mut |_| {}).unwrap();
    let new = tree(new_root.path());

    let (mut failed, mut succeeded) = (Vec::new(), Vec::new());
    for size in (32..=192).step_by(4) {
        let dir = tempfile::tempdir().unwrap();
        let _mount = Mount::tmpfs(dir.path(), size)
            .unwrap_or_else(|| panic!("mount -t tmpfs -o size={size}k failed on {dir:?}"));
        let r = dir.path();
        if std::panic::catch_unwind(|| populate_image(r)).is_err() {
            continue; // the image itself does not fit
        }
        let old = tree(r);
        match apply_config_with(r, &doc, NOW, &mut |_| {}) {
            Ok(_) => {
                assert_eq!(
                    tree_diff(&new, &tree(r)),
                    Vec::<String>::new(),
                    "size {size}k"
                );
                succeeded.push(size);
            }
            Err(e) => {
                let ApplyError::Io { source, .. } = &e else {
                    panic!("size {size}k: expected an I/O error, got {e:?}");
                };
                assert_eq!(
                    source.raw_os_error(),
                    Some(nix::libc::ENOSPC),
                    "size {size}k: {e}"
                );
                assert!(e.to_string().contains("No space left on device"), "{e}");
                let mut after = tree(r);
                // the failure record is the agent's note, written only when there is room
                let has_record = after
                    .remove(Path::new("var/lib/nodeboot/failed.json"))
                    .is_some();
                assert_eq!(
                    tree_diff(&old, &after),
                    Vec::<String>::new(),
                    "size {size}k"
                );
                let state = read_state(r).unwrap();
                if has_record {
                    assert!(matches!(state, NodeState::Failed { .. }), "{state:?}");
                } else {
                    assert_eq!(state, NodeState::Unconfigured);
                }
                failed.push(size);
            }
        }
    }
    println!("tmpfs sizes (KiB) that failed cleanly: {failed:?}; that applied: {succeeded:?}");
    assert!(
        failed.len() >= 3,
        "no size made the apply fail: {succeeded:?}"
    );
    assert!(
        !succeeded.is_empty(),
        "no size let the apply succeed: {failed:?}"
    );
}
