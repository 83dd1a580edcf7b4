//! Shared by the console suites: the binaries, an answers file with its secrets, a node root.

#![allow(dead_code, clippy::unwrap_used)]

pub mod fake_console;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The OS password the tests type.
pub const OS_PASSWORD: &str = "Os-pass 1!";
/// The web administration password the tests type.
pub const WEB_PASSWORD: &str = "Web-pass 2?";

/// `nodeboot`, built by cargo for this test.
pub fn nodeboot() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nodeboot"))
}

/// `nodeboot-agent`, from the same target directory; built once if cargo has not built it
/// yet (`cargo test -p nodeboot` alone does not).
pub fn agent() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = nodeboot().parent().unwrap().to_path_buf();
            let path = dir.join("nodeboot-agent");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "nodeboot-agent",
                "--bin",
                "nodeboot-agent",
            ]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            // cargo's variables for this test would look like a changed environment to build
            // scripts and rebuild half the tree
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy().into_owned();
                if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                    cmd.env_remove(key);
                }
            }
            cmd.env("CARGO_TARGET_DIR", dir.parent().unwrap());
            let status = cmd.status().unwrap();
            assert!(status.success(), "building nodeboot-agent: {status}");
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .clone()
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
    let secrets = dir.join("mgr01.secrets");
    std::fs::write(
        &secrets,
        format!("os_password={OS_PASSWORD}\nweb_password={WEB_PASSWORD}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    (answers, secrets)
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

/// A node root as the image ships it: an `admin` account whose password the forced change
/// has just set to [`OS_PASSWORD`] (SHA-512-crypt, as the image's PAM is configured).
pub fn node_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let hash = nodeboot_config::hash_password(OS_PASSWORD).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:admin:/home/admin:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/shadow"),
        format!(
            "root:*:19700:0:99999:7:::\nadmin:{}:19701:0:99999:7:::\n",
            hash.expose()
        ),
    )
    .unwrap();
    std::fs::write(root.join("etc/hosts"), "127.0.0.1\tlocalhost\n").unwrap();
    std::fs::write(root.join("etc/hostname"), "pexipmcumgr\n").unwrap();
    root
}
