//! The platform metadata services (`source::platform`) against fake services written here:
//! hyper servers on loopback with a random port for the behaviours, and, for each HTTP
//! platform, one at the real address (169.254.169.254:80, Azure's wire server at
//! 168.63.129.16:80) inside a network namespace the test creates and enters (root).
//! VMware's `vmware-rpctool` is a fake shell script over files. DMI from fixture directories.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nodeboot_agent::source::Found;
use nodeboot_agent::source::platform::{
    Budgets, Env, FetchError, FetchErrorKind, Platform, detect, fetch, forget,
};
use nodeboot_tests::require::{require, root, tool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ------------------------------------------------------------------ the fake service

/// One request the fake saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

/// What the fake answers: status, body, and a delay before answering.
struct Reply {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
}

fn ok(body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status: 200,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

fn status(code: u16) -> Reply {
    Reply {
        status: code,
        body: Vec::new(),
        delay: Duration::ZERO,
    }
}

/// The answer to a request, given how many requests for the same path came before it.
type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn hits(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

async fn start(
    bind: SocketAddr,
    script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> Fake {
    let listener = TcpListener::bind(bind)
        .await
        .expect("bind the fake metadata service");
    let addr = listener.local_addr().expect("local address");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script: Script = Arc::new(script);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    let script = script.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().to_string();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let seen = Seen {
                            method,
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let (reply, _) = {
                            let mut log = log.lock().expect("log");
                            let n = log.iter().filter(|s| s.path == seen.path).count();
                            log.push(seen.clone());
                            (script(&seen, n), n)
                        };
                        tokio::time::sleep(reply.delay).await;
                        let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                        *resp.status_mut() =
                            hyper::StatusCode::from_u16(reply.status).expect("status");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Fake { addr, seen }
}

/// A raw service that answers 200 with an endless body (no length) and counts what it sent
/// before the client hung up.
async fn start_endless() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sent = Arc::new(Mutex::new(0usize));
    let count = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                    .await;
                let chunk = vec![b'a'; 64 * 1024];
                // At most 256 MiB: the client must hang up long before.
                for _ in 0..4096 {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                    *count.lock().expect("count") += chunk.len();
                }
            });
        }
    });
    (addr, sent)
}

fn budgets() -> Budgets {
    Budgets {
        source: Duration::from_secs(5),
        connect: Duration::from_millis(500),
        read: Duration::from_millis(400),
        backoff_first: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ready_report: Duration::from_secs(5),
    }
}

