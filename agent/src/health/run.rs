//! Carries out the planned checks through a [`Probe`]: all at once, each retried until it
//! passes or its deadline is over, each giving a [`CheckResult`] with a one-line reason.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use ipnet::IpNet;
use nodeboot_config::ServerName;
use nodeboot_config::api::{CheckResult, HealthReport};
use tokio::time::{Instant, sleep, timeout};

use super::plan::{Check, DnsQuery};
use super::probe::Probe;
use super::wire::{self, ReplyError};

/// How long each check may take and how it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a check keeps trying before it fails (links may take seconds to come up).
    pub deadline: Duration,
    /// How long one attempt waits for an answer.
    pub attempt: Duration,
    /// The pause between a failed attempt and the next.
    pub pause: Duration,
}

impl Default for Policy {
    /// 20 s per check, 2 s per attempt, 0.5 s between attempts.
    fn default() -> Self {
        Policy {
            deadline: Duration::from_secs(20),
            attempt: Duration::from_secs(2),
            pause: Duration::from_millis(500),
        }
    }
}

/// The most entries a result's `tried` list keeps.
const MAX_TRIED: usize = 16;
/// The most addresses a name's resolution tries.
const MAX_RESOLVED: usize = 4;

/// What one attempt found.
#[derive(Debug)]
enum Outcome {
    /// Passed, with the reason.
    Pass(String),
    /// Nothing (valid) came back in time: "… did not answer …", with why when known.
    NoAnswer(String, Option<String>),
    /// A definite wrong state or answer.
    Fail(String),
}

/// Runs every check at once; the results come back in the order of `checks`. The total time
/// is the slowest check's, not the sum.
pub async fn run_checks<P: Probe>(
    checks: &[Check],
    probe: &P,
    policy: &Policy,
) -> Vec<CheckResult> {
    join_all(checks.iter().map(|c| run_check(c, probe, policy)).collect()).await
}

/// [`run_checks`] timed and summed up as the status document carries it.
pub async fn report<P: Probe>(checks: &[Check], probe: &P, policy: &Policy) -> HealthReport {
    let start = Instant::now();
    let results = run_checks(checks, probe, policy).await;
    HealthReport::new(results, millis(start.elapsed()))
}

