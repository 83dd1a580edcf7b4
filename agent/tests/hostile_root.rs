//! A hostile root: links (live and dangling, to a file and to a directory) at every target,
//! every staged name, every backup name and every directory of an apply; a FIFO at a target;
//! admin's `~/.ssh` as a link or owned by someone else. Each case runs through both ways of
//! resolving paths (`openat2` and the `O_NOFOLLOW` walk), on real files in a temporary root,
//! with a sibling "outside" directory that must not change; and recovery, `reset` and the real
//! `nodeboot-agent apply --root` are tried the same way. Refusals must be precise and leave
//! the root as it was (save the record of the failed attempt).
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{chown, symlink};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use nodeboot_agent::apply::{self, Step, apply_config_with, plan_config};
use nodeboot_agent::rootfs::{Resolver, with_resolver};

const RESOLVERS: [Resolver; 2] = [Resolver::Openat2, Resolver::Walk];
const FAILED: &str = "var/lib/nodeboot/failed.json";

/// A temporary directory holding `root` (the image) and `outside` (what a link points to).
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        populate_image(&dir.path().join("root"));
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("file"), "root-only secret\n").unwrap();
        fs::write(outside.join("dir/inner"), "inner\n").unwrap();
        Scene { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn at(&self, inside: &Path) -> PathBuf {
        self.root().join(inside.strip_prefix("/").unwrap_or(inside))
    }

    /// Creates the missing parents of `inside` as an apply would (admin's under `/home/admin`).
    fn parents(&self, inside: &Path) {
        let mut p = PathBuf::from("/");
        for c in inside.parent().unwrap().components().skip(1) {
            p.push(c);
            let host = self.at(&p);
            if !host.exists() {
                fs::create_dir(&host).unwrap();
                if p.starts_with("/home/admin") {
                    chown(&host, Some(1000), Some(1000)).unwrap();
                }
            }
        }
    }

    fn apply(&self) -> Result<apply::Outcome, apply::ApplyError> {
        let config = transcoding();
        apply_config_with(&self.root(), &doc_for(&config), NOW, &mut |_| {})
    }
}

/// The kinds of link planted: (label, where it points).
fn links(scene: &Scene) -> Vec<(&'static str, PathBuf)> {
    let o = scene.outside();
    vec![
        ("live link to a file", o.join("file")),
        ("live link to a directory", o.join("dir")),
        ("dangling link to a file", o.join("new-file")),
        (
            "dangling link into a missing directory",
            o.join("new-dir/file"),
        ),
    ]
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy();
    path.with_file_name(format!(".{name}.nodeboot-{suffix}"))
}

/// Every path the transcoding apply writes or removes, inside the root.
fn targets() -> Vec<PathBuf> {
    let root = image_root();
    let config = transcoding();
    let plan = plan_config(root.path(), &doc_for(&config)).unwrap();
    plan.entries.iter().map(|e| e.path.clone()).collect()
}

/// Runs an attack that must be refused: the error names `expect_path` and says `expect_text`,
/// nothing outside changed, and the root is as it was, save the failure record.
fn assert_refused(scene: &Scene, plant: impl Fn(&Scene), expect_path: &Path, expect_text: &str) {
    plant(scene);
    let outside_before = tree(&scene.outside());
    let root_before = tree(&scene.root());
    let err = scene.apply().unwrap_err().to_string();
    let want = format!("{}: {expect_text}", scene.at(expect_path).display());
    assert!(err.contains(&want), "expected {want:?}\ngot {err:?}");
    assert_eq!(
        tree_diff(&outside_before, &tree(&scene.outside())),
        Vec::<String>::new()
    );
    let changed: BTreeSet<String> = tree_diff(&root_before, &tree(&scene.root()))
        .into_iter()
        .filter(|d| !d.ends_with(FAILED))
        .collect();
    assert!(changed.is_empty(), "{err}: the root changed: {changed:?}");
}

