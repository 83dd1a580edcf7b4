//! Pushing configurations to nodes over HTTPS (`nodeboot push`), and reading their state
//! (`nodeboot status`).
//!
//! `inventory` says which nodes, `trust` which certificates, `client` does one HTTPS
//! exchange, `progress` shows the run, `summary` reports it. This module holds the policy:
//! validate everything before sending anything, then per node: connect (retrying while the
//! node boots), send, read the verdict, optionally follow the node until it is configured.

pub mod client;
pub mod inventory;
pub mod progress;
pub mod summary;
pub mod trust;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use tokio::sync::Semaphore;

use client::{ClientError, DEFAULT_PORT, Endpoint, Request};
use inventory::{Source, Target};
use progress::{Display, Mode, NodeProgress};
use summary::{FileError, NodeResult, Outcome};
use trust::{Fingerprint, KnownNodes, PinSource, Policy};

/// The bootstrap path existing tooling for this kind of node uses.
pub const BOOTSTRAP_PATH: &str = "/configuration/bootstrap";
/// The agent's status document.
pub const STATUS_PATH: &str = "/api/v1/status";

/// How nodes are chosen and trusted: shared by `push` and `status`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Inventory of nodes: TOML with [[node]] tables, or a folder of <fqdn>.xml files with an
    /// addresses.csv (see docs/push.md)
    #[arg(long, short = 'i', value_name = "FLEET.toml|DIR")]
    pub inventory: Option<PathBuf>,
    /// Only these inventory nodes (repeat, or separate with commas)
    #[arg(
        long,
        value_name = "NAME",
        requires = "inventory",
        value_delimiter = ','
    )]
    pub only: Vec<String>,
    /// Accept only this certificate (SHA256:<hex> or SHA256:<base64>, as the node's console
    /// shows it)
    #[arg(long, value_name = "SHA256:…", conflicts_with_all = ["inventory", "insecure"])]
    pub fingerprint: Option<String>,
    /// Known-nodes file: certificates trusted before
    /// [default: ~/.config/nodeboot/known_nodes]
    #[arg(long, value_name = "FILE")]
    pub known_nodes: Option<PathBuf>,
    /// Trust a node that is neither pinned nor known on first contact, and record its
    /// certificate in the known-nodes file (check it against the node's console)
    #[arg(long)]
    pub trust_first_use: bool,
    /// Accept any certificate and record nothing (the connection is then not authenticated)
    #[arg(long, conflicts_with = "trust_first_use")]
    pub insecure: bool,
    /// Bootstrap token file (mode 0600 or stricter), sent as `Authorization: Bearer`
    /// (inventory: token_file)
    #[arg(long, value_name = "FILE", conflicts_with = "inventory")]
    pub token_file: Option<PathBuf>,
    /// How many nodes to talk to at once
    #[arg(long, short = 'j', value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Print the result as JSON on stdout (no progress display)
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `nodeboot push`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nodeboot push 10.0.0.31 conf01.xml --fingerprint SHA256:ab12… --wait
  nodeboot push 10.0.0.31 conf01.xml --trust-first-use
  nodeboot push --inventory fleet.toml --only conf01,conf02 --parallel 64
  nodeboot push --inventory fleet.toml --dry-run")]
pub struct PushArgs {
    /// The node: host, host:port or [ipv6]:port (port 8443 by default)
    #[arg(
        required_unless_present = "inventory",
        conflicts_with = "inventory",
        requires = "file"
    )]
    pub node: Option<String>,
    /// The node's configuration file (XML, schema 1)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Send the valid files even if some are invalid (those nodes count as failed)
    #[arg(long)]
    pub skip_invalid: bool,
    /// Send the files without checking them here first: the nodes judge them (for a node
    /// whose agent knows a newer schema than this command)
    #[arg(long, conflicts_with = "skip_invalid")]
    pub no_validate: bool,
    /// Validate and show what would be sent where; contact no node
    #[arg(long)]
    pub dry_run: bool,
    /// Give up on a node that has not accepted its file after SECONDS (retrying meanwhile)
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub timeout: f64,
    /// After acceptance, follow each node through apply and reboot until it reports
    /// configured
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting on a node after SECONDS
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600.0,
        requires = "wait"
    )]
    pub wait_timeout: f64,
    /// After its reboot the node answers at ADDR (host[:port]) rather than where it was
    /// pushed to; --wait looks for it at both
    #[arg(
        long,
        value_name = "ADDR",
        requires = "wait",
        conflicts_with = "inventory"
    )]
    pub wait_address: Option<String>,
    /// After its reboot look for each node also at the address its file configures (the
    /// static NAT address if it has one, else eth0's), same port
    #[arg(long, requires = "wait", conflicts_with = "wait_address")]
    pub wait_configured_address: bool,
}

