//! Upload bodies: which kind a request carries ([`body_kind`], pure), and reading one within
//! its bounds: an XML body up to the size limit and the body timeout, or a multipart form
//! whose token must come before more than a few KiB of it ([`read_form`]). Refusals come back
//! as [`Answer`]s; nothing here validates or applies.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming};
use hyper::header;
use nodeboot_config::Secret;

use super::access::Access;
use super::answer::{self, Answer, no_boundary, no_file_field, timed_out, too_large, unauthorized};
use super::limits::Limits;

/// How an upload carries the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// The XML is the body (`text/xml`, `application/xml`).
    Xml,
    /// A `multipart/form-data` form with this boundary: the file in the field `file`.
    Form(String),
}

/// The kind of body the request's `Content-Type` announces, or its refusal (415, or 400 for
/// a form without a boundary).
pub fn body_kind<B>(req: &Request<B>) -> Result<BodyKind, Answer> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(answer::unsupported("no Content-Type"));
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/xml" | "application/xml" => Ok(BodyKind::Xml),
        "multipart/form-data" => multer::parse_boundary(ct)
            .map(BodyKind::Form)
            .map_err(|_| no_boundary()),
        _ => Err(answer::unsupported(&format!(
            "Content-Type {} is not accepted",
            if essence.is_empty() {
                "(empty)"
            } else {
                essence.as_str()
            }
        ))),
    }
}

/// The body's declared length, when it has one.
pub fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// An XML body, at most `limit` bytes, within `timeout`.
pub async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, Answer> {
    let body = Limited::new(body, limit);
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(timed_out(timeout)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(e)) => Err(answer::unreadable("the body", &e.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A request body that may be read only up to a limit that can be raised while it is read:
/// a form's bytes before its token has been checked are few, the rest up to the file size.
struct GatedBody {
    inner: Incoming,
    read: usize,
    gate: Arc<AtomicUsize>,
}

/// The body went past what [`GatedBody`] allowed so far.
#[derive(Debug, thiserror::Error)]
#[error("the body is larger than allowed")]
struct OverGate;

impl HttpBody for GatedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len());
                    if this.read > this.gate.load(Ordering::SeqCst) {
                        return Poll::Ready(Some(Err(Box::new(OverGate))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }
}

/// The file of a form, read as it streams in. When the token is not `known` yet (required,
/// and not in the `Authorization` header), only [`Limits::form_before_token`] bytes are read
/// before the `token` field must have arrived, and a wrong token is refused at once.
pub async fn read_form(
    body: Incoming,
    boundary: String,
    limits: &Limits,
    access: &Access,
    known: bool,
) -> Result<Bytes, Answer> {
    let full = limits.max_file + limits.form_overhead;
    let gate = Arc::new(AtomicUsize::new(if known {
        full
    } else {
        limits.form_before_token
    }));
    let body = GatedBody {
        inner: body,
        read: 0,
        gate: gate.clone(),
    };
    let stream = http_body_util::BodyDataStream::new(body);
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .for_field("file", limits.max_file as u64)
            .for_field("token", 4096),
    );
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let max_file = limits.max_file;
    let read = async {
        let mut token_known = known;
        let mut file = None;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| form_error(e, token_known, max_file))?;
            let Some(field) = field else { break };
            match field.name() {
                Some("file") => {
                    let bytes = field
                        .bytes()
                        .await
                        .map_err(|e| form_error(e, token_known, max_file))?;
                    file = Some(bytes);
                }
                Some("token") if !token_known => {
                    // Bytes, not `text()`: charset decoding would link encoding_rs's
                    // tables (~150 KB of the agent) for one ASCII field. A token that is not
                    // UTF-8 is a wrong token.
                    let t = field
                        .bytes()
                        .await
                        .map_err(|e| form_error(e, token_known, max_file))?;
                    let t =
                        Secret::new(String::from_utf8(t.to_vec()).map_err(|_| unauthorized(""))?);
                    if !access.token_ok(Some(t.expose())) {
                        return Err(unauthorized(""));
                    }
                    token_known = true;
                    gate.store(full, Ordering::SeqCst);
                }
                _ => {}
            }
        }
        if !token_known {
            return Err(unauthorized(""));
        }
        file.ok_or_else(no_file_field)
    };
    match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => Err(timed_out(limits.body_timeout)),
        Ok(r) => r,
    }
}

fn form_error(e: multer::Error, token_known: bool, max_file: usize) -> Answer {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large(max_file)
        }
        multer::Error::StreamReadFailed(inner) if inner.is::<OverGate>() => {
            if token_known {
                too_large(max_file)
            } else {
                unauthorized(
                    "; it must come before the file: put the token field first, or send the \
                     Authorization header",
                )
            }
        }
        e => answer::unreadable("the form", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder()
            .method("POST")
            .uri(nodeboot_config::api::BOOTSTRAP_PATH);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn kind(ct: &str) -> Result<&'static str, u16> {
        match body_kind(&req(&[("content-type", ct)])) {
            Ok(BodyKind::Xml) => Ok("xml"),
            Ok(BodyKind::Form(_)) => Ok("form"),
            Err(Answer::Reply(nodeboot_config::api::UploadReply::Refused(r))) => Err(r.code),
            Err(_) => Err(0),
        }
    }

    #[test]
    fn media_types() {
        assert_eq!(kind("text/xml"), Ok("xml"));
        assert_eq!(kind("Application/XML; charset=utf-8"), Ok("xml"));
        assert_eq!(kind("multipart/form-data; boundary=abc"), Ok("form"));
        assert_eq!(kind("multipart/form-data"), Err(400));
        assert_eq!(kind("text/plain"), Err(415));
        assert_eq!(kind("application/json"), Err(415));
        assert_eq!(kind(""), Err(415));
        assert_eq!(
            body_kind(&req(&[])),
            Err(answer::unsupported("no Content-Type"))
        );
        assert_eq!(
            body_kind(&req(&[(
                "content-type",
                "multipart/form-data; boundary=abc"
            )])),
            Ok(BodyKind::Form("abc".into()))
        );
    }

    #[test]
    fn declared_length_is_read_when_valid() {
        assert_eq!(declared_length(&req(&[("content-length", "12")])), Some(12));
        assert_eq!(declared_length(&req(&[("content-length", "x")])), None);
        assert_eq!(declared_length(&req(&[])), None);
    }
}
