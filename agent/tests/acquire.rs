//! `nodeboot-acquire` end to end on a temporary root: the baked file, real media (loop
//! devices the agent mounts itself), the fail-closed rule, the record `serve` shows over real
//! HTTPS, the bootstrap token, and the attacker's tries (too big, a link, a FIFO, deep JSON,
//! control characters). Runs as root (mount, losetup); a missing tool fails the test.
//!
//! The media are ext4 images labelled like the real ones: this kernel has no iso9660, vfat or
//! udf (see /proc/filesystems), so `--fs-type ext4` is added to the production list; the
//! real formats are built and mounted by the node's kernel in the VM suite (tests/vm).

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;
mod https;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use https::{Client, invalid_xml, valid_xml};

/// A read-only loop device over an image file, detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach(image: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["-f", "--show", "-r"])
            .arg(image)
            .output()
            .unwrap_or_else(|e| panic!("losetup is required (util-linux): {e}"));
        assert!(
            out.status.success(),
            "losetup failed (these tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// An ext4 image labelled `label` holding the files of `dir`.
fn ext4_image(dir: &Path, label: &str, image: &Path) {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-d"])
        .arg(dir)
        .arg(image)
        .arg("4M")
        .output()
        .unwrap_or_else(|e| panic!("mkfs.ext4 is required (e2fsprogs): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Media for one test: a by-label directory of links to loop devices.
struct Media {
    dir: tempfile::TempDir,
    loops: Vec<Loop>,
}

impl Media {
    fn new() -> Media {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("by-label")).unwrap();
        Media {
            dir,
            loops: Vec::new(),
        }
    }

    /// Adds a medium labelled `label` with `files` (path, content); returns its device.
    fn add(&mut self, label: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let content = self.dir.path().join(format!("content-{label}"));
        for (path, bytes) in files {
            let p = content.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        std::fs::create_dir_all(&content).unwrap();
        self.add_dir(label, &content)
    }

    fn add_dir(&mut self, label: &str, content: &Path) -> PathBuf {
        let image = self.dir.path().join(format!("{label}.img"));
        ext4_image(content, label, &image);
        let l = Loop::attach(&image);
        let dev = l.0.clone();
        std::os::unix::fs::symlink(&dev, self.by_label().join(label)).unwrap();
        self.loops.push(l);
        dev
    }

    fn by_label(&self) -> PathBuf {
        self.dir.path().join("by-label")
    }
}

/// Runs `nodeboot-acquire --no-reboot` on `root` with the media (and `discs` as the optical drives).
fn acquire(root: &Path, media: &Media, discs: &[&Path]) -> std::process::Output {
    let by_label = media.by_label();
    let mut args = vec![
        "--no-reboot".to_owned(),
        "--fs-type".into(),
        "ext4".into(),
        "--devices".into(),
        by_label.display().to_string(),
    ];
    let none = media.dir.path().join("no-such-drive");
    let discs: Vec<&Path> = if discs.is_empty() {
        vec![&none]
    } else {
        discs.to_vec()
    };
    for d in discs {
        args.push("--disc".into());
        args.push(d.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::acquire(&args, root);
    assert!(
        out.status.success(),
        "acquire exits 0 whatever the sources held: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn state(root: &Path) -> serde_json::Value {
    let out = common::agent(&["status", "--json"], root);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn report(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("run/nodeboot/source.json")).unwrap()).unwrap()
}

/// The tree of `root` (contents, modes, owners) without `/run`, where acquire's records live.
fn node_files(root: &Path) -> std::collections::BTreeMap<PathBuf, common::Node> {
    let mut t = common::tree(root);
    t.retain(|p, _| !p.starts_with("run"));
    t
}

fn ovf_env(props: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"><PropertySection>"#,
    );
    for (k, v) in props {
        s.push_str(&format!(r#"<Property oe:key="{k}" oe:value="{v}"/>"#));
    }
    s.push_str("</PropertySection></Environment>");
    s.into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    out.stdin.as_ref().unwrap().write_all(bytes).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn a_baked_file_is_applied_and_no_source_is_read_again() {
    let root = common::image_root();
    std::fs::create_dir_all(root.path().join("etc/nodeboot")).unwrap();
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), valid_xml()).unwrap();
    let media = Media::new();
    let out = acquire(root.path(), &media, &[]);
    let text = stdout(&out);
    assert!(
        text.contains("configuration from /etc/nodeboot/node.xml"),
        "{text}"
    );
    assert!(text.contains("not rebooting (--no-reboot)"), "{text}");
    assert_eq!(state(root.path())["state"], "configured");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "conf01\n"
    );
    // The configured marker: the next boot reads no source.
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), invalid_xml()).unwrap();
    let text = stdout(&acquire(root.path(), &media, &[]));
    assert!(text.starts_with("configured (sha256 "), "{text}");
    assert!(!root.path().join("run/nodeboot/source.json").exists());
}

#[test]
fn nothing_found_changes_nothing() {
    let root = common::image_root();
    let before = node_files(root.path());
    let text = stdout(&acquire(root.path(), &Media::new(), &[]));
    let looked = text
        .strip_prefix("no configuration source (looked for ")
        .and_then(|t| t.strip_suffix(" ms); waiting for a person (8443, wizard)\n"));
    assert!(
        looked.is_some_and(|ms| ms.parse::<f64>().is_ok()),
        "{text:?}"
    );
    assert_eq!(node_files(root.path()), before);
    assert_eq!(state(root.path())["state"], "unconfigured");
}

#[test]
fn an_invalid_baked_file_fails_closed_and_the_media_are_not_tried() {
    let root = common::image_root();
    std::fs::create_dir_all(root.path().join("etc/nodeboot")).unwrap();
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), invalid_xml()).unwrap();
    let mut media = Media::new();
    media.add("cidata", &[("user-data", &valid_xml())]);
    let before = node_files(root.path());
    let text = stdout(&acquire(root.path(), &media, &[]));
    assert!(
        text.starts_with("configuration from /etc/nodeboot/node.xml is invalid; nothing applied:"),
        "{text}"
    );
    assert_eq!(node_files(root.path()), before, "nothing applied");
    assert_eq!(state(root.path())["state"], "unconfigured");
    let r = report(root.path());
    assert_eq!(r["origin"], "/etc/nodeboot/node.xml");
    assert_eq!(r["outcome"], "invalid");
    assert_eq!(r["findings"].as_array().unwrap().len(), 2, "{r}");
}

#[test]
fn a_nocloud_medium_is_mounted_and_applied() {
    let root = common::image_root();
    let mut media = Media::new();
    media.add("cidata", &[("user-data", &valid_xml())]);
    let text = stdout(&acquire(root.path(), &media, &[]));
    assert!(
        text.contains("configuration from NoCloud disc cidata (user-data)"),
        "{text}"
    );
    assert_eq!(state(root.path())["state"], "configured");
    // The medium was unmounted and its mount point removed.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&root.path().display().to_string()),
        "{mounts}"
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("run/nodeboot"))
            .unwrap()
            .count(),
        0,
        "no mount point left"
    );
}