/// Where `--wait` looks for a node after its reboot, besides where it was pushed to.
#[derive(Debug, Clone)]
enum WaitAt {
    /// Only there.
    Same,
    /// Also at this endpoint (`--wait-address`).
    Given(Endpoint),
    /// Also at the address the node's file configures (`--wait-configured-address`).
    Configured,
}

/// Arguments of `nodeboot status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nodeboot status 10.0.0.31 10.0.0.32:8443 --trust-first-use
  nodeboot status --inventory fleet.toml --json")]
pub struct StatusArgs {
    /// Nodes: host, host:port or [ipv6]:port (port 8443 by default)
    #[arg(required_unless_present = "inventory", conflicts_with = "inventory")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Give up on a node after SECONDS
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
}

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

/// Where the operator pins a node's certificate, for the message that refuses an unknown one.
#[derive(Debug, Clone)]
enum PinHint {
    /// `--fingerprint` on the command line.
    Flag,
    /// `fingerprint = "…"` in the node's `[[node]]` table of this TOML inventory.
    Toml(PathBuf),
    /// A third column in this folder inventory's addresses.csv.
    Folder(PathBuf),
}

impl PinHint {
    fn of(fleet: &FleetArgs) -> Self {
        match &fleet.inventory {
            Some(p) if p.is_dir() => PinHint::Folder(p.join(inventory::FOLDER_ADDRESSES)),
            Some(p) => PinHint::Toml(p.clone()),
            None => PinHint::Flag,
        }
    }

    fn how(&self, target: &Target, seen: Fingerprint) -> String {
        match self {
            PinHint::Flag => format!("--fingerprint {seen}"),
            PinHint::Toml(p) => format!(
                "fingerprint = \"{seen}\" in node `{}` of {}",
                target.name,
                p.display()
            ),
            PinHint::Folder(p) => format!(
                "`,{seen}` at the end of the line of `{}` in {}",
                target.name,
                p.display()
            ),
        }
    }
}

/// The trust decisions of a run: the known-nodes file and what first use added to it.
#[derive(Debug)]
struct Trust {
    insecure: bool,
    /// `--trust-first-use`: an unknown node is trusted and recorded.
    first_use: bool,
    /// Ask on the terminal about an unknown node (stdin and stderr are terminals, and
    /// neither `--trust-first-use` nor `--insecure` decided already).
    ask: bool,
    /// One question at a time, however many nodes run at once.
    asking: tokio::sync::Mutex<()>,
    hint: PinHint,
    path: Option<PathBuf>,
    known: Mutex<KnownNodes>,
}

impl Trust {
    fn load(fleet: &FleetArgs) -> anyhow::Result<Self> {
        let path = if fleet.insecure {
            None
        } else {
            Some(
                fleet
                    .known_nodes
                    .clone()
                    .or_else(trust::default_known_nodes_path)
                    .context("no known-nodes file: set HOME or pass --known-nodes FILE")?,
            )
        };
        let known = match &path {
            Some(p) => KnownNodes::load(p)?,
            None => KnownNodes::default(),
        };
        use std::io::IsTerminal as _;
        let ask = !fleet.insecure
            && !fleet.trust_first_use
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal();
        Ok(Trust {
            insecure: fleet.insecure,
            first_use: fleet.trust_first_use,
            ask,
            asking: tokio::sync::Mutex::new(()),
            hint: PinHint::of(fleet),
            path,
            known: Mutex::new(known),
        })
    }

    fn known_nodes_file(&self) -> String {
        self.path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the known-nodes file".into())
    }

    /// Why an unknown node was refused, the fingerprint it showed and how to pin it.
    fn refusal(&self, target: &Target, seen: Fingerprint, declined: bool) -> String {
        format!(
            "REFUSED: unknown node: it presents certificate {seen}, which is neither pinned nor \
             recorded in {}; nothing was sent{}. Compare it with the fingerprint on the node's \
             console, then pin it ({}), or pass --trust-first-use to record it",
            self.known_nodes_file(),
            if declined {
                " (not trusted at the prompt)"
            } else {
                ""
            },
            self.hint.how(target, seen)
        )
    }

