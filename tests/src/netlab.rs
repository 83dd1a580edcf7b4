//! Network namespaces and the small services a node's checks talk to (issue 13), for tests:
//! a namespace deleted on drop ([`Netns`]), threads and commands that run inside it, DNS, NTP
//! and TCP responders bound there ([`Netns::serve_checks`]), and [`Lab`], a node namespace
//! joined by a veth pair to a peer holding the gateway, a DNS and an NTP server (the wizard's
//! checks before the apply). The agent's and the provisioner's tests and the VM suite (whose
//! QEMU runs in such a namespace, its user network reaching these services through the
//! namespace's loopback) share them. Nothing here sends traffic outside the namespaces made.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use crate::require::{require, root, tool};

/// Whether namespaces can be made here (fails the test, or skips it as `require` says).
pub fn can_run() -> bool {
    require(root(), "root (it makes network namespaces)")
        && require(tool("ip"), "ip (Debian iproute2)")
}

/// A named network namespace with its loopback up, deleted (with its links) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e} (Debian iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Makes the namespace `name` (replacing a leftover of that name) with `lo` up.
    pub fn new(name: &str) -> Result<Netns, String> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`, `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `f` on a new thread that has entered the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering {path}: {e}"))?;
            f()
        })
    }

    /// Binds `addr` inside the namespace and hands the socket back.
    fn bind<S: Send + 'static>(
        &self,
        addr: SocketAddr,
        bind: fn(SocketAddr) -> std::io::Result<S>,
    ) -> Result<S, String> {
        self.spawn(move || bind(addr).map_err(|e| format!("binding {addr}: {e}")))
            .join()
            .map_err(|_| format!("the thread binding {addr} panicked"))?
    }

    /// Starts the services a node's checks reach: a DNS server on `dns` answering `zone`
    /// (A records; NXDOMAIN for other names, which is still an answer), an NTP server on `ntp`
    /// and a TCP listener on `tcp` that accepts and closes. They stop when the returned value
    /// is dropped.
    pub fn serve_checks(
        &self,
        dns: SocketAddr,
        ntp: SocketAddr,
        tcp: SocketAddr,
        zone: Vec<(String, Ipv4Addr)>,
    ) -> Result<Responders, String> {
        let dns_sock = self.bind(dns, UdpSocket::bind)?;
        let ntp_sock = self.bind(ntp, UdpSocket::bind)?;
        let listener = self.bind(tcp, TcpListener::bind)?;
        let mut r = Responders::default();
        let (stop, asked) = (r.stop.clone(), r.dns_queries.clone());
        r.threads.push(std::thread::spawn(move || {
            serve_udp(&dns_sock, &stop, |q| {
                asked.fetch_add(1, Ordering::Relaxed);
                dns_reply(q, &zone)
            })
        }));
        let (stop, asked) = (r.stop.clone(), r.ntp_requests.clone());
        r.threads.push(std::thread::spawn(move || {
            serve_udp(&ntp_sock, &stop, |q| {
                asked.fetch_add(1, Ordering::Relaxed);
                ntp_reply(q)
            })
        }));
        let (stop, asked) = (r.stop.clone(), r.tcp_connections.clone());
        r.threads.push(std::thread::spawn(move || {
            let _ = listener.set_nonblocking(true);
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        asked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
        Ok(r)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Running responders (see [`Netns::serve_checks`]) and what they were asked; stopped on drop.
#[derive(Debug, Default)]
pub struct Responders {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    dns_queries: Arc<AtomicU32>,
    ntp_requests: Arc<AtomicU32>,
    tcp_connections: Arc<AtomicU32>,
}

impl Responders {
    /// "DNS queries N, NTP requests N, TCP connections N" so far.
    pub fn summary(&self) -> String {
        format!(
            "DNS queries {}, NTP requests {}, TCP connections {}",
            self.dns_queries.load(Ordering::Relaxed),
            self.ntp_requests.load(Ordering::Relaxed),
            self.tcp_connections.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Answers each datagram on `sock` with what `answer` returns, until `stop`.
pub fn serve_udp(sock: &UdpSocket, stop: &AtomicBool, answer: impl Fn(&[u8]) -> Vec<Vec<u8>>) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            for reply in answer(&buf[..n]) {
                let _ = sock.send_to(&reply, from);
            }
        }
    }
}

/// The name a DNS query asks about, lowercased, without the final dot.
pub fn qname(query: &[u8]) -> String {
    let mut at = 12;
    let mut labels = Vec::new();
    while let Some(&len) = query.get(at) {
        if len == 0 {
            break;
        }
        let label = query
            .get(at + 1..at + 1 + usize::from(len))
            .unwrap_or_default();
        labels.push(String::from_utf8_lossy(label).to_lowercase());
        at += 1 + usize::from(len);
    }
    labels.join(".")
}

/// A reply to `query` with `rcode` and, when given, one A record for the question's name.
/// Empty for what is too short to be a query.
pub fn dns_response(query: &[u8], rcode: u8, a: Option<Ipv4Addr>) -> Vec<u8> {
    if query.len() < 12 {
        return Vec::new();
    }
    let mut r = query.to_vec();
    r[2] = 0x81;
    r[3] = 0x80 | (rcode & 0x0f);
    r[6..8].copy_from_slice(&[0, u8::from(a.is_some())]);
    if let Some(a) = a {
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&a.octets());
    }
    r
}

/// The answer from `zone`: the name's address, or NXDOMAIN.
pub fn dns_reply(query: &[u8], zone: &[(String, Ipv4Addr)]) -> Vec<Vec<u8>> {
    let name = qname(query);
    let a = zone.iter().find(|(n, _)| *n == name).map(|(_, a)| *a);
    let reply = dns_response(query, if a.is_some() { 0 } else { 3 }, a);
    if reply.is_empty() {
        vec![]
    } else {
        vec![reply]
    }
}

/// A server's answer to an NTP client request (stratum 2, our origin timestamp echoed).
pub fn ntp_reply(request: &[u8]) -> Vec<Vec<u8>> {
    if request.len() < 48 {
        return vec![];
    }
    let mut r = [0u8; 48];
    r[0] = 0x24;
    r[1] = 2;
    r[24..32].copy_from_slice(&request[40..48]);
    r[40..48].copy_from_slice(&[0xe9, 0, 0, 0, 1, 2, 3, 4]);
    vec![r.to_vec()]
}

/// The node's address in a [`Lab`] before its configuration (as a DHCP server would give it).
pub const NODE: &str = "10.78.0.31";
/// The [`Lab`]'s gateway: the peer's address, so it answers ARP.
pub const GATEWAY: &str = "10.78.0.1";
/// The [`Lab`]'s DNS server, answering [`NTP_NAME`] (and NXDOMAIN for every other name).
pub const DNS: &str = "10.78.0.53";
/// The [`Lab`]'s NTP server, answering one client request.
pub const NTP: &str = "10.78.0.123";
/// A name of [`NTP`] in the lab's DNS.
pub const NTP_NAME: &str = "ntp.lab.test";
/// An address in the [`Lab`]'s subnet nobody holds: no ARP answer, no DNS, no NTP.
pub const NOBODY: &str = "10.78.0.99";

/// Two namespaces joined by a veth pair: the node's (`eth0` with [`NODE`]/24 and a default
/// route via [`GATEWAY`]) and a peer's (`gw0`) holding the gateway, the DNS and the NTP
/// server. Run a binary in the node's namespace with [`Lab::exec`]. Removed on drop.
#[derive(Debug)]
pub struct Lab {
    /// The node's namespace name.
    pub node: String,
    _responders: Responders,
    _node_ns: Netns,
    _peer_ns: Netns,
}

impl Lab {
    /// Makes the namespaces and starts the responders; returns once they are bound. `tag`
    /// keeps the names of parallel tests apart. Panics (fails the test) when it cannot.
    pub fn new(tag: &str) -> Lab {
        Lab::try_new(tag).unwrap_or_else(|e| panic!("making the lab {tag}: {e}"))
    }

    fn try_new(tag: &str) -> Result<Lab, String> {
        let id = std::process::id();
        let node = Netns::new(&format!("nbw{id}-{tag}-n"))?;
        let peer = Netns::new(&format!("nbw{id}-{tag}-g"))?;
        node.ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "gw0",
            "netns",
            peer.name(),
        ])?;
        node.ip(&["addr", "add", &format!("{NODE}/24"), "dev", "eth0"])?;
        node.ip(&["link", "set", "eth0", "up"])?;
        for a in [GATEWAY, DNS, NTP] {
            peer.ip(&["addr", "add", &format!("{a}/24"), "dev", "gw0"])?;
        }
        peer.ip(&["link", "set", "gw0", "up"])?;
        node.ip(&["route", "add", "default", "via", GATEWAY])?;
        let at = |a: &str, port| -> Result<SocketAddr, String> {
            let ip: Ipv4Addr = a.parse().map_err(|e| format!("{a}: {e}"))?;
            Ok(SocketAddr::from((ip, port)))
        };
        let ntp: Ipv4Addr = NTP.parse().map_err(|e| format!("{NTP}: {e}"))?;
        let responders = peer.serve_checks(
            at(DNS, 53)?,
            at(NTP, 123)?,
            at(GATEWAY, 443)?,
            vec![(NTP_NAME.to_owned(), ntp)],
        )?;
        Ok(Lab {
            node: node.name().to_owned(),
            _responders: responders,
            _node_ns: node,
            _peer_ns: peer,
        })
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
