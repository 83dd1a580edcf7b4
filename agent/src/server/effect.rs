//! The effects of a routed request ([`act`]): read the state for the page and the status; for
//! an upload, check the token, the size and the node's state, read the body, validate it, and
//! when valid take the busy flag and leave the apply for after the reply ([`run_apply`]).
//! Every outcome comes back as an [`Answer`] for the renderer; what went wrong in detail goes
//! to the log, what a client may read goes into the answer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use hyper::body::{Bytes, Incoming};
use nodeboot_config::api::{
    Accepted, AttemptOutcome, MAX_PLAN_DIFF_BYTES, NodeState, PlanReply, PlannedFile, Rejected,
    UploadReply, bound_diffs,
};
use nodeboot_config::{Diagnostic, Document, Severity};
use tracing::{info, warn};

use super::agent::Agent;
use super::answer::{self, Answer, busy, too_large, unauthorized};
use super::banner;
use super::body::{BodyKind, read_body, read_form};
use super::failure;
use super::limits::Limits;
use super::node::{self, ApplyRefusal};
use super::page;
use super::route::{Action, Upload};
use super::status::bounded_diagnostics;
use crate::apply::FailureClass;

/// An accepted upload waiting for its connection to finish sending the reply.
pub struct PendingApply {
    doc: Document,
}

impl std::fmt::Debug for PendingApply {
    /// The digest only: the file holds password hashes and keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingApply")
            .field("digest", &self.doc.digest())
            .finish_non_exhaustive()
    }
}

/// Where an accepted upload waits for its connection to close.
pub type Slot = Arc<Mutex<Option<PendingApply>>>;

/// Carries out `action` (with the request's `body` for an upload) and says what to answer.
pub async fn act(action: Action, body: Incoming, agent: &Arc<Agent>, slot: &Slot) -> Answer {
    match action {
        // The read-only window: refused before the token or a byte of the body is read.
        Action::Upload(_) | Action::Plan(_) if agent.window.is_some() => {
            let ends = agent.window.as_ref().map_or(0, |w| w.ends_unix);
            Answer::refused(409, super::window::refusal(ends))
        }
        Action::ShowPage => Answer::Page(Box::new(agent.home())),
        Action::ShowStatus => Answer::Status(Box::new(agent.status_report())),
        Action::Upload(upload) => accept_upload(upload, body, agent, slot).await,
        Action::Plan(upload) => plan_upload(upload, body, agent).await,
        Action::Answer(a) => a,
    }
}