#[test]
fn a_config_drive_carries_the_management_json_as_a_string() {
    let root = common::image_root();
    let hash = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";
    let answers = serde_json::json!({
        "hostname": "mgr01", "domain": "example.com", "ip": "10.0.0.10",
        "mask": "255.255.255.0", "gw": "10.0.0.1", "dns": "10.0.0.2",
        "ntp": "pool.ntp.org", "user": "admin",
        "pass": "pbkdf2_sha256$870000$abcDEF123$qU6tTn+9n1R3s6pPZWmF0vWc2m0kQz0b0WlFz3ZpK2c=",
        "admin_password": hash, "error_reports": false, "enable_analytics": false
    });
    let user_data =
        serde_json::to_vec(&serde_json::json!({ "management_node_config": answers.to_string() }))
            .unwrap();
    let mut media = Media::new();
    media.add("CONFIG-2", &[("openstack/latest/user_data", &user_data)]);
    let text = stdout(&acquire(root.path(), &media, &[]));
    assert!(
        text.contains("configuration from config drive CONFIG-2 (openstack/latest/user_data)"),
        "{text}"
    );
    assert_eq!(state(root.path())["state"], "configured");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "mgr01\n"
    );
}

#[test]
fn an_ovf_environment_disc_carries_base64_and_a_token() {
    let root = common::image_root();
    let mut media = Media::new();
    let env = ovf_env(&[
        ("nodeboot.config", &b64(&valid_xml())),
        ("nodeboot.token", "tok-3a9f"),
    ]);
    let disc = media.add("OVF_ENV", &[("ovf-env.xml", &env)]);
    std::fs::remove_file(media.by_label().join("OVF_ENV")).unwrap();
    let text = stdout(&acquire(root.path(), &media, &[&disc]));
    assert!(
        text.contains("configuration from OVF environment disc"),
        "{text}"
    );
    assert!(!text.contains("tok-3a9f"));
    assert_eq!(state(root.path())["state"], "configured");
    assert!(
        !root.path().join("run/nodeboot/token").exists(),
        "applied: no token needed"
    );
}

