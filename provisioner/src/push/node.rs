//! One node's push as a state machine, and the thin driver that runs it (and `status`'s one
//! question).
//!
//! ```text
//! Sending ──202 accepted──────────────▶ Following (--wait) or Done(accepted)
//!    │ ──409────────────────────────▶ Checking ──status: our file──▶ Done(unchanged)
//!    │                                          └─otherwise───────▶ Done(failed)
//!    │ ──422/4xx, 5xx, off-contract──▶ Done(rejected/failed)
//!    │ ──unknown certificate, terminal─▶ Asking ──yes──▶ Sending (pinned)
//!    │                                          └─no───▶ Done(untrusted)
//!    └ ──mismatch, unknown, gave up────▶ Done(untrusted/unreachable)
//! Following ──status: our file, checks passed────────────────────▶ Done(healthy)
//!    │ ──our file, checks failed (kept)───────────────────────────▶ Done(unhealthy)
//!    │ ──unconfigured, our file rolled back──────────────────────▶ Done(rolled-back)
//!    │ ──configured with another file, failed, another certificate──▶ Done(failed/untrusted)
//!    │ ──--wait-timeout over──▶ Done(failed)
//!    └ ──not yet (applying, configured before the reboot, rebooting, checking,
//!         rolling back, any other answer)──▶ Following
//! ```
//!
//! [`Node::on`] is the transition function: pure (an event in, the next state and what to
//! show or record out). [`push`] drives it: it asks the client for each state's event.

use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use nodeboot_config::api::{
    BOOTSTRAP_PATH, NodeState, PLAN_PATH, STATUS_PATH, SourceOutcome, UploadReply,
};

use super::client::{self, ClientError, Endpoint, Reply, Request};
use super::follow::{Follow, Verdict};
use super::inventory::Target;
use super::prepare::Plan;
use super::progress::NodeProgress;
use super::reply::{self, shown};
use super::session::{Run, Trust};
use super::summary::{FileError, NodeResult, Outcome};
use super::trust::{Fingerprint, PinSource, Policy};

/// Where one node's push stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Connecting, checking the certificate and sending the file (retrying while the node
    /// boots).
    Sending,
    /// The node's certificate is neither pinned nor known: the operator is asked.
    Asking(Fingerprint),
    /// The node refused with 409 (busy or configured): its status says whether it already
    /// runs our file.
    Checking {
        /// What the refusal said.
        refusal: String,
    },
    /// `--wait`: the node accepted; following it through apply and reboot.
    Following(Follow),
    /// Finished: the result is final.
    Done,
}

/// What happened while in a state.
#[derive(Debug)]
pub enum Event {
    /// The upload's exchange ended (`Sending`).
    Sent(Result<Reply, ClientError>),
    /// The operator answered (`Asking`): the policy that now pins the node, or no.
    Trusted(Option<Policy>),
    /// The status after a 409 (`Checking`), if one came.
    Checked(Option<Reply>),
    /// One status poll ended (`Following`).
    Polled(Result<Reply, ClientError>),
    /// The `--wait-timeout` is over (`Following`).
    WaitOver,
}

/// What the driver does after a transition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// A progress line to show.
    pub step: Option<String>,
    /// A certificate trusted on first use, to record in the known-nodes file.
    pub record: Option<Fingerprint>,
}

/// One node's machine: its state, its result so far, and how its certificate is trusted.
#[derive(Debug)]
pub struct Node {
    /// Where it stands.
    pub state: State,
    /// What the summary will say.
    pub result: NodeResult,
    /// The current trust policy (first use becomes a pin once the certificate is seen).
    pub policy: Policy,
    /// Where a pin came from.
    pub pin: Option<PinSource>,
    digest: String,
    /// Where to look after the reboot, when following (`--wait`); `None` without.
    follow_at: Option<Vec<Endpoint>>,
    /// `--plan`: the file goes to the plan path, and a 2xx is a [`nodeboot_config::api::PlanReply`].
    planning: bool,
}

impl Node {
    /// A node about to be sent the file of `plan`; with `follow_at`, followed there after it
    /// accepts (`--wait`).
    pub fn new(plan: &Plan, follow_at: Option<Vec<Endpoint>>) -> Self {
        let target = &plan.job.target;
        let mut result = NodeResult::new(
            &target.name,
            &target.endpoint.to_string(),
            Outcome::Failed,
            Duration::ZERO,
        );
        result.digest = Some(plan.job.digest.clone());
        Node {
            state: State::Sending,
            result,
            policy: plan.policy,
            pin: plan.pin,
            digest: plan.job.digest.clone(),
            follow_at,
            planning: false,
        }
    }

    /// The same node asked for a plan (`--plan`) instead of sent the file to apply.
    pub fn planning(mut self) -> Self {
        self.planning = true;
        self.follow_at = None;
        self
    }