/// The checks every body goes through before it is validated, for an upload and a plan alike:
/// the token, the declared size, an upload slot, then the body read within its limits. The
/// slot is held until the returned permit is dropped.
async fn read_checked(
    upload: Upload,
    body: Incoming,
    agent: &Arc<Agent>,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Answer> {
    let limits = agent.limits;
    // The header's token is checked before a byte of the body is read: a wrong one (and, for
    // an XML body, a missing one) is refused at once, and the connection closed unread.
    let token_known = agent
        .access
        .token_ok(upload.bearer.as_ref().map(|t| t.expose().as_str()));
    if !token_known && (upload.bearer.is_some() || matches!(upload.body, BodyKind::Xml)) {
        return Err(unauthorized(""));
    }
    let limit = match upload.body {
        BodyKind::Xml => limits.max_file,
        BodyKind::Form(_) => limits.max_file + limits.form_overhead,
    };
    if upload.declared_length.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    // A few bodies at a time: the others wait briefly, then are told to come back.
    let permit =
        match tokio::time::timeout(limits.upload_wait, agent.uploads.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => p,
            _ => return Err(answer::unavailable()),
        };
    let xml = match upload.body {
        BodyKind::Xml => read_body(body, limit, limits.body_timeout).await,
        BodyKind::Form(boundary) => {
            read_form(body, boundary, &limits, &agent.access, token_known).await
        }
    };
    Ok((xml?, permit))
}

async fn accept_upload(upload: Upload, body: Incoming, agent: &Arc<Agent>, slot: &Slot) -> Answer {
    let limits = agent.limits;
    let (xml, permit) = match read_checked(upload, body, agent).await {
        Ok(read) => read,
        Err(a) => return a,
    };
    let view = agent.view();
    if view.state == NodeState::Configured {
        let message = answer::already_configured_message(view.digest.as_deref());
        agent.record(
            // A refused file has no document: its digest is taken here, once, for the record.
            Some(nodeboot_config::digest(&xml)),
            AttemptOutcome::Refused {
                code: 409,
                message: message.clone(),
            },
            Vec::new(),
        );
        return Answer::refused(409, message);
    }
    if view.state == NodeState::Applying {
        return busy();
    }
    let validated = validate_off_reactor(xml.clone()).await;
    drop(permit);
    let doc = match validated {
        Ok(doc) => doc,
        Err(errors) => {
            let digest = nodeboot_config::digest(&xml);
            let total = errors.len();
            info!(%digest, errors = total, "configuration rejected");
            let kept = bounded_diagnostics(
                &errors,
                limits.kept_diagnostics,
                limits.kept_text,
                limits.message_chars,
            );
            let reply = rejected(&errors, &limits);
            drop(errors);
            agent.record(Some(digest), AttemptOutcome::Rejected { total }, kept);
            return reply;
        }
    };
    let warnings = reply_warnings(&doc, &limits);
    if agent
        .busy
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return busy();
    }
    let delay = agent.reboot_delay.as_secs();
    let digest = doc.digest().to_owned();
    info!(%digest, warnings = warnings.len(), "configuration accepted");
    agent.record(
        Some(digest.clone()),
        AttemptOutcome::Accepted {
            reboot_delay_secs: delay,
        },
        Vec::new(),
    );
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(PendingApply { doc });
    Answer::Reply(UploadReply::Accepted(Accepted {
        digest,
        reboot_delay_seconds: delay,
        warnings,
        message: format!("configuration accepted: applying it, then rebooting in {delay} s"),
    }))
}

/// The 422 an invalid file gets, from an upload or a plan: its findings, bounded for the reply.
fn rejected(errors: &[Diagnostic], limits: &Limits) -> Answer {
    let total = errors.len();
    Answer::Reply(UploadReply::Rejected(Rejected {
        message: format!(
            "the configuration has {}; nothing was changed",
            page::problems(total)
        ),
        total,
        errors: bounded_diagnostics(
            errors,
            limits.reply_diagnostics,
            limits.reply_text,
            limits.message_chars,
        ),
    }))
}

/// A valid file's warnings, bounded for the reply.
fn reply_warnings(doc: &Document, limits: &Limits) -> Vec<Diagnostic> {
    bounded_diagnostics(
        doc.warnings(),
        limits.reply_diagnostics,
        limits.reply_text,
        limits.message_chars,
    )
}

