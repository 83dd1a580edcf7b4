//! The checks after the reboot, run for real: the node side in one network namespace with
//! its configured addresses and routes, a peer namespace as the gateway (answering ARP and
//! neighbour discovery because it has the address), DNS and NTP responders (ones that answer,
//! send garbage, refuse or say nothing; `nodeboot_tests::netlab`), a TCP listener as the
//! management node.
//! Needs root and `ip` (iproute2); traffic never leaves the namespaces made here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nodeboot_agent::health::{
    Check, DnsQuery, KernelRoute, Policy, Probe, SystemProbe, plan_checks, report, run_checks,
};
use nodeboot_config::ServerName;
use nodeboot_config::api::{CheckKind, CheckResult, HealthReport};
use nodeboot_tests::netlab::{
    Behaviour, Netns, Responders, can_run, dns_answer, health_config, health_zone, ntp_answer,
};
use nodeboot_tests::run::runtime;

/// A namespace without duplicate address detection: its addresses are usable at once.
fn netns(name: &str) -> Netns {
    let ns = Netns::new(name).unwrap();
    for key in ["all", "default"] {
        ns.sysctl(&format!("net.ipv6.conf.{key}.accept_dad=0"))
            .unwrap();
    }
    ns
}

/// The addresses the lab's peer holds.
const GATEWAY: &str = "10.77.0.1";
const DNS: &str = "10.77.0.53";
const DNS_GARBAGE: &str = "10.77.0.66";
const DNS_SILENT: &str = "10.77.0.67";
const DNS_REFUSE: &str = "10.77.0.68";
const NO_SERVER: &str = "10.77.0.69";
const NTP: &str = "10.77.0.123";
const MANAGEMENT: &str = "10.77.0.10";

/// Two namespaces joined by a veth pair: `eth0` on the node side, `gw0` on the peer side.
struct Lab {
    node: Netns,
    peer: Netns,
    _responders: Option<Responders>,
}

impl Lab {
    /// A lab whose node `eth0` is up (or not) with the configured addresses and routes.
    fn new(tag: &str, node_up: bool) -> Lab {
        let id = std::process::id();
        let node = netns(&format!("nbh{id}-{tag}-n"));
        let peer = netns(&format!("nbh{id}-{tag}-g"));
        node.veth("eth0", &peer, "gw0").unwrap();
        node.ip(&["addr", "add", "10.77.0.31/24", "dev", "eth0"])
            .unwrap();
        node.ip(&["addr", "add", "2001:db8:77::31/64", "dev", "eth0", "nodad"])
            .unwrap();
        for a in [
            GATEWAY,
            DNS,
            DNS_GARBAGE,
            DNS_SILENT,
            DNS_REFUSE,
            NO_SERVER,
            NTP,
            MANAGEMENT,
        ] {
            peer.ip(&["addr", "add", &format!("{a}/24"), "dev", "gw0"])
                .unwrap();
        }
        peer.ip(&["addr", "add", "2001:db8:77::1/64", "dev", "gw0", "nodad"])
            .unwrap();
        peer.ip(&["link", "set", "gw0", "up"]).unwrap();
        if node_up {
            node.ip(&["link", "set", "eth0", "up"]).unwrap();
            node.ip(&["route", "add", "default", "via", GATEWAY])
                .unwrap();
            node.ip(&["-6", "route", "add", "default", "via", "2001:db8:77::1"])
                .unwrap();
            node.ip(&["route", "add", "192.168.50.0/24", "via", "10.77.0.254"])
                .unwrap();
        }
        Lab {
            node,
            peer,
            _responders: None,
        }
    }

    /// Starts the responders: DNS (each behaviour at its address), NTP, the management node's
    /// TCP listener on 443. Returns once all are bound.
    fn serve(mut self) -> Lab {
        let at = |a: &str, port: u16| SocketAddr::from((a.parse::<Ipv4Addr>().unwrap(), port));
        let mut r = Responders::default();
        for (addr, behaviour) in [
            (DNS, Behaviour::Answer),
            (DNS_GARBAGE, Behaviour::Garbage),
            (DNS_SILENT, Behaviour::Silent),
            (DNS_REFUSE, Behaviour::Refuse),
        ] {
            let zone = health_zone();
            r.udp(&self.peer, at(addr, 53), move |q| {
                dns_answer(q, &zone, behaviour)
            })
            .unwrap();
        }
        for (addr, behaviour) in [
            (NTP, Behaviour::Answer),
            (DNS_GARBAGE, Behaviour::Garbage),
            (DNS_SILENT, Behaviour::Silent),
        ] {
            r.udp(&self.peer, at(addr, 123), move |q| ntp_answer(q, behaviour))
                .unwrap();
        }
        r.tcp(&self.peer, at(MANAGEMENT, 443)).unwrap();
        self._responders = Some(r);
        self
    }

