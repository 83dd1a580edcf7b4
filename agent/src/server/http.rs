//! The endpoint itself: accept loop (allow-list and per-address cap before any TLS work,
//! connection cap, back-off when descriptors run out, TLS handshake with a timeout, a
//! lifetime and a request count per connection, graceful shutdown), HTTP/1.1 routes, uploads
//! (XML body or multipart form: token before body, a few read at once), bounded answers in
//! JSON or HTML, and the apply that follows a fully sent reply.
//!
//! It writes no file: the node's files are the `apply` module's, reached through [`Node`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nodeboot_config::text::printable_line;
use nodeboot_config::{Diagnostic, Secret};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::access::{Access, bearer_token};
use super::banner;
use super::limits::{Limits, PerAddress, Throttle};
use super::node::{self, ApplyRefusal, Config, Node, Phase, Reboot, Validated};
use super::page;
use super::status::{Attempt, Outcome, StatusReport, bounded_diagnostics, shorten};

/// The path uploads go to (the one existing client tooling for this kind of node uses).
pub const UPLOAD_PATH: &str = "/configuration/bootstrap";
/// The JSON status path.
pub const STATUS_PATH: &str = "/api/v1/status";

/// Everything the endpoint shares between connections: the node, the reboot seam, options,
/// and what happened so far.
pub struct Agent {
    node: Arc<dyn Node>,
    reboot: Arc<dyn Reboot>,
    reboot_delay: Duration,
    access: Access,
    limits: Limits,
    fingerprint: String,
    banner: Option<(std::path::PathBuf, Vec<String>)>,
    /// Set from the moment an upload is accepted until its apply fails (or for good once it
    /// succeeded): the second upload meanwhile gets 409.
    busy: AtomicBool,
    last: Mutex<Option<Attempt>>,
    /// Upload bodies being read or validated ([`Limits::max_uploads`]).
    uploads: Arc<Semaphore>,
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
            busy: AtomicBool::new(false),
            last: Mutex::new(None),
            uploads: Arc::new(Semaphore::new(Limits::default().max_uploads)),
        }
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

    fn record(&self, digest: Option<String>, outcome: Outcome) {
        let attempt = Attempt {
            at_unix: now_unix(),
            digest,
            outcome,
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(attempt);
    }

    fn last(&self) -> Option<Attempt> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node's phase as clients see it: `applying` (with the accepted file's digest) from
    /// acceptance to the end of apply.
    fn current(&self) -> (Phase, Option<String>, Option<String>) {
        let (mut phase, mut digest, mut error) = match self.node.status() {
            Ok(s) => (s.phase, s.digest, s.error),
            Err(e) => {
                warn!(error = %e, "reading the node state");
                (Phase::Unconfigured, None, None)
            }
        };
        if self.busy.load(Ordering::SeqCst) && phase != Phase::Configured {
            phase = Phase::Applying;
            error = None;
            if let Some(Attempt {
                digest: Some(d),
                outcome: Outcome::Accepted { .. },
                ..
            }) = self.last()
            {
                digest = Some(d);
            }
        }
        (phase, digest, error)
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An accepted upload waiting for its connection to finish sending the reply.
struct PendingApply {
    xml: Bytes,
    config: Config,
    digest: String,
}

type Slot = Arc<Mutex<Option<PendingApply>>>;

/// Serves HTTPS on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish (and a running apply end) within the grace period, and returns.
///
/// Tests bind `127.0.0.1:0` and call this directly; `nodeboot-agent serve` binds `:8443`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    agent: Arc<Agent>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = agent.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let (mut exhausted, mut refused, mut over_cap) = (
        Throttle::default(),
        Throttle::default(),
        Throttle::default(),
    );
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE): the client stays in the backlog;
                    // pause instead of spinning, and say so once per interval.
                    let pause = if out_of_descriptors(&e) {
                        limits.accept_backoff
                    } else {
                        Duration::from_millis(10)
                    };
                    if let Some(quiet) = exhausted.hit(Instant::now(), limits.warn_interval) {
                        warn!(
                            error = %e,
                            open = connections.len(),
                            repeated = quiet,
                            "accepting a connection failed: pausing {} ms",
                            pause.as_millis()
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        // Refused before any TLS work: the socket is closed at once.
        if !agent.access.peer_allowed(peer.ip()) {
            drop(tcp);
            if let Some(quiet) = refused.hit(Instant::now(), limits.warn_interval) {
                info!(%peer, repeated = quiet, "connection refused: address outside --allow");
            }
            continue;
        }
        let Some(address_slot) = per_address.enter(peer.ip(), limits.max_per_address) else {
            drop(tcp);
            if let Some(quiet) = over_cap.hit(Instant::now(), limits.warn_interval) {
                warn!(
                    %peer,
                    cap = limits.max_per_address,
                    repeated = quiet,
                    "connection refused: too many open from this address"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + limits.max_lifetime;
        let acceptor = acceptor.clone();
        let agent = agent.clone();
        let closing = closing_rx.clone();
        connections.spawn(async move {
            serve_connection(tcp, peer, acceptor, agent, closing, deadline).await;
            drop(address_slot);
            drop(permit);
        });
    }
    info!("shutting down: no new connections");
    drop(listener);
    let _ = closing_tx.send(true);
    let grace = agent.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "closing connections still open after the grace period"
        );
        connections.shutdown().await;
    }
    info!("stopped");
}

/// Whether `accept` failed for want of a file descriptor (the process's or the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::EMFILE as i32 || c == Errno::ENFILE as i32)
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    agent: Arc<Agent>,
    mut closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) {
    let handshake = tokio::time::timeout(agent.limits.handshake_timeout, acceptor.accept(tcp));
    let stream = tokio::select! {
        () = tokio::time::sleep_until(deadline) => return,
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                info!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = closing.changed() => return,
    };
    // An idle connection costs only its TLS state: hyper's buffers (8 KiB and more) and its
    // connection future are allocated when the first request bytes arrive. When rustls
    // already holds decrypted bytes it does not want a read, and hyper starts at once.
    if stream.get_ref().1.wants_read() {
        tokio::select! {
            r = stream.get_ref().0.readable() => {
                if r.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(agent.limits.header_timeout) => {
                info!(%peer, "idle connection closed (no request)");
                return;
            }
            () = tokio::time::sleep_until(deadline) => return,
            _ = closing.changed() => return,
        }
    }
    Box::pin(serve_http(stream, peer, agent, closing, deadline)).await;
}

/// HTTP/1.1 on an established TLS connection, then the apply of an upload it accepted.
async fn serve_http(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    agent: Arc<Agent>,
    mut closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) {
    let slot: Slot = Arc::new(Mutex::new(None));
    let served = Arc::new(AtomicUsize::new(0));
    let service = {
        let agent = agent.clone();
        let slot = slot.clone();
        hyper::service::service_fn(move |req| {
            let agent = agent.clone();
            let slot = slot.clone();
            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let mut resp = route(req, peer, &agent, &slot).await;
                if n >= agent.limits.max_requests {
                    // The connection's last request: hyper closes it after this reply.
                    h_insert(&mut resp, header::CONNECTION, "close");
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(agent.limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
        () = tokio::time::sleep_until(deadline) => {
            // Closed now when idle; a request in progress gets the body timeout to finish.
            info!(%peer, "connection closed: it reached its lifetime");
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(agent.limits.body_timeout, conn.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        info!(%peer, error = %e, "connection ended with an error");
    }
    // The reply of an accepted upload has been written out and the connection closed: only
    // now may the node's configuration (its network, above all) change.
    let pending = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(p) = pending {
        run_apply(&agent, p).await;
    }
}

async fn run_apply(agent: &Arc<Agent>, p: PendingApply) {
    let node = agent.node.clone();
    let PendingApply {
        xml,
        config,
        digest,
    } = p;
    let delay = agent.reboot_delay;
    let result = tokio::task::spawn_blocking(move || node.apply(&xml, &config)).await;
    let result = result.unwrap_or_else(|e| Err(ApplyRefusal::Failed(format!("apply task: {e}"))));
    match result {
        Ok(()) => {
            info!(%digest, reboot_in_secs = delay.as_secs(), "configuration applied");
            agent.record(
                Some(digest),
                Outcome::Applied {
                    reboot_delay_secs: delay.as_secs(),
                },
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
            warn!(%digest, error = %e, "applying the configuration failed");
            agent.record(
                Some(digest),
                Outcome::Failed {
                    message: shorten(&e.to_string(), 1000),
                },
            );
            agent.busy.store(false, Ordering::SeqCst);
        }
    }
}

/// What a request is answered with, before it is rendered as JSON or HTML.
enum Answer {
    Home,
    Status,
    Accepted {
        digest: String,
        warnings: Vec<Diagnostic>,
    },
    /// The file's first findings (bounded) out of `total`.
    Rejected {
        errors: Vec<Diagnostic>,
        total: usize,
    },
    Refused(StatusCode, String),
    /// Every upload slot stayed taken: try again shortly.
    Unavailable,
    MethodNotAllowed(&'static str),
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    agent: &Arc<Agent>,
    slot: &Slot,
) -> Response<Full<Bytes>> {
    let html = wants_html(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // The allow-list was applied when the connection was accepted.
    let answer = match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/") => Answer::Home,
        (&Method::GET | &Method::HEAD, STATUS_PATH) => Answer::Status,
        (&Method::POST, UPLOAD_PATH) => upload(req, agent, slot).await,
        (_, "/" | STATUS_PATH) => Answer::MethodNotAllowed("GET, HEAD"),
        (_, UPLOAD_PATH) => Answer::MethodNotAllowed("POST"),
        _ => Answer::Refused(
            StatusCode::NOT_FOUND,
            format!("no such page: {}", shorten(&printable_line(&path), 200)),
        ),
    };
    let response = render(agent, answer, html, &method);
    let path = shorten(&printable_line(&path), 200);
    info!(%peer, %method, %path, status = response.status().as_u16(), "request");
    response
}

/// Browsers ask for `text/html`; scripts (curl, `nodeboot push`) get JSON.
fn wants_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

enum Body {
    Xml,
    Form(String),
}

fn body_kind<B>(req: &Request<B>) -> Result<Body, Answer> {
    let unsupported = |what: &str| {
        Answer::Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{what}: send the XML file as the body with Content-Type: text/xml (or \
                 application/xml), or as the field \"file\" of a multipart/form-data form"
            ),
        )
    };
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(unsupported("no Content-Type"));
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/xml" | "application/xml" => Ok(Body::Xml),
        "multipart/form-data" => multer::parse_boundary(ct).map(Body::Form).map_err(|_| {
            Answer::Refused(
                StatusCode::BAD_REQUEST,
                "multipart/form-data without a boundary".into(),
            )
        }),
        _ => Err(unsupported(&format!(
            "Content-Type {} is not accepted",
            if essence.is_empty() {
                "(empty)"
            } else {
                essence.as_str()
            }
        ))),
    }
}

fn too_large(limit: usize) -> Answer {
    Answer::Refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the configuration is larger than {} KiB; a node's configuration file is far smaller",
            limit / 1024
        ),
    )
}

/// The body's declared length, when it has one.
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn timed_out(timeout: Duration) -> Answer {
    Answer::Refused(
        StatusCode::REQUEST_TIMEOUT,
        format!("the body did not arrive within {} s", timeout.as_secs()),
    )
}

async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, Answer> {
    let body = Limited::new(body, limit);
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(timed_out(timeout)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(e)) => Err(Answer::Refused(
            StatusCode::BAD_REQUEST,
            format!("reading the body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn unauthorized(detail: &str) -> Answer {
    Answer::Refused(
        StatusCode::UNAUTHORIZED,
        format!(
            "this node requires its bootstrap token (form field \"token\" or \
             Authorization: Bearer){detail}"
        ),
    )
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
async fn read_form(
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
        file.ok_or_else(|| {
            Answer::Refused(
                StatusCode::BAD_REQUEST,
                "the form has no field named \"file\" holding the configuration".into(),
            )
        })
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
        e => Answer::Refused(StatusCode::BAD_REQUEST, format!("reading the form: {e}")),
    }
}

async fn upload(req: Request<Incoming>, agent: &Arc<Agent>, slot: &Slot) -> Answer {
    let kind = match body_kind(&req) {
        Ok(k) => k,
        Err(a) => return a,
    };
    let limits = agent.limits;
    // The header's token is checked before a byte of the body is read: a wrong one (and, for
    // an XML body, a missing one) is refused at once, and the connection closed unread.
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(|t| Secret::new(t.to_string()));
    let token_known = agent
        .access
        .token_ok(bearer.as_ref().map(|t| t.expose().as_str()));
    if !token_known && (bearer.is_some() || matches!(kind, Body::Xml)) {
        return unauthorized("");
    }
    let limit = match kind {
        Body::Xml => limits.max_file,
        Body::Form(_) => limits.max_file + limits.form_overhead,
    };
    if declared_length(&req).is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    // A few bodies at a time: the others wait briefly, then are told to come back.
    let permit =
        match tokio::time::timeout(limits.upload_wait, agent.uploads.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => p,
            _ => return Answer::Unavailable,
        };
    let xml = match kind {
        Body::Xml => read_body(req.into_body(), limit, limits.body_timeout).await,
        Body::Form(boundary) => {
            read_form(
                req.into_body(),
                boundary,
                &limits,
                &agent.access,
                token_known,
            )
            .await
        }
    };
    let xml = match xml {
        Ok(x) => x,
        Err(a) => return a,
    };
    let digest = nodeboot_config::digest(&xml);
    let (phase, current_digest, _) = agent.current();
    if phase == Phase::Configured {
        let message = format!(
            "this node is already configured (configuration sha256 {}); it accepts no new \
             configuration until `nodeboot-agent reset` is run on it",
            current_digest.as_deref().unwrap_or("unknown")
        );
        agent.record(
            Some(digest),
            Outcome::Refused {
                code: 409,
                message: message.clone(),
            },
        );
        return Answer::Refused(StatusCode::CONFLICT, message);
    }
    if phase == Phase::Applying {
        return busy();
    }
    let validated = validate_off_reactor(xml.clone()).await;
    drop(permit);
    let Validated {
        config,
        warnings,
        digest,
    } = match validated {
        Ok(v) => v,
        Err(errors) => {
            let total = errors.len();
            info!(%digest, errors = total, "configuration rejected");
            let kept = bounded_diagnostics(
                &errors,
                limits.kept_diagnostics,
                limits.kept_text,
                limits.message_chars,
            );
            let shown = bounded_diagnostics(
                &errors,
                limits.reply_diagnostics,
                limits.reply_text,
                limits.message_chars,
            );
            drop(errors);
            agent.record(
                Some(digest),
                Outcome::Rejected {
                    errors: kept,
                    total,
                },
            );
            return Answer::Rejected {
                errors: shown,
                total,
            };
        }
    };
    let warnings = bounded_diagnostics(
        &warnings,
        limits.reply_diagnostics,
        limits.reply_text,
        limits.message_chars,
    );
    if agent
        .busy
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return busy();
    }
    info!(%digest, warnings = warnings.len(), "configuration accepted");
    agent.record(
        Some(digest.clone()),
        Outcome::Accepted {
            reboot_delay_secs: agent.reboot_delay.as_secs(),
        },
    );
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(PendingApply {
        xml,
        config,
        digest: digest.clone(),
    });
    Answer::Accepted { digest, warnings }
}

/// Parsing up to 1 MiB of XML takes milliseconds: keep it off the thread serving connections.
async fn validate_off_reactor(xml: Bytes) -> Result<Validated, Vec<Diagnostic>> {
    match tokio::task::spawn_blocking(move || node::validate(&xml)).await {
        Ok(r) => r,
        Err(e) => Err(vec![Diagnostic {
            severity: nodeboot_config::Severity::Error,
            path: "/".into(),
            line: 1,
            column: 1,
            message: format!("the validator stopped unexpectedly ({e})"),
            help: Some("send the file again; report this if it persists".into()),
        }]),
    }
}

fn busy() -> Answer {
    Answer::Refused(
        StatusCode::CONFLICT,
        "another configuration is being applied; wait for it (GET /api/v1/status)".into(),
    )
}

fn render(agent: &Agent, answer: Answer, html: bool, method: &Method) -> Response<Full<Bytes>> {
    let allow = match answer {
        Answer::MethodNotAllowed(allow) => Some(allow),
        _ => None,
    };
    let (status, body, is_html, close) = match answer {
        Answer::Home => {
            let (phase, digest, _) = agent.current();
            let last = agent.last();
            let page = page::render_home(&page::HomeView {
                phase,
                digest: digest.as_deref(),
                fingerprint: &agent.fingerprint,
                last: last.as_ref(),
                token_required: agent.access.requires_token(),
                version: env!("CARGO_PKG_VERSION"),
            });
            (StatusCode::OK, page, true, false)
        }
        Answer::Status => {
            let (phase, digest, error) = agent.current();
            let last = agent.last();
            let (errors, last_failure) = match last.as_ref().map(|a| &a.outcome) {
                Some(Outcome::Rejected { errors, .. }) => (errors.as_slice(), None),
                Some(Outcome::Failed { message }) => (&[][..], Some(message.as_str())),
                _ => (&[][..], None),
            };
            let report = StatusReport {
                state: phase,
                digest: digest.as_deref(),
                errors,
                error: error.as_deref().or(last_failure),
                last_attempt: last.as_ref(),
                fingerprint: &agent.fingerprint,
                version: env!("CARGO_PKG_VERSION"),
            };
            (StatusCode::OK, to_json(&report), false, false)
        }
        Answer::Accepted { digest, warnings } => {
            let delay = agent.reboot_delay.as_secs();
            let body = if html {
                page::render_accepted(&digest, delay, &warnings)
            } else {
                to_json(&json!({
                    "status": "accepted",
                    "digest": digest,
                    "reboot_delay_seconds": delay,
                    "warnings": warnings,
                    "message": format!("configuration accepted: applying it, then rebooting in {delay} s"),
                }))
            };
            // Closing the connection after this reply is what lets the apply begin.
            (StatusCode::ACCEPTED, body, html, true)
        }
        Answer::Rejected { errors, total } => {
            let body = if html {
                page::render_rejected(&errors, total)
            } else {
                to_json(&json!({
                    "status": "rejected",
                    "message": format!("the configuration has {}; nothing was changed", page::problems(total)),
                    "total": total,
                    "errors": errors,
                }))
            };
            (StatusCode::UNPROCESSABLE_ENTITY, body, html, false)
        }
        Answer::Unavailable => {
            let message = "other uploads are being read; send the file again in a few seconds";
            let body = refused_body(StatusCode::SERVICE_UNAVAILABLE, message, html);
            (StatusCode::SERVICE_UNAVAILABLE, body, html, true)
        }
        Answer::MethodNotAllowed(allow) => {
            let message = format!("this path answers {allow} only");
            let body = refused_body(StatusCode::METHOD_NOT_ALLOWED, &message, html);
            (StatusCode::METHOD_NOT_ALLOWED, body, html, false)
        }
        Answer::Refused(code, message) => {
            let body = refused_body(code, &message, html);
            // A refused upload may leave body bytes unread: close rather than resync.
            let close = code != StatusCode::NOT_FOUND && code != StatusCode::METHOD_NOT_ALLOWED;
            (code, body, html, close)
        }
    };
    let content_type = if is_html {
        "text/html; charset=utf-8"
    } else {
        "application/json"
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    if let Some(allow) = allow {
        h_insert(&mut resp, header::ALLOW, allow);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h_insert(&mut resp, header::RETRY_AFTER, "5");
    }
    if status == StatusCode::UNAUTHORIZED {
        h_insert(&mut resp, header::WWW_AUTHENTICATE, "Bearer");
    }
    if close {
        h_insert(&mut resp, header::CONNECTION, "close");
    }
    resp
}

fn h_insert(resp: &mut Response<Full<Bytes>>, name: header::HeaderName, value: &'static str) {
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

fn refused_body(code: StatusCode, message: &str, html: bool) -> String {
    if html {
        let reason = code.canonical_reason().unwrap_or("Error");
        page::render_refused(code.as_u16(), reason, message)
    } else {
        to_json(&json!({
            "status": "refused",
            "code": code.as_u16(),
            "error": message,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("POST").uri(UPLOAD_PATH);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn kind(ct: &str) -> Result<&'static str, u16> {
        match body_kind(&req(&[("content-type", ct)])) {
            Ok(Body::Xml) => Ok("xml"),
            Ok(Body::Form(_)) => Ok("form"),
            Err(Answer::Refused(code, _)) => Err(code.as_u16()),
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
        assert!(matches!(
            body_kind(&req(&[])),
            Err(Answer::Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, _))
        ));
    }

    #[test]
    fn html_for_browsers_json_for_scripts() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&req(&[("accept", browser)])));
        assert!(!wants_html(&req(&[("accept", "*/*")])));
        assert!(!wants_html(&req(&[("accept", "application/json")])));
        assert!(!wants_html(&req(&[])));
    }
}
