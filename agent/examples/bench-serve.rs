//! Benchmark of `nodeboot-agent serve` as a process (run by `scripts/bench-serve`): time from
//! process start to the first completed TLS handshake (first start with key generation, later
//! starts), idle RSS, upload-to-applied latency, and RSS growth with 500 idle TLS connections.
//! Prints numbers; asserts nothing.
//!
//! Usage: bench-serve AGENT_BINARY IMAGE_DIR VALID_XML

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The benchmark connects to a server it just started itself: any certificate will do.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn handshake(port: u16) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    connector()
        .connect(
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            tcp,
        )
        .await
}

/// One HTTP/1.1 request with `Connection: close`; the status code and body.
async fn request(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = handshake(port).await.unwrap();
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn image_root(image: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", image.display()))
        .arg(root.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::create_dir_all(root.path().join("home/admin")).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/nodeboot")).unwrap();
    root
}

fn spawn(agent: &Path, root: &Path, port: u16) -> Child {
    Command::new(agent)
        .args(["serve", "--reboot", "none", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--root")
        .arg(root)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Spawns the agent and polls until a TLS handshake succeeds: (child, elapsed).
async fn start_and_time(agent: &Path, root: &Path) -> (Child, u16, Duration) {
    let port = free_port();
    let t0 = Instant::now();
    let mut child = spawn(agent, root, port);
    while t0.elapsed() < Duration::from_secs(10) {
        if handshake(port).await.is_ok() {
            return (child, port, t0.elapsed());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the agent did not accept TLS within 10 s");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    println!(
        "{name}: median {median:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
        v[0],
        v[v.len() - 1],
        v.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [agent, image, xml] = &args[..] else {
        eprintln!("usage: bench-serve AGENT_BINARY IMAGE_DIR VALID_XML");
        std::process::exit(2);
    };
    let xml = std::fs::read(xml).unwrap();
    let runs = 10;
    // BENCH_SECTIONS=start,memory,upload (default: all) runs a part only.
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_else(|_| "start,memory,upload".into());
    let want = |s: &str| sections.split(',').any(|x| x == s);

    if want("start") {
        bench_start(agent, image, runs).await;
    }
    if want("memory") {
        bench_memory(agent, image).await;
    }
    if want("upload") {
        bench_upload(agent, image, &xml, runs).await;
    }
}

async fn bench_start(agent: &Path, image: &Path, runs: usize) {
    // Start-up: first start (key generation) on a fresh root, later starts on the same root.
    let mut first = Vec::new();
    let mut later = Vec::new();
    for _ in 0..runs {
        let root = image_root(image);
        let (child, _, t) = start_and_time(agent, root.path()).await;
        first.push(ms(t));
        stop(child);
        let (child, _, t) = start_and_time(agent, root.path()).await;
        later.push(ms(t));
        stop(child);
    }
    summary(
        "start -> first TLS handshake, first start (P-256 key + certificate generated)",
        first,
    );
    summary(
        "start -> first TLS handshake, later start (certificate reused)",
        later,
    );
}

async fn bench_memory(agent: &Path, image: &Path) {
    // Idle RSS, then 500 idle TLS connections.
    let root = image_root(image);
    let (child, port, _) = start_and_time(agent, root.path()).await;
    let _ = request(
        port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(child.id());
    println!(
        "idle RSS after start and one page view: {idle} KiB ({:.2} MiB)",
        idle as f64 / 1024.0
    );
    let mut conns = Vec::new();
    for _ in 0..500 {
        conns.push(handshake(port).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = rss_kib(child.id());
    println!(
        "500 idle TLS connections held: RSS {held} KiB, growth {} KiB ({:.2} MiB, {:.1} KiB per connection)",
        held - idle,
        (held - idle) as f64 / 1024.0,
        (held - idle) as f64 / 500.0
    );
    drop(conns);
    stop(child);
}

async fn bench_upload(agent: &Path, image: &Path, xml: &[u8], runs: usize) {
    // Upload -> applied: POST the file, poll the status until configured.
    let mut accepted = Vec::new();
    let mut applied = Vec::new();
    for _ in 0..runs {
        let root = image_root(image);
        let (child, port, _) = start_and_time(agent, root.path()).await;
        let head = format!(
            "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
             Content-Length: {}\r\n\r\n",
            xml.len()
        );
        let t0 = Instant::now();
        let (code, body) = request(port, &head, xml).await;
        assert_eq!(code, 202, "{body}");
        accepted.push(ms(t0.elapsed()));
        loop {
            let (_, status) = request(
                port,
                "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"",
            )
            .await;
            if status.contains("\"state\": \"configured\"") {
                break;
            }
            assert!(!status.contains("\"failed\""), "{status}");
        }
        applied.push(ms(t0.elapsed()));
        stop(child);
    }
    summary(
        "upload -> 202 reply received (TLS handshake + validation)",
        accepted,
    );
    summary(
        "upload -> status says configured (reply, apply with every fsync)",
        applied,
    );
}