    /// Where the file goes: the plan path with `--plan`, the bootstrap path otherwise.
    pub fn path(&self) -> &'static str {
        if self.planning {
            PLAN_PATH
        } else {
            BOOTSTRAP_PATH
        }
    }

    /// The transition function: `event` happened in the current state.
    pub fn on(&mut self, event: Event, trust: &Trust, target: &Target) -> Effects {
        let mut effects = Effects::default();
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match (state, event) {
            (State::Sending, Event::Sent(Ok(reply))) => {
                self.result.fingerprint = reply.fingerprint.map(|f| f.to_string());
                if let (Policy::FirstUse, Some(fp)) = (self.policy, reply.fingerprint) {
                    effects.record = Some(fp);
                }
                self.judge_upload(&reply, &mut effects)
            }
            (State::Sending, Event::Sent(Err(ClientError::Unknown { seen })))
                if self.policy == Policy::Unknown && trust.ask =>
            {
                State::Asking(seen)
            }
            (State::Sending, Event::Sent(Err(e))) => {
                self.fail(&e, trust, target);
                State::Done
            }
            (State::Asking(_), Event::Trusted(Some(policy))) => {
                (self.policy, self.pin) = (policy, Some(PinSource::KnownNodes));
                State::Sending
            }
            (State::Asking(seen), Event::Trusted(None)) => {
                self.refuse_unknown(trust, target, seen, true);
                State::Done
            }
            (State::Checking { refusal }, Event::Checked(reply)) => {
                let report = reply
                    .and_then(|r| reply::read_status(r.status.as_u16(), &r.body).ok())
                    .and_then(Result::ok);
                let state = report.as_ref().map(|r| r.state);
                self.result.state = state.map(|s| s.to_string());
                let theirs = report.and_then(|r| r.digest).map(|d| shown(&d));
                if theirs.as_deref() == Some(self.digest.as_str()) {
                    self.result.result = Outcome::Unchanged;
                } else {
                    self.result.error = Some(format!(
                        "the node refused (409 {}): {refusal}",
                        state.map(NodeState::as_str).unwrap_or("busy")
                    ));
                }
                State::Done
            }
            (State::Following(mut follow), Event::Polled(answer)) => {
                let verdict = follow.judge(answer.as_ref(), &self.digest);
                if let Some(s) = follow.state {
                    self.result.state = Some(s.to_string());
                }
                match verdict {
                    Verdict::Again(step) => {
                        effects.step = Some(step);
                        State::Following(follow)
                    }
                    Verdict::Healthy(h) => {
                        self.result.result = Outcome::Healthy;
                        self.result.verdict = Some(shown(&h.summary()));
                        self.result.checks = h.report.checks;
                        State::Done
                    }
                    Verdict::Unhealthy(h) => {
                        let verdict = shown(&h.summary());
                        self.result.result = Outcome::Unhealthy;
                        self.result.error = Some(verdict.clone());
                        self.result.verdict = Some(verdict);
                        self.result.checks = h.report.checks;
                        State::Done
                    }
                    Verdict::RolledBack(r) => {
                        let verdict = shown(&r.summary());
                        self.result.result = Outcome::RolledBack;
                        self.result.error = Some(verdict.clone());
                        self.result.verdict = Some(verdict);
                        self.result.checks = r.checks;
                        State::Done
                    }
                    Verdict::Failed(error, errors) => {
                        self.result.result = Outcome::Failed;
                        self.result.error = Some(error);
                        self.result.errors = errors;
                        State::Done
                    }
                    Verdict::Untrusted(error) => {
                        self.result.result = Outcome::Untrusted;
                        self.result.error = Some(error);
                        State::Done
                    }
                }
            }
            (State::Following(follow), Event::WaitOver) => {
                self.result.result = Outcome::Failed;
                self.result.verdict = Some(match &follow.last {
                    Some(last) => format!("timed out ({last})"),
                    None => "timed out (no answer)".into(),
                });
                self.result.error = Some(follow.gave_up());
                State::Done
            }
            (state, event) => {
                self.result.result = Outcome::Failed;
                self.result.error = Some(format!(
                    "internal error: {event:?} is not expected in state {state:?}"
                ));
                State::Done
            }
        };
        effects
    }

    /// What the answer to the upload means.
    fn judge_upload(&mut self, reply: &Reply, effects: &mut Effects) -> State {
        let code = reply.status.as_u16();
        if self.planning && reply.status.is_success() {
            match reply::read_plan(code, &reply.body) {
                Ok(plan) if shown(&plan.digest) != self.digest => {
                    self.result.error = Some(format!(
                        "the node planned a file with digest {}, not ours ({}): check the path to the node",
                        shown(&plan.digest),
                        self.digest
                    ));
                }
                Ok(plan) => {
                    self.result.result = Outcome::Planned;
                    self.result.plan = Some(plan);
                }
                Err(e) => self.result.error = Some(e.to_string()),
            }
            return State::Done;
        }
        let read = reply::read_upload(code, &reply.body);
        let said = |read: &Result<UploadReply, reply::ContractError>| match read {
            Ok(UploadReply::Refused(r)) => shown(&r.error),
            Ok(UploadReply::Rejected(r)) => shown(&r.message),
            Ok(UploadReply::Accepted(a)) => shown(&a.message),
            Err(e) => e.to_string(),
        };
        match reply.status {
            s if s.is_success() => match read {
                Ok(UploadReply::Accepted(accepted)) => {
                    let theirs = shown(&accepted.digest);
                    if theirs != self.digest {
                        self.result.error = Some(format!(
                            "the node accepted a file with digest {theirs}, not ours ({}): check the path to the node",
                            self.digest
                        ));
                        return State::Done;
                    }
                    self.result.result = Outcome::Accepted;
                    let Some(places) = self.follow_at.take() else {
                        return State::Done;
                    };
                    effects.step =
                        Some("accepted; waiting for the node to apply and come back".into());
                    // The node proved its certificate at the upload: after the reboot it
                    // must present the same one, wherever it answers.
                    if let (Policy::FirstUse, Some(fp)) = (self.policy, reply.fingerprint) {
                        self.policy = Policy::Pinned(fp);
                    }
                    State::Following(Follow::new(places))
                }
                other => {
                    self.result.error = Some(said(&other));
                    State::Done
                }
            },
            StatusCode::CONFLICT => State::Checking {
                refusal: said(&read),
            },
            s if s.is_client_error() => {
                self.result.result = Outcome::Rejected;
                self.result.errors = match &read {
                    Ok(UploadReply::Rejected(r)) => reply::file_errors(&r.errors),
                    other => vec![FileError {
                        line: None,
                        column: None,
                        path: None,
                        message: said(other),
                    }],
                };
                let reason = s.canonical_reason().unwrap_or("");
                self.result.error = Some(match s {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
                        "the node refused the upload ({code} {reason}): check the bootstrap token"
                    ),
                    _ => format!(
                        "the node refused the file ({code} {reason}, {} error(s))",
                        self.result.errors.len()
                    ),
                });
                State::Done
            }
            s => {
                self.result.error = Some(format!("unexpected answer {s}: {}", said(&read)));
                State::Done
            }
        }
    }

    /// The result for a node that is neither pinned nor known, and was not trusted.
    fn refuse_unknown(
        &mut self,
        trust: &Trust,
        target: &Target,
        seen: Fingerprint,
        declined: bool,
    ) {
        self.result.result = Outcome::Untrusted;
        self.result.fingerprint = Some(seen.to_string());
        self.result.error = Some(trust.refusal(target, seen, declined));
    }

    /// The result for a node whose exchange failed for good.
    fn fail(&mut self, error: &ClientError, trust: &Trust, target: &Target) {
        fail(&mut self.result, error, trust, target, self.pin);
    }
}

