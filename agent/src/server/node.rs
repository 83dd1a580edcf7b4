//! The server's seam to the rest of the agent: validating a file (the configuration crate),
//! reading the node's state, applying a configuration and rebooting (the `apply` module).
//!
//! The HTTP code only talks to the [`Node`] trait, so tests can wrap the real node (e.g. to
//! hold an apply back until the test has read the reply). This module writes no file itself.

use std::path::PathBuf;

use nodeboot_config::Diagnostic;
use serde::Serialize;

pub use stand_in::{Config, LogReboot, NoReboot, Reboot, SystemReboot, schedule_reboot};

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
    stand_in::parse(bytes)
}

/// Where the node stands, as `GET /api/v1/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// No configuration applied yet: uploads are accepted.
    Unconfigured,
    /// A configuration is being applied.
    Applying,
    /// A configuration has been applied: uploads are refused until `nodeboot-agent reset`.
    Configured,
    /// The last apply failed (nothing was changed): uploads are accepted again.
    Failed,
}

/// The node's state read from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Unconfigured, applying, configured or failed.
    pub phase: Phase,
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
        stand_in::status(&self.root)
    }

    fn apply(&self, xml: &[u8], config: &Config) -> Result<(), ApplyRefusal> {
        stand_in::apply(&self.root, xml, config)
    }

    fn recover(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Stand-ins for the configuration parser and the apply engine while their branches are being
/// written; replaced by `nodeboot_config::parse` and `crate::apply` when they merge.
mod stand_in {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use nodeboot_config::{Diagnostic, Severity};

    use super::{ApplyRefusal, NodeStatus, Phase, Validated};

    pub type Config = ();

    pub fn parse(bytes: &[u8]) -> Result<Validated, Vec<Diagnostic>> {
        let text = String::from_utf8_lossy(bytes);
        let problem = if !text.contains("<node-config") {
            Some("the document has no <node-config> root element")
        } else if text.contains("<hostname>-") {
            Some("hostname starts with a hyphen")
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(vec![Diagnostic {
                severity: Severity::Error,
                path: "/node-config".into(),
                line: 1,
                column: 1,
                message: message.into(),
                help: None,
            }]);
        }
        Ok(Validated {
            config: (),
            warnings: vec![],
            digest: nodeboot_config::digest(bytes),
        })
    }

    pub fn status(root: &Path) -> Result<NodeStatus, String> {
        match std::fs::read_to_string(root.join("var/lib/nodeboot/applied.sha256")) {
            Ok(d) => Ok(NodeStatus {
                phase: Phase::Configured,
                digest: Some(d),
                error: None,
            }),
            Err(_) => Ok(NodeStatus {
                phase: Phase::Unconfigured,
                digest: None,
                error: None,
            }),
        }
    }

    pub fn apply(root: &Path, xml: &[u8], _config: &Config) -> Result<(), ApplyRefusal> {
        let dir = root.join("var/lib/nodeboot");
        std::fs::create_dir_all(&dir).map_err(|e| ApplyRefusal::Failed(e.to_string()))?;
        std::fs::write(dir.join("applied.xml"), xml)
            .map_err(|e| ApplyRefusal::Failed(e.to_string()))?;
        std::fs::write(dir.join("applied.sha256"), nodeboot_config::digest(xml))
            .map_err(|e| ApplyRefusal::Failed(e.to_string()))?;
        Ok(())
    }

    pub trait Reboot: Send + Sync {
        fn reboot(&self) -> Result<(), String>;
    }

    #[derive(Debug, Default)]
    pub struct NoReboot {
        calls: AtomicUsize,
    }

    impl NoReboot {
        pub fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Reboot for NoReboot {
        fn reboot(&self) -> Result<(), String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[derive(Debug)]
    pub struct LogReboot;

    impl Reboot for LogReboot {
        fn reboot(&self) -> Result<(), String> {
            tracing::info!("reboot requested (--no-reboot: not rebooting)");
            Ok(())
        }
    }

    #[derive(Debug)]
    pub struct SystemReboot;

    impl Reboot for SystemReboot {
        fn reboot(&self) -> Result<(), String> {
            std::process::Command::new("systemctl")
                .arg("reboot")
                .status()
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }

    pub fn schedule_reboot(reboot: Arc<dyn Reboot>, delay: Duration) {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = reboot.reboot();
        });
    }
}
