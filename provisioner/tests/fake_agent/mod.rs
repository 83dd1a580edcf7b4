//! A small HTTPS server speaking the agent's bootstrap contract, for driving `nodeboot push`
//! through behaviours a real agent shows only rarely (503 while starting, a reboot that takes
//! the endpoint away). Real HTTPS on loopback, a certificate made at run time with rcgen.
//! It answers with the wire contract's types (`nodeboot_config::api`), as the agent does;
//! only `Hostile` writes off the contract on purpose.

#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nodeboot_config::api::{
    Accepted, BOOTSTRAP_PATH, HealthPhase, NodeState, Rejected, STATUS_PATH, StatusReport,
    UploadReply,
};
use nodeboot_config::pin::Fingerprint;
use nodeboot_config::{Diagnostic, Severity};
use nodeboot_tests::fixtures::{health, rolled_back};
use tokio::net::TcpListener;

/// How the fake answers uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 202, then status `configured` with the file's digest.
    Accept,
    /// 422 with two errors.
    Reject,
    /// 503 for the first N uploads, then as Accept.
    Unavailable(u32),
    /// 202, then the endpoint goes away for a while (a reboot) and comes back configured.
    Reboot,
    /// 202, then the endpoint goes away for good (the node comes back elsewhere).
    Vanish,
    /// 422 whose error texts, and a status (off the contract) whose state, carry ESC, BEL,
    /// C1 controls and bidi overrides (a hostile node writing to the operator's terminal).
    Hostile,
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Bodies of uploads answered 2xx or 4xx.
    pub uploads: Vec<Vec<u8>>,
    /// Authorization headers of uploads.
    pub authorization: Vec<Option<String>>,
    /// Every request line, `METHOD path`.
    pub requests: Vec<String>,
    /// The digest of the applied file.
    pub applied: Option<String>,
    /// 503s given so far.
    pub unavailable: u32,
    /// While set and in the future, connections are dropped (the node reboots).
    pub down_until: Option<std::time::Instant>,
    /// Set at the first connection after `down_until` (the node is back from its reboot).
    pub came_back: bool,
    /// What the first boot with the applied file reports (`Reboot`: once back; otherwise
    /// as soon as applied).
    pub checks: Checks,
}

/// What the checks of the first boot after the apply say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Checks {
    /// Every check passed.
    #[default]
    Healthy,
    /// The gateway check failed and the policy keeps the node configured.
    Unhealthy,
    /// Still checking, for ever (a wait that times out).
    Checking,
    /// The node rolled the file back: unconfigured, with the rollback record.
    RolledBack,
}

/// The reason of the failed gateway check (with an escape sequence the table must drop).
pub const GATEWAY_FAILED: &str =
    "gateway 10.0.0.1 did not answer ARP on eth0\u{1b}[2J within 120 s";

/// A running fake agent.
pub struct FakeAgent {
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub seen: Arc<Mutex<Seen>>,
    identity: (Vec<u8>, Vec<u8>),
    _runtime: std::thread::JoinHandle<()>,
}

impl FakeAgent {
    /// Starts a fake on `addr` (port 0 for any) in its own thread.
    pub fn start(addr: SocketAddr, behaviour: Behaviour) -> FakeAgent {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        FakeAgent::start_as(
            addr,
            behaviour,
            (key.cert.der().to_vec(), key.signing_key.serialize_der()),
        )
    }

    /// The certificate and key (DER) this fake presents, for another fake to be the same
    /// node (as a node keeps its certificate across its reboot).
    pub fn identity(&self) -> (Vec<u8>, Vec<u8>) {
        self.identity.clone()
    }

    /// Starts a fake with a given certificate and key.
    pub fn start_as(
        addr: SocketAddr,
        behaviour: Behaviour,
        identity: (Vec<u8>, Vec<u8>),
    ) -> FakeAgent {
        let (der, key_der) = identity.clone();
        let fingerprint = Fingerprint::of_der(&der).to_string();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind(addr).await.unwrap();
                let bound = listener.local_addr().unwrap();
                tx.send(bound).unwrap();
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let down = seen2.lock().unwrap().down_until;
                    if down.is_some_and(|t| std::time::Instant::now() < t) {
                        // Rebooting: the connection dies before TLS.
                        drop(tcp);
                        continue;
                    }
                    if down.is_some() {
                        seen2.lock().unwrap().came_back = true;
                    }
                    let acceptor = acceptor.clone();
                    let seen = seen2.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            handle(req, behaviour, seen.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        FakeAgent {
            addr,
            fingerprint,
            seen,
            identity,
            _runtime: thread,
        }
    }
}

fn reply(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_string(body).unwrap())))
        .unwrap()
}