    /// On a terminal, asks whether to trust an unknown node's certificate; a yes records it
    /// and returns the policy that pins it. One question at a time; the live display is
    /// paused meanwhile.
    async fn confirm(
        &self,
        display: &Display,
        target: &Target,
        seen: Fingerprint,
    ) -> Option<Policy> {
        if !self.ask {
            return None;
        }
        let _one = self.asking.lock().await;
        let question = format!(
            "\n{} ({}) is not a known node. It presents the certificate\n  {seen}\n\
             Compare it with the fingerprint on the node's console.\n\
             Trust it and record it in {}? [y/N] ",
            target.name,
            target.endpoint,
            self.known_nodes_file()
        );
        display.pause();
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{BufRead as _, Write as _};
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(question.as_bytes());
            let _ = err.flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        })
        .await;
        display.resume();
        let yes = matches!(answer, Ok(Ok(line)) if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"));
        if !yes {
            return None;
        }
        if let Some(notice) = self.record(target, seen) {
            display.note(&notice);
        }
        Some(Policy::Pinned(seen))
    }

    /// The policy for a node, and where a pin came from.
    fn policy(&self, target: &Target, pin_source: PinSource) -> (Policy, Option<PinSource>) {
        if self.insecure {
            return (Policy::Insecure, None);
        }
        if let Some(fp) = target.fingerprint {
            return (Policy::Pinned(fp), Some(pin_source));
        }
        let key = target.endpoint.to_string();
        match self.known.lock().ok().and_then(|k| k.get(&key)) {
            Some(fp) => (Policy::Pinned(fp), Some(PinSource::KnownNodes)),
            None if self.first_use => (Policy::FirstUse, None),
            None => (Policy::Unknown, None),
        }
    }

    /// Records a certificate seen on first use; returns the notice to show.
    fn record(&self, target: &Target, fp: Fingerprint) -> Option<String> {
        let path = self.path.as_ref()?;
        let mut known = self.known.lock().ok()?;
        known.add(&target.endpoint.to_string(), fp);
        Some(format!(
            "{}: first contact, trusting {fp} (recorded in {}; check it against the node's \
             console)",
            target.name,
            path.display()
        ))
    }

    fn save(&self) -> anyhow::Result<()> {
        let (Some(path), Ok(known)) = (&self.path, self.known.lock()) else {
            return Ok(());
        };
        if known.changed() {
            known.save(path)
        } else {
            Ok(())
        }
    }
}

/// What a run shares between its node tasks.
#[derive(Debug)]
struct Run {
    wait_at: WaitAt,
    trust: Trust,
    pin_source: PinSource,
    display: Display,
    timeout: Duration,
    wait: Option<Duration>,
}

/// A node with its validated file.
#[derive(Debug)]
struct Job {
    target: Target,
    body: Bytes,
    digest: String,
    /// The address the file gives the node (static NAT, else eth0), when it parses.
    configured: Option<std::net::IpAddr>,
}

/// A checked document, ready to send.
#[derive(Debug)]
struct Prepared {
    body: Bytes,
    digest: String,
    configured: Option<std::net::IpAddr>,
}

/// Where a configured node is reached from outside: its static NAT address, else eth0's.
fn configured_address(config: &nodeboot_config::NodeConfig) -> std::net::IpAddr {
    match config.network.static_nat {
        Some(nat) => nat.into(),
        None => config.network.ipv4.interface.address().into(),
    }
}

