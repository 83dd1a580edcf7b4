//! The server's seam to the rest of the agent: validating a file (the configuration crate),
//! reading the node's state, applying a configuration and rebooting (the `apply` module).
//!
//! The HTTP code only talks to the [`Node`] trait, so tests can wrap the real node (e.g. to
//! hold an apply back until the test has read the reply). This module writes no file itself.

use std::path::PathBuf;

use nodeboot_config::Diagnostic;
use nodeboot_config::api::NodeState;

use crate::apply::{self, ApplyError};

pub use crate::apply::{NoReboot, Reboot, schedule_reboot};

/// The validated configuration handed from the parser to apply.
pub type Config = nodeboot_config::NodeConfig;

/// A configuration file that passed validation.
#[derive(Debug)]
pub struct Validated {
    /// The typed configuration handed to apply.
    pub config: Config,
    /// Findings that do not refuse the file.
    pub warnings: Vec<Diagnostic>,
    /// The lowercase hex SHA-256 of the file.
    pub digest: String,
}

/// Parses and validates a configuration file; every finding when it is refused.
pub fn validate(bytes: &[u8]) -> Result<Validated, Vec<Diagnostic>> {
    nodeboot_config::parse(bytes).map(|p| Validated {
        config: p.config,
        warnings: p.warnings,
        digest: p.digest,
    })
}

/// The node's state read from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Unconfigured, applying, configured or failed.
    pub phase: NodeState,
    /// The digest of the configuration applied (or being applied, or that failed).
    pub digest: Option<String>,
    /// Why the last apply failed.
    pub error: Option<String>,
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
    #[error("{0}")]
    Failed(String),
}

/// What the server needs from the node. Implemented for real by [`RootNode`].
pub trait Node: Send + Sync + 'static {
    /// The node's current state.
    fn status(&self) -> Result<NodeStatus, String>;
    /// Applies a validated configuration (all-or-nothing). Blocking: run off the reactor.
    fn apply(&self, xml: &[u8], config: &Config) -> Result<(), ApplyRefusal>;
    /// Finishes or rolls back an apply interrupted by a crash (called once at start).
    fn recover(&self) -> Result<(), String>;
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
                error: None,
            },
            apply::NodeState::Applying { digest } => NodeStatus {
                phase: NodeState::Applying,
                digest: Some(digest),
                error: None,
            },
            apply::NodeState::Configured { digest, .. } => NodeStatus {
                phase: NodeState::Configured,
                digest: Some(digest),
                error: None,
            },
            apply::NodeState::Failed { digest, error } => NodeStatus {
                phase: NodeState::Failed,
                digest: Some(digest),
                error: Some(error),
            },
        })
    }

    fn apply(&self, xml: &[u8], config: &Config) -> Result<(), ApplyRefusal> {
        match apply::apply_config(&self.root, xml, config) {
            Ok(_) => Ok(()),
            Err(ApplyError::AlreadyConfigured { digest }) => {
                Err(ApplyRefusal::AlreadyConfigured { digest })
            }
            Err(ApplyError::Busy) => Err(ApplyRefusal::Busy),
            Err(e) => Err(ApplyRefusal::Failed(e.to_string())),
        }
    }

    fn recover(&self) -> Result<(), String> {
        apply::recover(&self.root).map_err(|e| e.to_string())
    }
}
