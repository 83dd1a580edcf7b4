//! The rendered files (the reviewed snapshots under tests/fixtures/rendered/<case>/, which
//! `rendered_snapshots` keeps equal to the renderer's output) fed to the real Debian programs:
//! - systemd-networkd itself, run in a private network and mount namespace with veth pairs
//!   named eth0/eth1: it must configure exactly our addresses and routes and log no complaint
//!   about our files (systemd has no offline checker for `.network` files);
//! - `sshd -t` / `sshd -T` on the image's sshd_config including our drop-in;
//! - `chronyd -p -f` on our chrony.conf;
//! - Debian's ssh.service must really honour the SSH-off marker we write.
//!
//! Each test prints a notice and returns when its program is not installed (scripts/setup
//! installs them: see scripts/apt-packages) or, for the namespace test, when not root.
#![allow(clippy::unwrap_used)] // a test helper failing is a test failure

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nodeboot_tests::require::{require, root, tool};

const CASES: &[&str] = &["transcoding", "proxying", "management", "edge-tls"];

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs systemd-networkd on the case's units in fresh namespaces; returns (ip output, log).
fn networkd(case_dir: &Path, wait_for: &str) -> (String, String) {
    let script = r#"
set -e
mount -t tmpfs tmpfs /etc/systemd/network
cp "$CASE"/etc/systemd/network/*.network /etc/systemd/network/
mount -t tmpfs tmpfs /run/systemd
# a read-only sysfs of this namespace: networkd then does not wait for udev
mount -t sysfs -o ro sysfs /sys
ip link set lo up
ip link add eth0 type veth peer name peer0
ip link add eth1 type veth peer name peer1
ip link set peer0 up
ip link set peer1 up
SYSTEMD_LOG_LEVEL=info /lib/systemd/systemd-networkd 2>"$LOG" &
pid=$!
# poll (at most 10 s) until the last route we expect is in place
i=0
while ! { ip -4 route; ip -6 route; } | grep -qF -- "$WAIT_FOR"; do
  i=$((i+1)); [ $i -lt 200 ] || break
  sleep 0.05
done
echo "== addresses"; ip -br addr
echo "== routes"; ip -4 route
echo "== routes6"; ip -6 route
kill $pid
"#;
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", script])
        .env("CASE", case_dir)
        .env("LOG", log.path())
        .env("WAIT_FOR", wait_for)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "namespace script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(log.path()).unwrap(),
    )
}

#[test]
fn systemd_networkd_configures_exactly_our_addresses_and_routes() {
    if !require(
        tool("/lib/systemd/systemd-networkd") && root(),
        "root and /lib/systemd/systemd-networkd (Debian systemd)",
    ) {
        return;
    }
    // (case, what must appear in `ip` output; the last one is waited for)
    let expectations: &[(&str, &[&str])] = &[
        (
            "transcoding",
            &[
                "eth0@peer0       UP             10.0.0.31/24 2001:db8::31/64",
                "eth1@peer1       UP             192.168.10.31/24",
                "192.168.50.0/24 via 192.168.10.1 dev eth1 proto static",
                "172.16.0.0/12 via 10.0.0.254 dev eth0 proto static",
                "default via 2001:db8::1 dev eth0 proto static",
                "default via 10.0.0.1 dev eth0 proto static",
            ],
        ),
        (
            "proxying",
            &[
                "eth0@peer0       UP             172.20.0.21/24",
                "default via 172.20.0.1 dev eth0 proto static",
            ],
        ),
        (
            "management",
            &[
                "eth0@peer0       UP             10.0.0.10/24",
                "default via 10.0.0.1 dev eth0 proto static",
            ],
        ),
        (
            "edge-tls",
            &[
                "eth0@peer0       UP             10.0.0.42/24 2001:db8:0:1::42/64",
                "eth1@peer1       UP             192.168.50.42/24",
                "172.16.0.0/12 via 10.0.0.254 dev eth0 proto static",
                "198.51.100.0/24 via 192.168.50.254 dev eth1 proto static",
                "default via 192.168.50.1 dev eth1 proto static",
            ],
        ),
    ];
    for (case, wanted) in expectations {
        let dir = fixtures().join(case);
        let (ip, log) = networkd(&dir, wanted.last().unwrap());
        for w in *wanted {
            assert!(
                ip.contains(w),
                "{case}: missing {w:?} in:\n{ip}\nnetworkd log:\n{log}"
            );
        }
        for line in log.lines() {
            let complaint = line.contains("nodeboot")
                && (line.contains("Unknown")
                    || line.contains("ignoring")
                    || line.contains("Ignoring")
                    || line.contains("Failed")
                    || line.contains("Invalid"));
            assert!(!complaint, "{case}: networkd complains: {line}");
        }
        assert!(
            log.contains("eth0: Configuring with /etc/systemd/network/10-nodeboot-eth0.network"),
            "{case}: {log}"
        );
        if !case.starts_with("transcoding") && !case.starts_with("edge") {
            assert!(
                !ip.contains("eth1@peer1       UP             1"),
                "{case}: {ip}"
            );
        }
    }
}

#[test]
fn sshd_accepts_the_image_config_with_our_dropin() {
    if !require(
        tool("/usr/sbin/sshd") && root(),
        "root and /usr/sbin/sshd (Debian openssh-server)",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("host_key");
    let (ok, out) = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    assert!(ok, "{out}");
    for case in CASES {
        let dropins = fixtures().join(case).join("etc/ssh/sshd_config.d");
        let main = std::fs::read_to_string(fixtures().join("inputs/image/etc/ssh/sshd_config"))
            .unwrap()
            .replace(
                "Include /etc/ssh/sshd_config.d/*.conf",
                &format!("Include {}/*.conf", dropins.display()),
            );
        let config = tmp.path().join("sshd_config");
        std::fs::write(&config, main).unwrap();
        // sshd wants its privilege separation directory; give it one in a private /run
        let script = "mount -t tmpfs tmpfs /run && mkdir /run/sshd && \
             /usr/sbin/sshd -t -f \"$CONF\" -h \"$KEY\" && \
             /usr/sbin/sshd -T -f \"$CONF\" -h \"$KEY\" -C user=admin,host=client,addr=192.0.2.1";
        let (ok, out) = run(Command::new("unshare")
            .args(["-m", "sh", "-c", script])
            .env("CONF", &config)
            .env("KEY", &key));
        assert!(ok, "{case}: sshd rejects the configuration:\n{out}");
        for line in [
            "permitrootlogin no",
            "passwordauthentication yes",
            "pubkeyauthentication yes",
            "authorizedkeysfile .ssh/authorized_keys",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{case}: no {line:?} in sshd -T"
            );
        }
    }
}

#[test]
fn debian_ssh_service_honours_the_ssh_off_marker() {
    let unit = Path::new("/lib/systemd/system/ssh.service");
    if !require(
        unit.exists(),
        "/lib/systemd/system/ssh.service (Debian openssh-server)",
    ) {
        return;
    }
    let text = std::fs::read_to_string(unit).unwrap();
    assert!(
        text.contains("ConditionPathExists=!/etc/ssh/sshd_not_to_be_run"),
        "{text}"
    );
    // and we write exactly that file when SSH is off, only then
    assert!(
        fixtures()
            .join("edge-tls/etc/ssh/sshd_not_to_be_run")
            .exists()
    );
    assert!(
        fixtures()
            .join("proxying/etc/ssh/sshd_not_to_be_run")
            .exists()
    );
    assert!(
        !fixtures()
            .join("transcoding/etc/ssh/sshd_not_to_be_run")
            .exists()
    );
    assert!(
        !fixtures()
            .join("management/etc/ssh/sshd_not_to_be_run")
            .exists()
    );
}

#[test]
fn chronyd_parses_our_configuration() {
    if !require(
        tool("/usr/sbin/chronyd"),
        "/usr/sbin/chronyd (Debian chrony)",
    ) {
        return;
    }
    for case in CASES {
        let conf = fixtures().join(case).join("etc/chrony/chrony.conf");
        let (ok, out) = run(Command::new("/usr/sbin/chronyd")
            .arg("-p")
            .arg("-f")
            .arg(&conf));
        assert!(ok, "{case}: chronyd rejects {}:\n{out}", conf.display());
        assert!(out.contains(" iburst"), "{case}: {out}");
        assert!(!out.contains("pool "), "{case}: no default pool: {out}");
    }
    // and the check does reject a bad file
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), "server 10.0.0.1 iburst\nbogus-directive 1\n").unwrap();
    let (ok, out) = run(Command::new("/usr/sbin/chronyd")
        .arg("-p")
        .arg("-f")
        .arg(tmp.path()));
    assert!(!ok && out.contains("Invalid directive"), "{out}");
}
