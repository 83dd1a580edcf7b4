//! A small network for the wizard's pre-apply checks, in two network namespaces this process
//! makes: the node's (`eth0`, holding a "DHCP" address and a default route) and a peer's
//! (`gw0`) that holds the gateway, a DNS server and an NTP server, answered by threads here.
//! Run a binary in the node's namespace with [`Lab::exec`]. Needs root and `ip` (iproute2);
//! traffic never leaves the two namespaces. Everything is removed on drop.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use crate::require::{require, root, tool};

/// The node's address before its configuration (as a DHCP server would give it).
pub const NODE: &str = "10.78.0.31";
/// The gateway: the peer's address, so it answers ARP.
pub const GATEWAY: &str = "10.78.0.1";
/// A DNS server answering `ntp.lab.test` (and NXDOMAIN for every other name).
pub const DNS: &str = "10.78.0.53";
/// An NTP server answering one client request.
pub const NTP: &str = "10.78.0.123";
/// A name of [`NTP`] in the lab's DNS.
pub const NTP_NAME: &str = "ntp.lab.test";
/// An address in the subnet nobody holds: no ARP answer, no DNS, no NTP.
pub const NOBODY: &str = "10.78.0.99";

/// Whether a lab can be made here (fails the test, or skips it as `require` says).
pub fn can_run() -> bool {
    require(root(), "root (it makes network namespaces)")
        && require(tool("ip"), "ip (Debian iproute2)")
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two namespaces and the responders.
#[derive(Debug)]
pub struct Lab {
    /// The node's namespace name.
    pub node: String,
    peer: String,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

impl Lab {
    /// Makes the namespaces and starts the responders; returns once they are bound. `tag`
    /// keeps the names of parallel tests apart.
    pub fn new(tag: &str) -> Lab {
        let id = std::process::id();
        let node = format!("nbw{id}-{tag}-n");
        let peer = format!("nbw{id}-{tag}-g");
        for ns in [&node, &peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let mut lab = Lab {
            node,
            peer,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
        };
        let (n, p) = (lab.node.clone(), lab.peer.clone());
        ip(&[
            "-n", &n, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0", "netns", &p,
        ]);
        ip(&[
            "-n",
            &n,
            "addr",
            "add",
            &format!("{NODE}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &n, "link", "set", "eth0", "up"]);
        for a in [GATEWAY, DNS, NTP] {
            ip(&["-n", &p, "addr", "add", &format!("{a}/24"), "dev", "gw0"]);
        }
        ip(&["-n", &p, "link", "set", "gw0", "up"]);
        ip(&["-n", &n, "route", "add", "default", "via", GATEWAY]);
        let (tx, rx) = mpsc::channel();
        for (addr, port) in [(DNS, 53), (NTP, 123)] {
            let (stop, tx, path) = (lab.stop.clone(), tx.clone(), format!("/run/netns/{p}"));
            lab.servers.push(std::thread::spawn(move || {
                let ns = std::fs::File::open(&path).unwrap();
                setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                let sock = UdpSocket::bind((addr, port)).unwrap();
                sock.set_read_timeout(Some(Duration::from_millis(20)))
                    .unwrap();
                tx.send(()).unwrap();
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = sock.recv_from(&mut buf) {
                        let req = &buf[..len];
                        let reply = if port == 53 { dns(req) } else { ntp(req) };
                        if let Some(reply) = reply {
                            let _ = sock.send_to(&reply, from);
                        }
                    }
                }
            }));
        }
        for _ in 0..2 {
            rx.recv().unwrap();
        }
        lab
    }

    /// A command that runs `program` inside the node's namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.node, program]);
        c
    }

    /// The words of `ip netns exec NODE` (for a console transport's command line).
    pub fn exec_prefix(&self) -> String {
        format!("ip netns exec {}", self.node)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        for ns in [&self.node, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The labels of a query's question, lowercased.
fn qname(req: &[u8]) -> String {
    let mut at = 12;
    let mut labels = Vec::new();
    while let Some(&len) = req.get(at) {
        if len == 0 {
            break;
        }
        let label = req
            .get(at + 1..at + 1 + usize::from(len))
            .unwrap_or_default();
        labels.push(String::from_utf8_lossy(label).to_lowercase());
        at += 1 + usize::from(len);
    }
    labels.join(".")
}

/// The reply to a DNS query: the A record of [`NTP_NAME`], NXDOMAIN otherwise.
fn dns(req: &[u8]) -> Option<Vec<u8>> {
    if req.len() < 12 {
        return None;
    }
    let mut r = req.to_vec();
    r[2] = 0x81;
    if qname(req) == NTP_NAME {
        r[3] = 0x80;
        r[6..8].copy_from_slice(&[0, 1]);
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 78, 0, 123]);
    } else {
        r[3] = 0x83;
    }
    Some(r)
}

/// The reply to an NTP client request: a server reply echoing its transmit time.
fn ntp(req: &[u8]) -> Option<Vec<u8>> {
    let origin = req.get(40..48)?;
    let mut r = [0u8; 48];
    r[0] = 0x24;
    r[1] = 2;
    r[24..32].copy_from_slice(origin);
    r[40..48].copy_from_slice(&[0xe9, 0, 0, 0, 1, 2, 3, 4]);
    Some(r.to_vec())
}