#[test]
fn a_link_at_any_target_is_refused_and_nothing_outside_changes() {
    let mut cases = 0;
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            for target in targets() {
                for i in 0..4 {
                    let scene = Scene::new();
                    let (kind, to) = links(&scene).swap_remove(i);
                    let plant = |s: &Scene| {
                        s.parents(&target);
                        let at = s.at(&target);
                        let _ = fs::remove_file(&at);
                        symlink(&to, &at).unwrap();
                    };
                    if target == Path::new("/etc/resolv.conf") {
                        // The one target an image may hold as a link: replaced, never followed.
                        plant(&scene);
                        let before = tree(&scene.outside());
                        scene.apply().unwrap();
                        assert_eq!(
                            tree_diff(&before, &tree(&scene.outside())),
                            Vec::<String>::new()
                        );
                        let m = fs::symlink_metadata(scene.at(&target)).unwrap();
                        assert!(m.is_file(), "{kind}: resolv.conf is not a file");
                    } else {
                        assert_refused(&scene, plant, &target, "is a symbolic link");
                    }
                    cases += 1;
                }
            }
        });
    }
    println!("{cases} link cases at targets");
    assert!(cases > 100);
}

#[test]
fn a_link_at_any_staged_or_backup_name_is_refused() {
    let mut cases = 0;
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            for target in targets() {
                for suffix in ["new", "old"] {
                    let name = sibling(&target, suffix);
                    for i in 0..4 {
                        let scene = Scene::new();
                        let (_, to) = links(&scene).swap_remove(i);
                        let plant = |s: &Scene| {
                            s.parents(&name);
                            symlink(&to, s.at(&name)).unwrap();
                        };
                        assert_refused(&scene, plant, &name, "already exists");
                        cases += 1;
                    }
                }
            }
        });
    }
    println!("{cases} link cases at staged and backup names");
    assert!(cases > 200);
}

#[test]
fn a_link_at_any_directory_on_the_way_is_refused() {
    let mut dirs = BTreeSet::new();
    for t in targets() {
        let mut p = PathBuf::from("/");
        for c in t.parent().unwrap().components().skip(1) {
            p.push(c);
            dirs.insert(p.clone());
        }
    }
    assert!(dirs.contains(Path::new("/etc/chrony")), "{dirs:?}");
    assert!(dirs.contains(Path::new("/home/admin/.ssh")), "{dirs:?}");
    let mut cases = 0;
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            for dir in &dirs {
                for dangling in [false, true] {
                    let scene = Scene::new();
                    let to = if dangling {
                        scene.outside().join("missing-dir")
                    } else {
                        scene.outside().join("dir")
                    };
                    let plant = |s: &Scene| {
                        s.parents(dir);
                        let at = s.at(dir);
                        if at.is_dir() {
                            fs::remove_dir_all(&at).unwrap();
                        }
                        symlink(&to, &at).unwrap();
                    };
                    assert_refused(&scene, plant, dir, "is a symbolic link");
                    cases += 1;
                }
            }
        });
    }
    println!("{cases} link cases at directories");
}

