//! Benchmark of `nodeboot-agent serve` as a process (run by `scripts/bench-serve`): time from
//! process start to the first completed TLS handshake (first start with key generation, later
//! starts), idle RSS, upload-to-applied latency, RSS growth with 500 idle TLS connections, a
//! real upload while 1,000 idle, keep-alive and slow connections are held (`siege`), 400
//! token-less 1 MiB form uploads at once (`forms`), and the answer to 1 MiB of unknown
//! elements (`flood`). Prints numbers; asserts nothing.
//!
//! Usage: bench-serve AGENT_BINARY IMAGE_DIR VALID_XML

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn connector() -> tokio_rustls::TlsConnector {
    // The benchmark connects to a server it just started itself: any certificate will do.
    tokio_rustls::TlsConnector::from(nodeboot_tests::tls::any_certificate())
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
/// `GET /api/v1/status` on a connection of its own: the code and the body.
async fn get_status(port: u16) -> (u16, String) {
    request(
        port,
        "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await
}

/// The head of an XML upload of `len` bytes (the connection kept open).
fn upload_head(len: usize) -> String {
    format!(
        "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
         Content-Length: {len}\r\n\r\n"
    )
}

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
    // admin owns its home, as on a node: the agent refuses one it does not own.
    std::os::unix::fs::chown(root.path().join("home/admin"), Some(1000), Some(1000)).unwrap();
    root
}

fn spawn(agent: &Path, root: &Path, port: u16, extra: &[&str]) -> Child {
    Command::new(agent)
        .args(["serve", "--reboot", "none", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--root")
        .arg(root)
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Spawns the agent and polls until a TLS handshake succeeds: (child, elapsed).
async fn start_and_time(agent: &Path, root: &Path) -> (Child, u16, Duration) {
    start_with(agent, root, &[]).await
}

async fn start_with(agent: &Path, root: &Path, extra: &[&str]) -> (Child, u16, Duration) {
    let port = free_port();
    let t0 = Instant::now();
    let mut child = spawn(agent, root, port, extra);
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
    proc_status_kib(pid, "VmRSS:")
}

/// Peak RSS since the process started.
fn peak_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
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
    let sections = std::env::var("BENCH_SECTIONS")
        .unwrap_or_else(|_| "start,memory,upload,siege,forms,flood".into());
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
    if want("siege") {
        bench_siege(agent, image, &xml).await;
    }
    if want("forms") {
        bench_forms(agent, image).await;
    }
    if want("flood") {
        bench_flood(agent, image).await;
    }
}

/// A TLS connection from the loopback address `from`.
async fn handshake_from(from: std::net::Ipv4Addr, port: u16) -> std::io::Result<Tls> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    let tcp = socket
        .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
        .await?;
    connector()
        .connect(
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            tcp,
        )
        .await
}

/// The i-th of the siege's source addresses: 127.0.1.x, 16 connections each (the default
/// per-address cap).
fn siege_source(i: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 1 + (i / 16 / 250) as u8, 1 + (i / 16 % 250) as u8)
}

async fn bench_siege(agent: &Path, image: &Path, xml: &[u8]) {
    // 1,000 connections held with the default limits (spread over 63 loopback addresses, as
    // many clients would be): a third idle after the handshake, a third keep-alive after one
    // request, a third sending their headers a byte every 500 ms (slowloris). Then one real
    // upload from another address.
    let root = image_root(image);
    let (child, port, _) = start_and_time(agent, root.path()).await;
    let idle_rss = rss_kib(child.id());
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut ready = Vec::new();
    for i in 0..1000 {
        let (tx, rx) = tokio::sync::oneshot::channel::<bool>();
        ready.push(rx);
        let from = siege_source(i);
        tasks.spawn(async move {
            let Ok(mut s) = handshake_from(from, port).await else {
                let _ = tx.send(false);
                return;
            };
            match i % 3 {
                0 => {
                    let _ = tx.send(true);
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b).await;
                }
                1 => {
                    let _ = s
                        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await;
                    let mut b = [0u8; 4096];
                    let _ = s.read(&mut b).await;
                    let _ = tx.send(true);
                    let _ = s.read(&mut b).await;
                }
                _ => {
                    let _ = tx.send(true);
                    for byte in b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nX-Slow: "
                        .iter()
                        .cycle()
                    {
                        if s.write_all(&[*byte]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
    let mut held = 0;
    for rx in ready {
        if rx.await.unwrap_or(false) {
            held += 1;
        }
    }
    let established = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(child.id());
    println!(
        "siege: {held} of 1000 connections held (idle, keep-alive, slowloris) after {:.0} ms; \
         RSS {rss} KiB ({:.1} MiB; idle agent {idle_rss} KiB)",
        ms(established),
        rss as f64 / 1024.0
    );
    let mut status_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (code, _) = get_status(port).await;
        assert_eq!(code, 200);
        status_times.push(ms(t.elapsed()));
    }
    summary("siege: GET /api/v1/status answered", status_times);
    let head = upload_head(xml.len());
    let t = Instant::now();
    let (code, body) = request(port, &head, xml).await;
    println!(
        "siege: real upload -> {code} reply in {:.1} ms; agent RSS {} KiB, peak {} KiB ({:.1} MiB)",
        ms(t.elapsed()),
        rss_kib(child.id()),
        peak_kib(child.id()),
        peak_kib(child.id()) as f64 / 1024.0
    );
    assert_eq!(code, 202, "{body}");
    tasks.abort_all();
    stop(child);
}

async fn bench_forms(agent: &Path, image: &Path) {
    // 400 token-less form uploads of 1 MiB each at once (the file before any token) against
    // an agent that requires a token: each is refused after 16 KiB, a few at a time.
    let root = image_root(image);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "bench-token\n").unwrap();
    let (child, port, _) = start_with(
        agent,
        root.path(),
        &[
            "--token-file",
            token.to_str().unwrap(),
            "--max-per-address",
            "1000",
        ],
    )
    .await;
    let boundary = "bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.xml\"\r\n\
         Content-Type: text/xml\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'x', 1024 * 1024 - 1024));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let body = Arc::new(body);
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let body = body.clone();
        tasks.spawn(async move {
            let Ok(mut s) = handshake(port).await else {
                return 0;
            };
            let head = format!(
                "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: multipart/form-data; boundary={boundary}\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out)
                .get(9..12)
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(0)
        });
    }
    let mut codes = std::collections::BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        *codes.entry(r.unwrap_or(0)).or_insert(0) += 1;
    }
    println!(
        "forms: 400 token-less 1 MiB form uploads answered in {:.0} ms, codes {codes:?}; \
         agent peak RSS {} KiB ({:.1} MiB)",
        ms(t0.elapsed()),
        peak_kib(child.id()),
        peak_kib(child.id()) as f64 / 1024.0
    );
    stop(child);
}

async fn bench_flood(agent: &Path, image: &Path) {
    // 1 MiB of unknown elements inside the root: the answer's time and size.
    let root = image_root(image);
    let (child, port, _) = start_and_time(agent, root.path()).await;
    let mut flood = b"<node-config schema=\"1\">".to_vec();
    flood.extend_from_slice(&b"<x/>".repeat((1024 * 1024 - 64) / 4));
    flood.extend_from_slice(b"</node-config>");
    let head = format!(
        "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        flood.len()
    );
    let t = Instant::now();
    let (code, body) = request(port, &head, &flood).await;
    let took = t.elapsed();
    let (_, status) = get_status(port).await;
    let (_, page) = request(
        port,
        "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    println!(
        "flood: 1 MiB of <x/> -> {code} in {:.0} ms, reply {} bytes; then status {} bytes, \
         page {} bytes; agent peak RSS {} KiB",
        ms(took),
        body.len(),
        status.len(),
        page.len(),
        peak_kib(child.id())
    );
    stop(child);
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
    // From 32 loopback addresses: 16 each is the default per-address cap.
    for i in 0..500 {
        conns.push(handshake_from(siege_source(i), port).await.unwrap());
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
        let head = upload_head(xml.len());
        let t0 = Instant::now();
        let (code, body) = request(port, &head, xml).await;
        assert_eq!(code, 202, "{body}");
        accepted.push(ms(t0.elapsed()));
        loop {
            let (_, status) = get_status(port).await;
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
