//! Shared by the console suites: the binaries, an answers file with its secrets, a node root.

#![allow(dead_code, clippy::unwrap_used)]

pub mod fake_console;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use nodeboot_tests::fixtures::{OS_PASSWORD, WEB_PASSWORD};

/// `nodeboot`, built by cargo for this test.
pub fn nodeboot() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nodeboot"))
}

/// One of the agent crate's binaries, from the same target directory; built once if cargo has
/// not built it yet (`cargo test -p nodeboot` alone does not).
fn agent_binary(name: &'static str, built: &'static OnceLock<PathBuf>) -> PathBuf {
    built
        .get_or_init(|| {
            let dir = nodeboot().parent().unwrap().to_path_buf();
            let path = dir.join(name);
            let status = nodeboot_tests::fixtures::cargo_build(
                &dir,
                &["-p", "nodeboot-agent", "--bin", name],
            )
            .status()
            .unwrap();
            assert!(status.success(), "building {name}: {status}");
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .clone()
}

/// `nodeboot-agent` (the daemon, and `status`).
pub fn agent() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    agent_binary("nodeboot-agent", &BUILT)
}

/// `nodeboot-wizard`, the console installation wizard.
pub fn wizard() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    agent_binary("nodeboot-wizard", &BUILT)
}

/// A Management Node answers file (hashes only) and a 0600 secrets file with the plain texts.
pub fn answers(dir: &Path) -> (PathBuf, PathBuf) {
    let os = nodeboot_config::hash_password(OS_PASSWORD).unwrap();
    let web = nodeboot_config::hash_password(WEB_PASSWORD).unwrap();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<node-config schema="1">
  <role>management</role>
  <name>mgr01</name>
  <hostname>mgr01</hostname>
  <domain>example.com</domain>
  <network>
    <ipv4 address="10.0.2.15" netmask="255.255.255.0" gateway="10.0.2.2"/>
    <dns-server>10.0.2.3</dns-server>
    <ntp-server>pool.ntp.org</ntp-server>
    <ntp-server>10.0.0.4</ntp-server>
  </network>
  <ssh enabled="global">
    <password-hash>{}</password-hash>
  </ssh>
  <web-admin username="webadmin" password-hash="{}"/>
  <incident-reporting>true</incident-reporting>
  <usage-statistics>false</usage-statistics>
</node-config>
"#,
        os.expose(),
        web.expose()
    );
    let answers = dir.join("mgr01.xml");
    std::fs::write(&answers, xml).unwrap();
    (answers, nodeboot_tests::fixtures::secrets_file(dir))
}

/// `nodeboot bootstrap --console CONSOLE` with [`answers`] and its secrets file written in
/// `dir`, and the transcript kept in `dir/transcript.log`.
pub fn bootstrap(dir: &Path, console: &str) -> Command {
    let (answers, secrets) = answers(dir);
    let mut cmd = Command::new(nodeboot());
    cmd.args(["bootstrap", "--console", console])
        .arg("--answers")
        .arg(&answers)
        .arg("--secrets-file")
        .arg(&secrets)
        .arg("--transcript")
        .arg(dir.join("transcript.log"));
    cmd
}

/// The answer lines the seed dialog receives for [`answers`].
pub fn expected_lines() -> Vec<String> {
    [
        "admin",
        OS_PASSWORD,
        OS_PASSWORD,
        OS_PASSWORD,
        "10.0.2.15",
        "255.255.255.0",
        "10.0.2.2",
        "mgr01",
        "example.com",
        "10.0.2.3",
        "pool.ntp.org 10.0.0.4",
        "webadmin",
        WEB_PASSWORD,
        WEB_PASSWORD,
        "y",
        "n",
        "y",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}
