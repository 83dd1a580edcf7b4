//! Hostile documents stay bounded: whatever the depth, width, references or secrets of the
//! input, parsing answers with at most 100 findings and one "and N more" entry, each field
//! short and printable, and a masked view never shows a secret. The fuzz targets in `fuzz/`
//! assert the same properties.
#![allow(clippy::unwrap_used)] // tests may unwrap

use nodeboot_config::{
    Diagnostic, MAX_DEPTH, MAX_DIAGNOSTICS, MaskedSource, diagnostic::MAX_FIELD_CHARS,
};
use proptest::prelude::*;

/// What every answer of the parser must be, valid input or not.
fn assert_bounded(doc: &[u8], diags: &[Diagnostic]) {
    assert!(!diags.is_empty());
    assert!(diags.len() <= MAX_DIAGNOSTICS + 1, "{}", diags.len());
    for (i, d) in diags.iter().enumerate() {
        if d.omitted().is_some() {
            assert_eq!(i, diags.len() - 1, "only the last entry counts the rest");
            assert_eq!(i, MAX_DIAGNOSTICS);
        }
        for field in [
            &d.message,
            &d.path,
            d.help.as_ref().unwrap_or(&String::new()),
        ] {
            assert!(field.chars().count() <= MAX_FIELD_CHARS, "{field}");
            assert!(
                !field
                    .chars()
                    .any(nodeboot_config::text::is_forbidden_in_value)
            );
        }
    }
    let masked = MaskedSource::new(doc);
    assert_eq!(
        masked.as_str().chars().count(),
        String::from_utf8_lossy(doc).chars().count(),
        "masking keeps every column"
    );
    for d in diags {
        let shown = d.render("f.xml", &masked);
        assert!(!shown.chars().any(nodeboot_config::text::is_unsafe_char));
        assert!(shown.len() < 4 * MAX_FIELD_CHARS + 1024, "{}", shown.len());
    }
}

fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "<a>",
        "</a>",
        "<x/>",
        "<b c=\"1\" d='2'>",
        "</b>",
        "&a;",
        "&#10;",
        "&#27;",
        "<![CDATA[x]]>",
        "<!--c-->",
        "<?pi x?>",
        "text",
        "\n",
        "<password-hash>",
        "</password-hash>",
        "<",
        "\u{1b}",
    ])
}

fn secret() -> impl Strategy<Value = String> {
    "[a-z]{16}"
}

fn fixture() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/valid/transcoding.xml"
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deep_documents_are_refused_at_the_depth_limit(depth in 1usize..20_000, one_line in any::<bool>()) {
        let sep = if one_line { "" } else { "\n" };
        let open: String = (0..depth).map(|_| format!("<a>{sep}")).collect();
        let close = "</a>".repeat(depth);
        let doc = format!("<node-config schema=\"1\">{open}{close}</node-config>");
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        assert_bounded(doc.as_bytes(), &diags);
        if depth + 1 > MAX_DEPTH {
            prop_assert_eq!(diags.len(), 1);
            prop_assert!(diags[0].message.contains("levels deep, over the limit of 8"));
        }
    }

    #[test]
    fn random_fragments_stay_bounded(parts in prop::collection::vec(fragment(), 0..3000)) {
        let doc = format!("<node-config schema=\"1\">{}", parts.concat());
        if let Err(diags) = nodeboot_config::parse(doc.as_bytes()) {
            assert_bounded(doc.as_bytes(), &diags);
        }
    }

    #[test]
    fn a_secret_is_never_shown_whatever_wraps_or_follows_it(
        s in secret(),
        wrap in 0usize..5,
        tail in prop::collection::vec(fragment(), 0..20),
        cut in 0usize..200,
    ) {
        let content = match wrap {
            0 => s.clone(),
            1 => format!("<![CDATA[{s}]]>"),
            2 => format!("<!-- -->{}<![CDATA[{}]]>", &s[..4], &s[4..]),
            3 => format!("\n  <![CDATA[{s}\n]]>"),
            _ => format!("<![CDATA[{s}"),
        };
        let good = fixture();
        let start = good.find("<password-hash>").unwrap() + "<password-hash>".len();
        let end = good.find("</password-hash>").unwrap();
        let rest = &good[end..];
        let rest = &rest[..rest.len().saturating_sub(cut)];
        let doc = format!("{}{content}{}{}", &good[..start], tail.concat(), rest);
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        let masked = MaskedSource::new(doc.as_bytes());
        prop_assert!(!masked.as_str().contains(&s[4..]), "{}", masked.as_str());
        for d in &diags {
            let shown = format!("{}{d:?}", d.render("f.xml", &masked));
            prop_assert!(!shown.contains(&s[4..]), "{shown}");
        }
    }
}