fn env(addr: SocketAddr) -> Env {
    Env {
        metadata: addr,
        wire_server: Some(addr),
        lease_dir: PathBuf::from("/nonexistent/leases"),
        interface: None,
        rpctool: PathBuf::from("/nonexistent/vmware-rpctool"),
        azure_ovf_env: None,
        budgets: budgets(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn text(f: &Found) -> String {
    f.bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn token(f: &Found) -> Option<&str> {
    f.token.as_ref().map(|t| t.expose().as_str())
}

fn found(r: Result<Option<Found>, FetchError>) -> Found {
    match r {
        Ok(Some(f)) => f,
        other => panic!("expected a configuration, got {other:?}"),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

const MGMT: &str = r#"{"hostname":"mgr","domain":"example.com"}"#;
const XML: &str = r#"<node-config schema="1"><role>management</role></node-config>"#;

// ------------------------------------------------------------------ network namespaces

/// A network namespace made for one test, deleted when dropped; its loopback is up and
/// holds the metadata address and Azure's wire server address.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("nbplat-{tag}-{}", std::process::id());
        // A namespace left by a killed run of this test.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let run = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("run ip");
            assert!(st.success(), "ip {args:?} failed");
        };
        run(&["netns", "add", &name]);
        let ns = Netns(name.clone());
        run(&["-n", &name, "link", "set", "lo", "up"]);
        for a in [
            "169.254.169.254/32",
            "168.63.129.16/32",
            "169.254.169.253/32",
        ] {
            run(&["-n", &name, "addr", "add", a, "dev", "lo"]);
        }
        ns
    }

    /// Runs `f` on a thread of its own that has entered the namespace: every socket it and
    /// its current-thread runtime open lives there.
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("open the namespace");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("the namespace thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn netns_ready() -> bool {
    require(root(), "root (network namespaces)") && require(tool("ip"), "ip (Debian iproute2)")
}

fn real_env() -> Env {
    Env {
        metadata: "169.254.169.254:80".parse().expect("addr"),
        wire_server: None,
        ..env("127.0.0.1:9".parse().expect("addr"))
    }
}

// ------------------------------------------------------------------ detection

fn dmi_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, value) in files {
        std::fs::write(dir.path().join(name), format!("{value}\n")).expect("write");
    }
    dir
}

#[test]
fn detects_each_platform_from_dmi_fixtures() {
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Files, Option<Platform>)] = &[
        (
            &[
                ("chassis_asset_tag", "OracleCloud.com"),
                ("sys_vendor", "QEMU"),
            ],
            Some(Platform::Oracle),
        ),
        (
            &[
                ("product_name", "Google Compute Engine"),
                ("sys_vendor", "Google"),
            ],
            Some(Platform::Gce),
        ),
        (
            &[("product_serial", "GoogleCloud-1234")],
            Some(Platform::Gce),
        ),
        (
            &[("product_name", "OpenStack Nova")],
            Some(Platform::OpenStack),
        ),
        (
            &[("product_name", "OpenStack Compute")],
            Some(Platform::OpenStack),
        ),
        (
            &[("product_uuid", "ec2f8a2e-1111-2222-3333-444455556666")],
            Some(Platform::Ec2),
        ),
        (
            &[("product_uuid", "EC2F8A2E-1111-2222-3333-444455556666")],
            Some(Platform::Ec2),
        ),
        (
            &[("chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77")],
            Some(Platform::Azure),
        ),
        (
            &[
                ("sys_vendor", "VMware, Inc."),
                ("product_name", "VMware7,1"),
            ],
            Some(Platform::Vmware),
        ),
        (
            &[
                ("sys_vendor", "QEMU"),
                ("product_name", "Standard PC (i440FX + PIIX, 1996)"),
            ],
            None,
        ),
        (&[], None),
    ];
    for (files, want) in cases {
        let dir = dmi_dir(files);
        assert_eq!(detect(dir.path(), "ro quiet"), *want, "{files:?}");
    }
    let vmware = dmi_dir(&[("sys_vendor", "VMware, Inc.")]);
    assert_eq!(detect(vmware.path(), "nodeboot.platform=none"), None);
    assert_eq!(
        detect(vmware.path(), "nodeboot.platform=oracle"),
        Some(Platform::Oracle)
    );
    assert_eq!(
        detect(Path::new("/nonexistent/dmi"), "nodeboot.platform=gce"),
        Some(Platform::Gce)
    );
    assert_eq!(detect(Path::new("/nonexistent/dmi"), ""), None);
    // A huge DMI file is read bounded and matches nothing.
    let big = dmi_dir(&[("sys_vendor", &"x".repeat(1 << 20))]);
    assert_eq!(detect(big.path(), ""), None);
}

// ------------------------------------------------------------------ Oracle Cloud

fn oracle_script(doc: String) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |s: &Seen, _| {
        if s.headers.get("authorization").map(String::as_str) != Some("Bearer Oracle") {
            return status(401);
        }
        match s.path.as_str() {
            "/opc/v2/instance/" => ok(doc.clone()),
            _ => status(404),
        }
    }
}

