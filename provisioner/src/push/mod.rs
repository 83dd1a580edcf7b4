//! Pushing configurations to nodes over HTTPS (`nodeboot push`), and reading their state
//! (`nodeboot status`).
//!
//! The layers, in the order a run goes through them: the arguments (`crate::cmdline`) name
//! the nodes (`inventory`) and how they are trusted (`trust`, `session`); `prepare` checks
//! every file before anything is sent (pure); each node then runs its own state machine
//! (`node`: connect and pin → send → follow with `--wait` → done), talking through `client`
//! (one HTTPS exchange) and reading the answers as the wire contract's types (`reply`);
//! `progress` shows the run, `summary` reports it.

pub mod client;
pub mod follow;
pub mod inventory;
pub mod node;
pub mod prepare;
pub mod progress;
pub mod reply;
pub mod session;
pub mod summary;
pub mod trust;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;

use crate::cmdline::{FleetArgs, PushArgs, StatusArgs};
use client::{DEFAULT_PORT, Endpoint};
use inventory::{Source, Target};
use progress::{Display, Mode};
use session::{Run, Trust, WaitAt};
use summary::NodeResult;
use trust::{Fingerprint, PinSource};

/// Runs `nodeboot push`.
pub fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(push(args))
}

/// Runs `nodeboot status`.
pub fn run_status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(status(args))
}

/// One thread is plenty: the work is waiting on sockets, and a node costs a TLS handshake.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("{flag} {value}: expected a positive number of seconds"))
}

fn pin_source(fleet: &FleetArgs) -> PinSource {
    if fleet.fingerprint.is_some() {
        PinSource::CommandLine
    } else {
        PinSource::Inventory
    }
}

/// The nodes named on the command line or in the inventory.
fn targets(fleet: &FleetArgs, single: &[(String, Option<PathBuf>)]) -> anyhow::Result<Vec<Target>> {
    if let Some(path) = &fleet.inventory {
        return inventory::load(path, &fleet.only);
    }
    let fingerprint = match &fleet.fingerprint {
        Some(f) => Some(Fingerprint::parse(f).map_err(|e| anyhow::anyhow!("--fingerprint: {e}"))?),
        None => None,
    };
    let token = match &fleet.token_file {
        Some(p) => Some(inventory::read_token(p)?),
        None => None,
    };
    single
        .iter()
        .map(|(node, file)| {
            let endpoint = Endpoint::parse(node, DEFAULT_PORT).map_err(|e| anyhow::anyhow!(e))?;
            Ok(Target {
                name: node.clone(),
                endpoint,
                source: match file {
                    Some(f) => Source::File(f.clone()),
                    None => Source::None,
                },
                fingerprint,
                token: token.clone(),
            })
        })
        .collect()
}

async fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let timeout = seconds(args.timeout, "--timeout")?;
    let wait = if args.wait {
        Some(seconds(args.wait_timeout, "--wait-timeout")?)
    } else {
        None
    };
    let single = match &args.node {
        Some(node) => vec![(node.clone(), args.file.clone())],
        None => Vec::new(),
    };
    let targets = targets(&args.fleet, &single)?;
    let pin_source = pin_source(&args.fleet);

    // Check every file before sending anything. Results keep the inventory's order.
    let total = targets.len();
    let materials = targets
        .into_iter()
        .map(|target| {
            let material = inventory::material(&target);
            (target, material)
        })
        .collect();
    let prepared = match prepare::prepare(materials, !args.no_validate, args.skip_invalid) {
        Ok(prepared) => prepared,
        Err(stop) => {
            eprint!("{}", stop.report);
            return Err(stop.error);
        }
    };
    eprint!("{}", prepared.report);
    let mut results: Vec<Option<NodeResult>> = (0..total).map(|_| None).collect();
    for (index, result) in prepared.invalid {
        results[index] = Some(result);
    }

    let trust = Trust::load(&args.fleet)?;
    let plans = prepare::plan(prepared.jobs, |t| trust.policy(t, pin_source));
    if args.dry_run {
        for (index, plan) in &plans {
            results[*index] = Some(prepare::would_send(plan));
        }
        let all: Vec<NodeResult> = results.into_iter().flatten().collect();
        return Ok(finish(&all, started, args.fleet.json, false));
    }

    let verb = if args.plan { "plan" } else { "push" };
    let display = Display::new(Mode::choose(args.fleet.json), plans.len() as u64, verb);
    let wait_at = match (&args.wait_address, args.wait_configured_address) {
        (Some(a), _) => WaitAt::Given(
            Endpoint::parse(a, DEFAULT_PORT).map_err(|e| anyhow::anyhow!("--wait-address: {e}"))?,
        ),
        (None, true) => WaitAt::Configured,
        (None, false) => WaitAt::Same,
    };
    let run = Arc::new(Run {
        wait_at,
        trust,
        pin_source,
        display,
        timeout,
        wait,
        plan: args.plan,
    });
    let work = |plan: prepare::Plan| {
        let run = run.clone();
        async move {
            let follow_at = run.wait.map(|_| {
                follow::places(&plan.job.target.endpoint, &run.wait_at, plan.job.configured)
            });
            node::push(&run, plan, follow_at).await
        }
    };
    for_each_node(plans, args.fleet.parallel, work, &mut results).await?;
    run.display.finish();
    let saved = run.trust.save();
    let all: Vec<NodeResult> = results.into_iter().flatten().collect();
    let code = finish(&all, started, args.fleet.json, false);
    saved?;
    Ok(code)
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let timeout = seconds(args.timeout, "--timeout")?;
    let single: Vec<(String, Option<PathBuf>)> =
        args.nodes.iter().map(|n| (n.clone(), None)).collect();
    let targets = targets(&args.fleet, &single)?;
    let trust = Trust::load(&args.fleet)?;
    let display = Display::new(
        Mode::choose(args.fleet.json),
        targets.len() as u64,
        "status",
    );
    let run = Arc::new(Run {
        wait_at: WaitAt::Same,
        trust,
        pin_source: pin_source(&args.fleet),
        display,
        timeout,
        wait: None,
        plan: false,
    });
    let mut results: Vec<Option<NodeResult>> = (0..targets.len()).map(|_| None).collect();
    let work = |target: Target| {
        let run = run.clone();
        async move { node::status(&run, target).await }
    };
    let numbered = targets.into_iter().enumerate().collect();
    for_each_node(numbered, args.fleet.parallel, work, &mut results).await?;
    run.display.finish();
    let saved = run.trust.save();
    let all: Vec<NodeResult> = results.into_iter().flatten().collect();
    let code = finish(&all, started, args.fleet.json, true);
    saved?;
    Ok(code)
}

/// Runs `work` on every item, at most `parallel` at once, storing each result at its index.
///
/// A task is created only once a slot is free, so a node waiting its turn costs its item
/// (a few hundred bytes), not a whole connection's state.
async fn for_each_node<J, F, Fut>(
    items: Vec<(usize, J)>,
    parallel: u16,
    work: F,
    results: &mut [Option<NodeResult>],
) -> anyhow::Result<()>
where
    F: Fn(J) -> Fut,
    Fut: std::future::Future<Output = NodeResult> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(usize::from(parallel)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut store = |joined: Result<(usize, NodeResult), tokio::task::JoinError>| {
        let (index, result) = joined.context("a node task stopped unexpectedly")?;
        results[index] = Some(result);
        anyhow::Ok(())
    };
    for (index, item) in items {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .context("the concurrency limit closed")?;
        let task = work(item);
        tasks.spawn(async move {
            let _permit = permit;
            (index, task.await)
        });
        while let Some(joined) = tasks.try_join_next() {
            store(joined)?;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        store(joined)?;
    }
    Ok(())
}

/// Prints the summary (table or JSON) and picks the exit status.
fn finish(results: &[NodeResult], started: Instant, json: bool, status_columns: bool) -> ExitCode {
    let elapsed = started.elapsed();
    if json {
        println!("{}", summary::render_json(results, elapsed));
    } else {
        print!(
            "{}",
            summary::render_table(results, elapsed, status_columns)
        );
    }
    if results.iter().all(|r| r.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
