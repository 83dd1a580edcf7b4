//! `nodeboot validate` and `nodeboot generate` as a user runs them: the real binary, real
//! files in a temporary directory, real exit codes and output.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn nodeboot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodeboot"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading stdin (an early error): ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_accepts_every_valid_fixture() {
    let out = nodeboot()
        .arg("validate")
        .args(
            ["management", "transcoding", "proxying"]
                .map(|r| fixtures().join(format!("valid/{r}.xml"))),
        )
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.ends_with("3 files checked: 3 valid, 0 invalid (0 errors, 0 warnings)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("valid proxying configuration"));
}

#[test]
fn validate_reports_like_a_compiler_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("conf01.xml");
    std::fs::copy(fixtures().join("invalid/many-errors.xml"), &bad).unwrap();
    let good = fixtures().join("valid/transcoding.xml");
    let out = nodeboot()
        .current_dir(dir.path())
        .args(["validate", "conf01.xml"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let expected = "\
conf01.xml:10:55: error: the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24 or 192.168.10.0/24)
   |
10 |     <ipv4 address=\"10.0.0.31\" netmask=\"255.255.255.0\" gateway=\"10.9.0.1\"/>
   |                                                       ^
  = help: give a gateway inside the eth0 subnet (<ipv4>) or the eth1 subnet (<secondary-ipv4>)
  = at: /node-config/network/ipv4@gateway
";
    assert!(stdout.contains(expected), "{stdout}");
    assert!(
        stdout.contains("conf01.xml:6:13: error: hostname \"conf_01\" is not an RFC 1123 label")
    );
    assert!(stdout.contains("conf01.xml:15:17: error: DNS server \"ns1\" is not an IP address"));
    assert!(
        stdout.ends_with("2 files checked: 1 valid, 1 invalid (3 errors, 0 warnings)\n"),
        "{stdout}"
    );
}

#[test]
fn validate_never_quotes_a_secret() {
    // A plain-text password where the hash belongs: the error points at it, but the quoted
    // line shows stars in its place, column for column.
    let good = std::fs::read_to_string(fixtures().join("valid/transcoding.xml")).unwrap();
    let start = good.find("<password-hash>").unwrap() + "<password-hash>".len();
    let end = good.find("</password-hash>").unwrap();
    let bad = format!("{}correct-horse{}", &good[..start], &good[end..]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.xml");
    std::fs::write(&file, bad).unwrap();
    for json in [false, true] {
        let mut cmd = nodeboot();
        cmd.arg("validate").arg(&file);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(!all.contains("correct-horse"), "{all}");
        if !json {
            assert!(
                all.contains("<password-hash>*************</password-hash>"),
                "{all}"
            );
        }
    }
}

#[test]
fn validate_json_is_machine_readable() {
    let out = nodeboot()
        .args(["validate", "--json"])
        .arg(fixtures().join("invalid/gateway-outside.xml"))
        .arg(fixtures().join("valid/management.xml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], 1);
    assert_eq!(v["invalid"], 1);
    let e = &v["files"][0]["errors"][0];
    assert_eq!(e["severity"], "error");
    assert_eq!(e["path"], "/node-config/network/ipv4@gateway");
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(10), Some(55))
    );
    assert_eq!(v["files"][1]["role"], "management");
    assert_eq!(v["files"][1]["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn validate_strict_fails_on_warnings() {
    // A certificate that expires in 10 days: valid with a warning; invalid with --strict.
    let mut params = rcgen::CertificateParams::new(vec!["conf01.example.com".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(10);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let base = std::fs::read_to_string(fixtures().join("valid/transcoding.xml")).unwrap();
    let doc = base.replace(
        "  <ssh enabled=\"global\">",
        &format!(
            "  <sip-tls-fqdn>conf01.example.com</sip-tls-fqdn>\n  <tls>\n    <certificate>\n{}</certificate>\n    <private-key>\n{}</private-key>\n  </tls>\n  <ssh enabled=\"global\">",
            cert.pem(),
            key.serialize_pem()
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("soon.xml");
    std::fs::write(&f, doc).unwrap();

    let out = nodeboot().arg("validate").arg(&f).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(": warning: the certificate expires on "),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 valid, 0 invalid (0 errors, 1 warning)"),
        "{stdout}"
    );

    let out = nodeboot()
        .args(["validate", "--strict"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout)
            .contains("0 valid, 1 invalid (0 errors, 1 warning), warnings fail (--strict)")
    );
}

#[test]
fn validate_reads_metadata_json_and_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("user-data.json");
    std::fs::write(&j, br#"{"management_node_config": {"hostname": "mgr01"}}"#).unwrap();
    let out = nodeboot()
        .arg("validate")
        .arg(&j)
        .arg(dir.path().join("missing.xml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("user-data.json: error: field \"domain\" is missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  = at: management_node_config.domain"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missing.xml: error: cannot read the file: No such file or directory"),
        "{stdout}"
    );
}

const TRANSCODING_FLAGS: &[&str] = &[
    "generate",
    "--role",
    "transcoding",
    "--hostname",
    "conf01",
    "--domain",
    "example.com",
    "--system-location",
    "London",
    "--ip",
    "10.0.0.31",
    "--netmask",
    "255.255.255.0",
    "--gateway",
    "10.0.0.1",
    "--dns",
    "10.0.0.2,10.0.0.3",
    "--ntp",
    "pool.ntp.org",
    "--management-node",
    "10.0.0.10",
    "--route",
    "media:192.168.50.0/24:10.0.0.254",
    "--password-stdin",
];

#[test]
fn generate_writes_a_valid_file_named_after_the_fqdn() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("op.pub");
    std::fs::write(&key, "# comment\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJveDDZPaLWieLA4qD7Aak3Vrs39NCNlSx891qrtIGg operator@example.com\n").unwrap();
    let mut cmd = nodeboot();
    cmd.current_dir(dir.path())
        .args(TRANSCODING_FLAGS)
        .arg("--authorized-key-file")
        .arg(&key);
    let out = run_with_stdin(cmd, "s3cret pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.path().join("conf01.example.com.xml");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read(&file).unwrap();
    let parsed = nodeboot_config::parse(&bytes).unwrap();
    let c = &parsed.config;
    assert_eq!(c.fqdn(), "conf01.example.com");
    assert_eq!(c.network.dns_servers.len(), 2);
    assert_eq!(c.network.routes[0].name, "media");
    assert_eq!(c.ssh.authorized_keys.len(), 1);
    assert!(nodeboot_config::verify_password(
        "s3cret pass",
        &c.ssh.password_hash
    ));
    assert!(!text(&bytes).contains("s3cret"));

    // The generated file passes `nodeboot validate`.
    let out = nodeboot()
        .current_dir(dir.path())
        .args(["validate", "conf01.example.com.xml"])
        .output()
        .unwrap();
    assert!(out.status.success());

    // A second run refuses to overwrite; --force overwrites.
    let mut cmd = nodeboot();
    cmd.current_dir(dir.path()).args(TRANSCODING_FLAGS);
    let out = run_with_stdin(cmd, "other\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("conf01.example.com.xml exists; use --force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    let mut cmd = nodeboot();
    cmd.current_dir(dir.path())
        .args(TRANSCODING_FLAGS)
        .arg("--force");
    let out = run_with_stdin(cmd, "other\n");
    assert!(out.status.success());
    let c = nodeboot_config::parse(&std::fs::read(&file).unwrap())
        .unwrap()
        .config;
    assert!(nodeboot_config::verify_password(
        "other",
        &c.ssh.password_hash
    ));
}

#[test]
fn generate_names_the_flags_that_are_wrong_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = nodeboot();
    cmd.current_dir(dir.path())
        .args([
            "generate",
            "--role",
            "transcoding",
            "--hostname",
            "conf01",
            "--domain",
            "example.com",
        ])
        .args([
            "--ip",
            "10.0.0.31",
            "--netmask",
            "255.255.255.0",
            "--gateway",
            "10.9.0.1",
        ])
        .args([
            "--dns",
            "10.0.0.2",
            "--ntp",
            "pool.ntp.org",
            "--password-stdin",
        ]);
    let out = run_with_stdin(cmd, "pw\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nodeboot generate: --management-node: missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nodeboot generate: --system-location: missing"),
        "{stderr}"
    );

    let mut cmd = nodeboot();
    let flags: Vec<&str> = TRANSCODING_FLAGS
        .iter()
        .map(|f| if *f == "10.0.0.1" { "10.9.0.1" } else { f })
        .collect();
    cmd.current_dir(dir.path()).args(flags);
    let out = run_with_stdin(cmd, "pw\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nodeboot generate: --gateway: the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn generate_never_takes_a_password_from_a_flag() {
    let out = nodeboot()
        .args(["generate", "--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--password'"));
}

#[test]
fn generate_from_an_inventory_node() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        r#"
[defaults]
domain = "example.com"
netmask = "255.255.255.0"
gateway = "10.0.0.1"
dns = ["10.0.0.2"]
ntp = ["pool.ntp.org"]

[[node]]
name = "mgr01"
address = "10.0.0.10"
role = "management"
hostname = "mgr01"
ip = "10.0.0.10"
web_admin_user = "admin"
incident_reporting = false
usage_statistics = true
"#,
    )
    .unwrap();
    // `generate` of mgr01 into `output`, the passwords read from `stdin`
    let generate = |output: &str, stdin: &str| {
        let mut cmd = nodeboot();
        cmd.current_dir(dir.path()).args([
            "generate",
            "--from",
            "inventory.toml",
            "--node",
            "mgr01",
            "--password-stdin",
            "-o",
            output,
        ]);
        run_with_stdin(cmd, stdin)
    };
    let out = generate("out.xml", "os-pass\nweb-pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = nodeboot_config::parse(&std::fs::read(dir.path().join("out.xml")).unwrap())
        .unwrap()
        .config;
    let m = c.management().unwrap();
    assert!(m.usage_statistics && !m.incident_reporting);
    assert!(nodeboot_config::verify_password(
        "os-pass",
        &c.ssh.password_hash
    ));
    assert!(nodeboot_config::verify_password(
        "web-pass",
        &m.web_admin.password_hash
    ));

    // Only one password line for a management node: a clear error, nothing written.
    let out = generate("two.xml", "os-pass\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("stdin ended before the web admin password"));
    assert!(!Path::new(&dir.path().join("two.xml")).exists());

    let out = nodeboot()
        .current_dir(dir.path())
        .args(["generate", "--from", "inventory.toml", "--node", "nope"])
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("no node named \"nope\" (nodes: mgr01)"));
}

#[test]
fn help_fits_80_columns_and_has_examples() {
    for sub in ["validate", "generate"] {
        let out = nodeboot()
            .args([sub, "--help"])
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        let help = text(&out.stdout);
        assert!(help.contains("Examples:"), "{sub}");
        for line in help.lines() {
            assert!(line.chars().count() <= 80, "{sub}: {line:?}");
        }
    }
}

#[test]
fn generate_to_stdout_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = nodeboot();
    cmd.current_dir(dir.path())
        .args(TRANSCODING_FLAGS)
        .args(["-o", "-"]);
    let out = run_with_stdin(cmd, "pw\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed = nodeboot_config::parse(&out.stdout).unwrap();
    assert_eq!(parsed.config.fqdn(), "conf01.example.com");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