#[test]
fn oracle_at_the_real_address_in_a_netns() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("oci");
    let doc = format!(
        r#"{{"id":"ocid1.instance","metadata":{{"management_node_config":{MGMT},"nodeboot_token":"s3cret"}}}}"#
    );
    let (f, fake) = ns.run(|| {
        rt().block_on(async {
            let fake = start(
                "169.254.169.254:80".parse().expect("addr"),
                oracle_script(doc),
            )
            .await;
            (fetch(&Platform::Oracle, &real_env()).await, fake)
        })
    });
    let f = found(f);
    let got: serde_json::Value =
        serde_json::from_slice(f.bytes.as_deref().unwrap_or_default()).expect("JSON");
    let want: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"management_node_config":{MGMT}}}"#)).expect("JSON");
    assert_eq!(got, want);
    assert_eq!(token(&f), Some("s3cret"));
    assert_eq!(
        f.origin,
        "Oracle Cloud metadata (metadata.management_node_config)"
    );
    assert_eq!(fake.hits("/opc/v2/instance/"), 1);
    // The token is not in the Debug form.
    assert!(!format!("{f:?}").contains("s3cret"));
}

#[test]
fn oracle_falls_back_to_v1_when_v2_answers_404() {
    rt().block_on(async {
        let doc = format!(r#"{{"metadata":{{"user_data":"{}"}}}}"#, b64(XML));
        let fake = start("127.0.0.1:0".parse().expect("addr"), move |s, _| {
            match s.path.as_str() {
                "/opc/v1/instance/" => ok(doc.clone()),
                _ => status(404),
            }
        })
        .await;
        let f = found(fetch(&Platform::Oracle, &env(fake.addr)).await);
        assert_eq!(text(&f), XML);
        assert_eq!(f.origin, "Oracle Cloud metadata (metadata.user_data)");
        let paths: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["/opc/v2/instance/", "/opc/v1/instance/"]);
    });
}

#[test]
fn oracle_shapes_absent_and_conferencing() {
    rt().block_on(async {
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            oracle_script(r#"{"metadata":{"ssh_authorized_keys":"k"}}"#.into()),
        )
        .await;
        assert!(matches!(
            fetch(&Platform::Oracle, &env(fake.addr)).await,
            Ok(None)
        ));
        let doc = serde_json::json!({"metadata": {"conferencing_node_config": XML}}).to_string();
        let fake = start("127.0.0.1:0".parse().expect("addr"), oracle_script(doc)).await;
        let f = found(fetch(&Platform::Oracle, &env(fake.addr)).await);
        assert_eq!(
            text(&f),
            serde_json::json!({"conferencing_node_config": XML}).to_string()
        );
        // Bad base64 in user_data: present but invalid, fail closed.
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            oracle_script(r#"{"metadata":{"user_data":"!!"}}"#.into()),
        )
        .await;
        let e = fetch(&Platform::Oracle, &env(fake.addr)).await.err();
        assert_eq!(e.map(|e| e.kind), Some(FetchErrorKind::Invalid));
    });
}

#[test]
fn oracle_oversize_document_is_refused_with_bounded_reading() {
    rt().block_on(async {
        let (addr, sent) = start_endless().await;
        let e = fetch(&Platform::Oracle, &env(addr)).await.expect_err("an error");
        assert_eq!(e.kind, FetchErrorKind::Invalid);
        assert_eq!(
            e.message,
            "Oracle Cloud metadata: GET /opc/v2/instance/: the answer is over the limit of 65536 bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = *sent.lock().expect("sent");
        assert!(sent < 64 * 1024 * 1024, "the client read on: the fake sent {sent} bytes");
    });
}

// ------------------------------------------------------------------ Google Compute Engine

fn gce_script(
    values: Vec<(&'static str, String)>,
) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |s: &Seen, _| {
        if s.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return status(403);
        }
        let key = s
            .path
            .strip_prefix("/computeMetadata/v1/instance/attributes/")
            .unwrap_or("");
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => ok(v.clone()),
            None => status(404),
        }
    }
}

#[test]
fn gce_at_the_real_address_in_a_netns() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("gce");
    let (f, fake) = ns.run(|| {
        rt().block_on(async {
            let fake = start(
                "169.254.169.254:80".parse().expect("addr"),
                gce_script(vec![
                    ("management_node_config", MGMT.into()),
                    ("nodeboot_token", "t0k\n".into()),
                ]),
            )
            .await;
            (fetch(&Platform::Gce, &real_env()).await, fake)
        })
    });
    let f = found(f);
    assert_eq!(text(&f), format!(r#"{{"management_node_config": {MGMT}}}"#));
    assert_eq!(token(&f), Some("t0k"));
    assert_eq!(
        f.origin,
        "Google Compute Engine metadata (attributes/management_node_config)"
    );
    // Every request carried Metadata-Flavor (the fake answers 403 without it).
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.headers.get("metadata-flavor").map(String::as_str) == Some("Google"))
    );
}

