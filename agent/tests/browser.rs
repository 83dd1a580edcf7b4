//! The upload form in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; a few WebDriver calls made directly over HTTP).
//! Opens the page, chooses a file, presses Upload, reads the result page; then the same with
//! an invalid file. Screenshots of every page go to `target/artifacts/browser/`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (Debian chromium-driver, scripts/apt-packages)");
        let driver = Driver { child, port };
        for _ in 0..300 {
            if let Ok(v) = driver.call("GET", "/status", None).await {
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not become ready");
    }

    /// One WebDriver command; the JSON answer.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .unwrap();
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {v}"));
        }
        Ok(v)
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl<'a> Session<'a> {
    async fn new(driver: &'a Driver, profile: &std::path::Path) -> Session<'a> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=412,915",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = driver.call("POST", "/session", Some(caps)).await.unwrap();
        Session {
            driver,
            id: v["value"]["sessionId"].as_str().unwrap().to_string(),
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        self.driver.call(method, &path, body).await.unwrap()["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Finds an element by CSS selector, waiting for it to appear (page loads).
    async fn find(&self, css: &str) -> String {
        for _ in 0..200 {
            let path = format!("/session/{}/element", self.id);
            let body = json!({"using": "css selector", "value": css});
            if let Ok(v) = self.driver.call("POST", &path, Some(body)).await {
                return v["value"][ELEMENT].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no element {css} on the page");
    }

    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd("GET", &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Picks `file` in the page's file input, presses Upload and returns the result shown.
    async fn upload(&self, file: &std::path::Path) -> String {
        let input = self.find("#file").await;
        let file = file.canonicalize().unwrap();
        self.cmd(
            "POST",
            &format!("/element/{input}/value"),
            Some(json!({"text": file.to_str().unwrap()})),
        )
        .await;
        let button = self.find("#upload").await;
        self.cmd("POST", &format!("/element/{button}/click"), Some(json!({})))
            .await;
        self.text("#result").await
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let path = artifacts_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn close(self) {
        let path = format!("/session/{}", self.id);
        let _ = self.driver.call("DELETE", &path, None).await;
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, c) in data.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}

#[test]
fn base64_decoder() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8hIQ=="), b"hello!!");
    assert_eq!(base64_decode("YWJj"), b"abc");
}

#[tokio::test]
async fn upload_form_in_headless_chromium() {
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let session = Session::new(&driver, profile.path()).await;

    // A valid file: the success page, and the node's files written.
    let mut server = https::start(https::Options::default()).await;
    session.goto(&format!("https://{}/", server.addr)).await;
    let state = session.text("#state").await;
    assert_eq!(state, "Unconfigured — waiting for its configuration");
    session.screenshot("1-form.png").await;
    let result = session.upload(&https::valid_xml_path()).await;
    assert!(result.contains("Applied, rebooting in 0 s."), "{result}");
    session.screenshot("2-accepted.png").await;
    server.wait_for_reboots(1).await;
    assert!(https::applied_files_present(server.root.path()));
    // Back on the node's page: configured, no form.
    session.goto(&format!("https://{}/", server.addr)).await;
    assert_eq!(session.text("#state").await, "Configured");
    session.screenshot("3-configured.png").await;
    server.stop().await;

    // An invalid file: every error on the page, nothing written.
    let mut server = https::start(https::Options::default()).await;
    session.goto(&format!("https://{}/", server.addr)).await;
    let result = session.upload(&https::invalid_xml_path()).await;
    assert!(result.contains("The file has 2 problems;"), "{result}");
    assert!(result.contains("line 5, column 13"), "{result}");
    assert!(result.contains("is not an RFC 1123 label"), "{result}");
    assert!(result.contains("line 9, column 55"), "{result}");
    session.screenshot("4-rejected.png").await;
    assert!(!https::applied_files_present(server.root.path()));
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;

    session.close().await;
}
