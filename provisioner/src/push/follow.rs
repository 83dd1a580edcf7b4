//! `--wait`: following a node after it accepted its file, through the apply and the reboot
//! that takes its endpoint away, until the first boot with our file proves itself: the node
//! answers with the pinned certificate, its status carries our digest and its checks passed
//! (`healthy`); or its checks failed (`unhealthy`); or it rolled our file back (`rolled back`).
//! The agent before its reboot (`configured` without checks), checks still running, a
//! rollback under way and a node that does not answer all mean: ask again, until the
//! `--wait-timeout`. Nothing else that answers counts.
//!
//! Pure: where to look ([`places`]), when ([`Follow::pause`]), and what one answer means
//! ([`Follow::judge`]); the node's state machine (`node`) does the asking.

use std::net::IpAddr;
use std::time::Duration;

use nodeboot_config::api::{HealthPhase, HealthStatus, NodeState, RolledBack};

use super::client::{ClientError, Endpoint, Reply};
use super::reply::{self, shown};
use super::session::WaitAt;
use super::summary::FileError;

/// Where a node may answer after its reboot: where it was pushed to, then the address the
/// operator named or its file configures.
pub fn places(pushed: &Endpoint, wait_at: &WaitAt, configured: Option<IpAddr>) -> Vec<Endpoint> {
    let mut places = vec![pushed.clone()];
    match (wait_at, configured) {
        (WaitAt::Given(e), _) => places.push(e.clone()),
        (WaitAt::Configured, Some(ip)) => places.push(Endpoint {
            host: ip.to_string(),
            port: pushed.port,
        }),
        _ => {}
    }
    places.dedup();
    places
}

/// How the following goes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// Where to ask, in turn.
    pub places: Vec<Endpoint>,
    /// Questions asked so far.
    pub polls: u32,
    /// Whether the endpoint stopped answering at some point (the reboot).
    pub went_away: bool,
    /// The last state the node reported.
    pub state: Option<NodeState>,
    /// The last state reported, or what the last answer was instead of a status document.
    pub last: Option<String>,
}

/// What one answer to a status poll means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not there yet: show this and ask again.
    Again(String),
    /// The node came back with our file and every check passed.
    Healthy(Box<HealthStatus>),
    /// The node came back with our file and a check failed (its policy keeps it configured).
    Unhealthy(Box<HealthStatus>),
    /// The node rolled our file back.
    RolledBack(Box<RolledBack>),
    /// The node will not run our file: why, and its findings.
    Failed(String, Vec<FileError>),
    /// After its reboot the node presents another certificate.
    Untrusted(String),
}

impl Follow {
    /// Following a node reachable at `places`.
    pub fn new(places: Vec<Endpoint>) -> Self {
        Follow {
            places,
            polls: 0,
            went_away: false,
            state: None,
            last: None,
        }
    }

    /// How long to wait before the next question: a tenth of a second for the first ten
    /// (a node applies in milliseconds), then a second.
    pub fn pause(&self) -> Duration {
        Duration::from_millis(if self.polls < 10 { 100 } else { 1000 })
    }

    /// Where to ask next (where it was pushed to and, in turn, where it may come back); counts
    /// the question.
    pub fn next_place(&mut self) -> Endpoint {
        let n = self.places.len().max(1);
        let place = self
            .places
            .get(self.polls as usize % n)
            .cloned()
            .unwrap_or_else(|| Endpoint {
                host: String::new(),
                port: 0,
            });
        self.polls += 1;
        place
    }

    /// What an answer means for a node sent the file with `digest`.
    pub fn judge(&mut self, answer: Result<&Reply, &ClientError>, digest: &str) -> Verdict {
        match answer {
            Ok(reply) if reply.status.is_success() => {
                match reply::read_status(reply.status.as_u16(), &reply.body) {
                    Ok(Ok(report)) => {
                        let state = report.state;
                        self.state = Some(state);
                        self.last = Some(state.to_string());
                        let theirs = report.digest.as_deref().map(shown);
                        if let Some(rb) = &report.rolled_back {
                            if matches!(state, NodeState::Unconfigured | NodeState::Failed)
                                && shown(&rb.digest) == digest
                            {
                                return Verdict::RolledBack(Box::new(rb.clone()));
                            }
                        }
                        match state {
                            NodeState::Configured if theirs.as_deref() == Some(digest) => {
                                self.judge_health(report.health, digest)
                            }
                            NodeState::Configured | NodeState::Failed => {
                                let why = report.error.as_deref().map(shown);
                                let error = match (theirs, why) {
                                    (_, Some(why)) => format!("the node reports {state}: {why}"),
                                    (Some(d), None) if d != digest => {
                                        format!("the node reports {state} with another file ({d})")
                                    }
                                    _ => format!("the node reports {state}"),
                                };
                                Verdict::Failed(error, reply::file_errors(&report.errors))
                            }
                            NodeState::Unconfigured | NodeState::Applying => {
                                Verdict::Again(format!("node {state}"))
                            }
                        }
                    }
                    Ok(Err(refusal)) => Verdict::Again(format!("status refused: {refusal}")),
                    Err(e) => {
                        self.last = Some(e.to_string());
                        Verdict::Again(e.to_string())
                    }
                }
            }
            // Something else answers: never proof (the node's own status is the only one).
            Ok(reply) => Verdict::Again(format!("status answered {}", reply.status.as_u16())),
            Err(ClientError::Mismatch { expected, seen }) => Verdict::Untrusted(format!(
                "after its reboot the node presents certificate {seen}, not {expected}"
            )),
            Err(e) => {
                self.went_away = true;
                Verdict::Again(format!("rebooting? ({e})"))
            }
        }
    }