#[test]
fn gce_shapes_token_only_and_absent() {
    rt().block_on(async {
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            gce_script(vec![("conferencing_node_config", XML.into())]),
        )
        .await;
        let f = found(fetch(&Platform::Gce, &env(fake.addr)).await);
        assert_eq!(
            text(&f),
            serde_json::json!({"conferencing_node_config": XML}).to_string()
        );
        assert_eq!(token(&f), None);

        let ud = format!(
            r#"{{"management_node_config": "{}"}}"#,
            MGMT.replace('"', "\\\"")
        );
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            gce_script(vec![("user-data", ud.clone())]),
        )
        .await;
        assert_eq!(
            text(&found(fetch(&Platform::Gce, &env(fake.addr)).await)),
            ud
        );

        // An empty key is no key: the next one is read.
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            gce_script(vec![
                ("management_node_config", "\n".into()),
                ("user-data", XML.into()),
            ]),
        )
        .await;
        assert_eq!(
            text(&found(fetch(&Platform::Gce, &env(fake.addr)).await)),
            XML
        );

        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            gce_script(vec![("nodeboot_token", "only".into())]),
        )
        .await;
        let f = found(fetch(&Platform::Gce, &env(fake.addr)).await);
        assert!(f.bytes.is_none());
        assert_eq!(token(&f), Some("only"));

        let fake = start("127.0.0.1:0".parse().expect("addr"), gce_script(vec![])).await;
        assert!(matches!(
            fetch(&Platform::Gce, &env(fake.addr)).await,
            Ok(None)
        ));
        assert_eq!(fake.seen().len(), 4, "each of the four keys asked once");
    });
}

#[test]
fn gce_without_metadata_flavor_is_refused_and_named() {
    rt().block_on(async {
        // A service that refuses every request the way GCE refuses one without the header.
        let fake = start("127.0.0.1:0".parse().expect("addr"), |_: &Seen, _| status(403)).await;
        let e = fetch(&Platform::Gce, &env(fake.addr)).await.expect_err("an error");
        assert_eq!(e.kind, FetchErrorKind::Unavailable);
        assert_eq!(
            e.message,
            "Google Compute Engine metadata: GET /computeMetadata/v1/instance/attributes/management_node_config: answered 403 Forbidden"
        );
    });
}

#[test]
fn gce_503_is_retried() {
    rt().block_on(async {
        let inner = gce_script(vec![("management_node_config", MGMT.into())]);
        let fake = start("127.0.0.1:0".parse().expect("addr"), move |s: &Seen, n| {
            if n < 2 { status(503) } else { inner(s, n) }
        })
        .await;
        found(fetch(&Platform::Gce, &env(fake.addr)).await);
        assert_eq!(
            fake.hits("/computeMetadata/v1/instance/attributes/management_node_config"),
            3
        );
    });
}

#[test]
fn gce_value_over_256_kib_is_refused() {
    rt().block_on(async {
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            gce_script(vec![("management_node_config", "x".repeat(256 * 1024 + 1))]),
        )
        .await;
        let e = fetch(&Platform::Gce, &env(fake.addr))
            .await
            .expect_err("an error");
        assert_eq!(e.kind, FetchErrorKind::Invalid);
        assert!(
            e.message
                .ends_with("the answer is over the limit of 262144 bytes"),
            "{e}"
        );
    });
}

// ------------------------------------------------------------------ OpenStack

const OS_PATH: &str = "/openstack/latest/user_data";