proptest! {
    // wide documents cost more per case (up to 4096 elements read and checked): fewer cases
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn wide_documents_stay_bounded(n in 0usize..6_000, attrs in 0usize..24) {
        let a: String = (0..attrs).map(|i| format!(" a{i}=\"v\"")).collect();
        let doc = format!("<node-config schema=\"1\">{}</node-config>", format!("<x{a}/>").repeat(n));
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        assert_bounded(doc.as_bytes(), &diags);
    }
}

#[test]
fn fifty_thousand_levels_give_one_located_error() {
    let doc = format!(
        "<node-config schema=\"1\">{}{}</node-config>",
        "<a>".repeat(50_000),
        "</a>".repeat(50_000)
    );
    let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].line, diags[0].column), (1, 46));
    assert_eq!(
        diags[0].message,
        "element <a> is nested 9 levels deep, over the limit of 8"
    );
}

#[test]
fn one_mib_of_empty_elements_gives_at_most_101_diagnostics() {
    for head in ["", "<node-config schema=\"1\">"] {
        let doc = format!("{head}{}", "<x/>".repeat((1024 * 1024 - head.len()) / 4));
        assert!(doc.len() <= nodeboot_config::MAX_FILE_SIZE);
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        assert_bounded(doc.as_bytes(), &diags);
    }
}

#[test]
fn every_string_field_refuses_control_characters() {
    let good = fixture();
    for (from, to, element) in [
        ("<name>", "<name>a&#x85;", "name"),
        ("<description>", "<description>&#x202e;", "description"),
        (
            "<system-location>",
            "<system-location>a&#9;b",
            "system-location",
        ),
        ("<hostname>", "<hostname>a&#27;", "hostname"),
        ("<domain>", "<domain>&#127;", "domain"),
        ("<ntp-server>", "<ntp-server>a&#10;b", "ntp-server"),
        ("<dns-server>", "<dns-server>&#7;", "dns-server"),
    ] {
        if !good.contains(from) {
            continue;
        }
        let doc = good.replacen(from, to, 1);
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        assert_eq!(diags.len(), 1, "{element}: {diags:?}");
        assert!(
            diags[0]
                .message
                .starts_with(&format!("<{element}> contains the control character U+")),
            "{diags:?}"
        );
        assert!(diags[0].line > 1 && diags[0].column > 1);
        assert!(
            diags[0]
                .help
                .as_deref()
                .unwrap()
                .contains("one line of printable text")
        );
    }
    // attributes too
    let doc = good.replacen("<route name=\"", "<route name=\"&#x1b;[2J", 1);
    if doc != good {
        let diags = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
        assert_eq!(
            diags[0].message,
            "attribute \"name\" of <route> contains the control character U+001B"
        );
    }
}

#[test]
fn an_authorized_key_is_one_canonical_line() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJveDDZPaLWieLA4qD7Aak3Vrs39NCNlSx891qrtIGg";
    let good = fixture();
    let start = good.find("<authorized-key>").unwrap() + "<authorized-key>".len();
    let end = good.find("</authorized-key>").unwrap();
    let with = |k: &str| format!("{}{k}{}", &good[..start], &good[end..]);
    // refused: a line break by reference, by CDATA, a forced command, a bidi override
    for (evil, msg) in [
        (
            format!("{key} a&#10;command=\"x\" {key}"),
            "<authorized-key> contains the control character U+000A",
        ),
        (
            format!("{key} a<![CDATA[\r]]>b"),
            "<authorized-key> contains the control character U+000A",
        ),
        (
            format!("command=\"x\" {key}"),
            "not an OpenSSH public key: ",
        ),
        (
            format!("{key} a&#x202e;b"),
            "<authorized-key> contains the control character U+202E",
        ),
    ] {
        let diags = nodeboot_config::parse(with(&evil).as_bytes()).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.starts_with(msg), "{diags:?}");
        assert_eq!(diags[0].path, "/node-config/ssh/authorized-key");
    }
    // accepted, and kept as `type base64 comment`
    let parsed =
        nodeboot_config::parse(with(&format!("\n  <![CDATA[{key}]]>  me@host  \n")).as_bytes())
            .unwrap();
    let keys: Vec<&str> = parsed
        .config()
        .ssh
        .authorized_keys
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, [format!("{key} me@host")]);
}