fn refused(status: StatusCode, error: &str) -> Response<Full<Bytes>> {
    reply(status, &UploadReply::refused(status.as_u16(), error))
}

fn error(line: u32, column: u32, path: &str, message: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        path: path.into(),
        line,
        column,
        message: message.into(),
        help: None,
    }
}

fn rejected(errors: Vec<Diagnostic>) -> Response<Full<Bytes>> {
    let body = UploadReply::Rejected(Rejected {
        message: format!(
            "the configuration has {} problems; nothing was changed",
            errors.len()
        ),
        total: errors.len(),
        errors,
    });
    reply(StatusCode::UNPROCESSABLE_ENTITY, &body)
}

async fn handle(
    req: Request<Incoming>,
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let line = format!("{} {path}", req.method());
    seen.lock().unwrap().requests.push(line.clone());
    let post = req.method() == hyper::Method::POST;
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut s = seen.lock().unwrap();
    Ok(match (post, path.as_str()) {
        (false, STATUS_PATH) if behaviour == Behaviour::Hostile => {
            // Off the contract on purpose: a state no agent has (the rest fits).
            let body = serde_json::json!({"state": "unconfigured\u{1b}[1m\u{9b}2J", "digest": null,
                "errors": [error(1, 1, "/", "last\u{7}\u{202e}fdp.exe\u{85}")], "error": null,
                "last_attempt": null, "fingerprint": "", "version": "fake\u{1b}]0;x\u{7}"});
            reply(StatusCode::OK, &body)
        }
        (false, STATUS_PATH) => {
            let mut report = StatusReport {
                state: NodeState::Unconfigured,
                digest: None,
                errors: vec![],
                error: None,
                last_attempt: None,
                fingerprint: String::new(),
                version: "fake".into(),
                source: None,
                health: None,
                rolled_back: None,
            };
            // Before its reboot a node that reboots reports configured, without checks.
            let booted = behaviour != Behaviour::Reboot || s.came_back;
            match (&s.applied, booted, s.checks) {
                (None, _, _) => {}
                (Some(d), false, _) => {
                    report.state = NodeState::Configured;
                    report.digest = Some(d.clone());
                }
                (Some(d), true, Checks::RolledBack) => {
                    report.rolled_back = Some(rolled_back(d, GATEWAY_FAILED, 1_796_000_130));
                }
                (Some(d), true, checks) => {
                    report.state = NodeState::Configured;
                    report.digest = Some(d.clone());
                    let phase = match checks {
                        Checks::Healthy => HealthPhase::Healthy,
                        Checks::Unhealthy => HealthPhase::Unhealthy,
                        _ => HealthPhase::Checking,
                    };
                    report.health = Some(health(d, phase, 1_796_000_000, GATEWAY_FAILED));
                }
            }
            reply(StatusCode::OK, &report)
        }
        (true, BOOTSTRAP_PATH) => {
            if let Behaviour::Unavailable(n) = behaviour {
                if s.unavailable < n {
                    s.unavailable += 1;
                    return Ok(refused(StatusCode::SERVICE_UNAVAILABLE, "starting"));
                }
            }
            s.uploads.push(body.to_vec());
            s.authorization.push(auth);
            if behaviour == Behaviour::Hostile {
                return Ok(rejected(vec![error(
                    4,
                    3,
                    "/node-config/hostname\u{1b}[31m",
                    "bad\u{1b}]0;pwned\u{7}name\u{9b}2J\u{202e}\u{2066} txt.exe\r\n",
                )]));
            }
            if behaviour == Behaviour::Reject {
                return Ok(rejected(vec![
                    error(
                        4,
                        3,
                        "/node-config/hostname",
                        "`-bad` is not a valid hostname",
                    ),
                    error(
                        9,
                        5,
                        "/node-config/network/ipv4",
                        "gateway outside the subnet",
                    ),
                ]));
            }
            if s.applied.is_some() {
                return Ok(refused(StatusCode::CONFLICT, "already configured"));
            }
            let digest = nodeboot_config::digest(&body);
            s.applied = Some(digest.clone());
            if behaviour == Behaviour::Reboot {
                s.down_until = Some(std::time::Instant::now() + Duration::from_millis(800));
            }
            if behaviour == Behaviour::Vanish {
                s.down_until = Some(std::time::Instant::now() + Duration::from_secs(3600));
            }
            let accepted = UploadReply::Accepted(Accepted {
                digest,
                reboot_delay_seconds: 1,
                warnings: vec![],
                message: "configuration accepted: applying it, then rebooting in 1 s".into(),
            });
            reply(StatusCode::ACCEPTED, &accepted)
        }
        _ => refused(StatusCode::NOT_FOUND, "not found"),
    })
}
