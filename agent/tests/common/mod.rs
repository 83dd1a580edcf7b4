//! Shared helpers of the apply tests: a Debian-like image root, sample configurations built in
//! code, and a snapshot of a directory tree (content, mode, owner) for exact comparisons.
#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nodeboot_agent::apply::{NodeState, Step, apply_config_with, read_state};
use nodeboot_config::{
    AuthorizedKey, ConferencingSettings, DomainName, Hostname, Ipv4Interface, Ipv4Settings,
    Ipv6Interface, Ipv6Settings, ManagementSettings, Network, NodeConfig, PasswordHash,
    RoleSettings, Route, ServerName, Ssh, SshMode, TlsMaterial, Username, WebAdmin,
};

/// Runs the real `nodeboot-agent` with `args` and `--root root`.
pub fn agent(args: &[&str], root: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nodeboot-agent"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

/// Runs the real `nodeboot-acquire` with `args` and `--root root`.
pub fn acquire(args: &[&str], root: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nodeboot-acquire"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

/// A fixed "now" for reproducible renders: 2026-11-29 22:13:20 UTC.
pub const NOW: u64 = 1_796_000_000;

/// A power cut in the middle of an apply: `apply_config_with` stops (a quiet panic) right after
/// `step`, leaving the node's files as the cut would, and the node reads as `Applying`.
pub fn cut_power_after(root: &Path, doc: &nodeboot_config::Document, step: Step) {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        apply_config_with(root, doc, NOW, &mut |s| {
            if s == step {
                panic!("simulated power cut after {s:?}");
            }
        })
    }));
    std::panic::set_hook(quiet);
    assert!(crashed.is_err(), "the apply did not reach {step:?}");
    assert!(matches!(
        read_state(root).unwrap(),
        NodeState::Applying { .. }
    ));
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn fixtures() -> PathBuf {
    repo_dir().join("tests/fixtures/rendered")
}

/// Fills `root` with the generic image ([`nodeboot_tests::fixtures::populate_image`]), with
/// Debian's owners (these tests run as root).
pub fn populate_image(root: &Path) {
    nodeboot_tests::fixtures::populate_image(root).unwrap();
}

/// A fresh temporary root holding the generic image.
pub fn image_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    populate_image(dir.path());
    dir
}

/// One node in a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        content: Vec<u8>,
    },
    Link {
        target: PathBuf,
    },
}

/// Every path under `root` with its kind, mode, owner and content.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().to_owned();
        let m = fs::symlink_metadata(&path).unwrap();
        let (mode, uid, gid) = (m.mode() & 0o7777, m.uid(), m.gid());
        if m.file_type().is_symlink() {
            out.insert(
                rel,
                Node::Link {
                    target: fs::read_link(&path).unwrap(),
                },
            );
        } else if m.is_dir() {
            out.insert(rel, Node::Dir { mode, uid, gid });
            walk(root, &path, out);
        } else {
            out.insert(
                rel,
                Node::File {
                    mode,
                    uid,
                    gid,
                    content: fs::read(&path).unwrap(),
                },
            );
        }
    }
}

/// Paths that differ between two snapshots, for readable assertion messages.
pub fn tree_diff(a: &BTreeMap<PathBuf, Node>, b: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, n) in a {
        match b.get(p) {
            None => out.push(format!("only in first: {}", p.display())),
            Some(m) if m != n => out.push(format!("differs: {}", p.display())),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        out.push(format!("only in second: {}", p.display()));
    }
    out
}

pub const HASH_ADMIN: &str = "$6$nodebootsalt$H66tTD3wfUfey9CYrBVD63mJK4E.MpyTm5KWVSut/b9BVcmY2teUEoLgv/TkQlc3WXENGmBPBYELFp55.yJSS0";
pub const HASH_WEB: &str = "$6$websalt$6vIz3NAQZZrRJhdRSTzNIvlveR.W36nOahCNDW8L/zESzyywxFJ.Se8RB6etlWfgK/w2HhMH4M8gMqC.lYb8n1";
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbm4JT5AwoFEZOP11W+r4sWh54D/5ekgklCDJ9S+quU ops@example.com";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn iface(addr: &str, mask: &str) -> Ipv4Interface {
    Ipv4Interface::new(v4(addr), v4(mask)).unwrap()
}

fn network() -> Network {
    Network {
        ipv4: Ipv4Settings {
            interface: iface("10.0.0.31", "255.255.255.0"),
            gateway: v4("10.0.0.1"),
        },
        secondary_ipv4: None,
        ipv6: None,
        static_nat: None,
        routes: Vec::new(),
        dns_servers: vec![IpAddr::V4(v4("10.0.0.2")), "2001:db8::53".parse().unwrap()],
        ntp_servers: vec![
            ServerName::parse("10.0.0.3").unwrap(),
            ServerName::parse("ntp.example.com").unwrap(),
        ],
    }
}

fn ssh(mode: SshMode) -> Ssh {
    Ssh {
        mode,
        password_hash: PasswordHash::parse(HASH_ADMIN).unwrap(),
        authorized_keys: vec![AuthorizedKey::parse(SSH_KEY).unwrap()],
    }
}