fn fail(
    result: &mut NodeResult,
    error: &ClientError,
    trust: &Trust,
    target: &Target,
    pin: Option<PinSource>,
) {
    match error {
        ClientError::Mismatch { expected, seen } => {
            result.result = Outcome::Untrusted;
            result.fingerprint = Some(seen.to_string());
            result.error = Some(trust.mismatch(target, *expected, *seen, pin));
        }
        ClientError::Unknown { seen } => {
            result.result = Outcome::Untrusted;
            result.fingerprint = Some(seen.to_string());
            result.error = Some(trust.refusal(target, *seen, false));
        }
        ClientError::Connect(_) | ClientError::Timeout(_) => {
            result.result = Outcome::Unreachable;
            result.error = Some(format!(
                "{error} (gave up after {} attempt(s))",
                result.attempts
            ));
        }
        _ => result.error = Some(error.to_string()),
    }
}

fn request<'a>(
    target: &'a Target,
    method: Method,
    path: &'static str,
    body: Option<Bytes>,
) -> Request<'a> {
    Request {
        method,
        path,
        token: target.token.as_ref(),
        body,
    }
}

/// Runs one node's push to its end.
pub async fn push(run: &Run, plan: Plan, follow_at: Option<Vec<Endpoint>>) -> NodeResult {
    let started = Instant::now();
    let deadline = started + run.timeout;
    let target = &plan.job.target;
    let body = plan.job.body.clone();
    let progress = run.display.node(&target.name);
    let mut node = Node::new(&plan, follow_at);
    if run.plan {
        node = node.planning();
    }
    let path = node.path();
    let mut wait_until = None;
    loop {
        let event = match &mut node.state {
            State::Sending => Event::Sent(
                exchange_until(
                    &progress,
                    target,
                    node.policy,
                    deadline,
                    &mut node.result.attempts,
                    || request(target, Method::POST, path, Some(body.clone())),
                )
                .await,
            ),
            State::Asking(seen) => {
                Event::Trusted(run.trust.confirm(&run.display, target, *seen).await)
            }
            State::Checking { .. } => Event::Checked(
                exchange_until(
                    &progress,
                    target,
                    node.policy,
                    Instant::now() + Duration::from_secs(10),
                    &mut node.result.attempts,
                    || request(target, Method::GET, STATUS_PATH, None),
                )
                .await
                .ok(),
            ),
            State::Following(follow) => {
                let until = *wait_until
                    .get_or_insert_with(|| Instant::now() + run.wait.unwrap_or_default());
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Event::WaitOver
                } else {
                    tokio::time::sleep(follow.pause().min(left)).await;
                    let place = follow.next_place();
                    let ask = request(target, Method::GET, STATUS_PATH, None);
                    let per_poll = left.min(Duration::from_secs(5));
                    Event::Polled(client::exchange(&place, node.policy, ask, per_poll).await)
                }
            }
            State::Done => break,
        };
        let effects = node.on(event, &run.trust, target);
        if let Some(fp) = effects.record {
            if let Some(notice) = run.trust.record(target, fp) {
                run.display.note(&notice);
            }
        }
        if let Some(step) = effects.step {
            progress.step(&step);
        }
    }
    done(&progress, node.result, started)
}