/// `POST /configuration/plan`: the same checks and validation as an upload, then what an
/// apply would do to each file (the apply engine's dry run), bounded. Changes nothing: no
/// file, no busy flag, no recorded attempt.
async fn plan_upload(upload: Upload, body: Incoming, agent: &Arc<Agent>) -> Answer {
    let limits = agent.limits;
    let (xml, permit) = match read_checked(upload, body, agent).await {
        Ok(read) => read,
        Err(a) => return a,
    };
    let view = agent.view();
    if view.state == NodeState::Configured {
        return Answer::refused(
            409,
            format!(
                "{}; there is nothing to plan",
                answer::already_configured_message(view.digest.as_deref())
            ),
        );
    }
    if view.state == NodeState::Applying || agent.busy.load(Ordering::SeqCst) {
        return busy();
    }
    let doc = match validate_off_reactor(xml.clone()).await {
        Ok(doc) => doc,
        Err(errors) => {
            let total = errors.len();
            info!(digest = %nodeboot_config::digest(&xml), errors = total, "planned configuration rejected");
            return rejected(&errors, &limits);
        }
    };
    let warnings = reply_warnings(&doc, &limits);
    let digest = doc.digest().to_owned();
    let node = agent.node.clone();
    let planned = tokio::task::spawn_blocking(move || node.plan(&doc)).await;
    drop(permit);
    let diffs = match planned {
        Ok(Ok(diffs)) => diffs,
        Ok(Err(ApplyRefusal::Failed { class, detail })) => {
            warn!(%digest, error = %detail, "planning failed");
            return Answer::refused(500, failure::plan_message(class));
        }
        Ok(Err(e)) => {
            warn!(%digest, error = %e, "planning failed");
            return Answer::refused(500, failure::plan_message(FailureClass::Other));
        }
        Err(e) => {
            warn!(%digest, error = %e, "the planner stopped unexpectedly");
            return Answer::refused(500, failure::plan_message(FailureClass::Other));
        }
    };
    let mut files: Vec<PlannedFile> = diffs
        .into_iter()
        .map(|d| PlannedFile {
            path: d.path.display().to_string(),
            change: d.change,
            diff: d.shows_contents.then_some(d.text),
        })
        .collect();
    bound_diffs(&mut files, MAX_PLAN_DIFF_BYTES);
    info!(%digest, files = files.len(), "configuration planned");
    Answer::Plan(Box::new(PlanReply {
        digest,
        files,
        warnings,
    }))
}

/// Parsing up to 1 MiB of XML takes milliseconds: keep it off the thread serving connections.
async fn validate_off_reactor(xml: Bytes) -> Result<Document, Vec<Diagnostic>> {
    match tokio::task::spawn_blocking(move || nodeboot_config::parse(&xml)).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "the validator stopped unexpectedly");
            Err(vec![Diagnostic {
                severity: Severity::Error,
                path: "/".into(),
                line: 1,
                column: 1,
                message: "the validator stopped unexpectedly".into(),
                help: Some("send the file again; see `journalctl -u nodeboot-agent`".into()),
            }])
        }
    }
}

/// Applies an accepted upload (its reply has gone out and its connection is closed): on
/// success the banner is rewritten and the reboot scheduled; on failure the detail is
/// logged, the client's message recorded, and the busy flag released.
pub async fn run_apply(agent: &Arc<Agent>, p: PendingApply) {
    let node = agent.node.clone();
    let PendingApply { doc } = p;
    let digest = doc.digest().to_owned();
    let delay = agent.reboot_delay;
    let result = tokio::task::spawn_blocking(move || node.apply(&doc)).await;
    let result = result.unwrap_or_else(|e| {
        Err(ApplyRefusal::Failed {
            class: FailureClass::Other,
            detail: format!("apply task: {e}"),
        })
    });
    match result {
        Ok(()) => {
            info!(%digest, reboot_in_secs = delay.as_secs(), "configuration applied");
            agent.record(
                Some(digest),
                AttemptOutcome::Applied {
                    reboot_delay_secs: delay.as_secs(),
                },
                Vec::new(),
            );
            if let Some((root, urls)) = &agent.banner {
                let text = banner::render_banner(urls, &agent.fingerprint, true);
                if let Err(e) = banner::write_banner(root, &text) {
                    warn!(error = %e, "updating the console banner");
                }
            }
            node::schedule_reboot(agent.reboot.clone(), delay);
        }
        Err(e) => {
            // The detail (host paths, system errors) is for the journal; the client gets the
            // class of failure and where to look.
            warn!(%digest, error = %e, "applying the configuration failed");
            let message = match &e {
                ApplyRefusal::Failed { class, .. } => failure::client_message(*class),
                ApplyRefusal::AlreadyConfigured { .. } | ApplyRefusal::Busy => e.to_string(),
            };
            agent.record(Some(digest), AttemptOutcome::Failed { message }, Vec::new());
            agent.busy.store(false, Ordering::SeqCst);
        }
    }
}
