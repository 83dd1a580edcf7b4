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