/// A node's document and its digest, checked as the node will check it; or what was
/// invalid and every error (already printed on stderr, compiler-style). `Err` only when a
/// file cannot be read.
#[allow(clippy::type_complexity)]
fn prepare(
    target: &Target,
    check: bool,
) -> anyhow::Result<Result<Prepared, (String, Vec<FileError>)>> {
    let (what, bytes) = match &target.source {
        Source::File(path) => (
            path.display().to_string(),
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        Source::Generated { params, base } => match inventory::generate(params, base) {
            Ok(bytes) => (format!("node `{}` (generated)", target.name), bytes),
            Err(errors) => {
                let what = format!("node `{}` parameters", target.name);
                for e in &errors {
                    eprintln!("{what}: error: {e}");
                }
                let errors = errors
                    .into_iter()
                    .map(|message| FileError {
                        line: None,
                        column: None,
                        path: None,
                        message,
                    })
                    .collect();
                return Ok(Err((what, errors)));
            }
        },
        Source::None => anyhow::bail!(
            "node `{}` has no configuration (inventory: file = \"….xml\" or generate parameters)",
            target.name
        ),
    };
    if !check {
        let digest = nodeboot_config::digest(&bytes);
        let configured = nodeboot_config::parse(&bytes)
            .ok()
            .map(|p| configured_address(p.config()));
        return Ok(Ok(Prepared {
            body: Bytes::from(bytes),
            digest,
            configured,
        }));
    }
    match nodeboot_config::parse(&bytes) {
        Ok(parsed) => {
            if !parsed.warnings().is_empty() {
                let text = nodeboot_config::MaskedSource::new(&bytes);
                for w in parsed.warnings() {
                    eprint!("{}", w.render(&what, &text));
                }
            }
            Ok(Ok(Prepared {
                body: Bytes::from(bytes),
                digest: parsed.digest().to_owned(),
                configured: Some(configured_address(parsed.config())),
            }))
        }
        Err(diagnostics) => {
            let text = nodeboot_config::MaskedSource::new(&bytes);
            for d in &diagnostics {
                eprint!("{}", d.render(&what, &text));
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == nodeboot_config::Severity::Error)
                .map(|d| FileError {
                    line: (d.line > 0).then_some(u64::from(d.line)),
                    column: (d.line > 0).then_some(u64::from(d.column)),
                    path: (!d.path.is_empty()).then(|| d.path.clone()),
                    message: match &d.help {
                        Some(h) => format!("{} (help: {h})", d.message),
                        None => d.message.clone(),
                    },
                })
                .collect();
            Ok(Err((what, errors)))
        }
    }
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
    let pin_source = if args.fleet.fingerprint.is_some() {
        PinSource::CommandLine
    } else {
        PinSource::Inventory
    };

    // Validate every file before sending anything. Results keep the inventory's order.
    let total = targets.len();
    let mut results: Vec<Option<NodeResult>> = (0..total).map(|_| None).collect();
    let mut jobs = Vec::with_capacity(total);
    let mut invalid = 0;
    for (index, target) in targets.into_iter().enumerate() {
        match prepare(&target, !args.no_validate)? {
            Ok(p) => jobs.push((
                index,
                Job {
                    target,
                    body: p.body,
                    digest: p.digest,
                    configured: p.configured,
                },
            )),
            Err((what, errors)) => {
                let mut r = NodeResult::new(
                    &target.name,
                    &target.endpoint.to_string(),
                    Outcome::Invalid,
                    Duration::ZERO,
                );
                r.error = Some(format!("{what} is invalid ({} error(s))", errors.len()));
                r.errors = errors;
                results[index] = Some(r);
                invalid += 1;
            }
        }
    }
    if invalid > 0 && !args.skip_invalid {
        anyhow::bail!(
            "{invalid} of {total} file(s) invalid: nothing was sent (fix them, or pass \
             --skip-invalid to send the others)"
        );
    }

    let trust = Trust::load(&args.fleet)?;
    if args.dry_run {
        for (index, job) in &jobs {
            results[*index] = Some(dry_run(job, &trust, pin_source));
        }
        let all: Vec<NodeResult> = results.into_iter().flatten().collect();
        return Ok(finish(&all, started, args.fleet.json, false));
    }

    let display = Display::new(Mode::choose(args.fleet.json), jobs.len() as u64, "push");
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
    });
    let work = |job: Job| {
        let run = run.clone();
        async move { push_node(&run, job).await }
    };
    for_each_node(jobs, args.fleet.parallel, work, &mut results).await?;
    run.display.finish();
    let saved = run.trust.save();
    let all: Vec<NodeResult> = results.into_iter().flatten().collect();
    let code = finish(&all, started, args.fleet.json, false);
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

fn dry_run(job: &Job, trust: &Trust, pin_source: PinSource) -> NodeResult {
    let (policy, _) = trust.policy(&job.target, pin_source);
    let trust_note = match policy {
        Policy::Pinned(fp) => format!("pinned {fp}"),
        Policy::FirstUse => "first use: record the certificate".into(),
        Policy::Unknown => "unknown certificate: refused unless pinned, --trust-first-use \
                            or a yes at the terminal prompt"
            .into(),
        Policy::Insecure => "insecure: any certificate".into(),
    };
    let mut r = NodeResult::new(
        &job.target.name,
        &job.target.endpoint.to_string(),
        Outcome::WouldSend,
        Duration::ZERO,
    );
    r.digest = Some(job.digest.clone());
    r.error = Some(format!(
        "POST https://{}{BOOTSTRAP_PATH} {} bytes, {trust_note}{}",
        job.target.endpoint,
        job.body.len(),
        if job.target.token.is_some() {
            ", with token"
        } else {
            ""
        }
    ));
    r
}

/// Exponential backoff while a node is not up yet: 0.1 s doubling to 3 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)).min(3000))
}