#[test]
fn openstack_at_the_real_address_in_a_netns() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("os");
    let ud = serde_json::json!({"conferencing_node_config": XML}).to_string();
    let want = ud.clone();
    let f = ns.run(move || {
        rt().block_on(async move {
            let _fake = start(
                "169.254.169.254:80".parse().expect("addr"),
                move |s: &Seen, _| {
                    if s.path == OS_PATH {
                        ok(ud.clone())
                    } else {
                        status(404)
                    }
                },
            )
            .await;
            fetch(&Platform::OpenStack, &real_env()).await
        })
    });
    let f = found(f);
    assert_eq!(text(&f), want);
    assert_eq!(f.origin, "OpenStack metadata (openstack/latest/user_data)");
}

#[test]
fn openstack_absent_is_none() {
    rt().block_on(async {
        let fake = start("127.0.0.1:0".parse().expect("addr"), |_: &Seen, _| {
            status(404)
        })
        .await;
        assert!(matches!(
            fetch(&Platform::OpenStack, &env(fake.addr)).await,
            Ok(None)
        ));
    });
}

#[test]
fn slow_service_times_out_then_the_retry_succeeds() {
    rt().block_on(async {
        let fake = start("127.0.0.1:0".parse().expect("addr"), |_: &Seen, n| {
            let mut r = ok(XML);
            if n == 0 {
                r.delay = Duration::from_secs(2);
            }
            r
        })
        .await;
        let f = found(fetch(&Platform::OpenStack, &env(fake.addr)).await);
        assert_eq!(text(&f), XML);
        assert_eq!(fake.hits(OS_PATH), 2);
    });
}

#[test]
fn failing_service_is_an_error_when_the_budget_is_used() {
    rt().block_on(async {
        let fake = start("127.0.0.1:0".parse().expect("addr"), |_: &Seen, _| status(500)).await;
        let mut e = env(fake.addr);
        e.budgets.source = Duration::from_millis(600);
        let err = fetch(&Platform::OpenStack, &e).await.expect_err("an error");
        assert_eq!(err.kind, FetchErrorKind::Unavailable);
        let hits = fake.hits(OS_PATH);
        assert!(hits >= 3, "retried: {hits}");
        let want = format!("OpenStack metadata: GET {OS_PATH}: answered 500 Internal Server Error ({hits} attempts in ");
        assert!(err.message.starts_with(&want), "{err}");
        assert!(err.message.ends_with(" s, the time budget is used)"), "{err}");
    });
}

#[test]
fn unreachable_service_is_an_error_after_retries() {
    rt().block_on(async {
        // A port nothing listens on: connection refused, retried until the budget is used.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        let mut e = env(closed);
        e.budgets.source = Duration::from_millis(300);
        let err = fetch(&Platform::OpenStack, &e).await.expect_err("an error");
        assert!(
            err.message.starts_with(&format!(
                "OpenStack metadata: GET {OS_PATH}: cannot connect:"
            )),
            "{err}"
        );
    });
}

// ------------------------------------------------------------------ Amazon EC2

fn ec2_script(user_data: Option<String>) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |s: &Seen, _| match (s.method.as_str(), s.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            if s.headers
                .get("x-aws-ec2-metadata-token-ttl-seconds")
                .map(String::as_str)
                == Some("300")
            {
                ok("AQAEAtoken==")
            } else {
                status(400)
            }
        }
        ("GET", "/latest/user-data") => {
            if s.headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                != Some("AQAEAtoken==")
            {
                return status(401);
            }
            match &user_data {
                Some(u) => ok(u.clone()),
                None => status(404),
            }
        }
        _ => status(404),
    }
}

#[test]
fn ec2_token_flow_at_the_real_address_in_a_netns() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("ec2");
    let (f, fake) = ns.run(|| {
        rt().block_on(async {
            let fake = start(
                "169.254.169.254:80".parse().expect("addr"),
                ec2_script(Some(XML.into())),
            )
            .await;
            (fetch(&Platform::Ec2, &real_env()).await, fake)
        })
    });
    let f = found(f);
    assert_eq!(text(&f), XML);
    let seen: Vec<(String, String)> = fake
        .seen()
        .into_iter()
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            ("GET".to_owned(), "/latest/user-data".to_owned())
        ]
    );
}

