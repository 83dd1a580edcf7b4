//! The valid fixtures of every role parse, and serialize back to an equal configuration.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[test]
fn valid_fixtures_parse_and_round_trip() {
    for (file, role) in [
        ("valid/management.xml", nodeboot_config::Role::Management),
        ("valid/transcoding.xml", nodeboot_config::Role::Transcoding),
        ("valid/proxying.xml", nodeboot_config::Role::Proxying),
    ] {
        let bytes = fixture(file);
        let parsed = match nodeboot_config::parse(&bytes) {
            Ok(p) => p,
            Err(e) => panic!("{file}: {e:#?}"),
        };
        assert_eq!(parsed.config().role(), role, "{file}");
        assert!(
            parsed.warnings().is_empty(),
            "{file}: {:?}",
            parsed.warnings()
        );
        assert_eq!(parsed.digest(), nodeboot_config::digest(&bytes));
        let xml = nodeboot_config::to_xml(parsed.config());
        let again = nodeboot_config::parse(xml.as_bytes())
            .unwrap_or_else(|e| panic!("{file} re-serialized: {e:#?}\n{xml}"));
        assert_eq!(again.config(), parsed.config(), "{file}");
    }
}

#[test]
fn serialization_is_canonical_the_fixtures_are_written_in_it() {
    for file in [
        "valid/management.xml",
        "valid/transcoding.xml",
        "valid/proxying.xml",
    ] {
        let bytes = fixture(file);
        let parsed = nodeboot_config::parse(&bytes).unwrap();
        let xml = nodeboot_config::to_xml(parsed.config());
        assert_eq!(xml, String::from_utf8(bytes).unwrap(), "{file}");
    }
}

/// The transcoding fixture with `element` added as the last child of `<node-config>`.
fn transcoding_with(element: &str) -> String {
    let text = String::from_utf8(fixture("valid/transcoding.xml")).unwrap();
    text.replace("</node-config>", &format!("  {element}\n</node-config>"))
}

#[test]
fn the_health_policy_is_read_and_written_back_in_canonical_form() {
    let xml = transcoding_with(r#"<health rollback="any" grace="300" report="0"/>"#);
    let parsed = nodeboot_config::parse(xml.as_bytes()).unwrap();
    let policy = parsed.config().health;
    assert_eq!(policy.rollback, Some(nodeboot_config::RollbackOn::Any));
    assert_eq!(policy.grace_secs, Some(300));
    assert_eq!(policy.report_secs, Some(0));
    assert_eq!(nodeboot_config::to_xml(parsed.config()), xml);
    // Only what the file gave is written back; the rest stays the agent's default.
    let xml = transcoding_with(r#"<health grace="60"/>"#);
    let parsed = nodeboot_config::parse(xml.as_bytes()).unwrap();
    assert_eq!(parsed.config().health.rollback, None);
    assert_eq!(parsed.config().health.grace_secs, Some(60));
    assert_eq!(nodeboot_config::to_xml(parsed.config()), xml);
    // Without the element, nothing is written.
    let plain = nodeboot_config::parse(&fixture("valid/transcoding.xml")).unwrap();
    assert!(plain.config().health.is_default());
    assert!(!nodeboot_config::to_xml(plain.config()).contains("<health"));
}

#[test]
fn a_bad_health_policy_is_refused_at_its_attribute() {
    for (element, path, message) in [
        (
            r#"<health rollback="sometimes"/>"#,
            "/node-config/health@rollback",
            "rollback=\"sometimes\" is not known",
        ),
        (
            r#"<health grace="5"/>"#,
            "/node-config/health@grace",
            "grace=5 is outside 10 to 3600 seconds",
        ),
        (
            r#"<health grace="2m"/>"#,
            "/node-config/health@grace",
            "grace=\"2m\" is not a number of seconds",
        ),
        (
            r#"<health report="99999999999"/>"#,
            "/node-config/health@report",
            "report=\"99999999999\" is not a number of seconds",
        ),
        (
            r#"<health report="3601"/>"#,
            "/node-config/health@report",
            "report=3601 is outside 0 to 3600 seconds",
        ),
        (
            r#"<health retries="3"/>"#,
            "/node-config/health@retries",
            "unknown attribute \"retries\" on <health>",
        ),
    ] {
        let xml = transcoding_with(element);
        let errors = nodeboot_config::parse(xml.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1, "{element}: {errors:#?}");
        assert_eq!(errors[0].path, path, "{element}");
        assert_eq!(errors[0].message, message, "{element}");
        let line = xml.lines().position(|l| l.contains("<health")).unwrap() + 1;
        assert_eq!(errors[0].line as usize, line, "{element}");
        assert!(errors[0].help.is_some(), "{element}");
    }
}
