//! What the endpoint shares between connections ([`Agent`]): the node, the reboot seam, the
//! options, the busy flag and the last attempt; and the one place where the node's state as
//! clients see it ([`NodeView`]) is put together from the node's records, the busy flag and
//! the last attempt. It serves nothing and writes no file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nodeboot_config::api::{AttemptOutcome, HealthStatus, NodeState, RolledBack, StatusReport};
use tokio::sync::Semaphore;
use tracing::warn;

use super::access::Access;
use super::failure;
use super::limits::Limits;
use super::node::{Node, Reboot};
use super::page::HomeView;
use super::status::LastAttempt;

/// Everything the endpoint shares between connections: the node, the reboot seam, options,
/// and what happened so far.
pub struct Agent {
    pub(super) node: Arc<dyn Node>,
    pub(super) reboot: Arc<dyn Reboot>,
    pub(super) reboot_delay: Duration,
    pub(super) access: Access,
    pub(super) limits: Limits,
    pub(super) fingerprint: String,
    pub(super) banner: Option<(std::path::PathBuf, Vec<String>)>,
    /// What the boot-time sources found and could not use (`nodeboot-acquire`).
    pub(super) source: Option<nodeboot_config::api::SourceReport>,
    /// Set from the moment an upload is accepted until its apply fails (or for good once it
    /// succeeded): the second upload meanwhile gets 409.
    pub(super) busy: AtomicBool,
    last: Mutex<Option<LastAttempt>>,
    /// Upload bodies being read or validated ([`Limits::max_uploads`]).
    pub(super) uploads: Arc<Semaphore>,
    /// The read-only window of the first boot after an apply, when serving one.
    pub(super) window: Option<Window>,
    /// The configuration this node rolled back, shown until a configuration is applied.
    pub(super) rolled_back: Option<RolledBack>,
}

/// The read-only status window of the first boot after an apply: the checks as last read
/// and when the window ends (uploads and plans are refused until then; then `serve` stops).
#[derive(Debug)]
pub struct Window {
    /// When the window ends (seconds since the epoch).
    pub ends_unix: u64,
    health: Mutex<HealthStatus>,
}

impl Window {
    /// A window ending at `ends_unix`, showing `health` until a newer reading.
    pub fn new(ends_unix: u64, health: HealthStatus) -> Self {
        Window {
            ends_unix,
            health: Mutex::new(health),
        }
    }