async fn push_node(run: &Run, job: Job) -> NodeResult {
    let started = Instant::now();
    let deadline = started + run.timeout;
    let target = &job.target;
    let progress = run.display.node(&target.name);
    let (mut policy, mut pin) = run.trust.policy(target, run.pin_source);
    let mut result = NodeResult::new(
        &target.name,
        &target.endpoint.to_string(),
        Outcome::Failed,
        Duration::ZERO,
    );
    result.digest = Some(job.digest.clone());

    let reply = loop {
        let reply = exchange_until(
            &progress,
            target,
            policy,
            deadline,
            &mut result.attempts,
            || Request {
                method: Method::POST,
                path: BOOTSTRAP_PATH,
                token: target.token.as_ref(),
                body: Some(job.body.clone()),
            },
        )
        .await;
        match reply {
            Ok(reply) => break reply,
            Err(ClientError::Unknown { seen }) if policy == Policy::Unknown => {
                match run.trust.confirm(&run.display, target, seen).await {
                    Some(pinned) => (policy, pin) = (pinned, Some(PinSource::KnownNodes)),
                    None => return refuse_unknown(run, &progress, result, started, target, seen),
                }
            }
            Err(e) => return fail(run, &progress, result, started, &e, pin, target),
        }
    };
    result.fingerprint = reply.fingerprint.map(|f| f.to_string());
    if let (Policy::FirstUse, Some(fp)) = (policy, reply.fingerprint) {
        if let Some(notice) = run.trust.record(target, fp) {
            run.display.note(&notice);
        }
    }
    let body = json_body(&reply.body);
    match reply.status {
        s if s.is_success() => {
            if let Some(theirs) = field(body.as_ref(), "digest") {
                if theirs != job.digest {
                    result.error = Some(format!(
                        "the node accepted a file with digest {theirs}, not ours ({}): check the path to the node",
                        job.digest
                    ));
                    return done(&progress, result, started);
                }
            }
            result.result = Outcome::Accepted;
            if let Some(limit) = run.wait {
                progress.step("accepted; waiting for the node to apply and come back");
                let mut places = vec![target.endpoint.clone()];
                match (&run.wait_at, job.configured) {
                    (WaitAt::Given(e), _) => places.push(e.clone()),
                    (WaitAt::Configured, Some(ip)) => places.push(Endpoint {
                        host: ip.to_string(),
                        port: target.endpoint.port,
                    }),
                    _ => {}
                }
                places.dedup();
                // The node proved its certificate at the upload: after the reboot it must
                // present the same one, wherever it answers.
                let policy = match (policy, reply.fingerprint) {
                    (Policy::FirstUse, Some(fp)) => Policy::Pinned(fp),
                    (p, _) => p,
                };
                follow(
                    &progress,
                    target,
                    &places,
                    policy,
                    &job.digest,
                    Instant::now() + limit,
                    &mut result,
                )
                .await;
            }
        }
        StatusCode::CONFLICT => {
            // Busy, or already configured: with our file that is success.
            let status = exchange_until(
                &progress,
                target,
                policy,
                Instant::now() + Duration::from_secs(10),
                &mut result.attempts,
                || Request {
                    method: Method::GET,
                    path: STATUS_PATH,
                    token: target.token.as_ref(),
                    body: None,
                },
            )
            .await;
            let state = status.ok().and_then(|r| json_body(&r.body));
            let their_digest = field(state.as_ref(), "digest");
            let their_state = field(state.as_ref(), "state");
            result.state = their_state.clone();
            if their_digest.as_deref() == Some(job.digest.as_str()) {
                result.result = Outcome::Unchanged;
            } else {
                result.error = Some(format!(
                    "the node refused (409 {}): {}",
                    their_state.as_deref().unwrap_or("busy"),
                    message_of(body.as_ref(), &reply.body).unwrap_or_else(|| {
                        "it is busy or already configured with another file".into()
                    })
                ));
            }
        }
        s if s.is_client_error() => {
            result.result = Outcome::Rejected;
            result.errors = errors_of(body.as_ref(), &reply.body);
            let reason = s.canonical_reason().unwrap_or("");
            result.error = Some(match s {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    format!(
                        "the node refused the upload ({} {reason}): check the bootstrap token",
                        s.as_u16()
                    )
                }
                _ => format!(
                    "the node refused the file ({} {reason}, {} error(s))",
                    s.as_u16(),
                    result.errors.len()
                ),
            });
        }
        s => {
            result.error = Some(format!(
                "unexpected answer {s}: {}",
                message_of(body.as_ref(), &reply.body).unwrap_or_default()
            ));
        }
    }
    done(&progress, result, started)
}