#[test]
fn a_fifo_at_a_target_fails_at_once_and_never_hangs() {
    for resolver in RESOLVERS {
        for target in [
            "/etc/hostname",
            "/etc/shadow",
            "/etc/chrony/chrony.conf",
            "/home/admin/.ssh/authorized_keys",
            "/var/lib/nodeboot/configured.json",
        ] {
            let scene = Scene::new();
            let target = PathBuf::from(target);
            scene.parents(&target);
            let at = scene.at(&target);
            let _ = fs::remove_file(&at);
            nix::unistd::mkfifo(&at, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
            let root_before = tree_without_fifo(&scene.root());
            let (tx, rx) = mpsc::channel();
            let root = scene.root();
            std::thread::spawn(move || {
                let config = transcoding();
                let r = with_resolver(resolver, || {
                    apply_config_with(&root, &doc_for(&config), NOW, &mut |_| {})
                });
                let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
            });
            // A guard against a hang, not a measure of speed: a blocked open would never return.
            let err = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the apply hung on a FIFO")
                .unwrap_err();
            let want = format!("{}: is a FIFO, not a regular file", at.display());
            assert!(err.contains(&want), "{want:?} not in {err:?}");
            let after = tree_without_fifo(&scene.root());
            let changed: Vec<&String> = root_before
                .iter()
                .chain(&after)
                .filter(|l| !(root_before.contains(l) && after.contains(l)))
                .filter(|l| !l.contains(FAILED))
                .collect();
            assert!(changed.is_empty(), "{changed:?}");
        }
    }
}

/// [`tree`] with FIFOs left out (the helper reads every file's content).
fn tree_without_fifo(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(root) {
        let m = fs::symlink_metadata(&e).unwrap();
        let content = if m.is_file() {
            fs::read(&e).unwrap()
        } else {
            Vec::new()
        };
        out.push(format!("{} {:?} {:?}", e.display(), m.file_type(), content));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

#[test]
fn admins_ssh_directory_as_a_link_or_owned_by_another_user_is_refused() {
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            let scene = Scene::new();
            let plant = |s: &Scene| {
                fs::create_dir_all(s.outside().join("dir")).unwrap();
                symlink(s.outside().join("dir"), s.at(Path::new("/home/admin/.ssh"))).unwrap();
            };
            assert_refused(
                &scene,
                plant,
                Path::new("/home/admin/.ssh"),
                "is a symbolic link",
            );

            let scene = Scene::new();
            let plant = |s: &Scene| {
                let ssh = s.at(Path::new("/home/admin/.ssh"));
                fs::create_dir(&ssh).unwrap();
                chown(&ssh, Some(1001), Some(1001)).unwrap();
            };
            assert_refused(
                &scene,
                plant,
                Path::new("/home/admin/.ssh"),
                "is owned by uid 1001, but the files written into it belong to uid 1000",
            );

            let scene = Scene::new();
            let plant = |s: &Scene| {
                chown(s.at(Path::new("/home/admin")), Some(0), Some(0)).unwrap();
            };
            assert_refused(
                &scene,
                plant,
                Path::new("/home/admin"),
                "is owned by uid 0, but the files written into it belong to uid 1000",
            );

            let scene = Scene::new();
            let plant = |s: &Scene| {
                fs::remove_dir(s.at(Path::new("/home/admin"))).unwrap();
                symlink(s.outside().join("dir"), s.at(Path::new("/home/admin"))).unwrap();
            };
            assert_refused(
                &scene,
                plant,
                Path::new("/home/admin"),
                "is a symbolic link",
            );
        });
    }
}

#[test]
fn authorized_keys_is_created_owned_by_admin_with_mode_0600() {
    let scene = Scene::new();
    let ssh = scene.at(Path::new("/home/admin/.ssh"));
    fs::create_dir(&ssh).unwrap();
    chown(&ssh, Some(1000), Some(1000)).unwrap();
    scene.apply().unwrap();
    let m = fs::symlink_metadata(ssh.join("authorized_keys")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o600));
    assert!(m.is_file());
}

/// Stops an apply right after `at` as a dying process would (the observer panics).
fn crash_after(scene: &Scene, at: Step) {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let config = transcoding();
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        apply_config_with(&scene.root(), &doc_for(&config), NOW, &mut |s| {
            if s == at {
                panic!("killed");
            }
        })
    }));
    std::panic::set_hook(quiet);
    assert!(crashed.is_err());
}

#[test]
fn recovery_never_follows_or_restores_a_planted_link() {
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            let hostname = Path::new("/etc/hostname");
            // Before the commit point a planted backup must not be renamed over the target.
            let scene = Scene::new();
            let image = tree(&scene.root());
            crash_after(&scene, Step::BackedUp);
            let backup = scene.at(&sibling(hostname, "old"));
            fs::remove_file(&backup).unwrap();
            symlink(scene.outside().join("file"), &backup).unwrap();
            let outside = tree(&scene.outside());
            apply::recover(&scene.root()).unwrap();
            assert_eq!(
                tree_diff(&outside, &tree(&scene.outside())),
                Vec::<String>::new()
            );
            let diff = tree_diff(&image, &tree(&scene.root()));
            assert_eq!(
                diff,
                ["only in second: etc/.hostname.nodeboot-old"],
                "only the planted link is left, untouched"
            );
            assert!(fs::symlink_metadata(scene.at(hostname)).unwrap().is_file());

            // After the commit point a staged file replaced by a link is not complete: the
            // apply is rolled back, and the link is neither followed nor put in place.
            let scene = Scene::new();
            let image = tree(&scene.root());
            crash_after(&scene, Step::JournalCommitted);
            let staged = scene.at(&sibling(hostname, "new"));
            fs::remove_file(&staged).unwrap();
            symlink(scene.outside().join("file"), &staged).unwrap();
            let outside = tree(&scene.outside());
            apply::recover(&scene.root()).unwrap();
            assert_eq!(
                tree_diff(&outside, &tree(&scene.outside())),
                Vec::<String>::new()
            );
            assert_eq!(
                tree_diff(&image, &tree(&scene.root())),
                Vec::<String>::new()
            );

            // A directory of the journal turned into a link: recovery stops with a precise
            // error and writes nothing through it.
            let scene = Scene::new();
            crash_after(&scene, Step::JournalCommitted);
            let chrony = scene.at(Path::new("/etc/chrony"));
            fs::rename(&chrony, scene.outside().join("chrony")).unwrap();
            symlink(scene.outside().join("chrony"), &chrony).unwrap();
            let outside = tree(&scene.outside());
            let err = apply::recover(&scene.root()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{}: is a symbolic link", chrony.display())),
                "{err}"
            );
            assert_eq!(
                tree_diff(&outside, &tree(&scene.outside())),
                Vec::<String>::new()
            );
        });
    }
}

