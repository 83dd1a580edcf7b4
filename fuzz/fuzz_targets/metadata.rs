//! Any bytes as metadata JSON: a configuration or diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nodeboot_config::from_metadata_json(data);
});