    /// Runs `checks` with `policy` on a current-thread runtime inside the node namespace.
    fn run<P: Probe + Send + 'static>(
        &self,
        checks: Vec<Check>,
        probe: P,
        policy: Policy,
    ) -> Vec<CheckResult> {
        self.node
            .spawn(move || Ok(runtime().block_on(run_checks(&checks, &probe, &policy))))
            .join()
            .unwrap()
            .unwrap()
    }
}

fn quick() -> Policy {
    Policy {
        deadline: Duration::from_secs(1),
        attempt: Duration::from_millis(300),
        pause: Duration::from_millis(100),
    }
}

fn reasons(results: &[CheckResult]) -> Vec<(bool, String)> {
    results
        .iter()
        .map(|r| (r.passed, r.reason.clone()))
        .collect()
}

#[test]
fn a_healthy_node_passes_every_planned_check() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("ok", true).serve();
    let doc = nodeboot_config::parse(health_config(GATEWAY).as_bytes()).unwrap();
    let checks = plan_checks(doc.config());
    let report: HealthReport = lab
        .node
        .spawn(move || {
            Ok(runtime().block_on(report(&checks, &SystemProbe::default(), &Policy::default())))
        })
        .join()
        .unwrap()
        .unwrap();
    let mut got = reasons(&report.checks);
    // The gateways' hardware addresses are the veth's, made at random.
    for (_, r) in &mut got {
        if let Some(at) = r.find(" from ") {
            r.truncate(at);
        }
    }
    let want: Vec<(bool, String)> = [
        "eth0 has 10.77.0.31/24, 2001:db8:77::31/64",
        "gateway 10.77.0.1 answered ARP on eth0",
        "gateway 2001:db8:77::1 answered neighbour discovery on eth0",
        "route 0.0.0.0/0 via 10.77.0.1 is in the kernel's table (eth0)",
        "route ::/0 via 2001:db8:77::1 is in the kernel's table (eth0)",
        "route 192.168.50.0/24 via 10.77.0.254 is in the kernel's table (eth0)",
        "DNS server 10.77.0.53 answered conf01.example.test A: 10.77.0.31",
        "NTP server ntp.example.test (10.77.0.123) answered (stratum 2)",
        "NTP server 10.77.0.123 answered (stratum 2)",
        "management node mgr.example.test accepted a TCP connection on port 443",
    ]
    .iter()
    .map(|r| (true, r.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(report.healthy);
    assert!(report.checks.iter().all(|c| c.attempts == 1), "{report:?}");
    let ntp = &report.checks[7];
    assert_eq!(ntp.kind, CheckKind::Ntp);
    assert_eq!(
        ntp.tried,
        [
            "ntp.example.test is 10.77.0.123 (by 10.77.0.53)",
            "NTP client request to 10.77.0.123"
        ]
    );
    // What goes into the status document reads back the same.
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<HealthReport>(&json).unwrap(), report);
}