#[test]
fn an_invalid_configuration_beside_a_token_still_records_the_token() {
    let root = common::image_root();
    let mut media = Media::new();
    let env = ovf_env(&[
        ("nodeboot.config", &b64(&invalid_xml())),
        ("nodeboot.token", "tok-51d0"),
    ]);
    let disc = media.add("OVF_ENV", &[("ovf-env.xml", &env)]);
    std::fs::remove_file(media.by_label().join("OVF_ENV")).unwrap();
    let text = stdout(&acquire(root.path(), &media, &[&disc]));
    assert!(text.contains("is invalid; nothing applied"), "{text}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("run/nodeboot/token")).unwrap(),
        "tok-51d0\n"
    );
    assert!(
        !std::fs::read_to_string(root.path().join("run/nodeboot/source.json"))
            .unwrap()
            .contains("tok-51d0")
    );
}

#[test]
fn a_medium_file_that_is_a_link_or_a_fifo_fails_closed() {
    for kind in ["link", "fifo"] {
        let root = common::image_root();
        let mut media = Media::new();
        let content = media.dir.path().join("content");
        std::fs::create_dir_all(&content).unwrap();
        let path = content.join("user-data");
        if kind == "link" {
            std::os::unix::fs::symlink("/etc/shadow", &path).unwrap();
        } else {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        }
        media.add_dir("cidata", &content);
        let before = node_files(root.path());
        let text = stdout(&acquire(root.path(), &media, &[]));
        assert!(
            text.starts_with("configuration from NoCloud disc cidata (user-data) cannot be read; nothing applied:"),
            "{kind}: {text}"
        );
        let r = report(root.path());
        assert_eq!(r["outcome"], "unreadable");
        let want = if kind == "link" {
            "is a symbolic link"
        } else {
            "a FIFO"
        };
        assert!(r["message"].as_str().unwrap().contains(want), "{kind}: {r}");
        assert_eq!(node_files(root.path()), before);
    }
}

#[test]
fn a_baked_file_that_is_a_link_a_fifo_or_too_big_fails_closed() {
    let cases: [(&str, &str); 3] = [
        ("link", "is a symbolic link"),
        ("fifo", "a FIFO"),
        ("big", "over the limit of 1048576 bytes"),
    ];
    for (kind, want) in cases {
        let root = common::image_root();
        let dir = root.path().join("etc/nodeboot");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.json");
        match kind {
            "link" => std::os::unix::fs::symlink(
                common::repo_dir().join("tests/fixtures/valid/transcoding.xml"),
                &path,
            )
            .unwrap(),
            "fifo" => {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
            }
            _ => std::fs::write(&path, vec![b' '; 1024 * 1024 + 1]).unwrap(),
        }
        let mut media = Media::new();
        media.add("cidata", &[("user-data", &valid_xml())]);
        let text = stdout(&acquire(root.path(), &media, &[]));
        assert!(
            text.contains("cannot be read; nothing applied"),
            "{kind}: {text}"
        );
        assert!(text.contains(want), "{kind}: {text}");
        assert_eq!(
            state(root.path())["state"],
            "unconfigured",
            "{kind}: the medium was not tried"
        );
    }
}

