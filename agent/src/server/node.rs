//! The server's seam to the rest of the agent: reading the node's state, applying a validated
//! [`Document`] (made by the configuration crate's rules) and rebooting (the `apply` module).
//!
//! The HTTP code only talks to the [`Node`] trait, so tests can wrap the real node (e.g. to
//! hold an apply back until the test has read the reply). This module writes no file itself.

use std::path::PathBuf;

use nodeboot_config::Document;
use nodeboot_config::api::NodeState;

use crate::apply::cli::FileDiff;
use crate::apply::{self, ApplyError, FailureClass};

pub use crate::apply::{NoReboot, Reboot, schedule_reboot};

/// The node's state read from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Unconfigured, applying, configured or failed.
    pub phase: NodeState,
    /// The digest of the configuration applied (or being applied, or that failed).
    pub digest: Option<String>,
    /// What kind of failure the last apply was (its detail is in the journal only).
    pub failure: Option<FailureClass>,
}

/// Why an apply did not happen or did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyRefusal {
    /// The node is configured already.
    #[error("the node is already configured (configuration {digest})")]
    AlreadyConfigured {
        /// The configuration in place.
        digest: String,
    },
    /// Another apply holds the node.
    #[error("another configuration is being applied")]
    Busy,
    /// The apply failed; the node keeps its previous configuration.
    #[error("{detail}")]
    Failed {
        /// What a client may be told.
        class: FailureClass,
        /// What is logged (host paths, system errors): never for a client.
        detail: String,
    },
}

/// What the server needs from the node. Implemented for real by [`RootNode`].
pub trait Node: Send + Sync + 'static {
    /// The node's current state.
    fn status(&self) -> Result<NodeStatus, String>;
    /// Applies a validated document (all-or-nothing). Blocking: run off the reactor.
    fn apply(&self, doc: &Document) -> Result<(), ApplyRefusal>;
    /// Finishes or rolls back an apply interrupted by a crash (called once at start); the
    /// interrupted transaction's digest when there was one (the caller reboots).
    fn recover_at_boot(&self) -> Result<Option<String>, String>;
    /// What applying a validated document would do to each file, secrets masked (what
    /// `nodeboot-agent apply --dry-run` shows). Reads only. Blocking: run off the reactor.
    fn plan(&self, doc: &Document) -> Result<Vec<FileDiff>, ApplyRefusal>;
}

/// The real node: the agent's `apply` module acting on files under `root` (`/` in production).
#[derive(Debug, Clone)]
pub struct RootNode {
    /// The root directory the node's files live under.
    pub root: PathBuf,
}

impl Node for RootNode {
    fn status(&self) -> Result<NodeStatus, String> {
        let state = apply::read_state(&self.root).map_err(|e| e.to_string())?;
        Ok(match state {
            apply::NodeState::Unconfigured => NodeStatus {
                phase: NodeState::Unconfigured,
                digest: None,
                failure: None,
            },
            apply::NodeState::Applying { digest } => NodeStatus {
                phase: NodeState::Applying,
                digest: Some(digest),
                failure: None,
            },
            apply::NodeState::Configured { digest, .. } => NodeStatus {
                phase: NodeState::Configured,
                digest: Some(digest),
                failure: None,
            },
            apply::NodeState::Failed { digest, class, .. } => NodeStatus {
                phase: NodeState::Failed,
                digest: Some(digest),
                failure: Some(class),
            },
        })
    }

    fn apply(&self, doc: &Document) -> Result<(), ApplyRefusal> {
        match apply::apply_config(&self.root, doc) {
            Ok(_) => Ok(()),
            Err(ApplyError::AlreadyConfigured { digest }) => {
                Err(ApplyRefusal::AlreadyConfigured { digest })
            }
            Err(ApplyError::Busy) => Err(ApplyRefusal::Busy),
            Err(e) => Err(ApplyRefusal::Failed {
                class: e.class(),
                detail: e.to_string(),
            }),
        }
    }

    fn recover_at_boot(&self) -> Result<Option<String>, String> {
        apply::recover_at_boot(&self.root).map_err(|e| e.to_string())
    }

    fn plan(&self, doc: &Document) -> Result<Vec<FileDiff>, ApplyRefusal> {
        match apply::plan_config(&self.root, doc) {
            Ok(plan) => Ok(apply::cli::file_diffs(&self.root, &plan)),
            Err(e) => Err(ApplyRefusal::Failed {
                class: e.class(),
                detail: e.to_string(),
            }),
        }
    }
}