#[test]
fn a_gateway_that_is_not_there_fails_with_its_reason() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("nogw", true);
    // eth1 leads to a peer link without addresses: the gateway is behind eth0 only, and
    // eth0's check runs at the same time, so eth1's must not take eth0's reply for its own.
    // (arp_ignore=1: the peer answers only on the link that holds the address, not, as Linux
    // does by default, for any of its addresses on any link.)
    lab.peer.sysctl("net.ipv4.conf.all.arp_ignore=1").unwrap();
    lab.node.veth("eth1", &lab.peer, "gw1").unwrap();
    lab.peer.ip(&["link", "set", "gw1", "up"]).unwrap();
    lab.node.ip(&["link", "set", "eth1", "up"]).unwrap();
    let gateway = |iface: &str, addr: &str| Check::Gateway {
        iface: iface.into(),
        addr: addr.parse().unwrap(),
    };
    let checks = vec![
        gateway("eth0", "10.77.0.2"),
        gateway("eth0", "2001:db8:77::2"),
        gateway("eth2", GATEWAY),
        gateway("eth0", GATEWAY),
        gateway("eth1", GATEWAY),
    ];
    let results = lab.run(checks, SystemProbe::default(), quick());
    let mut got = reasons(&results);
    if let Some(at) = got[3].1.find(" from ") {
        got[3].1.truncate(at);
    }
    assert_eq!(
        got,
        [
            (
                false,
                "gateway 10.77.0.2 did not answer ARP on eth0 within 1 s".into()
            ),
            (
                false,
                "gateway 2001:db8:77::2 did not answer neighbour discovery on eth0 within 1 s"
                    .into()
            ),
            (
                false,
                "gateway 10.77.0.1 did not answer ARP on eth2 within 1 s (no such interface)"
                    .into()
            ),
            (true, "gateway 10.77.0.1 answered ARP on eth0".into()),
            (
                false,
                "gateway 10.77.0.1 did not answer ARP on eth1 within 1 s".into()
            ),
        ]
    );
    let results = &results[..3];
    assert!(results.iter().all(|r| r.attempts >= 2), "{results:?}");
    assert_eq!(results[0].tried, ["ARP who-has 10.77.0.2 on eth0"]);
}

#[test]
fn dns_and_ntp_servers_that_refuse_send_garbage_or_say_nothing_fail() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("dns", true).serve();
    let soa = |server: &str| Check::Dns {
        server: server.parse().unwrap(),
        query: DnsQuery::RootSoa,
    };
    let ntp = |server: &str| Check::Ntp {
        server: ServerName::parse(server).unwrap(),
        resolvers: vec![DNS.parse().unwrap()],
    };
    let checks = vec![
        soa(DNS),
        soa(DNS_GARBAGE),
        soa(DNS_SILENT),
        soa(DNS_REFUSE),
        soa(NO_SERVER),
        ntp(DNS_GARBAGE),
        ntp(DNS_SILENT),
        ntp("nothere.example.test"),
    ];
    let results = lab.run(checks, SystemProbe::default(), quick());
    assert_eq!(
        reasons(&results),
        [
            (true, "DNS server 10.77.0.53 answered . SOA: no such name (NXDOMAIN)".into()),
            (false, "DNS server 10.77.0.66 did not answer . SOA within 1 s (3 invalid replies ignored, the last: truncated reply (5 bytes))".into()),
            (false, "DNS server 10.77.0.67 did not answer . SOA within 1 s".into()),
            (false, "DNS server 10.77.0.68 answered . SOA with REFUSED".into()),
            (false, "DNS server 10.77.0.69 did not answer . SOA within 1 s (connection refused)".into()),
            (false, "NTP server 10.77.0.66 did not answer within 1 s (invalid replies ignored, the last: reply does not match the request (origin timestamp))".into()),
            (false, "NTP server 10.77.0.67 did not answer within 1 s".into()),
            (false, "NTP server nothere.example.test did not resolve (10.77.0.53: NXDOMAIN)".into()),
        ]
    );
}