/// `nodeboot status` for one node: one question, asked again once the operator trusts an
/// unknown certificate.
pub async fn status(run: &Run, target: Target) -> NodeResult {
    let started = Instant::now();
    let progress = run.display.node(&target.name);
    let (mut policy, mut pin) = run.trust.policy(&target, run.pin_source);
    let mut result = NodeResult::new(
        &target.name,
        &target.endpoint.to_string(),
        Outcome::Failed,
        Duration::ZERO,
    );
    progress.step("asking");
    let reply = loop {
        let ask = request(&target, Method::GET, STATUS_PATH, None);
        result.attempts += 1;
        match client::exchange(&target.endpoint, policy, ask, run.timeout).await {
            Ok(r) => break r,
            Err(ClientError::Unknown { seen }) if policy == Policy::Unknown => {
                match run.trust.confirm(&run.display, &target, seen).await {
                    Some(pinned) => (policy, pin) = (pinned, Some(PinSource::KnownNodes)),
                    None => {
                        result.result = Outcome::Untrusted;
                        result.fingerprint = Some(seen.to_string());
                        result.error = Some(run.trust.refusal(&target, seen, run.trust.ask));
                        return done(&progress, result, started);
                    }
                }
            }
            Err(e) => {
                fail(&mut result, &e, &run.trust, &target, pin);
                return done(&progress, result, started);
            }
        }
    };
    result.fingerprint = reply.fingerprint.map(|f| f.to_string());
    if let (Policy::FirstUse, Some(fp)) = (policy, reply.fingerprint) {
        if let Some(notice) = run.trust.record(&target, fp) {
            run.display.note(&notice);
        }
    }
    read_status_into(&mut result, &reply);
    done(&progress, result, started)
}

/// What `status` shows of a node's answer.
fn read_status_into(result: &mut NodeResult, reply: &Reply) {
    match reply::read_status(reply.status.as_u16(), &reply.body) {
        Ok(Ok(report)) => {
            result.result = Outcome::Answered;
            result.state = Some(report.state.to_string());
            result.digest = report.digest.as_deref().map(shown);
            result.version = Some(shown(&report.version));
            result.errors = reply::file_errors(&report.errors);
            if !result.errors.is_empty() {
                result.error = Some(format!("last attempt: {} error(s)", result.errors.len()));
            }
            // The boot-time source failed closed: say which and why (its findings join the
            // errors, located by the field or line they name).
            if let Some(source) = &report.source {
                let why = match &source.outcome {
                    SourceOutcome::Invalid { findings } => {
                        result.errors.extend(reply::file_errors(findings));
                        format!("invalid, {} finding(s)", findings.len())
                    }
                    SourceOutcome::Unreadable { message } => shown(message),
                    SourceOutcome::RolledBack { reason, .. } => {
                        format!("rolled back: {}", shown(reason))
                    }
                };
                result.error = Some(format!(
                    "configuration from {} not used: {why}",
                    shown(&source.origin)
                ));
            }
        }
        Ok(Err(refusal)) => {
            result.error = Some(format!("status answered {}: {refusal}", reply.status));
        }
        Err(e) => {
            result.error = Some(format!("{e} (is this a nodeboot agent?)"));
        }
    }
}

fn done(progress: &NodeProgress, mut result: NodeResult, started: Instant) -> NodeResult {
    result.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let line = match &result.error {
        Some(e) => format!("{}: {e}", result.result.as_str()),
        None => format!("{} in {:.2}s", result.result.as_str(), result.seconds),
    };
    progress.finish(result.result.is_ok(), &line);
    result
}

/// Exponential backoff while a node is not up yet: 0.1 s doubling to 3 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)).min(3000))
}