#[test]
fn deep_json_and_control_characters_are_findings_shown_clean() {
    let root = common::image_root();
    let dir = root.path().join("etc/nodeboot");
    std::fs::create_dir_all(&dir).unwrap();
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    std::fs::write(dir.join("node.json"), format!("{{\"a\":{deep}}}")).unwrap();
    acquire(root.path(), &Media::new(), &[]);
    let r = report(root.path());
    assert!(
        r["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded"),
        "{r}"
    );

    std::fs::write(
        dir.join("node.json"),
        "{\"host\\u001b[2J\\u202ename\": \"x\", \"nodeboot_token\": \"t\"}",
    )
    .unwrap();
    let out = acquire(root.path(), &Media::new(), &[]);
    let raw = std::fs::read_to_string(root.path().join("run/nodeboot/source.json")).unwrap();
    assert!(
        !raw.contains("\\u001b") && !raw.contains('\u{1b}') && !raw.contains('\u{202e}'),
        "{raw}"
    );
    assert!(!stdout(&out).contains('\u{1b}'));
    assert!(raw.contains("unknown field \\\"host[2Jname\\\""), "{raw}");
}

/// A running `serve` process whose stderr is collected.
struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Serve {
    fn start(root: &Path) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"));
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--reboot",
                "none",
                "--root",
            ])
            .arg(root);
        let (child, addr, log) = common::spawn_serve(command);
        let addr = addr.unwrap_or_else(|| panic!("serve did not start: {}", log.lock().unwrap()));
        Serve { child, addr, log }
    }

    fn client(&self) -> Client {
        let log = self.log.lock().unwrap().clone();
        let fp = log
            .split("fingerprint=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no fingerprint logged: {log}"))
            .to_owned();
        Client::new(self.addr, &fp)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_shows_the_invalid_source_in_status_page_and_banner() {
    let root = common::image_root();
    std::fs::create_dir_all(root.path().join("etc/nodeboot")).unwrap();
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), invalid_xml()).unwrap();
    acquire(root.path(), &Media::new(), &[]);
    let serve = Serve::start(root.path());
    let client = serve.client();
    let status = client
        .get("/api/v1/status", "application/json")
        .await
        .json();
    assert_eq!(status["state"], "unconfigured");
    assert_eq!(status["source"]["origin"], "/etc/nodeboot/node.xml");
    assert_eq!(status["source"]["outcome"], "invalid");
    let findings = status["source"]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    // The contract, strictly: the provisioner's type reads it and writes back the same JSON.
    let typed: nodeboot_config::api::StatusReport = serde_json::from_value(status.clone()).unwrap();
    assert!(typed.source.is_some());
    assert_eq!(serde_json::to_value(&typed).unwrap(), status);
    let page = client.get("/", "text/html").await;
    assert!(
        page.body
            .contains("The configuration from /etc/nodeboot/node.xml is invalid"),
        "{}",
        page.body
    );
    let first = findings[0]["message"].as_str().unwrap();
    assert!(page.body.contains(&https_escape(first)), "{first}");
    let banner = std::fs::read_to_string(root.path().join("run/issue.d/nodeboot.issue")).unwrap();
    assert!(
        banner.contains(
            "nodeboot: configuration from /etc/nodeboot/node.xml is invalid; nothing was applied:"
        ),
        "{banner}"
    );
    assert!(banner.is_ascii() && !banner.contains('\\'), "{banner}");
    // Still open for a person: a valid upload is accepted.
    let r = client.post_xml(&valid_xml(), &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
}

