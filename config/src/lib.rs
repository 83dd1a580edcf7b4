//! The nodeboot configuration model (schema 1), shared by the agent and the provisioner.
//!
//! Readers (the XML file with line:column, JSON metadata and the wizard's answers with field
//! names) hand their values to one set of rules ([`rules`]), which makes a [`Document`] — the
//! bytes a node records, their digest (computed once), the typed [`NodeConfig`] and the
//! warnings — or findings. This crate does no I/O and knows nothing of servers, terminals or a
//! node's files.

pub mod api;
pub mod diagnostic;
mod document;
mod draft;
#[cfg(feature = "inventory")]
pub mod inventory;
pub mod metadata;
pub mod model;
mod parse;
mod password;
pub mod pin;
pub mod rules;
pub mod secret;
mod serialize;
pub mod text;
mod tls;
mod xml;

pub use diagnostic::{Diagnostic, Severity};
pub use document::Document;
pub use metadata::{
    MANAGEMENT_FIELDS, Payload, decode_base64, from_metadata_json, from_metadata_json_at,
    from_payload, from_payload_at,
};
pub use model::*;
pub use parse::{parse, parse_at};
pub use password::{hash_password, verify_password};
pub use rules::{ManagementDraft, Named};
pub use secret::{MaskedSource, Secret};
pub use serialize::to_xml;

use sha2::{Digest, Sha256};

/// The largest configuration file accepted anywhere (the agent's upload limit too).
pub const MAX_FILE_SIZE: usize = 1024 * 1024;

/// The deepest element nesting read. Schema 1 needs 3 levels (`node-config` → `network` →
/// `ipv4`, `node-config` → `tls` → `certificate`); 8 leaves room for a later schema to add a
/// level or two without a new reader, and keeps the tree (and its recursive drop) shallow
/// whatever the input. Deeper input is refused at the element that goes too deep.
pub const MAX_DEPTH: usize = 8;

/// The most elements read in one file. A node's file has a few dozen (one per DNS or NTP
/// server, route and authorized key); 4096 leaves room for large key lists while the tree of
/// a hostile 1 MiB file of `<x/>` stays a few hundred KiB. More are refused before the tree
/// grows.
pub const MAX_ELEMENTS: usize = 4096;

/// The most attributes read on one element. Schema 1 uses at most 3 (`<ipv4>`, `<route>`).
pub const MAX_ATTRIBUTES: usize = 16;

/// The most diagnostics any list holds; what is left over is counted in one last entry made
/// by [`Diagnostic::more`] (`and N more errors`), so a list has at most 101 entries.
pub const MAX_DIAGNOSTICS: usize = 100;

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch: the one way every message,
/// page and status line shows a time. Out-of-range values show as `@<seconds>`.
pub fn format_utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{unix}"),
    }
}

/// The lowercase hex SHA-256 of a configuration file's bytes: its identity everywhere
/// (status, journal, "same file, nothing to do").
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes), "")
}

/// `bytes` as lowercase hex pairs joined by `separator`: the one hex writer behind
/// [`digest`] and the certificate fingerprints (`pin::Fingerprint`, `SHA256:ab:12:…`).
pub fn hex(bytes: &[u8], separator: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * (2 + separator.len()));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_utc_shows_civil_time() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::format_utc(1_709_164_799), "2024-02-28 23:59:59 UTC");
        assert_eq!(super::format_utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(super::format_utc(-86_400), "1969-12-31 00:00:00 UTC");
        assert_eq!(super::format_utc(i64::MAX), format!("@{}", i64::MAX));
    }
}
