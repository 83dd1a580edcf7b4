//! Crash consistency: stop the apply right after each step of the protocol (the observer
//! panics, so nothing of the apply runs after that point — no rollback, no cleanup, as when
//! the process dies), then run recovery as the next start would, and check that the root holds
//! exactly the old image or exactly the new configuration.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::*;
use nodeboot_agent::apply::{NodeState, Step, apply_config_with, read_state, recover, reset_with};

#[test]
fn a_crash_after_any_step_leaves_the_old_or_the_new_configuration() {
    let config = proxying_dual();
    let doc = doc_for(&config);

    let old = tree(image_root().path());
    let new_root = image_root();
    let mut steps = Vec::new();
    apply_config_with(new_root.path(), &doc, NOW, &mut |s| steps.push(s)).unwrap();
    let new = tree(new_root.path());
    let commit = steps
        .iter()
        .position(|s| *s == Step::JournalCommitted)
        .unwrap();
    assert!(steps.len() > 20, "{steps:?}");

    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut outcomes = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let root = image_root();
        let r = root.path();
        let mut seen = 0;
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            apply_config_with(r, &doc, NOW, &mut |s| {
                if seen == n {
                    panic!("simulated crash after {s:?}");
                }
                seen += 1;
            })
        }));
        assert!(
            crashed.is_err(),
            "step {n} ({step:?}) did not stop the apply"
        );
        if *step != Step::Done {
            assert_eq!(
                read_state(r).unwrap(),
                NodeState::Applying {
                    digest: doc.digest().to_owned()
                },
                "after {step:?}"
            );
        }
        recover(r).unwrap();
        recover(r).unwrap(); // recovery is idempotent
        let after = tree(r);
        let (expected, which) = if n >= commit {
            (&new, "new")
        } else {
            (&old, "old")
        };
        outcomes.push(format!("{step:?} -> {which}"));
        let diff = tree_diff(expected, &after);
        if !diff.is_empty() {
            std::panic::set_hook(quiet);
            panic!("crash after {step:?}: expected the {which} configuration, got {diff:?}");
        }
        if which == "new" {
            assert!(matches!(
                read_state(r).unwrap(),
                NodeState::Configured { .. }
            ));
        } else {
            assert_eq!(read_state(r).unwrap(), NodeState::Unconfigured);
        }
    }
    std::panic::set_hook(quiet);
    println!(
        "{} crash points checked:\n  {}",
        outcomes.len(),
        outcomes.join("\n  ")
    );
}

#[test]
fn a_crash_during_reset_leaves_the_configured_node_or_the_image() {
    let config = management();
    let doc = doc_for(&config);
    let configure = |r: &std::path::Path| {
        apply_config_with(r, &doc, NOW, &mut |_| {}).unwrap();
    };
    let image = tree(image_root().path());
    let configured_root = image_root();
    configure(configured_root.path());
    let configured = tree(configured_root.path());
    let mut steps = Vec::new();
    reset_with(configured_root.path(), &mut |s| steps.push(s)).unwrap();
    assert_eq!(
        tree_diff(&image, &tree(configured_root.path())),
        Vec::<String>::new()
    );
    let commit = steps
        .iter()
        .position(|s| *s == Step::JournalCommitted)
        .unwrap();

    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (n, step) in steps.iter().enumerate() {
        let root = image_root();
        let r = root.path();
        configure(r);
        let mut seen = 0;
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            reset_with(r, &mut |s| {
                if seen == n {
                    panic!("simulated crash after {s:?}");
                }
                seen += 1;
            })
        }));
        assert!(crashed.is_err());
        recover(r).unwrap();
        let after = tree(r);
        let mut diff = if n >= commit {
            tree_diff(&image, &after)
        } else {
            tree_diff(&configured, &after)
        };
        if n >= commit {
            // reset removes the directories the first apply created only after its
            // transaction; a crash in between leaves them, empty
            diff.retain(|d| {
                let p = d.trim_start_matches("only in second: ");
                !(d.starts_with("only in second: ") && r.join(p).is_dir())
            });
        }
        if !diff.is_empty() {
            std::panic::set_hook(quiet);
            panic!("crash after {step:?} during reset: {diff:?}");
        }
    }
    std::panic::set_hook(quiet);
}

#[test]
fn a_commit_cut_short_inside_its_barrier_is_rolled_back() {
    // Power lost during the commit barrier: the commit record reached the disk but a staged
    // file did not (missing) or only partly (truncated). No target was touched yet, so
    // recovery must notice and return to the old image rather than roll forward.
    let config = proxying_dual();
    let doc = doc_for(&config);
    let old = tree(image_root().path());
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for damage in ["truncate", "delete"] {
        let root = image_root();
        let r = root.path();
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            apply_config_with(r, &doc, NOW, &mut |s| {
                if s == Step::JournalCommitted {
                    panic!("power cut");
                }
            })
        }));
        assert!(crashed.is_err());
        let staged = r.join("etc/nodeboot/.node.json.nodeboot-new");
        assert!(staged.exists());
        match damage {
            "truncate" => std::fs::write(&staged, b"{").unwrap(),
            _ => std::fs::remove_file(&staged).unwrap(),
        }
        recover(r).unwrap();
        assert_eq!(tree_diff(&old, &tree(r)), Vec::<String>::new(), "{damage}");
        assert_eq!(read_state(r).unwrap(), NodeState::Unconfigured);
    }
    std::panic::set_hook(quiet);
}
