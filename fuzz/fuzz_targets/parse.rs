//! Any bytes: the parser returns a configuration or diagnostics, never panics, and a
//! configuration it accepts serializes to XML that parses back to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match nodeboot_config::parse(data) {
        Ok(parsed) => {
            let xml = nodeboot_config::to_xml(&parsed.config);
            let again =
                nodeboot_config::parse(xml.as_bytes()).expect("serialized config re-parses");
            assert_eq!(again.config, parsed.config);
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            let source = nodeboot_config::MaskedSource::new(data);
            for d in &diags {
                let _ = d.render("fuzz.xml", &source);
            }
        }
    }
});