/// Sends the request made by `make` until an HTTP answer arrives, retrying what may pass
/// (the node still booting) with backoff until `deadline`.
async fn exchange_until<'a>(
    progress: &NodeProgress,
    target: &'a Target,
    policy: Policy,
    deadline: Instant,
    attempts: &mut u32,
    make: impl Fn() -> Request<'a>,
) -> Result<client::Reply, ClientError> {
    let mut tries = 0u32;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let per_try = left
            .min(Duration::from_secs(15))
            .max(Duration::from_millis(50));
        if tries == 0 {
            progress.step("connecting");
        }
        *attempts += 1;
        tries += 1;
        match client::exchange(&target.endpoint, policy, make(), per_try).await {
            Ok(reply)
                if matches!(
                    reply.status,
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                ) && Instant::now() < deadline =>
            {
                progress.step(&format!(
                    "node not ready ({}), retrying (attempt {tries})",
                    reply.status.as_u16()
                ));
            }
            Ok(reply) => return Ok(reply),
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                progress.step(&format!("{e}; retrying (attempt {tries})"));
            }
            Err(e) => return Err(e),
        }
        // The last attempt comes at the deadline itself.
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(backoff(tries).min(left)).await;
    }
}

/// `--wait`: polls the node's status until it reports our file configured, riding out the
/// reboot (the endpoint going away), until `deadline`.
#[allow(clippy::too_many_arguments)]
async fn follow(
    progress: &NodeProgress,
    target: &Target,
    places: &[Endpoint],
    policy: Policy,
    digest: &str,
    deadline: Instant,
    result: &mut NodeResult,
) {
    let mut went_away = false;
    let mut polls = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            result.result = Outcome::Failed;
            result.error = Some(format!(
                "accepted, but not back configured before the --wait-timeout ({}){}",
                result
                    .state
                    .as_deref()
                    .map(|s| format!("last state: {s}"))
                    .unwrap_or_else(|| "no answer".into()),
                if went_away {
                    ", after the endpoint went away"
                } else {
                    ""
                }
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(if polls < 10 { 100 } else { 1000 }).min(left))
            .await;
        // Where it was pushed to and, in turn, where it may come back.
        let place = &places[polls as usize % places.len()];
        polls += 1;
        let request = Request {
            method: Method::GET,
            path: STATUS_PATH,
            token: target.token.as_ref(),
            body: None,
        };
        match client::exchange(place, policy, request, left.min(Duration::from_secs(5))).await {
            Ok(reply) if reply.status.is_success() => {
                let body = json_body(&reply.body);
                let state = field(body.as_ref(), "state").unwrap_or_else(|| "unknown".into());
                let state = state.as_str();
                let theirs = field(body.as_ref(), "digest");
                let theirs = theirs.as_deref();
                result.state = Some(state.to_string());
                if is_configured(state) && theirs == Some(digest) {
                    result.result = Outcome::Applied;
                    return;
                }
                if is_configured(state) || state == "failed" {
                    result.result = Outcome::Failed;
                    let why = field(body.as_ref(), "error");
                    result.error = Some(match (theirs, why) {
                        (_, Some(why)) => format!("the node reports {state}: {why}"),
                        (Some(d), None) if d != digest => {
                            format!("the node reports {state} with another file ({d})")
                        }
                        _ => format!("the node reports {state}"),
                    });
                    if let Some(b) = &body {
                        result.errors = errors_of(Some(b), &reply.body);
                    }
                    return;
                }
                progress.step(&format!("node {state}"));
            }
            Ok(reply) if went_away => {
                // Something else answers now (the node's own service after its reboot).
                result.state = Some(format!("back (HTTP {})", reply.status.as_u16()));
                result.result = Outcome::Applied;
                return;
            }
            Ok(reply) => progress.step(&format!("status answered {}", reply.status.as_u16())),
            Err(ClientError::Mismatch { expected, seen }) => {
                result.result = Outcome::Untrusted;
                result.error = Some(format!(
                    "after its reboot the node presents certificate {seen}, not {expected}"
                ));
                return;
            }
            Err(e) => {
                went_away = true;
                progress.step(&format!("rebooting? ({e})"));
            }
        }
    }
}

/// States in which a node runs a configuration (names of our agent and close variants).
fn is_configured(state: &str) -> bool {
    matches!(state, "configured" | "applied")
}