#[test]
fn ec2_absent_and_oversize() {
    rt().block_on(async {
        let fake = start("127.0.0.1:0".parse().expect("addr"), ec2_script(None)).await;
        assert!(matches!(fetch(&Platform::Ec2, &env(fake.addr)).await, Ok(None)));
        let fake = start("127.0.0.1:0".parse().expect("addr"), ec2_script(Some("x".repeat(16 * 1024 + 1)))).await;
        let e = fetch(&Platform::Ec2, &env(fake.addr)).await.expect_err("an error");
        assert_eq!(e.kind, FetchErrorKind::Invalid);
        assert_eq!(e.message, "Amazon EC2 metadata: GET /latest/user-data: the answer is over the limit of 16384 bytes");
        // The session token never appears in an error.
        let fake = start("127.0.0.1:0".parse().expect("addr"), |s: &Seen, _| if s.method == "PUT" { ok("AQAEAtoken==") } else { status(403) }).await;
        let e = fetch(&Platform::Ec2, &env(fake.addr)).await.expect_err("an error");
        assert!(!e.message.contains("AQAEA"), "{e}");
        assert_eq!(e.message, "Amazon EC2 metadata: GET /latest/user-data: answered 403 Forbidden");
    });
}

// ------------------------------------------------------------------ Azure

const IMDS_PATH: &str = "/metadata/instance/compute/userData?api-version=2021-01-01&format=text";
const GOAL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>7</Incarnation>
  <Machine><ExpectedState>Started</ExpectedState></Machine>
  <Container>
    <ContainerId>c6d5e1f2-0000-1111-2222-333344445555</ContainerId>
    <RoleInstanceList>
      <RoleInstance><InstanceId>896a2f4f.node-0</InstanceId></RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>"#;

fn azure_script(
    user_data: String,
    imds_404s: usize,
) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |s: &Seen, n| {
        if s.path == IMDS_PATH {
            if s.headers.get("metadata").map(String::as_str) != Some("true") {
                return status(400);
            }
            return if n < imds_404s {
                status(404)
            } else {
                ok(user_data.clone())
            };
        }
        if s.headers.get("x-ms-version").map(String::as_str) != Some("2012-11-30") {
            return status(400);
        }
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/machine/?comp=goalstate") => ok(GOAL),
            ("POST", "/machine/?comp=health") => ok(""),
            _ => status(404),
        }
    }
}

fn assert_ready_report(fake: &Fake) {
    let health: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/machine/?comp=health")
        .collect();
    assert_eq!(health.len(), 1, "one ready report: {:?}", fake.seen());
    let h = &health[0];
    assert_eq!(h.method, "POST");
    assert_eq!(
        h.headers.get("content-type").map(String::as_str),
        Some("text/xml; charset=utf-8")
    );
    assert!(
        h.body
            .contains("<GoalStateIncarnation>7</GoalStateIncarnation>"),
        "{}",
        h.body
    );
    assert!(
        h.body
            .contains("<ContainerId>c6d5e1f2-0000-1111-2222-333344445555</ContainerId>")
    );
    assert!(h.body.contains("<InstanceId>896a2f4f.node-0</InstanceId>"));
    assert!(h.body.contains("<State>Ready</State>"));
    let order: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    let goal = order.iter().position(|p| p == "/machine/?comp=goalstate");
    let post = order.iter().position(|p| p == "/machine/?comp=health");
    assert!(goal < post, "goal state before health: {order:?}");
}

#[test]
fn azure_at_the_real_addresses_in_a_netns_reports_ready() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("az");
    let (f, imds, wire) = ns.run(|| {
        rt().block_on(async {
            let imds = start(
                "169.254.169.254:80".parse().expect("addr"),
                azure_script(b64(XML), 0),
            )
            .await;
            let wire = start(
                "168.63.129.16:80".parse().expect("addr"),
                azure_script(String::new(), 0),
            )
            .await;
            (fetch(&Platform::Azure, &real_env()).await, imds, wire)
        })
    });
    let f = found(f);
    assert_eq!(text(&f), XML);
    assert_eq!(f.origin, "Azure metadata (userData)");
    assert_eq!(imds.hits(IMDS_PATH), 1);
    assert_ready_report(&wire);
}

