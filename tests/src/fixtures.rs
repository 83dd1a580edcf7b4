//! Fixtures shared by the test suites of several crates: a node root as the image ships it,
//! a valid node configuration, a `cargo build` that leaves the test's own environment out.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The OS password the tests type, and the one [`node_root`] gives `admin`.
pub const OS_PASSWORD: &str = "Os-pass 1!";
/// The web administration password the tests type.
pub const WEB_PASSWORD: &str = "Web-pass 2?";

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

/// Fills `root` with the generic node image the apply engine expects: the files of
/// `tests/fixtures/rendered/inputs/image` (mode 0644), `/etc/shadow` 0640, `admin`'s home
/// 0700 and the agent's state folder; then Debian's owners, root:shadow(42) for the shadow
/// file and 1000:1000 for the home, which only root may give: the error of that step is
/// returned, for the caller to insist on or pass over.
pub fn populate_image(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{PermissionsExt as _, chown};
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rendered/inputs/image");
    copy_tree(&image, root);
    let shadow = root.join("etc/shadow");
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
    let home = root.join("home/admin");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(root.join("var/lib/nodeboot")).unwrap();
    let shadow_owner = chown(&shadow, Some(0), Some(42));
    let home_owner = chown(&home, Some(1000), Some(1000));
    shadow_owner.and(home_owner)
}

/// Copies the files below `from` to `to`, each with mode 0644.
fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Writes `content` to `dir/name` and returns the path, as an argument for a command line.
pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// Writes `content` to `dir/name` with mode 0600 (as a token file must be) and returns the
/// path, as an argument for a command line.
pub fn write_private(dir: &Path, name: &str, content: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = write(dir, name, content);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A 0600 secrets file `dir/mgr01.secrets` holding [`OS_PASSWORD`] and [`WEB_PASSWORD`], as
/// `nodeboot bootstrap --secrets-file` reads it.
pub fn secrets_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let secrets = dir.join("mgr01.secrets");
    std::fs::write(
        &secrets,
        format!("os_password={OS_PASSWORD}\nweb_password={WEB_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    secrets
}

/// A valid schema-1 configuration for a transcoding node numbered `i`.
pub fn config_xml(i: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<node-config schema="1">
  <role>transcoding</role>
  <name>conf{i:03}</name>
  <hostname>conf{i:03}</hostname>
  <domain>example.com</domain>
  <system-location>London</system-location>
  <network>
    <ipv4 address="10.0.{}.{}" netmask="255.255.0.0" gateway="10.0.0.1"/>
    <dns-server>10.0.0.2</dns-server>
    <ntp-server>10.0.0.3</ntp-server>
  </network>
  <ssh enabled="global">
    <password-hash>$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/</password-hash>
  </ssh>
  <management-node address="10.0.0.10"/>
</node-config>
"#,
        1 + i / 200,
        10 + i % 200
    )
}

/// `cargo build ARGS` into the target directory whose profile folder (`target/debug`) is
/// `profile_dir`, in the same profile.
///
/// The variables cargo sets for the running test (CARGO_MANIFEST_DIR, CARGO_PKG_*) are left
/// out: they would look like a change to build scripts that watch them (ring's) and rebuild
/// half the tree. The build lock is free while tests run.
pub fn cargo_build(profile_dir: &Path, args: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"]).args(args);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    cmd
}

/// The checks of the first boot with `digest`, in `phase`, as `nodeboot-check` writes them:
/// eth0's addresses passed; the gateway passed only when healthy, and otherwise failed after
/// 6 attempts and 120 s with `failed` as its reason. The window opens at `started_unix` and
/// lasts 10 minutes. Shared by the fake agent of the provisioner's tests, the records the
/// end-to-end suites leave for a real agent, and the push state machine's unit tests.
pub fn health(
    digest: &str,
    phase: nodeboot_config::api::HealthPhase,
    started_unix: u64,
    failed: &str,
) -> nodeboot_config::api::HealthStatus {
    use nodeboot_config::api::{
        CheckKind, CheckResult, HealthPhase, HealthReport, HealthStatus, RollbackOn,
    };
    let ok = phase == HealthPhase::Healthy;
    HealthStatus {
        digest: digest.into(),
        phase,
        rollback_on: RollbackOn::Gateway,
        grace_secs: 120,
        started_unix,
        window_ends_unix: started_unix + 600,
        report: HealthReport::new(
            vec![
                CheckResult {
                    kind: CheckKind::Addresses,
                    subject: "eth0".into(),
                    passed: true,
                    attempts: 1,
                    elapsed_ms: 3,
                    tried: vec!["eth0: 10.0.0.31/24".into()],
                    reason: "eth0 has exactly 10.0.0.31/24".into(),
                },
                CheckResult {
                    kind: CheckKind::Gateway,
                    subject: "10.0.0.1 on eth0".into(),
                    passed: ok,
                    attempts: if ok { 1 } else { 6 },
                    elapsed_ms: if ok { 2 } else { 120_000 },
                    tried: vec!["ARP who-has 10.0.0.1".into()],
                    reason: if ok {
                        "gateway 10.0.0.1 answered ARP on eth0".into()
                    } else {
                        failed.into()
                    },
                },
            ],
            120_001,
        ),
    }
}

/// The record a rollback of `digest` at `at_unix` leaves: `reason`, and the [`health`] checks
/// that failed with it.
pub fn rolled_back(digest: &str, reason: &str, at_unix: u64) -> nodeboot_config::api::RolledBack {
    let checking = nodeboot_config::api::HealthPhase::RollingBack;
    nodeboot_config::api::RolledBack {
        digest: digest.into(),
        reason: reason.into(),
        at_unix,
        checks: health(digest, checking, at_unix, reason).report.checks,
    }
}
