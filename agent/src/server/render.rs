//! Rendering, a pure function: from an [`Answer`] and the wanted [`Format`] to a status code,
//! headers and a body ([`Rendered`]). JSON bodies are the wire contract's types serialized
//! (`nodeboot_config::api`); HTML bodies are the [`super::page`] renderers'. The only step
//! that builds a hyper response is [`Rendered::into_response`].

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use nodeboot_config::api::{Refusal, UploadReply};

use super::answer::Answer;
use super::page;
use super::route::Format;

/// The media type of a rendered body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `text/html; charset=utf-8`.
    Html,
    /// `application/json`.
    Json,
}

impl ContentType {
    /// HTML for a browser (`html`), JSON for everyone else.
    pub fn of(html: bool) -> Self {
        if html {
            ContentType::Html
        } else {
            ContentType::Json
        }
    }

    /// The header's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Html => "text/html; charset=utf-8",
            ContentType::Json => "application/json",
        }
    }
}

/// An answer ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The status code.
    pub status: StatusCode,
    /// The body's media type.
    pub content_type: ContentType,
    /// The body.
    pub body: String,
    /// Headers a client acts on: `Allow` (405), `Retry-After` (503), `WWW-Authenticate` (401).
    pub headers: Vec<(HeaderName, &'static str)>,
    /// Whether the connection closes after this answer: after a 202 (the apply waits for it)
    /// and after a refused upload (its body may be left unread).
    pub close: bool,
}

/// Renders `answer` as `format` asks (the page is always HTML, the status always JSON).
pub fn render(answer: &Answer, format: Format) -> Rendered {
    let html = format == Format::Html;
    match answer {
        Answer::Page(home) => Rendered {
            status: StatusCode::OK,
            content_type: ContentType::Html,
            body: page::render_home(home),
            headers: Vec::new(),
            close: false,
        },
        Answer::Status(report) => Rendered {
            status: StatusCode::OK,
            content_type: ContentType::Json,
            body: to_json(report.as_ref()),
            headers: Vec::new(),
            close: false,
        },
        // JSON whatever was asked: the plan is for scripts (`nodeboot push --plan`, curl).
        Answer::Plan(plan) => Rendered {
            status: StatusCode::OK,
            content_type: ContentType::Json,
            body: to_json(plan.as_ref()),
            headers: Vec::new(),
            close: false,
        },
        Answer::NotAllowed { allow } => {
            let refusal = Refusal {
                code: 405,
                error: format!("this path answers {allow} only"),
            };
            let mut r = refused(&refusal, html);
            r.headers.push((header::ALLOW, allow));
            r.close = false;
            r
        }
        Answer::Reply(reply) => {
            let (status, body, close) = match reply {
                UploadReply::Accepted(a) => (
                    StatusCode::ACCEPTED,
                    if html {
                        page::render_accepted(&a.digest, a.reboot_delay_seconds, &a.warnings)
                    } else {
                        to_json(reply)
                    },
                    // Closing the connection after this reply is what lets the apply begin.
                    true,
                ),
                UploadReply::Rejected(r) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    if html {
                        page::render_rejected(&r.errors, r.total)
                    } else {
                        to_json(reply)
                    },
                    false,
                ),
                UploadReply::Refused(r) => return refused(r, html),
            };
            Rendered {
                status,
                content_type: ContentType::of(html),
                body,
                headers: Vec::new(),
                close,
            }
        }
    }
}

/// A refusal: its code, the headers that go with it, and a body in JSON or HTML.
fn refused(r: &Refusal, html: bool) -> Rendered {
    let status = StatusCode::from_u16(r.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if html {
        let reason = status.canonical_reason().unwrap_or("Error");
        page::render_refused(status.as_u16(), reason, &r.error)
    } else {
        to_json(&UploadReply::Refused(r.clone()))
    };
    let mut headers = Vec::new();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.push((header::RETRY_AFTER, "5"));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.push((header::WWW_AUTHENTICATE, "Bearer"));
    }
    Rendered {
        status,
        content_type: ContentType::of(html),
        body,
        headers,
        // A refused upload may leave body bytes unread: close rather than resync.
        close: status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| {
        "{\"status\":\"refused\",\"code\":500,\"error\":\"internal error\"}".into()
    });
    s.push('\n');
    s
}