fn done(progress: &NodeProgress, mut result: NodeResult, started: Instant) -> NodeResult {
    result.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let line = match &result.error {
        Some(e) => format!("{}: {e}", result.result.as_str()),
        None => format!("{} in {:.2}s", result.result.as_str(), result.seconds),
    };
    progress.finish(result.result.is_ok(), &line);
    result
}

/// The result for a node that is neither pinned nor known, and was not trusted.
fn refuse_unknown(
    run: &Run,
    progress: &NodeProgress,
    mut result: NodeResult,
    started: Instant,
    target: &Target,
    seen: Fingerprint,
) -> NodeResult {
    result.result = Outcome::Untrusted;
    result.fingerprint = Some(seen.to_string());
    result.error = Some(run.trust.refusal(target, seen, run.trust.ask));
    done(progress, result, started)
}

/// The result for a node whose exchange failed for good.
fn fail(
    run: &Run,
    progress: &NodeProgress,
    mut result: NodeResult,
    started: Instant,
    error: &ClientError,
    pin: Option<PinSource>,
    target: &Target,
) -> NodeResult {
    match error {
        ClientError::Mismatch { expected, seen } => {
            result.result = Outcome::Untrusted;
            result.fingerprint = Some(seen.to_string());
            let (origin, fix) = match pin {
                Some(PinSource::KnownNodes) => (
                    format!(
                        "recorded in {}",
                        run.trust
                            .path
                            .as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                    format!(
                        "if the node was reinstalled, compare {seen} with its console and remove the line `{}` from that file",
                        target.endpoint
                    ),
                ),
                Some(PinSource::CommandLine) => (
                    "given with --fingerprint".into(),
                    "check the fingerprint on the node's console".into(),
                ),
                _ => (
                    "pinned in the inventory".into(),
                    "check the fingerprint on the node's console".into(),
                ),
            };
            result.error = Some(format!(
                "REFUSED: the node presents certificate {seen}, but {expected} is {origin}; nothing was sent ({fix})"
            ));
        }
        ClientError::Unknown { seen } => {
            result.result = Outcome::Untrusted;
            result.fingerprint = Some(seen.to_string());
            result.error = Some(run.trust.refusal(target, *seen, false));
        }
        ClientError::Connect(_) | ClientError::Timeout(_) => {
            result.result = Outcome::Unreachable;
            result.error = Some(format!(
                "{error} (gave up after {} attempt(s))",
                result.attempts
            ));
        }
        _ => result.error = Some(error.to_string()),
    }
    done(progress, result, started)
}

fn json_body(body: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| v.is_object())
}

/// A string field of a node's JSON reply, as text that is safe to show: a node's words
/// reach the operator's terminal, so control characters (ESC, BEL, C1) and bidi overrides
/// are removed and the text is kept on one line.
fn field(json: Option<&serde_json::Value>, key: &str) -> Option<String> {
    json.and_then(|j| j.get(key))
        .and_then(|v| v.as_str())
        .map(nodeboot_config::text::printable_line)
}

/// A short text to show from a reply: its JSON `message`/`error`, or its text.
fn message_of(json: Option<&serde_json::Value>, raw: &[u8]) -> Option<String> {
    if json.is_some() {
        return ["message", "error", "detail"]
            .into_iter()
            .find_map(|key| field(json, key));
    }
    let text = nodeboot_config::text::printable_line(&nodeboot_config::text::printable_lossy(raw));
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(300).collect())
}