/// Polls every future until all are done (a `join_all` without the futures crate).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (f, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => all = false,
                }
            }
        }
        if all { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    done.into_iter().flatten().collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `20 s`, `1.5 s`, `300 ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn mac_text(mac: [u8; 6]) -> String {
    nodeboot_config::hex(&mac, ":")
}

/// What the system said, in a few words.
fn os_reason(e: &io::Error) -> String {
    use nix::libc;
    match e.raw_os_error() {
        Some(libc::ENETDOWN) => "the link is down".into(),
        Some(libc::ENETUNREACH) => "no route to the network".into(),
        Some(libc::EHOSTUNREACH) => "host unreachable".into(),
        Some(libc::ECONNREFUSED) => "connection refused".into(),
        Some(libc::ENODEV) | Some(libc::ENXIO) => "no such interface".into(),
        Some(libc::EADDRNOTAVAIL) => "address not available".into(),
        Some(libc::EPERM) | Some(libc::EACCES) => "not permitted (needs CAP_NET_RAW)".into(),
        _ => nodeboot_config::text::printable_line(&e.to_string()),
    }
}

fn push_tried(tried: &mut Vec<String>, entry: String) {
    if tried.len() < MAX_TRIED && !tried.contains(&entry) {
        tried.push(entry);
    }
}

/// The "did not answer" line of a check, used when an attempt runs out of time.
fn no_answer(check: &Check) -> String {
    match check {
        Check::Addresses { iface, .. } => format!("{iface} did not show its addresses"),
        Check::Gateway {
            iface,
            addr: IpAddr::V4(a),
        } => {
            format!("gateway {a} did not answer ARP on {iface}")
        }
        Check::Gateway { iface, addr } => {
            format!("gateway {addr} did not answer neighbour discovery on {iface}")
        }
        Check::Dns { server, query } => format!("DNS server {server} did not answer {query}"),
        Check::Ntp { server, .. } => format!("NTP server {server} did not answer"),
        Check::Management { addr, port, .. } => {
            format!("management node {addr} did not accept a TCP connection on port {port}")
        }
        Check::Route { dest, via } => format!("route {dest} via {via} could not be read"),
    }
}

async fn run_check<P: Probe>(check: &Check, probe: &P, policy: &Policy) -> CheckResult {
    let start = Instant::now();
    let end = start + policy.deadline;
    let mut tried = Vec::new();
    let mut attempts = 0u32;
    let mut why: Option<String> = None;
    let last = loop {
        attempts += 1;
        let budget = policy
            .attempt
            .min(end.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1));
        let outcome = match timeout(budget, attempt(check, probe, budget, &mut tried)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::NoAnswer(no_answer(check), None),
        };
        // An attempt that only timed out keeps what an earlier one learnt (the kernel
        // rate-limits the ICMP errors that say "refused" or "unreachable").
        let outcome = match outcome {
            Outcome::NoAnswer(what, None) => Outcome::NoAnswer(what, why.clone()),
            Outcome::NoAnswer(what, Some(w)) => {
                why = Some(w.clone());
                Outcome::NoAnswer(what, Some(w))
            }
            other => other,
        };
        if matches!(outcome, Outcome::Pass(_)) || Instant::now() >= end {
            break outcome;
        }
        sleep(
            policy
                .pause
                .min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        if Instant::now() >= end {
            break outcome;
        }
    };
    let elapsed = start.elapsed();
    let (passed, reason) = match last {
        Outcome::Pass(r) => (true, r),
        Outcome::NoAnswer(what, None) => {
            (false, format!("{what} within {}", seconds(policy.deadline)))
        }
        Outcome::NoAnswer(what, Some(why)) => (
            false,
            format!("{what} within {} ({why})", seconds(policy.deadline)),
        ),
        Outcome::Fail(r) => (false, r),
    };
    let result = CheckResult {
        kind: check.kind(),
        subject: check.subject(),
        passed,
        attempts,
        elapsed_ms: millis(elapsed),
        tried,
        reason,
    };
    if result.passed {
        tracing::info!(check = %result.kind, subject = %result.subject, attempts, elapsed_ms = result.elapsed_ms, "{}", result.reason);
    } else {
        tracing::warn!(check = %result.kind, subject = %result.subject, attempts, elapsed_ms = result.elapsed_ms, "{}", result.reason);
    }
    result
}

async fn attempt<P: Probe>(
    check: &Check,
    probe: &P,
    wait: Duration,
    tried: &mut Vec<String>,
) -> Outcome {
    match check {
        Check::Addresses {
            iface,
            expected,
            slaac,
        } => addresses(probe, iface, expected, *slaac, tried),
        Check::Gateway { iface, addr } => gateway(probe, iface, *addr, wait, tried).await,
        Check::Dns { server, query } => dns(probe, *server, query, wait, tried).await,
        Check::Ntp { server, resolvers } => ntp(probe, server, resolvers, wait, tried).await,
        Check::Management {
            addr,
            port,
            resolvers,
        } => management(probe, addr, *port, resolvers, wait, tried).await,
        Check::Route { dest, via } => route(probe, *dest, *via, tried),
    }
}

fn list(nets: &[IpNet]) -> String {
    if nets.is_empty() {
        return "none".into();
    }
    nets.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn addresses<P: Probe>(
    probe: &P,
    iface: &str,
    expected: &[IpNet],
    slaac: bool,
    tried: &mut Vec<String>,
) -> Outcome {
    let have = match probe.addresses(iface) {
        Ok(Some(have)) => have,
        Ok(None) => return Outcome::Fail(format!("{iface} does not exist")),
        Err(e) => {
            return Outcome::Fail(format!(
                "the addresses of {iface} could not be read: {}",
                os_reason(&e)
            ));
        }
    };
    push_tried(tried, format!("{iface}: {}", list(&have)));
    let missing: Vec<IpNet> = expected
        .iter()
        .filter(|e| !have.contains(e))
        .copied()
        .collect();
    let extra: Vec<IpNet> = have
        .iter()
        .filter(|h| !expected.contains(h) && (!slaac || matches!(h, IpNet::V4(_))))
        .copied()
        .collect();
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => Outcome::Pass(format!("{iface} has {}", list(expected))),
        (false, _) => Outcome::Fail(format!(
            "{iface} lacks {} (it has {})",
            list(&missing),
            list(&have)
        )),
        (true, false) => Outcome::Fail(format!(
            "{iface} has {} besides the configured {}",
            list(&extra),
            list(expected)
        )),
    }
}

async fn gateway<P: Probe>(
    probe: &P,
    iface: &str,
    addr: IpAddr,
    wait: Duration,
    tried: &mut Vec<String>,
) -> Outcome {
    let (found, how) = match addr {
        IpAddr::V4(a) => {
            push_tried(tried, format!("ARP who-has {a} on {iface}"));
            (probe.arp(iface, a, wait).await.map(|m| m.map(Some)), "ARP")
        }
        IpAddr::V6(a) => {
            push_tried(tried, format!("neighbour solicitation for {a} on {iface}"));
            (probe.neighbour(iface, a, wait).await, "neighbour discovery")
        }
    };
    let what = format!("gateway {addr} did not answer {how} on {iface}");
    match found {
        Ok(Some(Some(mac))) => Outcome::Pass(format!(
            "gateway {addr} answered {how} on {iface} from {}",
            mac_text(mac)
        )),
        Ok(Some(None)) => Outcome::Pass(format!("gateway {addr} answered {how} on {iface}")),
        Ok(None) => Outcome::NoAnswer(what, None),
        Err(e) => Outcome::NoAnswer(what, Some(os_reason(&e))),
    }
}

/// One DNS exchange: the accepted reply, or why there was none (invalid replies counted).
async fn dns_exchange<P: Probe>(
    probe: &P,
    server: IpAddr,
    query: &DnsQuery,
    wait: Duration,
) -> Result<wire::DnsReply, Option<String>> {
    let [a, b, ..] = probe.nonce();
    let id = u16::from_be_bytes([a, b]);
    let Some(request) = wire::build_dns_query(id, query) else {
        return Err(Some("the name cannot be asked in DNS".into()));
    };
    let mut reply = None;
    let mut invalid: (u32, Option<ReplyError>) = (0, None);
    let result = probe
        .udp_exchange(SocketAddr::new(server, 53), &request, wait, &mut |bytes| {
            match wire::parse_dns_reply(&request, bytes) {
                Ok(r) => {
                    reply = Some(r);
                    true
                }
                Err(e) => {
                    invalid = (invalid.0 + 1, Some(e));
                    false
                }
            }
        })
        .await;
    match (reply, result) {
        (Some(r), _) => Ok(r),
        (None, Err(e)) => Err(Some(os_reason(&e))),
        (None, Ok(_)) => Err(invalid.1.map(|e| match invalid.0 {
            1 => format!("1 invalid reply ignored: {e}"),
            n => format!("{n} invalid replies ignored, the last: {e}"),
        })),
    }
}

async fn dns<P: Probe>(
    probe: &P,
    server: IpAddr,
    query: &DnsQuery,
    wait: Duration,
    tried: &mut Vec<String>,
) -> Outcome {
    push_tried(tried, format!("{query}? to {server}"));
    match dns_exchange(probe, server, query, wait).await {
        Ok(r) if r.rcode == 0 || r.rcode == 3 => {
            let answer = match (r.rcode, r.addresses.as_slice()) {
                (3, _) => "no such name (NXDOMAIN)".to_owned(),
                (_, []) => format!("{} records, no address", r.answers),
                (_, addrs) => addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            Outcome::Pass(format!("DNS server {server} answered {query}: {answer}"))
        }
        Ok(r) => Outcome::Fail(format!(
            "DNS server {server} answered {query} with {}",
            r.rcode_name()
        )),
        Err(why) => Outcome::NoAnswer(format!("DNS server {server} did not answer {query}"), why),
    }
}

/// The addresses of `server`: itself, or its A records from the first resolver that has them.
async fn resolve<P: Probe>(
    probe: &P,
    server: &ServerName,
    resolvers: &[IpAddr],
    wait: Duration,
    tried: &mut Vec<String>,
) -> Result<Vec<IpAddr>, String> {
    let name = match server {
        ServerName::Address(a) => return Ok(vec![*a]),
        ServerName::Name(n) => n.as_str(),
    };
    let query = DnsQuery::Address(name.to_owned());
    let mut why = Vec::new();
    for &resolver in resolvers {
        match dns_exchange(probe, resolver, &query, wait).await {
            Ok(r) if !r.addresses.is_empty() => {
                let addrs: Vec<IpAddr> = r
                    .addresses
                    .iter()
                    .take(MAX_RESOLVED)
                    .map(|&a| IpAddr::V4(a))
                    .collect();
                let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                push_tried(
                    tried,
                    format!("{name} is {} (by {resolver})", shown.join(", ")),
                );
                return Ok(addrs);
            }
            Ok(r) => why.push(format!(
                "{resolver}: {}",
                if r.rcode == 0 {
                    "no address".to_owned()
                } else {
                    r.rcode_name()
                }
            )),
            Err(e) => why.push(format!(
                "{resolver}: {}",
                e.unwrap_or_else(|| "no answer".into())
            )),
        }
    }
    push_tried(
        tried,
        format!(
            "{name}? to {}",
            resolvers
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Err(format!("did not resolve ({})", why.join("; ")))
}

async fn ntp<P: Probe>(
    probe: &P,
    server: &ServerName,
    resolvers: &[IpAddr],
    wait: Duration,
    tried: &mut Vec<String>,
) -> Outcome {
    let addrs = match resolve(probe, server, resolvers, wait, tried).await {
        Ok(a) => a,
        Err(why) => return Outcome::Fail(format!("NTP server {server} {why}")),
    };
    let mut why = None;
    for addr in addrs {
        push_tried(tried, format!("NTP client request to {addr}"));
        let nonce = probe.nonce();
        let request = wire::build_ntp_request(nonce);
        let mut reply = None;
        let mut refused = None;
        let result = probe
            .udp_exchange(SocketAddr::new(addr, 123), &request, wait, &mut |bytes| {
                match wire::parse_ntp_reply(nonce, bytes) {
                    Ok(r) => {
                        reply = Some(r);
                        true
                    }
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                }
            })
            .await;
        let shown = match server {
            ServerName::Address(_) => server.to_string(),
            ServerName::Name(_) => format!("{server} ({addr})"),
        };
        match (reply, refused, result) {
            (Some(r), _, _) => {
                return Outcome::Pass(format!(
                    "NTP server {shown} answered (stratum {})",
                    r.stratum
                ));
            }
            (None, Some(ReplyError::Refused(text)), _) => {
                return Outcome::Fail(format!("NTP server {shown} {text}"));
            }
            (None, _, Err(e)) => why = Some(os_reason(&e)),
            (None, Some(e), Ok(_)) => why = Some(format!("invalid replies ignored, the last: {e}")),
            (None, None, Ok(_)) => {}
        }
    }
    Outcome::NoAnswer(format!("NTP server {server} did not answer"), why)
}

async fn management<P: Probe>(
    probe: &P,
    server: &ServerName,
    port: u16,
    resolvers: &[IpAddr],
    wait: Duration,
    tried: &mut Vec<String>,
) -> Outcome {
    let addrs = match resolve(probe, server, resolvers, wait, tried).await {
        Ok(a) => a,
        Err(why) => return Outcome::Fail(format!("management node {server} {why}")),
    };
    let mut why = None;
    for addr in addrs {
        let to = SocketAddr::new(addr, port);
        push_tried(tried, format!("TCP connect to {to}"));
        match probe.tcp_connect(to, wait).await {
            Ok(true) => {
                return Outcome::Pass(format!(
                    "management node {server} accepted a TCP connection on port {port}"
                ));
            }
            Ok(false) => {}
            Err(e) => why = Some(os_reason(&e)),
        }
    }
    Outcome::NoAnswer(
        format!("management node {server} did not accept a TCP connection on port {port}"),
        why,
    )
}

fn route<P: Probe>(probe: &P, dest: IpNet, via: IpAddr, tried: &mut Vec<String>) -> Outcome {
    let routes = match probe.routes() {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Fail(format!(
                "the kernel's routes could not be read: {}",
                os_reason(&e)
            ));
        }
    };
    let same_dest: Vec<_> = routes.iter().filter(|r| r.dest == dest).collect();
    if let Some(r) = same_dest.iter().find(|r| r.via == Some(via)) {
        return Outcome::Pass(format!(
            "route {dest} via {via} is in the kernel's table ({})",
            r.iface
        ));
    }
    let others: Vec<String> = same_dest
        .iter()
        .map(|r| match r.via {
            Some(v) => format!("via {v} on {}", r.iface),
            None => format!("on {}", r.iface),
        })
        .collect();
    push_tried(tried, format!("{} routes read", routes.len()));
    if others.is_empty() {
        Outcome::Fail(format!(
            "route {dest} via {via} is not in the kernel's table"
        ))
    } else {
        Outcome::Fail(format!(
            "route {dest} via {via} is not in the kernel's table (it goes {})",
            others.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::health::KernelRoute;

    /// A probe whose link is down for the first `down` ARP requests, then answered.
    struct Fake {
        down: Cell<u32>,
    }

    impl Probe for Fake {
        fn addresses(&self, _: &str) -> io::Result<Option<Vec<IpNet>>> {
            Ok(Some(vec![
                "10.0.0.31/24".parse().unwrap(),
                "10.0.0.99/24".parse().unwrap(),
            ]))
        }
        fn routes(&self) -> io::Result<Vec<KernelRoute>> {
            Ok(vec![KernelRoute {
                dest: "0.0.0.0/0".parse().unwrap(),
                via: Some("10.0.0.254".parse().unwrap()),
                iface: "eth0".into(),
            }])
        }
        async fn arp(&self, _: &str, _: Ipv4Addr, _: Duration) -> io::Result<Option<[u8; 6]>> {
            if self.down.get() > 0 {
                self.down.set(self.down.get() - 1);
                return Err(io::Error::from_raw_os_error(nix::libc::ENETDOWN));
            }
            Ok(Some([2, 0, 0, 0, 0, 1]))
        }
        async fn neighbour(
            &self,
            _: &str,
            _: Ipv6Addr,
            wait: Duration,
        ) -> io::Result<Option<Option<[u8; 6]>>> {
            sleep(wait).await;
            Ok(None)
        }
        async fn udp_exchange(
            &self,
            _: SocketAddr,
            _: &[u8],
            _: Duration,
            accept: &mut dyn FnMut(&[u8]) -> bool,
        ) -> io::Result<bool> {
            Ok(accept(b"garbage that is no reply"))
        }
        async fn tcp_connect(&self, _: SocketAddr, _: Duration) -> io::Result<bool> {
            Err(io::Error::from_raw_os_error(nix::libc::ECONNREFUSED))
        }
    }

    fn policy() -> Policy {
        Policy {
            deadline: Duration::from_millis(300),
            attempt: Duration::from_millis(50),
            pause: Duration::from_millis(10),
        }
    }

    fn run(checks: &[Check], probe: &Fake) -> Vec<CheckResult> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(run_checks(checks, probe, &policy()))
    }

    #[test]
    fn a_gateway_whose_link_comes_up_passes_after_retries() {
        let fake = Fake { down: Cell::new(2) };
        let gw = Check::Gateway {
            iface: "eth0".into(),
            addr: "10.0.0.1".parse().unwrap(),
        };
        let r = &run(&[gw], &fake)[0];
        assert!(r.passed, "{r:?}");
        assert_eq!(r.attempts, 3);
        assert_eq!(
            r.reason,
            "gateway 10.0.0.1 answered ARP on eth0 from 02:00:00:00:00:01"
        );
        assert_eq!(r.tried, ["ARP who-has 10.0.0.1 on eth0"]);
    }

    #[test]
    fn failures_say_what_did_not_answer_and_for_how_long() {
        let fake = Fake {
            down: Cell::new(u32::MAX),
        };
        let checks = [
            Check::Gateway {
                iface: "eth0".into(),
                addr: "10.0.0.1".parse().unwrap(),
            },
            Check::Gateway {
                iface: "eth0".into(),
                addr: "2001:db8::1".parse().unwrap(),
            },
            Check::Addresses {
                iface: "eth0".into(),
                expected: vec!["10.0.0.31/24".parse().unwrap()],
                slaac: false,
            },
            Check::Route {
                dest: "0.0.0.0/0".parse().unwrap(),
                via: "10.0.0.1".parse().unwrap(),
            },
            Check::Dns {
                server: "10.0.0.53".parse().unwrap(),
                query: DnsQuery::RootSoa,
            },
            Check::Management {
                addr: ServerName::Address("10.0.0.10".parse().unwrap()),
                port: 443,
                resolvers: vec![],
            },
        ];
        let reasons: Vec<String> = run(&checks, &fake)
            .into_iter()
            .map(|r| {
                assert!(!r.passed);
                assert!(r.attempts > 1, "{r:?}");
                r.reason
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "gateway 10.0.0.1 did not answer ARP on eth0 within 300 ms (the link is down)",
                "gateway 2001:db8::1 did not answer neighbour discovery on eth0 within 300 ms",
                "eth0 has 10.0.0.99/24 besides the configured 10.0.0.31/24",
                "route 0.0.0.0/0 via 10.0.0.1 is not in the kernel's table (it goes via 10.0.0.254 on eth0)",
                "DNS server 10.0.0.53 did not answer . SOA within 300 ms (1 invalid reply ignored: reply does not match the request (transaction id))",
                "management node 10.0.0.10 did not accept a TCP connection on port 443 within 300 ms (connection refused)",
            ]
        );
    }
}
