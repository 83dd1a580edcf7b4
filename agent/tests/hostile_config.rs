//! Hostile configuration text against the real `nodeboot-agent apply` (issue #10, item 6): a
//! plain-text password hidden in CDATA is never printed, and `&#10;` inside `<authorized-key>`
//! never becomes a second `authorized_keys` line.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use common::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJveDDZPaLWieLA4qD7Aak3Vrs39NCNlSx891qrtIGg";

/// The typical transcoding file with the content of `<element>` replaced.
fn with_content(element: &str, content: &str) -> String {
    let good =
        std::fs::read_to_string(repo_dir().join("tests/fixtures/valid/transcoding.xml")).unwrap();
    let open = format!("<{element}>");
    let start = good.find(&open).unwrap() + open.len();
    let end = good.find(&format!("</{element}>")).unwrap();
    format!("{}{content}{}", &good[..start], &good[end..])
}

#[test]
fn dry_run_never_prints_a_password_hidden_in_cdata() {
    for content in [
        "<![CDATA[correct horse]]>",
        "<!-- x --><![CDATA[correct ]]>&#104;orse",
        "<![CDATA[correct horse]]></password-hash><x y=1>",
        "<![CDATA[correct horse",
    ] {
        let root = image_root();
        let before = tree(root.path());
        let file = root.path().join("plain.xml");
        std::fs::write(&file, with_content("password-hash", content)).unwrap();
        let o = agent(&["apply", "--dry-run", file.to_str().unwrap()], root.path());
        let all =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(all.contains("error"), "{all}");
        assert!(!all.contains("correct") && !all.contains("horse"), "{all}");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(tree_diff(&before, &tree(root.path())), Vec::<String>::new());
    }
}

#[test]
fn a_line_break_in_an_authorized_key_is_refused_and_nothing_is_written() {
    let evil = format!("{KEY} a&#10;command=\"touch /tmp/owned\" {KEY} b");
    let root = image_root();
    let file = root.path().join("keys.xml");
    std::fs::write(&file, with_content("authorized-key", &evil)).unwrap();
    let before = tree(root.path());
    let o = agent(
        &["apply", "--reboot=none", file.to_str().unwrap()],
        root.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: <authorized-key> contains the control character U+000A"),
        "{err}"
    );
    assert_eq!(tree_diff(&before, &tree(root.path())), Vec::<String>::new());
}

#[test]
fn each_authorized_key_renders_as_one_canonical_line() {
    // blanks, CDATA and a comment with inner spaces: one `type base64 comment` line each
    let xml = with_content(
        "authorized-key",
        &format!("\n   <![CDATA[{KEY}]]>   ops  team@host \n  "),
    );
    let parsed = nodeboot_config::parse(xml.as_bytes()).unwrap();
    let rendered = nodeboot_agent::apply::render::render_authorized_keys(parsed.config());
    let keys: Vec<&str> = rendered
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(keys, [format!("{KEY} ops  team@host")]);
}