#[test]
fn reset_of_a_vendor_shaped_root_refuses_links_and_changes_nothing() {
    for resolver in RESOLVERS {
        with_resolver(resolver, || {
            type Plant = fn(&Scene);
            let plants: [(&str, Plant, &str); 4] = [
                (
                    "/etc/hostname",
                    |s| {
                        let at = s.at(Path::new("/etc/hostname"));
                        fs::remove_file(&at).unwrap();
                        symlink(s.outside().join("file"), at).unwrap();
                    },
                    "is a symbolic link",
                ),
                (
                    "/etc/.hostname.nodeboot-new",
                    |s| {
                        symlink(
                            s.outside().join("new-file"),
                            s.at(Path::new("/etc/.hostname.nodeboot-new")),
                        )
                        .unwrap();
                    },
                    "already exists",
                ),
                (
                    "/home/admin/.ssh",
                    |s| {
                        let at = s.at(Path::new("/home/admin/.ssh"));
                        fs::rename(&at, s.outside().join("ssh")).unwrap();
                        symlink(s.outside().join("ssh"), at).unwrap();
                    },
                    "is a symbolic link",
                ),
                (
                    "/etc/chrony",
                    |s| {
                        let at = s.at(Path::new("/etc/chrony"));
                        fs::rename(&at, s.outside().join("chrony")).unwrap();
                        symlink(s.outside().join("chrony"), at).unwrap();
                    },
                    "is a symbolic link",
                ),
            ];
            for (path, plant, text) in plants {
                let scene = Scene::new();
                scene.apply().unwrap();
                plant(&scene);
                let outside = tree(&scene.outside());
                let root_before = tree(&scene.root());
                let err = apply::reset(&scene.root()).unwrap_err().to_string();
                let want = format!("{}: {text}", scene.at(Path::new(path)).display());
                assert!(err.contains(&want), "{want:?} not in {err:?}");
                assert_eq!(
                    tree_diff(&outside, &tree(&scene.outside())),
                    Vec::<String>::new()
                );
                assert_eq!(
                    tree_diff(&root_before, &tree(&scene.root())),
                    Vec::<String>::new()
                );
            }
        });
    }
}

#[test]
fn the_real_apply_root_command_refuses_a_link_and_writes_nothing() {
    let xml = repo_dir().join("tests/fixtures/valid/transcoding.xml");
    for (path, text) in [
        ("/etc/chrony", "is a symbolic link"),
        (
            "/home/admin/.ssh/.authorized_keys.nodeboot-new",
            "already exists",
        ),
    ] {
        let scene = Scene::new();
        let inside = Path::new(path);
        scene.parents(inside);
        let at = scene.at(inside);
        if at.is_dir() {
            fs::remove_dir_all(&at).unwrap();
        }
        symlink(scene.outside().join("dir"), &at).unwrap();
        let outside = tree(&scene.outside());
        let root_before = tree(&scene.root());
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"))
            .args(["apply", "--reboot=none", "--root"])
            .arg(scene.root())
            .arg(&xml)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        let want = format!("{}: {text}", at.display());
        assert!(err.contains(&want), "{want:?} not in {err}");
        assert_eq!(
            tree_diff(&outside, &tree(&scene.outside())),
            Vec::<String>::new()
        );
        let changed: Vec<String> = tree_diff(&root_before, &tree(&scene.root()))
            .into_iter()
            .filter(|d| !d.ends_with(FAILED))
            .collect();
        assert!(changed.is_empty(), "{changed:?}");
    }
}
