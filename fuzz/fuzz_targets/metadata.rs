//! Any bytes as metadata JSON: a configuration or diagnostics, never a panic; at most 100
//! findings and one "and N more" entry, and a masked view that renders without a control
//! character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodeboot_config::MAX_DIAGNOSTICS;
use nodeboot_config::text::is_unsafe_char;

fuzz_target!(|data: &[u8]| {
    if let Err(diags) = nodeboot_config::from_metadata_json(data) {
        assert!(!diags.is_empty());
        assert!(diags.len() <= MAX_DIAGNOSTICS + 1, "{}", diags.len());
        let source = nodeboot_config::MaskedSource::metadata_json(data);
        for d in &diags {
            assert!(!d.render("fuzz.json", &source).chars().any(is_unsafe_char));
        }
    }
});
