//! Any bytes: the parser returns a configuration or diagnostics, never panics, and a
//! configuration it accepts serializes to XML that parses back to the same configuration.
//! The limits of issue #10 hold as properties: at most 100 findings and one "and N more"
//! entry, each field short and printable, a masked view column for column, rendered text
//! without a control character, every authorized key one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodeboot_config::text::{is_forbidden_in_value, is_unsafe_char};
use nodeboot_config::{MAX_DIAGNOSTICS, diagnostic::MAX_FIELD_CHARS};

fuzz_target!(|data: &[u8]| {
    match nodeboot_config::parse(data) {
        Ok(parsed) => {
            assert!(parsed.warnings().len() <= MAX_DIAGNOSTICS + 1);
            for k in &parsed.config().ssh.authorized_keys {
                assert!(!k.as_str().chars().any(is_forbidden_in_value));
            }
            assert!(!parsed.config().name.chars().any(is_forbidden_in_value));
            let xml = nodeboot_config::to_xml(parsed.config());
            let again =
                nodeboot_config::parse(xml.as_bytes()).expect("serialized config re-parses");
            assert_eq!(again.config(), parsed.config());
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            assert!(diags.len() <= MAX_DIAGNOSTICS + 1, "{}", diags.len());
            for (i, d) in diags.iter().enumerate() {
                if d.omitted().is_some() {
                    assert_eq!(i, MAX_DIAGNOSTICS);
                }
                for f in [&d.message, &d.path] {
                    assert!(f.chars().count() <= MAX_FIELD_CHARS);
                    assert!(!f.chars().any(is_forbidden_in_value));
                }
            }
            let source = nodeboot_config::MaskedSource::new(data);
            assert_eq!(
                source.as_str().chars().count(),
                String::from_utf8_lossy(data).chars().count()
            );
            for d in &diags {
                let shown = d.render("fuzz.xml", &source);
                assert!(!shown.chars().any(is_unsafe_char));
            }
        }
    }
});