fn https_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn a_token_only_source_makes_uploads_require_it() {
    let root = common::image_root();
    let mut media = Media::new();
    let env = ovf_env(&[("nodeboot.token", "tok-77c1")]);
    let disc = media.add("OVF_ENV", &[("ovf-env.xml", &env)]);
    std::fs::remove_file(media.by_label().join("OVF_ENV")).unwrap();
    let text = stdout(&acquire(root.path(), &media, &[&disc]));
    assert!(
        text.contains("a bootstrap token was supplied; uploads must carry it"),
        "{text}"
    );
    assert!(!text.contains("tok-77c1"));
    let token = root.path().join("run/nodeboot/token");
    let meta = std::fs::metadata(&token).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let serve = Serve::start(root.path());
    let client = serve.client();
    let r = client.post_xml(&valid_xml(), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = client
        .post_xml(&valid_xml(), &[("authorization", "Bearer tok-77c1")])
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(!serve.log.lock().unwrap().contains("tok-77c1"));
}

#[test]
fn check_reads_only_the_baked_file_and_applies_nothing() {
    let root = common::image_root();
    let check = |root: &Path| {
        let out = common::acquire(&["--check"], root);
        (
            out.status.code(),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = check(root.path());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "no baked file: none of /etc/nodeboot/node.xml, /etc/nodeboot/node.json is present\n"
    );
    std::fs::create_dir_all(root.path().join("etc/nodeboot")).unwrap();
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), invalid_xml()).unwrap();
    let (code, _, err) = check(root.path());
    assert_eq!(code, Some(2));
    assert!(
        err.ends_with("/etc/nodeboot/node.xml: invalid; it would not be applied\n"),
        "{err}"
    );
    std::fs::write(root.path().join("etc/nodeboot/node.xml"), valid_xml()).unwrap();
    let (code, out, _) = check(root.path());
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("/etc/nodeboot/node.xml: valid (sha256 "),
        "{out}"
    );
    assert_eq!(state(root.path())["state"], "unconfigured");
    assert!(!root.path().join("run/nodeboot/source.json").exists());
}

/// The boot-time chain is a binary of its own: `nodeboot-agent` (the daemon) has no `acquire`
/// subcommand, so none of the platform code is in its pages; `nodeboot-acquire` answers
/// `--help` with its options under its own name.
#[test]
fn acquire_is_its_own_binary_and_not_a_subcommand_of_the_agent() {
    let root = common::image_root();
    let out = common::agent(&["acquire", "--check"], root.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unrecognized subcommand 'acquire'"), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_nodeboot-acquire"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = stdout(&help);
    assert!(help.contains("Usage: nodeboot-acquire [OPTIONS]"), "{help}");
    for option in ["--check", "--no-reboot", "--dmi", "--disc", "--fs-type"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

/// A power cut after the apply's commit point: the next boot's `nodeboot-acquire` runs first
/// (the agent is ordered after it), completes the apply, and must reboot into it — the agent
/// is skipped on a configured node, so nobody else would, and the node would keep the image's
/// hostname and network until some later reboot.
#[test]
fn an_apply_interrupted_after_its_commit_point_is_completed_and_rebooted_into() {
    use nodeboot_agent::apply::{NodeState, Step, read_state};
    let root = common::image_root();
    let doc = common::doc_for(&common::proxying_dual());
    common::cut_power_after(root.path(), &doc, Step::JournalCommitted);
    let out = acquire(root.path(), &Media::new(), &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text,
        format!(
            "recovered an interrupted apply (sha256 {}); rebooting into the result\n",
            doc.digest()
        )
    );
    assert!(matches!(
        read_state(root.path()).unwrap(),
        NodeState::Configured { .. }
    ));
    // Once configured and rebooted, the next run reads no source and does not reboot again.
    let again = stdout(&acquire(root.path(), &Media::new(), &[]));
    assert!(again.starts_with("configured (sha256 "), "{again}");
}
