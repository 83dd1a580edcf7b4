//! Benchmark: the built-in bootstrap dialog against the fake seed console (tests/common), over
//! a Unix socket pair, with instant echo and at 115200 baud pacing, beside the lower bound
//! (bytes exchanged ÷ line rate). Prints one line per mode. Run: `scripts/bench-bootstrap`.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/fake_console.rs"]
mod fake_console;

use std::time::{Duration, Instant};

use nodeboot::console::engine::run_dialog;
use nodeboot::console::profile::{BUILTIN, Profile, Var, Vars};

fn vars() -> Vars {
    let mut v = Vars::new();
    for (k, val) in [
        ("address", "10.0.2.15"),
        ("netmask", "255.255.255.0"),
        ("gateway", "10.0.2.2"),
        ("hostname", "mgr01"),
        ("domain", "example.com"),
        ("dns_servers", "10.0.2.3"),
        ("ntp_servers", "pool.ntp.org 10.0.0.4"),
        ("web_username", "webadmin"),
        ("incident_reporting", "y"),
        ("usage_statistics", "n"),
    ] {
        v.insert(
            k.into(),
            Var {
                value: val.into(),
                secret: false,
            },
        );
    }
    for (k, val) in [
        ("os_password", "Os-pass 1!"),
        ("web_password", "Web-pass 2?"),
    ] {
        v.insert(
            k.into(),
            Var {
                value: val.into(),
                secret: true,
            },
        );
    }
    v
}

/// One dialog; returns (elapsed, bytes exchanged as the console counts them).
async fn once(profile: &Profile, rate: Option<u32>) -> (Duration, u64) {
    let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
    let script = fake_console::Script {
        rate,
        ..fake_console::Script::default()
    };
    let server = tokio::spawn(fake_console::serve(theirs, script));
    let secrets = vec![b"Os-pass 1!".to_vec(), b"Web-pass 2?".to_vec()];
    let start = Instant::now();
    let report = run_dialog(ours, profile, secrets, None, &mut |_, _, _| {})
        .await
        .unwrap();
    let elapsed = start.elapsed();
    drop(report);
    let typed = server.await.unwrap();
    assert!(typed.finished);
    (elapsed, typed.sent + typed.received)
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let profile = Profile::load(BUILTIN, "built-in", &vars()).unwrap();
    // the same dialog without the settle before secrets: shows what the settle costs
    let mut no_settle = profile.clone();
    no_settle.settle = Duration::ZERO;
    let secret_steps = profile.steps.iter().filter(|s| s.secret).count();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "bootstrap bench: built-in profile ({} steps, {} secret steps, settle {} ms before each secret sent), fake seed console, {runs} runs, median",
        profile.steps.len(),
        secret_steps,
        profile.settle.as_millis()
    );
    for (name, profile, rate) in [
        ("instant echo", &profile, None),
        ("115200 baud", &profile, Some(11_520u32)),
        ("instant, no settle", &no_settle, None),
        ("115200, no settle", &no_settle, Some(11_520u32)),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (t, b) = rt.block_on(once(profile, rate));
            times.push(t);
            bytes = b;
        }
        times.sort();
        let median = times[times.len() / 2];
        match rate {
            None => println!(
                "{name:>18}: {:8.1} ms for {bytes} bytes exchanged (min {:.1} ms, max {:.1} ms)",
                median.as_secs_f64() * 1e3,
                times[0].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3
            ),
            Some(r) => {
                let bound = bytes as f64 / f64::from(r);
                println!(
                    "{name:>18}: {:8.1} ms for {bytes} bytes exchanged; lower bound {:.1} ms ({bytes} B / {r} B/s); ratio {:.2}x",
                    median.as_secs_f64() * 1e3,
                    bound * 1e3,
                    median.as_secs_f64() / bound
                );
            }
        }
    }
}
