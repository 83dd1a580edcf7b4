//! Routing, a pure function: from a request's method, path and headers to what is to be done
//! ([`Action`]) and how the answer is to be shown ([`Format`], `HEAD`). Requests answered by
//! their head alone (404, 405, 415, a form without a boundary) get their [`Answer`] here.
//! Nothing here reads a body or knows the node's state; the allow-list was applied at accept.

use hyper::header;
use hyper::{Method, Request};
use nodeboot_config::Secret;
use nodeboot_config::api::{BOOTSTRAP_PATH, PAGE_PATH, PLAN_PATH, STATUS_PATH};

use super::access::bearer_token;
use super::answer::{self, Answer};
use super::body::{BodyKind, body_kind, declared_length};

/// HTML for browsers, JSON for everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The `Accept` header names `text/html`.
    Html,
    /// Everything else (curl, `nodeboot push`).
    Json,
}

/// An upload, as far as its head tells.
#[derive(Debug)]
pub struct Upload {
    /// How the body carries the configuration.
    pub body: BodyKind,
    /// The token of an `Authorization: Bearer` header, if one was sent.
    pub bearer: Option<Secret<String>>,
    /// The declared `Content-Length`, if any.
    pub declared_length: Option<u64>,
}

/// What a request asks for.
#[derive(Debug)]
pub enum Action {
    /// Show the upload page.
    ShowPage,
    /// Show the status document.
    ShowStatus,
    /// Read, check and (when valid) accept an upload.
    Upload(Upload),
    /// Read and check a file as an upload is, then say what an apply would do.
    Plan(Upload),
    /// Answered by its head alone.
    Answer(Answer),
}

/// A routed request.
#[derive(Debug)]
pub struct Routed {
    /// What to do.
    pub action: Action,
    /// How to show the answer.
    pub format: Format,
    /// `HEAD`: the answer's headers without its body.
    pub head_only: bool,
}

/// Routes a request by its method, path and headers.
pub fn route<B>(req: &Request<B>) -> Routed {
    let method = req.method();
    let path = req.uri().path();
    let action = match (method, path) {
        (&Method::GET | &Method::HEAD, PAGE_PATH) => Action::ShowPage,
        (&Method::GET | &Method::HEAD, STATUS_PATH) => Action::ShowStatus,
        (&Method::POST, BOOTSTRAP_PATH) => match upload(req) {
            Ok(u) => Action::Upload(u),
            Err(refusal) => Action::Answer(refusal),
        },
        (&Method::POST, PLAN_PATH) => match upload(req) {
            Ok(u) => Action::Plan(u),
            Err(refusal) => Action::Answer(refusal),
        },
        (_, PAGE_PATH | STATUS_PATH) => Action::Answer(Answer::NotAllowed { allow: "GET, HEAD" }),
        (_, BOOTSTRAP_PATH | PLAN_PATH) => Action::Answer(Answer::NotAllowed { allow: "POST" }),
        _ => Action::Answer(answer::not_found(path)),
    };
    Routed {
        action,
        format: if wants_html(req) {
            Format::Html
        } else {
            Format::Json
        },
        head_only: method == Method::HEAD,
    }
}

/// An upload's head (to either path that takes a file): its body kind, token and length.
fn upload<B>(req: &Request<B>) -> Result<Upload, Answer> {
    Ok(Upload {
        body: body_kind(req)?,
        bearer: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .map(|t| Secret::new(t.to_string())),
        declared_length: declared_length(req),
    })
}

/// Browsers ask for `text/html`; scripts (curl, `nodeboot push`) get JSON.
fn wants_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    /// A short name for what `route` decided: the action, or the code of its answer.
    fn decided(r: &Routed) -> String {
        match &r.action {
            Action::ShowPage => "page".into(),
            Action::ShowStatus => "status".into(),
            Action::Upload(u) => format!(
                "upload {:?} bearer={} length={:?}",
                u.body,
                u.bearer.is_some(),
                u.declared_length
            ),
            Action::Plan(u) => format!("plan {:?} bearer={}", u.body, u.bearer.is_some()),
            Action::Answer(Answer::NotAllowed { allow }) => format!("405 {allow}"),
            Action::Answer(Answer::Reply(nodeboot_config::api::UploadReply::Refused(r))) => {
                format!("{} {}", r.code, r.error)
            }
            Action::Answer(a) => format!("{a:?}"),
        }
    }

    #[test]
    fn routes_by_method_and_path() {
        let xml = [("content-type", "text/xml"), ("content-length", "5")];
        for (method, path, headers, want) in [
            ("GET", "/", &[][..], "page"),
            ("HEAD", "/", &[][..], "page"),
            ("GET", "/api/v1/status", &[][..], "status"),
            ("HEAD", "/api/v1/status", &[][..], "status"),
            (
                "POST",
                "/configuration/bootstrap",
                &xml[..],
                "upload Xml bearer=false length=Some(5)",
            ),
            (
                "POST",
                "/configuration/bootstrap",
                &[
                    ("content-type", "multipart/form-data; boundary=b"),
                    ("authorization", "Bearer t0k"),
                ][..],
                "upload Form(\"b\") bearer=true length=None",
            ),
            ("DELETE", "/", &[][..], "405 GET, HEAD"),
            ("POST", "/api/v1/status", &[][..], "405 GET, HEAD"),
            ("GET", "/configuration/bootstrap", &[][..], "405 POST"),
            (
                "POST",
                "/configuration/plan",
                &xml[..],
                "plan Xml bearer=false",
            ),
            ("GET", "/configuration/plan", &[][..], "405 POST"),
            ("GET", "/nope", &[][..], "404 no such page: /nope"),
            (
                "POST",
                "/configuration/bootstrap/",
                &xml[..],
                "404 no such page: /configuration/bootstrap/",
            ),
            (
                "POST",
                "/configuration/bootstrap",
                &[("content-type", "multipart/form-data")][..],
                "400 multipart/form-data without a boundary",
            ),
        ] {
            let r = route(&req(method, path, headers));
            assert_eq!(decided(&r), want, "{method} {path}");
            assert_eq!(r.head_only, method == "HEAD");
        }
        let r = route(&req(
            "POST",
            "/configuration/bootstrap",
            &[("content-type", "text/plain")],
        ));
        assert!(decided(&r).starts_with("415 Content-Type text/plain is not accepted"));
    }

    #[test]
    fn html_for_browsers_json_for_scripts() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let format = |accept: Option<&str>| {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            route(&req("GET", "/", &headers)).format
        };
        assert_eq!(format(Some(browser)), Format::Html);
        assert_eq!(format(Some("TEXT/HTML")), Format::Html);
        assert_eq!(format(Some("*/*")), Format::Json);
        assert_eq!(format(Some("application/json")), Format::Json);
        assert_eq!(format(None), Format::Json);
    }

    #[test]
    fn a_hostile_path_is_cleaned_and_cut_in_the_404() {
        let long = format!("/{}", "a".repeat(5000));
        let r = route(&req("GET", &long, &[]));
        let d = decided(&r);
        assert!(d.starts_with("404 no such page: /aaa"));
        assert!(d.chars().count() < 230, "{}", d.len());
        let r = route(&req("GET", "/%1b%5b31m", &[]));
        assert_eq!(decided(&r), "404 no such page: /%1b%5b31m");
    }
}
