//! Benchmark of `nodeboot-check` (the library entry, with the real probe), run by
//! `scripts/bench-check` inside the node namespace of the `bench-health` lab:
//! `healthy ROUNDS` applies the lab's configuration to a fresh generic root each round and
//! prints the time until ready (the gettys' wait) and until the verdict; `rollback GRACE`
//! applies one whose gateway (10.77.0.2) nobody holds and prints the time from the start to
//! the generic state being back (the reboot is the recording fake).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use nodeboot_agent::apply::{self, NoReboot};
use nodeboot_agent::health::boot::{self, Verdict};
use nodeboot_agent::health::{Policy, SystemProbe};
use nodeboot_config::api::RollbackOn;
use nodeboot_tests::netlab::health_config;
use nodeboot_tests::run::runtime;

/// One run on a fresh configured root: (time to ready, time to the end, verdict).
fn once(gateway: &str, grace: Duration) -> (Duration, Duration, Verdict) {
    let root = tempfile::tempdir().unwrap();
    nodeboot_tests::fixtures::populate_image(root.path()).unwrap();
    let doc = nodeboot_config::parse(health_config(gateway).as_bytes()).unwrap();
    apply::apply_config(root.path(), &doc).unwrap();
    let opts = boot::Options {
        root: root.path().to_owned(),
        grace,
        rollback: RollbackOn::Gateway,
        report_secs: 600,
        policy: Policy::default(),
        round_pause: Duration::from_secs(2),
        reboot: Arc::new(NoReboot::new()),
    };
    let rt = runtime();
    let start = Instant::now();
    let mut ready = None;
    let verdict = rt
        .block_on(boot::run(
            &opts,
            &SystemProbe::default(),
            &mut std::io::sink(),
            &mut || ready = Some(start.elapsed()),
        ))
        .unwrap();
    (ready.unwrap_or_default(), start.elapsed(), verdict)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("healthy") => {
            let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
            let mut readies = Vec::new();
            let mut totals = Vec::new();
            for _ in 0..rounds {
                let (ready, total, verdict) = once("10.77.0.1", Duration::from_secs(120));
                assert_eq!(verdict, Verdict::Healthy);
                readies.push(ms(ready));
                totals.push(ms(total));
            }
            readies.sort_by(f64::total_cmp);
            totals.sort_by(f64::total_cmp);
            let med = |v: &[f64]| v[v.len() / 2];
            println!(
                "healthy node, {rounds} runs: ready (gettys may start) median {:.1} ms, max {:.1} ms; verdict written median {:.1} ms, max {:.1} ms",
                med(&readies),
                readies[readies.len() - 1],
                med(&totals),
                totals[totals.len() - 1]
            );
        }
        Some("rollback") => {
            let grace: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
            let (ready, total, verdict) = once("10.77.0.2", Duration::from_secs(grace));
            let Verdict::RolledBack(r) = verdict else {
                panic!("not rolled back: {verdict:?}")
            };
            println!(
                "gateway silent, grace {grace} s: ready after {:.1} ms, generic state back after {:.1} ms ({})",
                ms(ready),
                ms(total),
                r.summary()
            );
        }
        _ => {
            eprintln!("usage: bench_check healthy [ROUNDS] | rollback [GRACE_SECS]");
            std::process::exit(2);
        }
    }
}
