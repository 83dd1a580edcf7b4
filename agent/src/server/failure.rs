//! What a client is told when an apply fails, apart from what is logged (dropshot's external
//! and internal messages). The detail of a failed apply names host paths and system errors:
//! it goes to the journal only. Clients (the status, the page) get a short, stable sentence
//! that names the class of failure ([`FailureClass`], typed by the apply engine from the
//! error itself, never from its text) and where to read the rest. Pure; no I/O, no logging.

use crate::apply::FailureClass;

/// The class in a few words, for a client.
pub fn wording(class: FailureClass) -> &'static str {
    match class {
        FailureClass::Configured => "the node is already configured",
        FailureClass::Busy => "another configuration is being applied",
        FailureClass::DiskFull => "the disk is full",
        FailureClass::ReadOnly => "the file system is read-only",
        FailureClass::PermissionDenied => "the system refused a file operation",
        FailureClass::Storage => "the storage reported an input/output error",
        FailureClass::UnexpectedFile => {
            "a path under the node's root is a link, not a regular file, or not owned as it must be"
        }
        FailureClass::Image => "the node image lacks something the configuration needs",
        FailureClass::Other => "an unexpected error",
    }
}

/// The sentence a client sees for a failed apply of this class.
pub fn client_message(class: FailureClass) -> String {
    format!(
        "the configuration could not be applied: {}; the node keeps its previous \
         configuration; see `journalctl -u nodeboot-agent`",
        wording(class)
    )
}

/// The sentence a client sees when a plan could not be made (the node's files could not be
/// read as the apply needs them).
pub fn plan_message(class: FailureClass) -> String {
    format!(
        "the plan could not be made: {}; nothing was changed; see `journalctl -u nodeboot-agent`",
        wording(class)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_message_carries_no_detail() {
        assert_eq!(
            client_message(FailureClass::DiskFull),
            "the configuration could not be applied: the disk is full; the node keeps its \
             previous configuration; see `journalctl -u nodeboot-agent`"
        );
    }
}
