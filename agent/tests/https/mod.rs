//! Test support for the endpoint: start `serve` on 127.0.0.1:0 with a temporary root, and an
//! HTTPS client (rustls) that pins the server's certificate by its fingerprint.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nodeboot_agent::server::limits::Limits;
use nodeboot_agent::server::node::{ApplyRefusal, NoReboot, Node, NodeStatus, RootNode};
use nodeboot_agent::server::{access::Access, http::Agent, serve, tls};
use nodeboot_config::Document;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A valid configuration (the repository's transcoding fixture, hostname `conf01`).
pub fn valid_xml_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/valid/transcoding.xml")
}

/// A configuration with two errors: a hostname starting with a hyphen and a gateway outside
/// every subnet.
pub fn invalid_xml_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid.xml")
}

pub fn valid_xml() -> Vec<u8> {
    std::fs::read(valid_xml_path()).unwrap()
}

pub fn invalid_xml() -> Vec<u8> {
    std::fs::read(invalid_xml_path()).unwrap()
}

/// A node whose applies wait for the test to open a gate: proves that the reply was sent
/// before the apply began (otherwise the test, waiting for the reply before opening the
/// gate, would never get it).
pub struct GatedNode {
    pub inner: RootNode,
    gate: Mutex<mpsc::Receiver<()>>,
}

impl Node for GatedNode {
    fn status(&self) -> Result<NodeStatus, String> {
        self.inner.status()
    }
    fn apply(&self, doc: &Document) -> Result<(), ApplyRefusal> {
        self.gate.lock().unwrap().recv().unwrap();
        self.inner.apply(doc)
    }
    fn recover_at_boot(&self) -> Result<Option<String>, String> {
        self.inner.recover_at_boot()
    }
    fn plan(
        &self,
        doc: &Document,
    ) -> Result<Vec<nodeboot_agent::apply::cli::FileDiff>, ApplyRefusal> {
        self.inner.plan(doc)
    }
}

/// Options for [`start`].
#[derive(Default)]
pub struct Options {
    pub access: Option<Access>,
    pub limits: Option<Limits>,
    /// Hold every apply until [`Server::open_gate`].
    pub gated: bool,
    /// An empty root instead of a node image (apply then fails: no `admin` account).
    pub bare_root: bool,
    /// Serve the read-only window of the first boot after an apply with these checks.
    pub window: Option<nodeboot_config::api::HealthStatus>,
    /// Show this rollback record (while the node is not configured).
    pub rolled_back: Option<nodeboot_config::api::RolledBack>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub root: tempfile::TempDir,
    pub reboot: Arc<NoReboot>,
    gate: Option<mpsc::Sender<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn client(&self) -> Client {
        Client::new(self.addr, &self.fingerprint)
    }

    /// Lets one held apply go on.
    pub fn open_gate(&self) {
        self.gate.as_ref().unwrap().send(()).unwrap();
    }

    /// Stops the server and waits for `serve` to return.
    pub async fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Waits until the reboot seam has been called `n` times (polls; fails after 20 s).
    pub async fn wait_for_reboots(&self, n: usize) {
        for _ in 0..2000 {
            if self.reboot.calls() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the reboot seam was called {} times, expected {n}",
            self.reboot.calls()
        );
    }
}

