//! Snapshot tests: each XML fixture, parsed for real and rendered against the image of
//! tests/fixtures/rendered/inputs/image, must give exactly the reviewed files under
//! tests/fixtures/rendered/<case>/ (contents, plus MANIFEST for modes, owners and removals).
//!
//! After an intended change of the output: `NODEBOOT_BLESS=1 cargo test -p nodeboot-agent
//! --test rendered_snapshots`, then review the diff of tests/fixtures/rendered/ like code.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use nodeboot_agent::apply::plan::{Change, Plan};
use nodeboot_agent::apply::{render, state};

/// (case, XML file relative to the repository).
pub const CASES: &[(&str, &str)] = &[
    ("transcoding", "tests/fixtures/valid/transcoding.xml"),
    ("proxying", "tests/fixtures/valid/proxying.xml"),
    ("management", "tests/fixtures/valid/management.xml"),
    ("edge-tls", "tests/fixtures/rendered/inputs/edge-tls.xml"),
];

fn parse(xml_path: &str) -> nodeboot_config::Document {
    let xml = fs::read(repo_dir().join(xml_path)).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    match nodeboot_config::parse_at(&xml, now) {
        Ok(doc) => doc,
        Err(d) => panic!("{xml_path} does not parse: {d:#?}"),
    }
}

fn render_case(xml_path: &str) -> Plan {
    let root = image_root();
    let inputs = state::read_inputs(
        &nodeboot_agent::rootfs::Root::open(root.path()).unwrap(),
        NOW,
    )
    .unwrap();
    render::render(parse(xml_path).config(), &inputs).unwrap()
}

fn manifest(plan: &Plan) -> String {
    let mut s = String::from("# what the render writes (mode uid:gid path) and removes\n");
    for e in &plan.entries {
        let _ = match &e.change {
            Change::Write(f) => writeln!(
                s,
                "write  {:04o} {}:{} {}",
                f.mode,
                f.owner.uid,
                f.owner.gid,
                e.path.display()
            ),
            Change::Remove => writeln!(s, "remove {}", e.path.display()),
            Change::Symlink(t) => writeln!(s, "link   {} -> {}", e.path.display(), t.display()),
        };
    }
    s
}

fn files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_owned());
            }
        }
    }
}

#[test]
fn rendered_files_match_the_reviewed_snapshots() {
    let bless = std::env::var_os("NODEBOOT_BLESS").is_some();
    let mut failures = Vec::new();
    for (case, xml) in CASES {
        let plan = render_case(xml);
        let dir = fixtures().join(case);
        let mut expected: Vec<(PathBuf, Vec<u8>)> =
            vec![(PathBuf::from("MANIFEST"), manifest(&plan).into_bytes())];
        for e in &plan.entries {
            if let Change::Write(f) = &e.change {
                expected.push((
                    e.path.strip_prefix("/").unwrap().to_owned(),
                    f.content.clone(),
                ));
            }
        }
        if bless {
            let _ = fs::remove_dir_all(&dir);
            for (p, c) in &expected {
                fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
                fs::write(dir.join(p), c).unwrap();
            }
            continue;
        }
        let mut on_disk = Vec::new();
        files(&dir, &dir, &mut on_disk);
        on_disk.sort();
        let mut wanted: Vec<PathBuf> = expected.iter().map(|(p, _)| p.clone()).collect();
        wanted.sort();
        if on_disk != wanted {
            failures.push(format!(
                "{case}: files differ: snapshot has {on_disk:?}, render gives {wanted:?}"
            ));
        }
        for (p, c) in &expected {
            let snap = fs::read(dir.join(p)).unwrap_or_default();
            if &snap != c {
                let diff = similar::TextDiff::from_lines(
                    &*String::from_utf8_lossy(&snap),
                    &*String::from_utf8_lossy(c),
                )
                .unified_diff()
                .header("snapshot", "rendered")
                .to_string();
                failures.push(format!("{case}/{}:\n{diff}", p.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rendered output differs from tests/fixtures/rendered (NODEBOOT_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_case_is_applied_for_real_and_matches_its_snapshot() {
    // The same files, this time through the whole apply path onto a temporary root.
    for (case, xml_path) in CASES {
        let doc = parse(xml_path);
        let root = image_root();
        nodeboot_agent::apply::apply_config_with(root.path(), &doc, NOW, &mut |_| {}).unwrap();
        let dir = fixtures().join(case);
        let mut snap = Vec::new();
        files(&dir, &dir, &mut snap);
        for p in snap.iter().filter(|p| *p != Path::new("MANIFEST")) {
            assert_eq!(
                fs::read(root.path().join(p)).unwrap(),
                fs::read(dir.join(p)).unwrap(),
                "{case}: {}",
                p.display()
            );
        }
        assert_eq!(
            fs::read(root.path().join("var/lib/nodeboot/applied.xml")).unwrap(),
            fs::read(repo_dir().join(xml_path)).unwrap()
        );
    }
}
