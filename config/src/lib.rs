//! The nodeboot configuration model (schema 1), shared by the agent and the provisioner.
//!
//! Parse → validate → typed [`NodeConfig`]; serialize back to XML or JSON. This crate does no
//! I/O and knows nothing of servers, terminals or a node's files.

pub mod diagnostic;
pub mod inventory;
mod metadata;
pub mod model;
mod parse;
mod password;
pub mod secret;
mod serialize;
mod tls;
mod xml;

pub use diagnostic::{Diagnostic, Severity};
pub use metadata::{MANAGEMENT_FIELDS, from_metadata_json, from_metadata_json_at};
pub use model::*;
pub use parse::{Parsed, parse, parse_at};
pub use password::{hash_password, verify_password};
pub use secret::{MaskedSource, Secret};
pub use serialize::to_xml;

use sha2::{Digest, Sha256};

/// The largest configuration file accepted anywhere (the agent's upload limit too).
pub const MAX_FILE_SIZE: usize = 1024 * 1024;

/// The lowercase hex SHA-256 of a configuration file's bytes: its identity everywhere
/// (status, journal, "same file, nothing to do").
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
