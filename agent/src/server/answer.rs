//! The value every request is answered with, before it is rendered ([`super::render`]): the
//! page, the status document, the reply to an upload (the wire contract's
//! [`UploadReply`]), or a 405. Also the endpoint's refusals with their client messages, in one
//! place. Data only; no I/O.

use std::time::Duration;

use nodeboot_config::api::{PlanReply, STATUS_PATH, StatusReport, UploadReply};
use nodeboot_config::text::printable_line;

use super::page::HomeView;
use super::status::shorten;

/// What a request is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `GET /`: the upload page.
    Page(Box<HomeView>),
    /// `GET /api/v1/status`.
    Status(Box<StatusReport>),
    /// An upload's reply, or a refusal of any route.
    Reply(UploadReply),
    /// `POST /configuration/plan` of a valid file: what an apply would do.
    Plan(Box<PlanReply>),
    /// 405: the path answers only the methods in `allow`.
    NotAllowed {
        /// The `Allow` header's value.
        allow: &'static str,
    },
}

impl Answer {
    /// A refusal with `code` and the client's message.
    pub fn refused(code: u16, message: impl Into<String>) -> Self {
        Answer::Reply(UploadReply::refused(code, message))
    }
}

/// 404 for a path the endpoint does not serve (the path cleaned and cut short).
pub fn not_found(path: &str) -> Answer {
    Answer::refused(
        404,
        format!("no such page: {}", shorten(&printable_line(path), 200)),
    )
}

/// 415 for a body that is neither XML nor a form (`what`: what was sent).
pub fn unsupported(what: &str) -> Answer {
    Answer::refused(
        415,
        format!(
            "{what}: send the XML file as the body with Content-Type: text/xml (or \
             application/xml), or as the field \"file\" of a multipart/form-data form"
        ),
    )
}

/// 400 for a form without a boundary.
pub fn no_boundary() -> Answer {
    Answer::refused(400, "multipart/form-data without a boundary")
}

/// 400 for a form without its `file` field.
pub fn no_file_field() -> Answer {
    Answer::refused(
        400,
        "the form has no field named \"file\" holding the configuration",
    )
}

/// 413 for a body over `limit` bytes.
pub fn too_large(limit: usize) -> Answer {
    Answer::refused(
        413,
        format!(
            "the configuration is larger than {} KiB; a node's configuration file is far smaller",
            limit / 1024
        ),
    )
}

/// 408 for a body that did not arrive within `timeout`.
pub fn timed_out(timeout: Duration) -> Answer {
    Answer::refused(
        408,
        format!("the body did not arrive within {} s", timeout.as_secs()),
    )
}

/// 401 for a missing or wrong token (`detail` is appended to the message).
pub fn unauthorized(detail: &str) -> Answer {
    Answer::refused(
        401,
        format!(
            "this node requires its bootstrap token (form field \"token\" or \
             Authorization: Bearer){detail}"
        ),
    )
}

/// 409 while another upload is being applied.
pub fn busy() -> Answer {
    Answer::refused(
        409,
        format!("another configuration is being applied; wait for it (GET {STATUS_PATH})"),
    )
}

/// The 409 message for a configured node (`digest`: the configuration in place).
pub fn already_configured_message(digest: Option<&str>) -> String {
    format!(
        "this node is already configured (configuration sha256 {}); it accepts no new \
         configuration until `nodeboot-agent reset` is run on it",
        digest.unwrap_or("unknown")
    )
}

/// 503 when every upload slot stayed taken.
pub fn unavailable() -> Answer {
    Answer::refused(
        503,
        "other uploads are being read; send the file again in a few seconds",
    )
}

/// 400 for a body that could not be read (`what` names the part; the reason is cleaned).
pub fn unreadable(what: &str, reason: &str) -> Answer {
    Answer::refused(
        400,
        format!("reading {what}: {}", shorten(&printable_line(reason), 200)),
    )
}