impl Rendered {
    /// The hyper response: the body (none for `HEAD`), the media type, the headers every
    /// answer carries (no caching, no sniffing, a strict content security policy) and this
    /// answer's own.
    pub fn into_response(self, head_only: bool) -> Response<Full<Bytes>> {
        let body = if head_only {
            Bytes::new()
        } else {
            Bytes::from(self.body)
        };
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type.as_str()),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            ),
        );
        for (name, value) in self.headers {
            h.insert(name, HeaderValue::from_static(value));
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::answer;
    use nodeboot_config::api::{Accepted, NodeState, Rejected, StatusReport};
    use nodeboot_config::{Diagnostic, Severity};

    fn diag() -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: "/node-config/hostname".into(),
            line: 5,
            column: 13,
            message: "bad <b>".into(),
            help: None,
        }
    }

    fn accepted() -> Answer {
        Answer::Reply(UploadReply::Accepted(Accepted {
            digest: "ab12".into(),
            reboot_delay_seconds: 5,
            warnings: vec![],
            message: "configuration accepted: applying it, then rebooting in 5 s".into(),
        }))
    }

    fn json(r: &Rendered) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn replies_are_the_contract_types_serialized() {
        let r = render(&accepted(), Format::Json);
        assert_eq!(
            (r.status, r.content_type, r.close),
            (StatusCode::ACCEPTED, ContentType::Json, true)
        );
        let Answer::Reply(reply) = accepted() else {
            unreachable!()
        };
        assert_eq!(json(&r), serde_json::to_value(&reply).unwrap());
        assert_eq!(json(&r)["status"], "accepted");

        let rejected = Answer::Reply(UploadReply::Rejected(Rejected {
            message: "the configuration has 1 problem; nothing was changed".into(),
            total: 1,
            errors: vec![diag()],
        }));
        let r = render(&rejected, Format::Json);
        assert_eq!(
            (r.status, r.close),
            (StatusCode::UNPROCESSABLE_ENTITY, false)
        );
        assert_eq!(json(&r)["errors"][0]["line"], 5);
        let r = render(&rejected, Format::Html);
        assert_eq!(r.content_type, ContentType::Html);
        assert!(
            r.body
                .contains("line 5, column 13 · /node-config/hostname · error")
        );
        assert!(r.body.contains("bad &lt;b&gt;"));
    }

    #[test]
    fn each_refusal_gets_its_code_headers_and_closing() {
        for (a, code, headers, close) in [
            (
                answer::unauthorized(""),
                401,
                vec![(header::WWW_AUTHENTICATE, "Bearer")],
                true,
            ),
            (
                answer::unavailable(),
                503,
                vec![(header::RETRY_AFTER, "5")],
                true,
            ),
            (answer::busy(), 409, vec![], true),
            (answer::too_large(1 << 20), 413, vec![], true),
            (answer::not_found("/x"), 404, vec![], false),
            (
                Answer::NotAllowed { allow: "POST" },
                405,
                vec![(header::ALLOW, "POST")],
                false,
            ),
        ] {
            let r = render(&a, Format::Json);
            assert_eq!(r.status.as_u16(), code);
            assert_eq!(r.headers, headers, "{code}");
            assert_eq!(r.close, close, "{code}");
            let v = json(&r);
            assert_eq!(v["status"], "refused");
            assert_eq!(v["code"], code);
            let html = render(&a, Format::Html);
            assert_eq!(html.content_type, ContentType::Html);
            assert!(html.body.contains(&format!("<h1>{code} ")), "{}", html.body);
        }
        assert!(
            render(&answer::too_large(1 << 20), Format::Json)
                .body
                .contains("larger than 1024 KiB")
        );
    }

    #[test]
    fn the_page_is_html_and_the_status_json_whatever_is_asked() {
        let report = StatusReport {
            state: NodeState::Unconfigured,
            digest: None,
            errors: vec![],
            error: None,
            last_attempt: None,
            fingerprint: "SHA256:aa".into(),
            version: "0.1.0".into(),
            source: None,
            health: None,
            rolled_back: None,
        };
        let r = render(&Answer::Status(Box::new(report.clone())), Format::Html);
        assert_eq!(
            (r.status, r.content_type),
            (StatusCode::OK, ContentType::Json)
        );
        assert_eq!(
            serde_json::from_str::<StatusReport>(&r.body).unwrap(),
            report
        );
        let home = page::HomeView {
            state: NodeState::Configured,
            digest: Some("ab".into()),
            fingerprint: "SHA256:aa".into(),
            last: None,
            token_required: false,
            version: "0.1.0",
            source: None,
            health: None,
            window_ends_unix: None,
            rolled_back: None,
        };
        let r = render(&Answer::Page(Box::new(home)), Format::Json);
        assert_eq!(
            (r.status, r.content_type, r.close),
            (StatusCode::OK, ContentType::Html, false)
        );
        assert!(r.body.contains("This node is configured"));
    }

    #[test]
    fn head_keeps_the_headers_and_drops_the_body() {
        let resp = render(&answer::unavailable(), Format::Json).into_response(true);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert_eq!(resp.headers()["connection"], "close");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["content-type"], "application/json");
        use hyper::body::Body;
        assert_eq!(resp.body().size_hint().exact(), Some(0));
    }
}