    /// The checks as last read.
    pub fn health(&self) -> HealthStatus {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps a newer reading; true when it differs from the one shown.
    pub fn update(&self, health: HealthStatus) -> bool {
        let mut shown = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if *shown == health {
            return false;
        }
        *shown = health;
        true
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("reboot_delay", &self.reboot_delay)
            .field("access", &self.access)
            .field("limits", &self.limits)
            .field("fingerprint", &self.fingerprint)
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

/// The node as clients see it: its state, the digest in place (or being applied, or that
/// failed) and, when the last apply failed, the client's message (never the logged detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Where the node stands.
    pub state: NodeState,
    /// The digest that goes with the state.
    pub digest: Option<String>,
    /// Why the last apply failed, for a client.
    pub failure: Option<String>,
}

impl Agent {
    /// An endpoint for `node`, rebooting through `reboot`, showing `fingerprint`; open access,
    /// default limits, a 5 s reboot delay.
    pub fn new(node: Arc<dyn Node>, reboot: Arc<dyn Reboot>, fingerprint: String) -> Self {
        Agent {
            node,
            reboot,
            reboot_delay: Duration::from_secs(5),
            access: Access::open(),
            limits: Limits::default(),
            fingerprint,
            banner: None,
            source: None,
            busy: AtomicBool::new(false),
            last: Mutex::new(None),
            uploads: Arc::new(Semaphore::new(Limits::default().max_uploads)),
            window: None,
            rolled_back: None,
        }
    }

    /// Serves the status read-only through `window` (uploads and plans get 409).
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Shows the rollback `record` (status, page) while the node is not configured.
    pub fn with_rolled_back(mut self, record: Option<RolledBack>) -> Self {
        self.rolled_back = record;
        self
    }

    /// The read-only window, when serving one.
    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    /// Sets the time between a finished apply and the reboot.
    pub fn with_reboot_delay(mut self, delay: Duration) -> Self {
        self.reboot_delay = delay;
        self
    }

    /// Sets the token and allow-list.
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Sets size, time and connection bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.uploads = Arc::new(Semaphore::new(limits.max_uploads.max(1)));
        self
    }

    /// Rewrites the console banner under `root` (listing `urls`) once the node is configured.
    pub fn with_banner(mut self, root: std::path::PathBuf, urls: Vec<String>) -> Self {
        self.banner = Some((root, urls));
        self
    }

    /// Shows what the boot-time configuration sources could not use (status, page).
    pub fn with_source(mut self, report: Option<nodeboot_config::api::SourceReport>) -> Self {
        self.source = report;
        self
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The allow-list and token.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Remembers the last attempt (`findings`: those of a rejected file, bounded).
    pub(super) fn record(
        &self,
        digest: Option<String>,
        outcome: AttemptOutcome,
        findings: Vec<nodeboot_config::Diagnostic>,
    ) {
        let mut last = LastAttempt::new(now_unix(), digest, outcome);
        last.findings = findings;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(last);
    }

    pub(super) fn last(&self) -> Option<LastAttempt> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node's state as clients see it: `applying` (with the accepted file's digest) from
    /// acceptance to the end of apply; a failure's client message, whether the failure is
    /// this run's or one recorded on the node before.
    pub fn view(&self) -> NodeView {
        let last = self.last();
        let (mut state, mut digest, class) = match self.node.status() {
            Ok(s) => (s.phase, s.digest, s.failure),
            Err(e) => {
                warn!(error = %e, "reading the node state");
                (NodeState::Unconfigured, None, None)
            }
        };
        let mut failure = class.map(failure::client_message);
        if let Some(LastAttempt {
            attempt:
                nodeboot_config::api::Attempt {
                    outcome: AttemptOutcome::Failed { message },
                    ..
                },
            ..
        }) = &last
        {
            failure.get_or_insert_with(|| message.clone());
        }
        // The apply ends for clients when its outcome is recorded, not when the node's
        // records say configured (a moment before): the state and `last_attempt` agree.
        let recorded = !matches!(
            &last,
            Some(LastAttempt {
                attempt: nodeboot_config::api::Attempt {
                    outcome: AttemptOutcome::Accepted { .. },
                    ..
                },
                ..
            })
        );
        if self.busy.load(Ordering::SeqCst) && (state != NodeState::Configured || !recorded) {
            state = NodeState::Applying;
            failure = None;
            if let Some(LastAttempt { attempt, .. }) = &last {
                if let (AttemptOutcome::Accepted { .. }, Some(d)) =
                    (&attempt.outcome, &attempt.digest)
                {
                    digest = Some(d.clone());
                }
            }
        }
        NodeView {
            state,
            digest,
            failure,
        }
    }

    /// The `GET /api/v1/status` document.
    pub fn status_report(&self) -> StatusReport {
        let view = self.view();
        let last = self.last();
        let (attempt, findings) = match last {
            Some(l) => (Some(l.attempt), l.findings),
            None => (None, Vec::new()),
        };
        StatusReport {
            state: view.state,
            digest: view.digest,
            errors: findings,
            error: view.failure,
            last_attempt: attempt,
            fingerprint: self.fingerprint.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            source: self.source_shown(view.state),
            health: self.window.as_ref().map(Window::health),
            rolled_back: self.rolled_back_shown(view.state),
        }
    }

    /// The rollback record while it still matters: not once a configuration is being
    /// applied or is in place.
    fn rolled_back_shown(&self, state: NodeState) -> Option<RolledBack> {
        matches!(state, NodeState::Unconfigured | NodeState::Failed)
            .then(|| self.rolled_back.clone())
            .flatten()
    }

    /// The source report while it still matters: not once the node is configured.
    fn source_shown(&self, state: NodeState) -> Option<nodeboot_config::api::SourceReport> {
        (state != NodeState::Configured)
            .then(|| self.source.clone())
            .flatten()
    }

    /// What the upload page shows.
    pub fn home(&self) -> HomeView {
        let view = self.view();
        HomeView {
            state: view.state,
            digest: view.digest,
            fingerprint: self.fingerprint.clone(),
            last: self.last(),
            token_required: self.access.requires_token(),
            version: env!("CARGO_PKG_VERSION"),
            source: self.source_shown(view.state),
            health: self.window.as_ref().map(Window::health),
            window_ends_unix: self.window.as_ref().map(|w| w.ends_unix),
            rolled_back: self.rolled_back_shown(view.state),
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
