//! Network namespaces and the small services a node's checks talk to (issue 13), for tests:
//! a namespace deleted on drop ([`Netns`]), threads and commands that run inside it, DNS, NTP
//! and TCP responders bound there ([`Netns::serve_checks`]), and [`Lab`], a node namespace
//! joined by a veth pair to a peer holding the gateway, a DNS and an NTP server (the wizard's
//! checks before the apply). The agent's and the provisioner's tests and the VM suite (whose
//! QEMU runs in such a namespace, its user network reaching these services through the
//! namespace's loopback) share them. Nothing here sends traffic outside the namespaces made.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use crate::fixtures::{OS_PASSWORD, WEB_PASSWORD};
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
    let mut cmd = Command::new("ip");
    cmd.args(args);
    succeed(cmd, "Debian iproute2")
}

/// Runs `cmd`: an error names it (`package` holds the program) and gives its stderr.
fn succeed(mut cmd: Command, package: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("running {cmd:?}: {e} ({package})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
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

    /// `sysctl -w SETTING` inside the namespace (`net.ipv4.conf.all.arp_ignore=1`).
    pub fn sysctl(&self, setting: &str) -> Result<(), String> {
        let mut cmd = self.command("sysctl");
        cmd.args(["-qw", setting]);
        succeed(cmd, "Debian procps")
    }

    /// A veth pair: `iface` here, `peer_iface` in `peer`'s namespace (both left down).
    pub fn veth(&self, iface: &str, peer: &Netns, peer_iface: &str) -> Result<(), String> {
        self.ip(&[
            "link",
            "add",
            iface,
            "type",
            "veth",
            "peer",
            "name",
            peer_iface,
            "netns",
            peer.name(),
        ])
    }

    /// Binds `addr` inside the namespace and hands the socket back.
    pub fn bind<S: Send + 'static>(
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
        let mut r = Responders::default();
        let asked = r.dns_queries.clone();
        r.udp(self, dns, move |q| {
            asked.fetch_add(1, Ordering::Relaxed);
            dns_reply(q, &zone)
        })?;
        let asked = r.ntp_requests.clone();
        r.udp(self, ntp, move |q| {
            asked.fetch_add(1, Ordering::Relaxed);
            ntp_reply(q)
        })?;
        r.tcp(self, tcp)?;
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
    /// Answers each datagram to `addr` (bound in `ns` before this returns) with what `answer`
    /// returns, on a thread of its own.
    pub fn udp(
        &mut self,
        ns: &Netns,
        addr: SocketAddr,
        answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Result<(), String> {
        let sock = ns.bind(addr, UdpSocket::bind)?;
        let stop = self.stop.clone();
        self.threads
            .push(std::thread::spawn(move || serve_udp(&sock, &stop, answer)));
        Ok(())
    }

    /// Accepts and closes each TCP connection to `addr` (bound in `ns` before this returns).
    pub fn tcp(&mut self, ns: &Netns, addr: SocketAddr) -> Result<(), String> {
        let listener = ns.bind(addr, TcpListener::bind)?;
        let (stop, asked) = (self.stop.clone(), self.tcp_connections.clone());
        self.threads.push(std::thread::spawn(move || {
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
        Ok(())
    }

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

/// How a DNS or NTP responder behaves: the answers a node's checks must tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers: DNS from the zone (NXDOMAIN for other names), NTP as a server.
    Answer,
    /// Sends bytes that are no reply, then a reply that does not match the request (DNS: the
    /// wrong id; NTP: not our origin timestamp), and (DNS) a reply cut short.
    Garbage,
    /// Reads and never answers.
    Silent,
    /// DNS answers REFUSED; NTP says nothing.
    Refuse,
}

/// What a DNS server behaving as `behaviour` sends back for `query` ([`dns_reply`] when it
/// answers).
pub fn dns_answer(query: &[u8], zone: &[(String, Ipv4Addr)], behaviour: Behaviour) -> Vec<Vec<u8>> {
    match behaviour {
        Behaviour::Answer => dns_reply(query, zone),
        Behaviour::Silent => vec![],
        Behaviour::Refuse => vec![dns_response(query, 5, None)],
        Behaviour::Garbage => {
            let mut wrong_id = dns_response(query, 0, Some(Ipv4Addr::new(6, 6, 6, 6)));
            if let Some(id) = wrong_id.first_mut() {
                *id ^= 0xff;
            }
            let cut = query.get(..5).unwrap_or(query).to_vec();
            vec![b"\xff\xfe garbage".to_vec(), wrong_id, cut]
        }
    }
}

/// What an NTP server behaving as `behaviour` sends back for `request` ([`ntp_reply`] when it
/// answers).
pub fn ntp_answer(request: &[u8], behaviour: Behaviour) -> Vec<Vec<u8>> {
    match behaviour {
        Behaviour::Answer => ntp_reply(request),
        Behaviour::Silent | Behaviour::Refuse => vec![],
        Behaviour::Garbage => {
            let mut replies = ntp_reply(request);
            if let Some(r) = replies.first_mut() {
                r[24] ^= 1; // not our origin timestamp: a spoofed answer
                replies.insert(0, b"no ntp".to_vec());
            }
            replies
        }
    }
}

/// The node's address in a [`Lab`] before its configuration (as a DHCP server would give it).
pub const NODE: &str = "10.78.0.31";
/// The [`Lab`]'s gateway: the peer's address, so it answers ARP.
pub const GATEWAY: &str = "10.78.0.1";
/// The [`Lab`]'s DNS server, answering [`NTP_NAME`] and [`NODE_NAME`] (and NXDOMAIN for every
/// other name).
pub const DNS: &str = "10.78.0.53";
/// The [`Lab`]'s NTP server, answering one client request.
pub const NTP: &str = "10.78.0.123";
/// A name of [`NTP`] in the lab's DNS.
pub const NTP_NAME: &str = "ntp.lab.test";
/// A name of [`NODE`] in the lab's DNS.
pub const NODE_NAME: &str = "conf01.lab.test";
/// The [`Lab`]'s management node: a TCP listener on port 443 that accepts and closes.
pub const MANAGEMENT: &str = "10.78.0.20";
/// An address in the [`Lab`]'s subnet nobody holds: no ARP answer, no DNS, no NTP.
pub const NOBODY: &str = "10.78.0.99";

/// Writes `dir/mgr01.xml`, the answers for a Management Node in the [`Lab`] (10.78.0.10, its
/// gateway and DNS server as given, [`NTP_NAME`] its NTP server; the hashes of
/// [`OS_PASSWORD`] and [`WEB_PASSWORD`]), and returns its path.
pub fn answers_file(dir: &Path, gateway: &str, dns: &str) -> PathBuf {
    let os = nodeboot_config::hash_password(OS_PASSWORD).unwrap();
    let web = nodeboot_config::hash_password(WEB_PASSWORD).unwrap();
    let xml = format!(
        r#"<node-config schema="1">
  <role>management</role><name>mgr01</name><hostname>mgr01</hostname><domain>lab.test</domain>
  <network>
    <ipv4 address="10.78.0.10" netmask="255.255.255.0" gateway="{gateway}"/>
    <dns-server>{dns}</dns-server>
    <ntp-server>{NTP_NAME}</ntp-server>
  </network>
  <ssh enabled="global"><password-hash>{}</password-hash></ssh>
  <web-admin username="admin" password-hash="{}"/>
  <incident-reporting>false</incident-reporting>
  <usage-statistics>false</usage-statistics>
</node-config>"#,
        os.expose(),
        web.expose()
    );
    let file = dir.join("mgr01.xml");
    std::fs::write(&file, xml).unwrap();
    file
}

/// Two namespaces joined by a veth pair: the node's (`eth0` with [`NODE`]/24 and a default
/// route via [`GATEWAY`]) and a peer's (`gw0`) holding the gateway (unless made with
/// [`Lab::without_gateway`]), the DNS and the NTP server and the management node. Run a binary
/// in the node's namespace with [`Lab::exec`], a thread with [`Lab::spawn`]. Removed on drop.
#[derive(Debug)]
pub struct Lab {
    /// The node's namespace name.
    pub node: String,
    _responders: Responders,
    node_ns: Netns,
    _peer_ns: Netns,
}

impl Lab {
    /// Makes the namespaces and starts the responders; returns once they are bound. `tag`
    /// keeps the names of parallel tests apart. Panics (fails the test) when it cannot.
    pub fn new(tag: &str) -> Lab {
        Lab::try_new(tag, true).unwrap_or_else(|e| panic!("making the lab {tag}: {e}"))
    }

    /// A [`Lab`] whose peer does not hold [`GATEWAY`]: nothing answers ARP for it.
    pub fn without_gateway(tag: &str) -> Lab {
        Lab::try_new(tag, false).unwrap_or_else(|e| panic!("making the lab {tag}: {e}"))
    }

    fn try_new(tag: &str, gateway: bool) -> Result<Lab, String> {
        let id = std::process::id();
        let node = Netns::new(&format!("nbw{id}-{tag}-n"))?;
        let peer = Netns::new(&format!("nbw{id}-{tag}-g"))?;
        node.veth("eth0", &peer, "gw0")?;
        node.ip(&["addr", "add", &format!("{NODE}/24"), "dev", "eth0"])?;
        node.ip(&["link", "set", "eth0", "up"])?;
        let held = [DNS, NTP, MANAGEMENT];
        for a in held.iter().chain(gateway.then_some(&GATEWAY)) {
            peer.ip(&["addr", "add", &format!("{a}/24"), "dev", "gw0"])?;
        }
        peer.ip(&["link", "set", "gw0", "up"])?;
        node.ip(&["route", "add", "default", "via", GATEWAY])?;
        let at =
            |a: &str| -> Result<Ipv4Addr, String> { a.parse().map_err(|e| format!("{a}: {e}")) };
        let responders = peer.serve_checks(
            SocketAddr::from((at(DNS)?, 53)),
            SocketAddr::from((at(NTP)?, 123)),
            SocketAddr::from((at(MANAGEMENT)?, 443)),
            vec![
                (NTP_NAME.to_owned(), at(NTP)?),
                (NODE_NAME.to_owned(), at(NODE)?),
            ],
        )?;
        Ok(Lab {
            node: node.name().to_owned(),
            _responders: responders,
            node_ns: node,
            _peer_ns: peer,
        })
    }

    /// Runs `f` on a new thread inside the node's namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        self.node_ns.spawn(f)
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

/// The configuration of the node in the checks-after-the-reboot lab (10.77.0.0/24: the agent's
/// `health` tests, `scripts/bench-health` and `scripts/bench-check`), with its IPv4 gateway
/// `gateway`: IPv4 and IPv6 with their gateways, a static route, a DNS server, an NTP server
/// by name and by address, a management node by name ([`health_zone`] answers the names).
pub fn health_config(gateway: &str) -> String {
    format!(
        r#"<node-config schema="1">
  <role>transcoding</role><name>conf01</name><hostname>conf01</hostname>
  <domain>example.test</domain><system-location>Lab</system-location>
  <network>
    <ipv4 address="10.77.0.31" netmask="255.255.255.0" gateway="{gateway}"/>
    <ipv6 address="2001:db8:77::31/64" gateway="2001:db8:77::1"/>
    <route name="lab" destination="192.168.50.0/24" gateway="10.77.0.254"/>
    <dns-server>10.77.0.53</dns-server>
    <ntp-server>ntp.example.test</ntp-server>
    <ntp-server>10.77.0.123</ntp-server>
  </network>
  <ssh enabled="global"><password-hash>$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/</password-hash></ssh>
  <management-node address="mgr.example.test"/>
</node-config>"#
    )
}

/// The DNS zone of [`health_config`]'s lab: the node, its NTP server and its management node.
pub fn health_zone() -> Vec<(String, Ipv4Addr)> {
    [
        ("conf01.example.test", [10, 77, 0, 31]),
        ("ntp.example.test", [10, 77, 0, 123]),
        ("mgr.example.test", [10, 77, 0, 10]),
    ]
    .into_iter()
    .map(|(name, a)| (name.to_owned(), Ipv4Addr::from(a)))
    .collect()
}