/// Starts `serve` on 127.0.0.1:0 with a fresh temporary root and a generated certificate.
pub async fn start(opts: Options) -> Server {
    let root = if opts.bare_root {
        tempfile::tempdir().unwrap()
    } else {
        super::common::image_root()
    };
    let identity = tls::load_or_generate(
        root.path(),
        &tls::SubjectNames {
            hostname: "test-node".into(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        },
    )
    .unwrap();
    let tls_config = tls::server_config(&identity).unwrap();
    let inner = RootNode {
        root: root.path().to_path_buf(),
    };
    let (node, gate): (Arc<dyn Node>, _) = if opts.gated {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(GatedNode {
                inner,
                gate: Mutex::new(rx),
            }),
            Some(tx),
        )
    } else {
        (Arc::new(inner), None)
    };
    let reboot = Arc::new(NoReboot::default());
    let mut agent = Agent::new(node, reboot.clone(), identity.fingerprint.clone())
        .with_reboot_delay(Duration::ZERO);
    if let Some(a) = opts.access {
        agent = agent.with_access(a);
    }
    if let Some(l) = opts.limits {
        agent = agent.with_limits(l);
    }
    if let Some(h) = opts.window {
        agent = agent.with_window(nodeboot_agent::server::agent::Window::new(
            h.window_ends_unix,
            h,
        ));
    }
    agent = agent.with_rolled_back(opts.rolled_back);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, tls_config, Arc::new(agent), async {
        let _ = rx.await;
    }));
    Server {
        addr,
        fingerprint: identity.fingerprint,
        root,
        reboot,
        gate,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// A client config pinning `fingerprint` (the shared pin verifier, as `nodeboot push` uses),
/// limited to the given protocol versions.
pub fn client_config(
    fingerprint: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    nodeboot_tests::tls::pinned(fingerprint, versions)
}

pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A minimal HTTPS/1.1 client: one connection per request.
pub struct Client {
    addr: SocketAddr,
    pub config: Arc<rustls::ClientConfig>,
}

/// A response, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl Client {
    pub fn new(addr: SocketAddr, fingerprint: &str) -> Self {
        Client {
            addr,
            config: client_config(
                fingerprint,
                &[&rustls::version::TLS13, &rustls::version::TLS12],
            ),
        }
    }

    /// Opens a TLS connection (handshake done).
    pub async fn connect(&self) -> TlsStream {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        connector
            .connect(ServerName::IpAddress(self.addr.ip().into()), tcp)
            .await
            .unwrap()
    }

    /// Sends one request and reads the whole reply.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let stream = self.connect().await;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    pub async fn get(&self, path: &str, accept: &str) -> Reply {
        self.send("GET", path, &[("accept", accept)], vec![]).await
    }

    /// `GET /api/v1/status`, as JSON.
    pub async fn status(&self) -> serde_json::Value {
        self.get("/api/v1/status", "*/*").await.json()
    }

    /// `GET /api/v1/status`, as the agent's own type.
    pub async fn status_report(&self) -> nodeboot_config::api::StatusReport {
        serde_json::from_value(self.status().await).unwrap()
    }

    /// Reads the status until `done` holds of it (every 10 ms; fails after 20 s saying it never
    /// showed `what`), and returns that status.
    pub async fn wait_for_status(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut status = serde_json::Value::Null;
        for _ in 0..2000 {
            status = self.status().await;
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the status never showed {what}: {status}");
    }

    /// [`Client::wait_for_status`] until the node's state is `state`.
    pub async fn wait_for_state(&self, state: &str) -> serde_json::Value {
        self.wait_for_status(&format!("the state {state}"), |s| s["state"] == state)
            .await
    }

    /// POSTs the XML as the body with `Content-Type: text/xml`.
    pub async fn post_xml(&self, xml: &[u8], extra: &[(&str, &str)]) -> Reply {
        let mut headers = vec![("content-type", "text/xml")];
        headers.extend_from_slice(extra);
        self.send("POST", "/configuration/bootstrap", &headers, xml.to_vec())
            .await
    }

    /// POSTs a multipart form with the fields given (name, file name or none, content).
    pub async fn post_form(&self, fields: &[(&str, Option<&str>, &[u8])], accept: &str) -> Reply {
        let (ct, body) = multipart(fields);
        self.send(
            "POST",
            "/configuration/bootstrap",
            &[("content-type", &ct), ("accept", accept)],
            body,
        )
        .await
    }
}

/// Builds a multipart/form-data body as a browser would.
pub fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----nodeboot-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, filename, content) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: text/xml\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Whether the valid fixture's files have been written under the root by the real apply.
pub fn applied_files_present(root: &Path) -> bool {
    let hostname = std::fs::read_to_string(root.join("etc/hostname")).unwrap();
    let applied = hostname == "conf01\n";
    assert_eq!(
        applied,
        root.join("etc/systemd/network/10-nodeboot-eth0.network")
            .exists(),
        "hostname and network unit must change together"
    );
    applied
}