#[test]
fn azure_wire_server_from_the_dhcp_lease_and_bound_to_the_interface() {
    if !netns_ready() {
        return;
    }
    let ns = Netns::new("azl");
    let leases = tempfile::tempdir().expect("tempdir");
    // lo is interface 1 in a new namespace; option 245 names 169.254.169.253.
    std::fs::write(
        leases.path().join("1"),
        "# This is private data. Do not parse.\nADDRESS=127.0.0.1\nOPTION_245=a9fea9fd\n",
    )
    .expect("lease");
    let lease_dir = leases.path().to_owned();
    let (r, wire) = ns.run(move || {
        rt().block_on(async move {
            let _imds = start(
                "169.254.169.254:80".parse().expect("addr"),
                azure_script(String::new(), 0),
            )
            .await;
            let wire = start(
                "169.254.169.253:80".parse().expect("addr"),
                azure_script(String::new(), 0),
            )
            .await;
            let env = Env {
                interface: Some("lo".into()),
                lease_dir,
                ..real_env()
            };
            (fetch(&Platform::Azure, &env).await, wire)
        })
    });
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_ready_report(&wire);
}

#[test]
fn azure_reports_ready_when_nothing_is_found() {
    rt().block_on(async {
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            azure_script(String::new(), 0),
        )
        .await;
        assert!(matches!(
            fetch(&Platform::Azure, &env(fake.addr)).await,
            Ok(None)
        ));
        assert_ready_report(&fake);
    });
}

#[test]
fn azure_reports_ready_when_the_payload_is_bad_and_retries_imds_404() {
    rt().block_on(async {
        let fake = start(
            "127.0.0.1:0".parse().expect("addr"),
            azure_script("%%not base64%%".into(), 2),
        )
        .await;
        let e = fetch(&Platform::Azure, &env(fake.addr))
            .await
            .expect_err("an error");
        assert_eq!(e.kind, FetchErrorKind::Invalid);
        assert!(
            e.message
                .starts_with("Azure metadata: userData is not valid base64"),
            "{e}"
        );
        assert_eq!(fake.hits(IMDS_PATH), 3, "404 is retried on Azure IMDS");
        assert_ready_report(&fake);
    });
}

#[test]
fn azure_custom_data_from_the_provisioning_disc() {
    rt().block_on(async {
        let fake = start("127.0.0.1:0".parse().expect("addr"), azure_script(String::new(), 0)).await;
        let ovf = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
 <wa:ProvisioningSection><wa:Version>1.0</wa:Version>
  <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
   <HostName>node</HostName><CustomData>{}</CustomData>
  </LinuxProvisioningConfigurationSet>
 </wa:ProvisioningSection>
</Environment>"#,
            b64(MGMT)
        );
        let e = Env {
            azure_ovf_env: Some(ovf.into_bytes()),
            ..env(fake.addr)
        };
        // The customData is not in the environment's Debug form.
        assert!(!format!("{e:?}").contains(&b64(MGMT)));
        let f = found(fetch(&Platform::Azure, &e).await);
        assert_eq!(text(&f), MGMT);
        assert_eq!(f.origin, "Azure provisioning disc (ovf-env.xml CustomData)");
        assert_ready_report(&fake);
    });
}

// ------------------------------------------------------------------ VMware

/// A fake `vmware-rpctool`: `info-get KEY` prints the file KEY of its directory (exit 1 when
/// absent), `info-set KEY VALUE` writes it.
fn fake_rpctool(values: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = r#"#!/bin/sh
dir=$(dirname "$0")
case "$1" in
  "info-get "*) key=${1#info-get }
     [ -f "$dir/$key" ] || { echo "No value found" >&2; exit 1; }
     cat "$dir/$key"; echo ;;
  "info-set "*) rest=${1#info-set }; key=${rest%% *}; printf '%s' "${rest#* }" > "$dir/$key" ;;
  *) exit 2 ;;