/// A Transcoding Conferencing Node on one interface, IPv4 only, SSH following the platform.
pub fn transcoding() -> NodeConfig {
    NodeConfig {
        role: RoleSettings::Transcoding(ConferencingSettings {
            system_location: "London".into(),
            management_node: ServerName::parse("10.0.0.10").unwrap(),
            sip_tls_fqdn: None,
            tls: None,
            distributed_database: true,
        }),
        name: "conf01".into(),
        description: Some("London transcoding node".into()),
        hostname: Hostname::parse("conf01").unwrap(),
        domain: DomainName::parse("example.com").unwrap(),
        network: network(),
        ssh: ssh(SshMode::Global),
        health: nodeboot_config::HealthPolicy::default(),
    }
}

/// A Proxying Edge Node with eth1 (holding the default gateway), IPv6 with a gateway, static
/// NAT, routes on both interfaces, TLS, SSH off, no distributed database.
pub fn proxying_dual() -> NodeConfig {
    let fixtures = fixtures().join("inputs");
    let mut net = network();
    net.ipv4 = Ipv4Settings {
        interface: iface("10.0.0.41", "255.255.255.0"),
        gateway: v4("192.168.50.1"),
    };
    net.secondary_ipv4 = Some(iface("192.168.50.41", "255.255.255.0"));
    net.ipv6 = Some(Ipv6Settings {
        interface: Ipv6Interface::parse("2001:db8:0:1::41/64").unwrap(),
        gateway: Some("2001:db8:0:1::1".parse().unwrap()),
    });
    net.static_nat = Some(v4("203.0.113.41"));
    net.routes = vec![
        Route {
            name: "internal".into(),
            destination: "172.16.0.0/12".parse().unwrap(),
            gateway: v4("10.0.0.254"),
        },
        Route {
            name: "partner".into(),
            destination: "198.51.100.0/24".parse().unwrap(),
            gateway: v4("192.168.50.254"),
        },
    ];
    NodeConfig {
        role: RoleSettings::Proxying(ConferencingSettings {
            system_location: "Edge DMZ".into(),
            management_node: ServerName::parse("mgr.example.com").unwrap(),
            sip_tls_fqdn: Some(DomainName::parse("edge01.sip.example.com").unwrap()),
            tls: Some(TlsMaterial {
                certificate_chain_pem: fs::read_to_string(fixtures.join("node.crt")).unwrap(),
                private_key_pem: nodeboot_config::Secret::new(
                    fs::read_to_string(fixtures.join("node.key")).unwrap(),
                ),
            }),
            distributed_database: false,
        }),
        name: "edge01".into(),
        description: None,
        hostname: Hostname::parse("edge01").unwrap(),
        domain: DomainName::parse("example.com").unwrap(),
        network: net,
        ssh: ssh(SshMode::Off),
        health: nodeboot_config::HealthPolicy::default(),
    }
}

/// A Management Node, IPv6 by router advertisements, SSH on.
pub fn management() -> NodeConfig {
    let mut net = network();
    net.ipv4.interface = iface("10.0.0.10", "255.255.255.0");
    net.ipv6 = Some(Ipv6Settings {
        interface: Ipv6Interface::parse("2001:db8::10/64").unwrap(),
        gateway: None,
    });
    NodeConfig {
        role: RoleSettings::Management(ManagementSettings {
            web_admin: WebAdmin {
                username: Username::parse("admin").unwrap(),
                password_hash: PasswordHash::parse(HASH_WEB).unwrap(),
            },
            incident_reporting: true,
            usage_statistics: false,
            contact_email: Some(nodeboot_config::EmailAddress::parse("ops@example.com").unwrap()),
        }),
        name: "mgr".into(),
        description: None,
        hostname: Hostname::parse("mgr").unwrap(),
        domain: DomainName::parse("example.com").unwrap(),
        network: net,
        ssh: ssh(SshMode::On),
        health: nodeboot_config::HealthPolicy::default(),
    }
}

/// The validated document of a configuration built in code: its XML, through the rules as a
/// file would go (certificates checked at [`NOW`]). A document is the only thing apply takes.
pub fn doc_for(config: &NodeConfig) -> nodeboot_config::Document {
    let xml = nodeboot_config::to_xml(config);
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW);
    match nodeboot_config::parse_at(xml.as_bytes(), now) {
        Ok(doc) => doc,
        Err(e) => panic!("the sample configuration is invalid: {e:?}"),
    }
}

/// `nodeboot-agent serve` started from `command` (its arguments given, stderr not yet set):
/// the child, the address it listens on (`None` when it exited without listening within 30 s)
/// and everything it logged so far, kept up to date by a reader thread.
pub fn spawn_serve(
    mut command: std::process::Command,
) -> (
    std::process::Child,
    Option<std::net::SocketAddr>,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (log, rx) = nodeboot_tests::run::follow_log(child.stderr.take().unwrap());
    // Either it listens, or it exits (the sender is dropped when stderr closes).
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .ok()
        .map(|a| a.parse().unwrap());
    (child, addr, log)
}
