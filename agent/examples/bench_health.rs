//! Benchmark of the checks after the reboot: run by `scripts/bench-health`, which makes the
//! network namespaces (a node side and a peer holding the gateway, DNS, NTP and management
//! addresses) and starts this binary in each with `ip netns exec`.
//!
//! - `bench_health serve`: the peer's responders (DNS zone, NTP, TCP 443), until killed.
//! - `bench_health run ROUNDS [KIND]`: the full planned check set (or its checks of one kind:
//!   `gateway`, `dns`, …) against them, ROUNDS times, with the default policy; prints wall
//!   time and CPU time (user + system) per round and each check's slowest time.
//! - `bench_health fail`: one gateway check of an address nobody holds, to its deadline
//!   (default policy, 20 s); prints wall and CPU time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nodeboot_agent::health::{Check, Policy, SystemProbe, plan_checks, report, run_checks};
use nodeboot_tests::netlab::{dns_reply, health_config, health_zone, ntp_reply, serve_udp};
use nodeboot_tests::run::runtime;

fn cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    t(u.user_time()) + t(u.system_time())
}

fn serve() {
    let stop = Arc::new(AtomicBool::new(false));
    let udp = |addr: &str, answer: fn(&[u8]) -> Vec<Vec<u8>>| {
        let sock = UdpSocket::bind(addr).unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || serve_udp(&sock, &stop, answer))
    };
    udp("10.77.0.53:53", |q| dns_reply(q, &health_zone()));
    udp("10.77.0.123:123", ntp_reply);
    let listener = TcpListener::bind(("10.77.0.10", 443)).unwrap();
    println!("serving");
    for conn in listener.incoming() {
        drop(conn);
    }
}

fn run(rounds: usize, only: Option<&str>) {
    let doc = nodeboot_config::parse(health_config("10.77.0.1").as_bytes())
        .expect("the benchmark's configuration");
    let mut checks = plan_checks(doc.config());
    if let Some(kind) = only {
        checks.retain(|c| c.kind().as_str() == kind);
    }
    let rt = runtime();
    let probe = SystemProbe::default();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut slowest: Vec<(u64, String)> = Vec::new();
    for _ in 0..rounds {
        let (t0, c0) = (Instant::now(), cpu());
        let r = rt.block_on(report(&checks, &probe, &Policy::default()));
        walls.push(t0.elapsed());
        cpus.push(cpu() - c0);
        if !r.healthy {
            for c in r.failures() {
                eprintln!("failed: {}", c.reason);
            }
            std::process::exit(1);
        }
        for (i, c) in r.checks.iter().enumerate() {
            if slowest.len() <= i {
                slowest.push((0, format!("{} {}", c.kind, c.subject)));
            }
            slowest[i].0 = slowest[i].0.max(c.elapsed_ms);
        }
    }
    for (ms, what) in &slowest {
        println!("  {what}: at most {ms} ms");
    }
    walls.sort();
    cpus.sort();
    let mid = rounds / 2;
    println!(
        "full check set ({} checks, healthy responders), {rounds} rounds: wall median {:.2} ms (min {:.2}, max {:.2}); CPU median {:.2} ms (max {:.2})",
        checks.len(),
        walls[mid].as_secs_f64() * 1e3,
        walls[0].as_secs_f64() * 1e3,
        walls[rounds - 1].as_secs_f64() * 1e3,
        cpus[mid].as_secs_f64() * 1e3,
        cpus[rounds - 1].as_secs_f64() * 1e3,
    );
}

fn fail() {
    let checks = [Check::Gateway {
        iface: "eth0".into(),
        addr: "10.77.0.2".parse().unwrap(),
    }];
    let rt = runtime();
    let policy = Policy::default();
    let (t0, c0) = (Instant::now(), cpu());
    let r = rt.block_on(run_checks(&checks, &SystemProbe::default(), &policy));
    let (wall, cpu) = (t0.elapsed(), cpu() - c0);
    println!(
        "failing gateway to its deadline ({} s, {} attempts): wall {:.2} s, CPU {:.2} ms; reason: {}",
        policy.deadline.as_secs(),
        r[0].attempts,
        wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e3,
        r[0].reason
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("run") => run(
            args.get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(50)
                .max(1),
            args.get(2).map(String::as_str),
        ),
        Some("fail") => fail(),
        _ => {
            eprintln!(
                "usage: bench_health serve | run [ROUNDS [KIND]] | fail (see scripts/bench-health)"
            );
            std::process::exit(2);
        }
    }
}