esac
"#;
    let tool = dir.path().join("vmware-rpctool");
    std::fs::write(&tool, script).expect("write the fake");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (k, v) in values {
        std::fs::write(dir.path().join(k), v).expect("value");
    }
    dir
}

fn vmware_env(dir: &Path) -> Env {
    Env {
        rpctool: dir.join("vmware-rpctool"),
        ..env("127.0.0.1:9".parse().expect("addr"))
    }
}

fn ovf_env(props: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="">
<PlatformSection><Kind>VMware ESXi</Kind></PlatformSection><PropertySection>"#,
    );
    for (k, v) in props {
        s.push_str(&format!(r#"<Property oe:key="{k}" oe:value="{v}"/>"#));
    }
    s.push_str("</PropertySection></Environment>");
    s
}

#[test]
fn vmware_guestinfo_encodings_and_forget() {
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(XML.as_bytes()).expect("gzip");
        base64::engine::general_purpose::STANDARD.encode(e.finish().expect("gzip"))
    };
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("guestinfo.nodeboot.config", XML)], XML),
        (
            &[
                ("guestinfo.nodeboot.config", &b64(XML)),
                ("guestinfo.nodeboot.config.encoding", "base64"),
            ],
            XML,
        ),
        (
            &[
                ("guestinfo.nodeboot.config", &gz),
                ("guestinfo.nodeboot.config.encoding", "gzip+base64"),
            ],
            XML,
        ),
    ];
    for (values, want) in cases {
        let dir = fake_rpctool(values);
        let env = vmware_env(dir.path());
        let f = found(rt().block_on(fetch(&Platform::Vmware, &env)));
        assert_eq!(text(&f), *want);
        assert_eq!(f.origin, "VMware guestinfo (guestinfo.nodeboot.config)");
        forget(&Platform::Vmware, &env).expect("forget");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("guestinfo.nodeboot.config"))
                .ok()
                .as_deref(),
            Some("''")
        );
        assert!(
            matches!(rt().block_on(fetch(&Platform::Vmware, &env)), Ok(None)),
            "forgotten"
        );
    }
}

#[test]
fn vmware_ovf_environment_properties_and_absent() {
    let xml = ovf_env(&[("nodeboot.config", &b64(MGMT)), ("nodeboot.token", "tok-1")]);
    let dir = fake_rpctool(&[("guestinfo.ovfEnv", &xml)]);
    let f = found(rt().block_on(fetch(&Platform::Vmware, &vmware_env(dir.path()))));
    assert_eq!(text(&f), MGMT);
    assert_eq!(token(&f), Some("tok-1"));
    assert_eq!(
        f.origin,
        "VMware guestinfo (OVF environment, nodeboot.config)"
    );

    let dir = fake_rpctool(&[("guestinfo.ovfEnv", &ovf_env(&[("nodeboot.token", "tok-2")]))]);
    let f = found(rt().block_on(fetch(&Platform::Vmware, &vmware_env(dir.path()))));
    assert!(f.bytes.is_none());
    assert_eq!(token(&f), Some("tok-2"));

    let dir = fake_rpctool(&[]);
    assert!(matches!(
        rt().block_on(fetch(&Platform::Vmware, &vmware_env(dir.path()))),
        Ok(None)
    ));

    let dir = fake_rpctool(&[
        ("guestinfo.nodeboot.config", "x"),
        ("guestinfo.nodeboot.config.encoding", "rot13"),
    ]);
    let e = rt()
        .block_on(fetch(&Platform::Vmware, &vmware_env(dir.path())))
        .expect_err("an error");
    assert_eq!(e.kind, FetchErrorKind::Invalid);

    let e = rt()
        .block_on(fetch(
            &Platform::Vmware,
            &vmware_env(Path::new("/nonexistent")),
        ))
        .expect_err("an error");
    assert!(
        e.message
            .starts_with("VMware guestinfo: cannot run /nonexistent/vmware-rpctool"),
        "{e}"
    );
}