/// Sends the request made by `make` until an HTTP answer arrives, retrying what may pass
/// (the node still booting) with backoff until `deadline`.
async fn exchange_until<'a>(
    progress: &NodeProgress,
    target: &'a Target,
    policy: Policy,
    deadline: Instant,
    attempts: &mut u32,
    make: impl Fn() -> Request<'a>,
) -> Result<Reply, ClientError> {
    let mut tries = 0u32;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let per_try = left
            .min(Duration::from_secs(15))
            .max(Duration::from_millis(50));
        if tries == 0 {
            progress.step("connecting");
        }
        *attempts += 1;
        tries += 1;
        match client::exchange(&target.endpoint, policy, make(), per_try).await {
            Ok(reply)
                if matches!(
                    reply.status,
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                ) && Instant::now() < deadline =>
            {
                progress.step(&format!(
                    "node not ready ({}), retrying (attempt {tries})",
                    reply.status.as_u16()
                ));
            }
            Ok(reply) => return Ok(reply),
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                progress.step(&format!("{e}; retrying (attempt {tries})"));
            }
            Err(e) => return Err(e),
        }
        // The last attempt comes at the deadline itself.
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(backoff(tries).min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::push::inventory::Source;
    use crate::push::prepare::Job;
    use crate::push::session::PinHint;
    use crate::push::trust::KnownNodes;
    use nodeboot_config::api::HealthPhase;
    use nodeboot_tests::fixtures::{health, rolled_back};

    const OURS: &str = "00aa";

    fn target() -> Target {
        Target {
            name: "n1".into(),
            endpoint: Endpoint::parse("10.0.0.31", 8443).unwrap(),
            source: Source::None,
            fingerprint: None,
            token: None,
        }
    }

    fn trust(ask: bool) -> Trust {
        Trust::new(
            false,
            false,
            ask,
            PinHint::Flag,
            Some("/k/known_nodes".into()),
            KnownNodes::default(),
        )
    }

    fn node(policy: Policy, follow: bool) -> Node {
        let plan = Plan {
            job: Job {
                target: target(),
                body: Bytes::from_static(b"<node-config/>"),
                digest: OURS.into(),
                configured: None,
            },
            policy,
            pin: None,
        };
        Node::new(&plan, follow.then(|| vec![target().endpoint]))
    }

    fn reply(code: u16, body: serde_json::Value) -> Event {
        Event::Sent(Ok(Reply {
            status: StatusCode::from_u16(code).unwrap(),
            body: Bytes::from(body.to_string()),
            fingerprint: Some(Fingerprint::of_der(b"node")),
        }))
    }

    fn accepted(digest: &str) -> Event {
        reply(
            202,
            serde_json::json!({"status": "accepted", "digest": digest, "reboot_delay_seconds": 5,
                "warnings": [], "message": "ok"}),
        )
    }

    /// The reason of the gateway check that fails in [`checked`]'s checks.
    const GATEWAY_FAILED: &str = "gateway 10.0.0.1 did not answer ARP on eth0 within 20 s";

    /// A status of the first boot with `digest`, its checks in `phase`.
    fn checked(digest: &str, phase: HealthPhase) -> Reply {
        let mut report =
            serde_json::from_slice::<serde_json::Value>(&status("configured", digest).body)
                .unwrap();
        report["health"] = serde_json::to_value(health(digest, phase, 1, GATEWAY_FAILED)).unwrap();
        Reply {
            status: StatusCode::OK,
            body: Bytes::from(report.to_string()),
            fingerprint: None,
        }
    }

    fn status(state: &str, digest: &str) -> Reply {
        let body = serde_json::json!({"state": state, "digest": digest, "errors": [], "error": null,
            "last_attempt": null, "fingerprint": "SHA256:00", "version": "0.1.0"});
        Reply {
            status: StatusCode::OK,
            body: Bytes::from(body.to_string()),
            fingerprint: None,
        }
    }

    #[test]
    fn a_status_names_the_boot_source_that_failed_closed_and_its_findings() {
        let body = serde_json::json!({"state": "unconfigured", "digest": null, "errors": [],
            "error": null, "last_attempt": null, "fingerprint": "SHA256:00", "version": "0.1.0",
            "source": {"origin": "NoCloud disc cidata (user-data)\u{1b}[31m", "outcome": "invalid",
                "findings": [{"severity": "error", "line": 0, "column": 0,
                    "path": "management_node_config.gw", "message": "not an IPv4 address",
                    "help": "give the gateway as a.b.c.d"}]}});
        let reply = Reply {
            status: StatusCode::OK,
            body: Bytes::from(body.to_string()),
            fingerprint: None,
        };
        let mut result = NodeResult::new("n", "127.0.0.1:8443", Outcome::Failed, Duration::ZERO);
        read_status_into(&mut result, &reply);
        assert_eq!(result.result, Outcome::Answered);
        assert_eq!(
            result.error.as_deref(),
            Some(
                "configuration from NoCloud disc cidata (user-data)[31m not used: invalid, 1 finding(s)"
            )
        );
        assert_eq!(result.errors.len(), 1);
        assert_eq!(
            result.errors[0].path.as_deref(),
            Some("management_node_config.gw")
        );
        let unreadable = serde_json::json!({"state": "unconfigured", "digest": null, "errors": [],
            "error": null, "last_attempt": null, "fingerprint": "SHA256:00", "version": "0.1.0",
            "source": {"origin": "/etc/nodeboot/node.xml", "outcome": "unreadable",
                "message": "a symbolic link: refused"}});
        let reply = Reply {
            status: StatusCode::OK,
            body: Bytes::from(unreadable.to_string()),
            fingerprint: None,
        };
        read_status_into(&mut result, &reply);
        assert_eq!(
            result.error.as_deref(),
            Some("configuration from /etc/nodeboot/node.xml not used: a symbolic link: refused")
        );
    }

    #[test]
    fn backoff_grows_then_stays_at_three_seconds() {
        let steps: Vec<u64> = (0..8).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
    }

    #[test]
    fn an_accepted_file_ends_the_push_or_starts_following_with_the_certificate_pinned() {
        let (t, target) = (trust(false), target());
        let mut n = node(Policy::Insecure, false);
        assert_eq!(n.on(accepted(OURS), &t, &target), Effects::default());
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Accepted)
        );

        let mut n = node(Policy::FirstUse, true);
        let fx = n.on(accepted(OURS), &t, &target);
        let fp = Fingerprint::of_der(b"node");
        assert_eq!(fx.record, Some(fp));
        assert_eq!(
            fx.step.as_deref(),
            Some("accepted; waiting for the node to apply and come back")
        );
        assert!(matches!(n.state, State::Following(_)));
        assert_eq!(n.policy, Policy::Pinned(fp));

        let fx = n.on(Event::Polled(Ok(status("applying", OURS))), &t, &target);
        assert_eq!(fx.step.as_deref(), Some("node applying"));
        // The agent before its reboot says configured, with no checks: not proof.
        let fx = n.on(Event::Polled(Ok(status("configured", OURS))), &t, &target);
        assert_eq!(
            fx.step.as_deref(),
            Some("configured; waiting for the reboot and its checks")
        );
        let fx = n.on(
            Event::Polled(Ok(checked(OURS, HealthPhase::Checking))),
            &t,
            &target,
        );
        assert_eq!(
            fx.step.as_deref(),
            Some("checking: gateway 10.0.0.1 did not answer ARP on eth0 within 20 s")
        );
        n.on(
            Event::Polled(Ok(checked(OURS, HealthPhase::Healthy))),
            &t,
            &target,
        );
        assert_eq!(n.state, State::Done);
        assert_eq!(n.result.result, Outcome::Healthy);
        assert_eq!(n.result.state.as_deref(), Some("configured"));
        assert_eq!(
            n.result.verdict.as_deref(),
            Some("healthy: 2 checks passed")
        );
        assert_eq!(n.result.checks.len(), 2);
    }

    #[test]
    fn following_ends_unhealthy_or_rolled_back_with_the_reason_and_the_checks() {
        let (t, target) = (trust(false), target());
        let mut n = node(Policy::Insecure, true);
        n.on(accepted(OURS), &t, &target);
        n.on(
            Event::Polled(Ok(checked(OURS, HealthPhase::Unhealthy))),
            &t,
            &target,
        );
        assert_eq!(n.result.result, Outcome::Unhealthy);
        let why = "unhealthy: gateway 10.0.0.1 did not answer ARP on eth0 within 20 s";
        assert_eq!(n.result.verdict.as_deref(), Some(why));
        assert_eq!(n.result.error.as_deref(), Some(why));
        assert_eq!(n.result.checks.len(), 2);

        let mut n = node(Policy::Insecure, true);
        n.on(accepted(OURS), &t, &target);
        let reason = "gateway 10.0.0.1 did not answer ARP on eth0 within 120 s";
        let record = rolled_back(OURS, reason, 1);
        let mut report =
            serde_json::from_slice::<serde_json::Value>(&status("unconfigured", "").body).unwrap();
        report["digest"] = serde_json::Value::Null;
        report["rolled_back"] = serde_json::to_value(&record).unwrap();
        let reply = Reply {
            status: StatusCode::OK,
            body: Bytes::from(report.to_string()),
            fingerprint: None,
        };
        n.on(Event::Polled(Ok(reply)), &t, &target);
        assert_eq!(n.result.result, Outcome::RolledBack);
        assert_eq!(
            n.result.verdict.as_deref(),
            Some("rolled back: gateway 10.0.0.1 did not answer ARP on eth0 within 120 s")
        );
        assert!(!n.result.result.is_ok());
    }

    #[test]
    fn following_gives_up_at_the_wait_timeout() {
        let (t, target) = (trust(false), target());
        let mut n = node(Policy::Insecure, true);
        n.on(accepted(OURS), &t, &target);
        n.on(Event::WaitOver, &t, &target);
        assert_eq!(n.result.result, Outcome::Failed);
        assert_eq!(
            n.result.error.as_deref(),
            Some("accepted, but not back healthy before the --wait-timeout (no answer)")
        );
        assert_eq!(n.result.verdict.as_deref(), Some("timed out (no answer)"));
    }

    #[test]
    fn a_node_accepting_another_digest_fails() {
        let mut n = node(Policy::Insecure, true);
        n.on(accepted("ffff"), &trust(false), &target());
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Failed)
        );
        assert_eq!(
            n.result.error.as_deref(),
            Some(
                "the node accepted a file with digest ffff, not ours (00aa): check the path to the node"
            )
        );
    }

    #[test]
    fn a_409_is_unchanged_when_the_node_runs_our_file_and_a_refusal_otherwise() {
        let (t, target) = (trust(false), target());
        let refusal =
            serde_json::json!({"status": "refused", "code": 409, "error": "already configured"});
        let mut n = node(Policy::Insecure, false);
        n.on(reply(409, refusal.clone()), &t, &target);
        assert_eq!(
            n.state,
            State::Checking {
                refusal: "already configured".into()
            }
        );
        n.on(
            Event::Checked(Some(status("configured", OURS))),
            &t,
            &target,
        );
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Unchanged)
        );

        let mut n = node(Policy::Insecure, false);
        n.on(reply(409, refusal), &t, &target);
        n.on(
            Event::Checked(Some(status("configured", "other"))),
            &t,
            &target,
        );
        assert_eq!(n.result.result, Outcome::Failed);
        assert_eq!(
            n.result.error.as_deref(),
            Some("the node refused (409 configured): already configured")
        );
        let mut n = node(Policy::Insecure, false);
        n.on(
            reply(409, serde_json::json!({"error": "busy"})),
            &t,
            &target,
        );
        n.on(Event::Checked(None), &t, &target);
        assert_eq!(
            n.result.error.as_deref(),
            Some(
                "the node refused (409 busy): the upload answered 409, but not as a nodeboot agent does: missing field `status` at line 1 column 16"
            )
        );
    }

    #[test]
    fn rejections_carry_the_nodes_findings_and_a_refused_token_says_so() {
        let (t, target) = (trust(false), target());
        let mut n = node(Policy::Insecure, false);
        let rejected = serde_json::json!({"status": "rejected", "message": "2 problems", "total": 2, "errors": [
            {"severity": "error", "path": "/node-config/hostname", "line": 4, "column": 3, "message": "`-bad` is not a valid hostname", "help": null},
            {"severity": "error", "path": "/node-config/network/ipv4", "line": 9, "column": 5, "message": "gateway outside the subnet", "help": null}]});
        n.on(reply(422, rejected), &t, &target);
        assert_eq!(n.result.result, Outcome::Rejected);
        assert_eq!(
            n.result.error.as_deref(),
            Some("the node refused the file (422 Unprocessable Entity, 2 error(s))")
        );
        assert_eq!(
            n.result.errors[1].to_string(),
            "9:5: /node-config/network/ipv4: gateway outside the subnet"
        );

        let mut n = node(Policy::Insecure, false);
        n.on(reply(401, serde_json::json!({"status": "refused", "code": 401, "error": "a bootstrap token is required"})), &t, &target);
        assert_eq!(
            n.result.error.as_deref(),
            Some("the node refused the upload (401 Unauthorized): check the bootstrap token")
        );
        assert_eq!(n.result.errors[0].message, "a bootstrap token is required");
    }

    #[test]
    fn an_answer_off_the_contract_is_reported_with_its_code() {
        let mut n = node(Policy::Insecure, false);
        let event = Event::Sent(Ok(Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from_static(b"oops\x1b[2J"),
            fingerprint: None,
        }));
        n.on(event, &trust(false), &target());
        assert_eq!(n.result.result, Outcome::Failed);
        assert_eq!(
            n.result.error.as_deref(),
            Some(
                "unexpected answer 500 Internal Server Error: the upload answered 500, but not as a nodeboot agent does: not JSON (expected value at line 1 column 1); it starts: oops[2J"
            )
        );
    }

    #[test]
    fn an_unknown_certificate_is_asked_about_on_a_terminal_and_refused_otherwise() {
        let target = target();
        let seen = Fingerprint::of_der(b"node");
        let unknown = || Event::Sent(Err(ClientError::Unknown { seen }));

        let t = trust(true);
        let mut n = node(Policy::Unknown, false);
        n.on(unknown(), &t, &target);
        assert_eq!(n.state, State::Asking(seen));
        n.on(Event::Trusted(Some(Policy::Pinned(seen))), &t, &target);
        assert_eq!(
            (n.state.clone(), n.policy, n.pin),
            (
                State::Sending,
                Policy::Pinned(seen),
                Some(PinSource::KnownNodes)
            )
        );

        let mut n = node(Policy::Unknown, false);
        n.on(unknown(), &t, &target);
        n.on(Event::Trusted(None), &t, &target);
        assert_eq!(n.result.result, Outcome::Untrusted);
        assert!(
            n.result
                .error
                .as_deref()
                .unwrap()
                .contains("nothing was sent (not trusted at the prompt)")
        );

        let mut n = node(Policy::Unknown, false);
        n.on(unknown(), &trust(false), &target);
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Untrusted)
        );
        assert_eq!(
            n.result.error.as_deref(),
            Some(format!("REFUSED: unknown node: it presents certificate {seen}, which is neither pinned nor recorded in /k/known_nodes; nothing was sent. Compare it with the fingerprint on the node's console, then pin it (--fingerprint {seen}), or pass --trust-first-use to record it").as_str())
        );
    }

    #[test]
    fn a_changed_certificate_and_an_absent_node_end_the_push() {
        let (t, target) = (trust(false), target());
        let (expected, seen) = (Fingerprint::of_der(b"a"), Fingerprint::of_der(b"b"));
        let mut n = node(Policy::Pinned(expected), false);
        n.pin = Some(PinSource::KnownNodes);
        n.on(
            Event::Sent(Err(ClientError::Mismatch { expected, seen })),
            &t,
            &target,
        );
        assert_eq!(n.result.result, Outcome::Untrusted);
        assert_eq!(n.result.fingerprint, Some(seen.to_string()));
        assert_eq!(
            n.result.error.as_deref(),
            Some(format!("REFUSED: the node presents certificate {seen}, but {expected} is recorded in /k/known_nodes; nothing was sent (if the node was reinstalled, compare {seen} with its console and remove the line `10.0.0.31:8443` from that file)").as_str())
        );

        let mut n = node(Policy::Insecure, false);
        n.result.attempts = 4;
        let refused = ClientError::Connect(std::io::ErrorKind::ConnectionRefused.into());
        n.on(Event::Sent(Err(refused)), &t, &target);
        assert_eq!(n.result.result, Outcome::Unreachable);
        assert!(
            n.result
                .error
                .as_deref()
                .unwrap()
                .ends_with("(gave up after 4 attempt(s))")
        );
    }

    #[test]
    fn an_event_out_of_place_ends_the_node_with_an_error_not_a_panic() {
        let mut n = node(Policy::Insecure, false);
        n.on(Event::WaitOver, &trust(false), &target());
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Failed)
        );
        assert!(
            n.result
                .error
                .as_deref()
                .unwrap()
                .starts_with("internal error: WaitOver")
        );
    }

    #[test]
    fn a_plan_is_sent_to_the_plan_path_and_read_as_the_contract_type() {
        let t = target();
        let mut n = node(Policy::Unknown, false).planning();
        assert_eq!(n.path(), PLAN_PATH);
        assert_eq!(node(Policy::Unknown, false).path(), BOOTSTRAP_PATH);
        let plan = serde_json::json!({"digest": OURS, "warnings": [],
            "files": [{"path": "/etc/hostname", "change": "changed", "diff": "+x\n"}]});
        n.on(reply(200, plan), &trust(false), &t);
        assert_eq!(
            (n.state.clone(), n.result.result),
            (State::Done, Outcome::Planned)
        );
        assert_eq!(n.result.plan.as_ref().map(|p| p.files.len()), Some(1));
        // Another digest, or an answer off the contract, is a failure.
        let mut n = node(Policy::Unknown, false).planning();
        let plan = serde_json::json!({"digest": "ff", "warnings": [], "files": []});
        n.on(reply(200, plan), &trust(false), &t);
        assert_eq!(n.result.result, Outcome::Failed);
        assert!(
            n.result
                .error
                .as_deref()
                .unwrap()
                .contains("digest ff, not ours")
        );
        let mut n = node(Policy::Unknown, false).planning();
        n.on(
            reply(200, serde_json::json!({"status": "accepted"})),
            &trust(false),
            &t,
        );
        assert_eq!(n.result.result, Outcome::Failed);
        assert!(
            n.result
                .error
                .as_deref()
                .unwrap()
                .starts_with("the plan answered 200")
        );
        // An invalid file is rejected with the node's findings, as for an upload.
        let mut n = node(Policy::Unknown, false).planning();
        let rejected = serde_json::json!({"status": "rejected", "message": "bad", "total": 1,
            "errors": [{"severity": "error", "path": "/node-config", "line": 2, "column": 3,
                "message": "m", "help": null}]});
        n.on(reply(422, rejected), &trust(false), &t);
        assert_eq!(
            (n.result.result, n.result.errors.len()),
            (Outcome::Rejected, 1)
        );
    }
}
