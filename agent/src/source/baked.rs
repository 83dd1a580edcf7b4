//! Source 1: the file baked into the image by `nodeboot-image bake --config FILE`,
//! `<root>/etc/nodeboot/node.xml` or `node.json`. Read through [`crate::rootfs`] (a link on the
//! way or at the name is refused, a FIFO is never opened for a blocking read) and bounded.

use std::path::Path;

use super::{Found, Read, read_bounded};
use crate::rootfs::Root;

/// The baked file's names inside the root, in the order they are tried.
pub const BAKED: &[&str] = &["etc/nodeboot/node.xml", "etc/nodeboot/node.json"];

/// The baked file, when there is one. Both names present is an error: which one was meant?
pub fn read(root: &Root) -> Read {
    let mut found: Option<Found> = None;
    for path in BAKED {
        let origin = format!("/{path}");
        match read_bounded(root, Path::new(path), super::MAX_PAYLOAD) {
            Ok(None) => {}
            Ok(Some(bytes)) => {
                if let Some(first) = &found {
                    return Read::Unreadable {
                        origin: first.origin.clone(),
                        message: format!(
                            "both {} and {origin} are present; keep one of the two",
                            first.origin
                        ),
                    };
                }
                found = Some(Found {
                    origin,
                    bytes: Some(bytes),
                    token: None,
                });
            }
            Err(message) => return Read::Unreadable { origin, message },
        }
    }
    match found {
        Some(f) => Read::Found(f),
        None => Read::Absent,
    }
}