#[test]
fn a_closed_management_port_a_missing_route_and_a_stray_address_fail() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("mgmt", true);
    lab.node
        .ip(&["addr", "add", "10.77.0.99/24", "dev", "eth0"])
        .unwrap();
    let checks = vec![
        Check::Management {
            addr: ServerName::Address(MANAGEMENT.parse().unwrap()),
            port: 443,
            resolvers: vec![],
        },
        Check::Route {
            dest: "192.168.50.0/24".parse().unwrap(),
            via: "10.77.0.254".parse().unwrap(),
        },
        Check::Route {
            dest: "192.168.51.0/24".parse().unwrap(),
            via: "10.77.0.254".parse().unwrap(),
        },
        Check::Route {
            dest: "192.168.50.0/24".parse().unwrap(),
            via: "10.77.0.253".parse().unwrap(),
        },
        Check::Addresses {
            iface: "eth0".into(),
            expected: vec![
                "10.77.0.31/24".parse().unwrap(),
                "2001:db8:77::31/64".parse().unwrap(),
            ],
            slaac: false,
        },
        Check::Addresses {
            iface: "eth0".into(),
            expected: vec!["10.77.0.32/24".parse().unwrap()],
            slaac: false,
        },
        Check::Addresses {
            iface: "eth1".into(),
            expected: vec!["10.77.1.31/24".parse().unwrap()],
            slaac: false,
        },
    ];
    let results = lab.run(checks, SystemProbe::default(), quick());
    assert_eq!(
        reasons(&results),
        [
            (false, "management node 10.77.0.10 did not accept a TCP connection on port 443 within 1 s (connection refused)".into()),
            (true, "route 192.168.50.0/24 via 10.77.0.254 is in the kernel's table (eth0)".into()),
            (false, "route 192.168.51.0/24 via 10.77.0.254 is not in the kernel's table".into()),
            (false, "route 192.168.50.0/24 via 10.77.0.253 is not in the kernel's table (it goes via 10.77.0.254 on eth0)".into()),
            (false, "eth0 has 10.77.0.99/24 besides the configured 10.77.0.31/24, 2001:db8:77::31/64".into()),
            (false, "eth0 lacks 10.77.0.32/24 (it has 10.77.0.31/24, 10.77.0.99/24, 2001:db8:77::31/64)".into()),
            (false, "eth1 does not exist".into()),
        ]
    );
}

/// The system probe, telling the test when an ARP attempt has failed.
struct Watched {
    inner: SystemProbe,
    failures: Arc<AtomicU32>,
    first_failure: mpsc::Sender<()>,
}

impl Probe for Watched {
    fn addresses(&self, iface: &str) -> std::io::Result<Option<Vec<ipnet::IpNet>>> {
        self.inner.addresses(iface)
    }
    fn routes(&self) -> std::io::Result<Vec<KernelRoute>> {
        self.inner.routes()
    }
    async fn arp(
        &self,
        iface: &str,
        target: Ipv4Addr,
        wait: Duration,
    ) -> std::io::Result<Option<[u8; 6]>> {
        let found = self.inner.arp(iface, target, wait).await;
        if !matches!(found, Ok(Some(_))) && self.failures.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = self.first_failure.send(());
        }
        found
    }
    async fn neighbour(
        &self,
        iface: &str,
        target: std::net::Ipv6Addr,
        wait: Duration,
    ) -> std::io::Result<Option<Option<[u8; 6]>>> {
        self.inner.neighbour(iface, target, wait).await
    }
    async fn udp_exchange(
        &self,
        server: SocketAddr,
        request: &[u8],
        wait: Duration,
        accept: &mut dyn FnMut(&[u8]) -> bool,
    ) -> std::io::Result<bool> {
        self.inner.udp_exchange(server, request, wait, accept).await
    }
    async fn tcp_connect(&self, addr: SocketAddr, wait: Duration) -> std::io::Result<bool> {
        self.inner.tcp_connect(addr, wait).await
    }
}

#[test]
fn the_gateway_check_retries_while_the_link_comes_up() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("late", false);
    let (tx, rx) = mpsc::channel();
    let failures = Arc::new(AtomicU32::new(0));
    let probe = Watched {
        inner: SystemProbe::default(),
        failures: failures.clone(),
        first_failure: tx,
    };
    let checks = vec![Check::Gateway {
        iface: "eth0".into(),
        addr: IpAddr::V4(GATEWAY.parse().unwrap()),
    }];
    let policy = Policy {
        deadline: Duration::from_secs(30),
        ..quick()
    };
    let run = lab
        .node
        .spawn(move || Ok(runtime().block_on(run_checks(&checks, &probe, &policy))));
    // The link comes up only after the check has tried and failed at least once.
    rx.recv_timeout(Duration::from_secs(30))
        .expect("a first attempt on the down link");
    lab.node.ip(&["link", "set", "eth0", "up"]).unwrap();
    let results = run.join().unwrap().unwrap();
    let r = &results[0];
    assert!(r.passed, "{r:?}");
    assert!(
        r.reason
            .starts_with("gateway 10.77.0.1 answered ARP on eth0 from "),
        "{r:?}"
    );
    assert!(r.attempts >= 2, "{r:?}");
    assert!(failures.load(Ordering::SeqCst) >= 1);
}