    /// What the checks of a node configured with our file say: only the first boot after
    /// the apply carries them (the agent before the reboot has none: ask again).
    fn judge_health(&mut self, health: Option<HealthStatus>, digest: &str) -> Verdict {
        let Some(h) = health else {
            let waiting = "configured; waiting for the reboot and its checks";
            self.last = Some(waiting.into());
            return Verdict::Again(waiting.into());
        };
        if shown(&h.digest) != digest {
            return Verdict::Again(format!(
                "configured; the checks are of another file ({})",
                shown(&h.digest)
            ));
        }
        self.last = Some(shown(&h.summary()));
        match h.phase {
            HealthPhase::Healthy => Verdict::Healthy(Box::new(h)),
            HealthPhase::Unhealthy => Verdict::Unhealthy(Box::new(h)),
            HealthPhase::Checking | HealthPhase::RollingBack => Verdict::Again(shown(&h.summary())),
        }
    }

    /// Why the node was given up on at the `--wait-timeout`.
    pub fn gave_up(&self) -> String {
        format!(
            "accepted, but not back healthy before the --wait-timeout ({}){}",
            self.last
                .as_deref()
                .map(|s| format!("last state: {s}"))
                .unwrap_or_else(|| "no answer".into()),
            if self.went_away {
                ", after the endpoint went away"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::push::trust::Fingerprint;
    use hyper::StatusCode;
    use hyper::body::Bytes;

    fn status(state: &str, digest: Option<&str>, error: Option<&str>) -> Reply {
        let body = serde_json::json!({"state": state, "digest": digest, "errors": [], "error": error,
            "last_attempt": null, "fingerprint": "SHA256:00", "version": "0.1.0"});
        Reply {
            status: StatusCode::OK,
            body: Bytes::from(body.to_string()),
            fingerprint: None,
        }
    }

    /// `reply` with checks of `digest` in `phase`: one gateway check, failed unless healthy.
    fn with_health(mut reply: Reply, digest: &str, phase: HealthPhase) -> Reply {
        let mut v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        v["health"] = serde_json::json!({"digest": digest, "phase": phase.as_str(),
            "rollback_on": "gateway", "grace_secs": 120, "started_unix": 1,
            "window_ends_unix": 601, "report": {"healthy": phase == HealthPhase::Healthy,
            "elapsed_ms": 5, "checks": [{"kind": "gateway", "subject": "10.0.0.1 on eth0",
            "passed": phase == HealthPhase::Healthy, "attempts": 1, "elapsed_ms": 5,
            "tried": [], "reason": "gateway 10.0.0.1 did not answer"}]}});
        reply.body = Bytes::from(v.to_string());
        reply
    }

    fn ep(text: &str) -> Endpoint {
        Endpoint::parse(text, 8443).unwrap()
    }

    #[test]
    fn a_node_is_looked_for_where_it_was_pushed_then_where_it_comes_back() {
        let pushed = ep("10.0.0.31");
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            places(&pushed, &WaitAt::Same, Some(ip)),
            vec![pushed.clone()]
        );
        assert_eq!(
            places(&pushed, &WaitAt::Configured, Some(ip)),
            [pushed.clone(), ep("192.0.2.7")]
        );
        assert_eq!(
            places(
                &pushed,
                &WaitAt::Configured,
                Some("10.0.0.31".parse().unwrap())
            ),
            vec![pushed.clone()]
        );
        let mut f = Follow::new(places(&pushed, &WaitAt::Given(ep("n2:9")), None));
        let asked: Vec<String> = (0..3).map(|_| f.next_place().to_string()).collect();
        assert_eq!(asked, ["10.0.0.31:8443", "n2:9", "10.0.0.31:8443"]);
        assert_eq!(f.pause(), Duration::from_millis(100));
        f.polls = 10;
        assert_eq!(f.pause(), Duration::from_secs(1));
    }

    #[test]
    fn status_answers_move_the_follow_on() {
        let mut f = Follow::new(vec![ep("n1")]);
        let r = status("applying", Some("ab"), None);
        assert_eq!(
            f.judge(Ok(&r), "ab"),
            Verdict::Again("node applying".into())
        );
        let refused = ClientError::Connect(std::io::ErrorKind::ConnectionRefused.into());
        assert!(
            matches!(f.judge(Err(&refused), "ab"), Verdict::Again(s) if s.starts_with("rebooting? (cannot connect"))
        );
        assert!(f.went_away);
        assert_eq!(
            f.gave_up(),
            "accepted, but not back healthy before the --wait-timeout (last state: applying), after the endpoint went away"
        );
        // Configured with our file but no checks: the agent before its reboot, never proof.
        let r = status("configured", Some("ab"), None);
        assert_eq!(
            f.judge(Ok(&r), "ab"),
            Verdict::Again("configured; waiting for the reboot and its checks".into())
        );
        for (phase, again) in [
            (
                HealthPhase::Checking,
                "checking: gateway 10.0.0.1 did not answer",
            ),
            (
                HealthPhase::RollingBack,
                "rolling_back: gateway 10.0.0.1 did not answer",
            ),
        ] {
            let r = with_health(status("configured", Some("ab"), None), "ab", phase);
            assert_eq!(f.judge(Ok(&r), "ab"), Verdict::Again(again.into()));
            assert_eq!(f.last.as_deref(), Some(again));
        }
        // Checks of another file are not ours.
        let r = with_health(
            status("configured", Some("ab"), None),
            "cd",
            HealthPhase::Healthy,
        );
        assert!(
            matches!(f.judge(Ok(&r), "ab"), Verdict::Again(s) if s.contains("another file (cd)"))
        );
        let r = with_health(
            status("configured", Some("ab"), None),
            "ab",
            HealthPhase::Healthy,
        );
        assert!(
            matches!(f.judge(Ok(&r), "ab"), Verdict::Healthy(h) if h.summary() == "healthy: 1 checks passed")
        );
        let r = with_health(
            status("configured", Some("ab"), None),
            "ab",
            HealthPhase::Unhealthy,
        );
        assert!(matches!(f.judge(Ok(&r), "ab"), Verdict::Unhealthy(h)
            if h.summary() == "unhealthy: gateway 10.0.0.1 did not answer"));
    }

    #[test]
    fn a_rollback_of_our_file_is_a_verdict_and_one_of_another_file_is_not() {
        let mut f = Follow::new(vec![ep("n1")]);
        let rolled = |digest: &str| {
            let mut r = status("unconfigured", None, None);
            let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["rolled_back"] = serde_json::json!({"digest": digest,
                "reason": "gateway 10.0.0.1 did not answer\u{1b}[2J", "at_unix": 5, "checks": []});
            r.body = Bytes::from(v.to_string());
            r
        };
        let Verdict::RolledBack(r) = f.judge(Ok(&rolled("ab")), "ab") else {
            panic!("not a rollback")
        };
        assert_eq!(r.digest, "ab");
        assert_eq!(
            f.judge(Ok(&rolled("cd")), "ab"),
            Verdict::Again("node unconfigured".into())
        );
    }

    #[test]
    fn a_node_running_another_file_or_failing_is_a_failure_with_its_reason() {
        let mut f = Follow::new(vec![ep("n1")]);
        let r = status("configured", Some("cd"), None);
        assert_eq!(
            f.judge(Ok(&r), "ab"),
            Verdict::Failed(
                "the node reports configured with another file (cd)".into(),
                vec![]
            )
        );
        let r = status("failed", Some("ab"), Some("disk\u{1b}[2J full"));
        assert_eq!(
            f.judge(Ok(&r), "ab"),
            Verdict::Failed("the node reports failed: disk[2J full".into(), vec![])
        );
        let seen = Fingerprint::of_der(b"b");
        let expected = Fingerprint::of_der(b"a");
        let mismatch = ClientError::Mismatch { expected, seen };
        assert_eq!(
            f.judge(Err(&mismatch), "ab"),
            Verdict::Untrusted(format!(
                "after its reboot the node presents certificate {seen}, not {expected}"
            ))
        );
    }

    #[test]
    fn after_the_reboot_an_answer_that_is_not_the_status_is_never_proof() {
        let mut f = Follow::new(vec![ep("n1")]);
        let other = Reply {
            status: StatusCode::NOT_FOUND,
            body: Bytes::from_static(b"<html>"),
            fingerprint: None,
        };
        f.went_away = true;
        assert_eq!(
            f.judge(Ok(&other), "ab"),
            Verdict::Again("status answered 404".into())
        );
        let mut f = Follow::new(vec![ep("n1")]);
        let foreign = status("applied", Some("ab"), None);
        let Verdict::Again(shown) = f.judge(Ok(&foreign), "ab") else {
            panic!("a foreign state is not a verdict")
        };
        assert!(shown.contains("unknown variant `applied`"), "{shown}");
        assert_eq!(
            f.gave_up(),
            format!(
                "accepted, but not back healthy before the --wait-timeout (last state: {shown})"
            )
        );
    }
}