/// Every error a node listed in a 4xx answer, tolerant of the exact field names
/// (`element` or `path`, numbers or strings).
fn errors_of(json: Option<&serde_json::Value>, raw: &[u8]) -> Vec<FileError> {
    let list = json
        .and_then(|j| j.get("errors"))
        .and_then(|e| e.as_array());
    let Some(list) = list else {
        return message_of(json, raw)
            .map(|message| {
                vec![FileError {
                    line: None,
                    column: None,
                    path: None,
                    message,
                }]
            })
            .unwrap_or_default();
    };
    list.iter()
        .map(|e| {
            let num = |k: &str| {
                e.get(k).and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
            };
            let text = |k: &str| field(Some(e), k);
            let mut message = text("message")
                .or_else(|| e.as_str().map(nodeboot_config::text::printable_line))
                .unwrap_or_else(|| nodeboot_config::text::printable_line(&e.to_string()));
            if text("severity").as_deref() == Some("warning") {
                message = format!("warning: {message}");
            }
            if let Some(help) = text("help") {
                message = format!("{message} (help: {help})");
            }
            FileError {
                line: num("line"),
                column: num("column"),
                path: text("path").or_else(|| text("element")),
                message,
            }
        })
        .collect()
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let timeout = seconds(args.timeout, "--timeout")?;
    let single: Vec<(String, Option<PathBuf>)> =
        args.nodes.iter().map(|n| (n.clone(), None)).collect();
    let targets = targets(&args.fleet, &single)?;
    let pin_source = if args.fleet.fingerprint.is_some() {
        PinSource::CommandLine
    } else {
        PinSource::Inventory
    };
    let trust = Trust::load(&args.fleet)?;
    let display = Display::new(
        Mode::choose(args.fleet.json),
        targets.len() as u64,
        "status",
    );
    let run = Arc::new(Run {
        wait_at: WaitAt::Same,
        trust,
        pin_source,
        display,
        timeout,
        wait: None,
    });
    let mut results: Vec<Option<NodeResult>> = (0..targets.len()).map(|_| None).collect();
    let work = |target: Target| {
        let run = run.clone();
        async move { status_node(&run, target).await }
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

async fn status_node(run: &Run, target: Target) -> NodeResult {
    let started = Instant::now();
    let progress = run.display.node(&target.name);
    let (mut policy, mut pin) = run.trust.policy(&target, run.pin_source);
    let mut result = NodeResult::new(
        &target.name,
        &target.endpoint.to_string(),
        Outcome::Failed,
        Duration::ZERO,
    );
    progress.step("asking");
    let reply = loop {
        let request = Request {
            method: Method::GET,
            path: STATUS_PATH,
            token: target.token.as_ref(),
            body: None,
        };
        result.attempts += 1;
        match client::exchange(&target.endpoint, policy, request, run.timeout).await {
            Ok(r) => break r,
            Err(ClientError::Unknown { seen }) if policy == Policy::Unknown => {
                match run.trust.confirm(&run.display, &target, seen).await {
                    Some(pinned) => (policy, pin) = (pinned, Some(PinSource::KnownNodes)),
                    None => return refuse_unknown(run, &progress, result, started, &target, seen),
                }
            }
            Err(e) => return fail(run, &progress, result, started, &e, pin, &target),
        }
    };
    result.fingerprint = reply.fingerprint.map(|f| f.to_string());
    if let (Policy::FirstUse, Some(fp)) = (policy, reply.fingerprint) {
        if let Some(notice) = run.trust.record(&target, fp) {
            run.display.note(&notice);
        }
    }
    let body = json_body(&reply.body);
    if !reply.status.is_success() {
        result.error = Some(format!(
            "status answered {}: {}",
            reply.status,
            message_of(body.as_ref(), &reply.body).unwrap_or_default()
        ));
        return done(&progress, result, started);
    }
    let Some(body) = body else {
        result.error =
            Some("status answered, but not with a JSON object (is this a nodeboot agent?)".into());
        return done(&progress, result, started);
    };
    let text = |k: &str| field(Some(&body), k);
    result.result = Outcome::Answered;
    result.state = text("state");
    result.digest = text("digest");
    result.version = text("version");
    result.errors = errors_of(Some(&body), &reply.body);
    if !result.errors.is_empty() {
        result.error = Some(format!("last attempt: {} error(s)", result.errors.len()));
    }
    done(&progress, result, started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_are_read_whatever_the_field_names() {
        let body = br#"{"errors":[{"line":3,"column":"7","element":"/node-config/role","message":"bad role","help":"management"},
                       {"path":"/x","message":"m","severity":"error"},
                       {"severity":"warning","path":"/w","message":"expires soon"}, "plain"]}"#;
        let json = json_body(body);
        let errors = errors_of(json.as_ref(), body);
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "3:7: /node-config/role: bad role (help: management)",
                "/x: m",
                "/w: warning: expires soon",
                "plain"
            ]
        );
        let errors = errors_of(None, b"too large\n");
        assert_eq!(errors[0].to_string(), "too large");
        assert!(errors_of(None, b"").is_empty());
    }

    #[test]
    fn backoff_grows_then_stays_at_three_seconds() {
        let steps: Vec<u64> = (0..8).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
    }

    #[test]
    fn a_node_is_looked_for_at_its_nat_address_else_at_eth0() {
        let at = |xml: &str| {
            let parsed = nodeboot_config::parse(xml.as_bytes()).unwrap();
            configured_address(parsed.config()).to_string()
        };
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/valid/");
        let read = |name: &str| std::fs::read_to_string(format!("{fixtures}{name}")).unwrap();
        assert_eq!(at(&read("transcoding.xml")), "10.0.0.31");
        assert_eq!(at(&read("proxying.xml")), "203.0.113.21");
    }
}
