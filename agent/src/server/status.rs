//! What the endpoint remembers and reports: the last upload attempt and the status document of
//! `GET /api/v1/status`. Data and serialization only.

use nodeboot_config::Diagnostic;
use serde::Serialize;

use super::node::Phase;

/// One upload that got past the access checks, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// When it arrived (seconds since the epoch).
    pub at_unix: u64,
    /// The file's SHA-256, when a file was read.
    pub digest: Option<String>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of an upload attempt. Transitions: `Accepted` → `Applied` or `Failed`; the others
/// are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Valid; the reply went out and the apply is running.
    Accepted {
        /// Seconds between the end of the apply and the reboot.
        reboot_delay_secs: u64,
    },
    /// Applied; the reboot follows after the delay.
    Applied {
        /// Seconds between the end of the apply and the reboot.
        reboot_delay_secs: u64,
    },
    /// The file is invalid: every finding.
    Rejected {
        /// Every error (and warning) with its line, column and element.
        errors: Vec<Diagnostic>,
    },
    /// The apply failed; the node keeps its previous configuration.
    Failed {
        /// Why.
        message: String,
    },
    /// The request was refused before validation (size, type, busy, configured).
    Refused {
        /// The HTTP status sent.
        code: u16,
        /// Why.
        message: String,
    },
}

/// The `GET /api/v1/status` document.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    /// `unconfigured`, `applying`, `configured` or `failed`.
    pub state: Phase,
    /// SHA-256 of the configuration in place (or being applied, or that failed).
    pub digest: Option<&'a str>,
    /// The validation errors of the last attempt (empty when it had none).
    pub errors: &'a [Diagnostic],
    /// Why the last apply failed, if it did.
    pub error: Option<&'a str>,
    /// The last upload attempt since the agent started.
    pub last_attempt: Option<&'a Attempt>,
    /// The certificate fingerprint (`SHA256:` colon-hex).
    pub fingerprint: &'a str,
    /// The agent's version.
    pub version: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_serializes_flat() {
        let a = Attempt {
            at_unix: 5,
            digest: Some("ab".into()),
            outcome: Outcome::Refused {
                code: 413,
                message: "too large".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"at_unix":5,"digest":"ab","outcome":"refused","code":413,"message":"too large"}"#
        );
    }
}
