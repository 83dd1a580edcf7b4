//! The HTTPS configuration receiver on port 8443 (`nodeboot-agent serve`): a browser form and
//! `POST /configuration/bootstrap` for scripts, answered in HTML or JSON; a valid file is
//! handed to the apply engine once the reply has gone out, then the node reboots.
//!
//! A request goes through layers, each in its room: [`http`] (accept loop, [`limits`] and
//! [`access`] at accept, TLS from [`tls`], HTTP/1.1) → [`route`] (pure: method, path and
//! headers to an action) → [`effect`] (reading the body with [`body`], validating, the apply
//! through [`node`], with the shared state in [`agent`]) → an [`answer`] value → [`render`]
//! (pure: the answer to status, headers and body; HTML from [`page`], JSON from the wire
//! contract `nodeboot_config::api`). [`status`] bounds what is remembered and shown,
//! [`failure`] turns a failed apply's logged detail into the client's message, [`banner`]
//! writes the console banner. This module only wires them together for the command line;
//! tests call [`http::serve`] directly.

pub mod access;
pub mod agent;
pub mod answer;
pub mod banner;
pub mod body;
pub mod effect;
pub mod failure;
pub mod http;
pub mod limits;
pub mod node;
pub mod page;
pub mod render;
pub mod route;
pub mod status;
pub mod tls;
pub mod window;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use std::path::PathBuf;

use nodeboot_config::api::{self, NodeState};
use tracing::{info, warn};

pub use http::{Agent, serve};

use crate::cmdline::ServeArgs;

/// Runs `nodeboot-agent serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve_from_args(args, started))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

async fn serve_from_args(args: ServeArgs, started: Instant) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let node = Arc::new(node::RootNode {
        root: args.root.clone(),
    });
    // A power cut in the middle of an apply: this boot read files from the middle of it
    // (hostname, network). Recovery finishes or undoes it; reboot into what it left instead
    // of serving, either way.
    let interrupted = node::Node::recover_at_boot(node.as_ref())
        .map_err(anyhow::Error::msg)
        .context("finishing an interrupted apply")?;
    if let Some(digest) = interrupted {
        warn!(%digest, "recovered an interrupted apply at start; rebooting into the result");
        if let Err(e) = crate::apply::reboot::after(Duration::ZERO, args.reboot.reboot().as_ref()) {
            warn!(error = %e, "reboot failed");
        }
        shutdown_signal().await;
        return Ok(());
    }

    // A configured node serves only during the read-only window of its first boot after the
    // apply (while `nodeboot-check` keeps its checks in run/nodeboot/health.json), then stops
    // for good; an unconfigured one shows a rollback's reason, if it had one.
    let configured = matches!(
        node::Node::status(node.as_ref()).map(|s| s.phase),
        Ok(NodeState::Configured)
    );
    let now = now_unix();
    let (window, rolled_back) = if configured {
        let health = window::read_health(&args.root).unwrap_or_else(|e| {
            warn!(error = %e, "reading {}; served as absent", api::HEALTH_STATUS_PATH);
            None
        });
        match health {
            None => {
                info!(
                    "this node is configured and no checks of this boot are running; nothing to serve"
                );
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                return Ok(());
            }
            Some(h) if window::window_end(&h, now) <= now => {
                info!("the read-only status window of this boot has ended; nothing to serve");
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                return Ok(());
            }
            Some(h) => (
                Some(agent::Window::new(window::window_end(&h, now), h)),
                None,
            ),
        }
    } else {
        let record = window::read_rolled_back(&args.root).unwrap_or_else(|e| {
            warn!(error = %e, "reading {}; served as absent", api::ROLLED_BACK_PATH);
            None
        });
        (None, record)
    };

    // Descriptors first: one per connection, and an apply must never run out of them.
    let max_connections = match descriptor_limit() {
        Some(nofile) => {
            let (n, warning) = limits::connections_within(args.max_connections, nofile);
            if let Some(w) = warning {
                warn!("{w}");
            }
            info!(
                descriptors = nofile,
                max_connections = n,
                "connection limits"
            );
            n
        }
        None => args.max_connections,
    };
    // A token a boot-time source supplied (`acquire` recorded it) when none is given.
    let token_file = args
        .token_file
        .clone()
        .or_else(|| crate::source::record::token_file(&args.root));
    let access = access::Access::new(read_token(token_file.as_deref())?, args.allow.clone());
    let source = crate::source::record::read_report(&args.root);

    let addresses = banner::local_addresses();
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => tls::load(cert, key)?,
        _ => tls::load_or_generate(
            &args.root,
            &tls::SubjectNames {
                hostname: banner::hostname(),
                addresses: addresses.clone(),
            },
        )?,
    };
    let tls_config = tls::server_config(&identity)?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let urls = banner::urls(local, &addresses);

    let mut banner_text = rolled_back
        .as_ref()
        .map(banner::render_rolled_back_note)
        .unwrap_or_default();
    banner_text.push_str(&banner::render_banner(
        &urls,
        &identity.fingerprint,
        configured,
    ));
    if let Some(w) = &window {
        banner_text.push_str(&banner::render_health_note(&w.health(), w.ends_unix));
    }
    if let (false, Some(r)) = (configured, &source) {
        banner_text.push_str(&banner::render_source_note(r));
        banner_text.push('\n');
    }
    match banner::write_banner(&args.root, &banner_text) {
        Ok(path) => info!(path = %path.display(), "console banner written"),
        Err(e) => warn!(error = %e, "writing the console banner"),
    }
    info!(
        fingerprint = %identity.fingerprint,
        certificate = ?identity.origin,
        "certificate"
    );
    for url in &urls {
        info!("configure this node at {url}");
    }
    info!(
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        "listening on https://{local}/"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let reboot = args.reboot.reboot();
    let agent = Agent::new(node, reboot, identity.fingerprint.clone())
        .with_reboot_delay(Duration::from_secs(args.reboot_delay))
        .with_access(access)
        .with_limits(limits::Limits {
            max_connections,
            max_per_address: args.max_per_address.max(1),
            max_lifetime: Duration::from_secs(args.max_lifetime.max(1)),
            max_requests: args.max_requests.max(1),
            max_uploads: args.max_uploads.max(1),
            ..limits::Limits::default()
        })
        .with_banner(args.root.clone(), urls.clone())
        .with_source(source)
        .with_rolled_back(rolled_back);
    let Some(window) = window else {
        serve(listener, tls_config, Arc::new(agent), shutdown).await;
        return Ok(());
    };
    let ends = window.ends_unix;
    info!(
        until = %nodeboot_config::format_utc(i64::try_from(ends).unwrap_or(i64::MAX)),
        "serving the status of this boot's checks read-only"
    );
    let agent = Arc::new(agent.with_window(window));
    let poll = tokio::spawn(follow_health(
        agent.clone(),
        args.root.clone(),
        urls,
        identity.fingerprint.clone(),
    ));
    let left = Duration::from_secs(ends.saturating_sub(now_unix()));
    let until_end = async move {
        tokio::select! {
            () = shutdown => {}
            () = tokio::time::sleep(left) => {
                info!("the read-only status window ended; stopping for good");
            }
        }
    };
    serve(listener, tls_config, agent, until_end).await;
    poll.abort();
    Ok(())
}

/// How often the window re-reads the checks (`nodeboot-check` rewrites them while it retries).
const HEALTH_POLL: Duration = Duration::from_secs(1);

/// Re-reads the checks every [`HEALTH_POLL`] during the window; a new reading replaces the
/// one shown and rewrites the banner. A file gone or unreadable keeps the last reading (the
/// error is logged once until it changes).
async fn follow_health(agent: Arc<Agent>, root: PathBuf, urls: Vec<String>, fingerprint: String) {
    let mut tick = tokio::time::interval(HEALTH_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        let Some(window) = agent.window() else { return };
        let read_root = root.clone();
        let read = tokio::task::spawn_blocking(move || window::read_health(&read_root)).await;
        let health = match read {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                if last_error.as_ref() != Some(&e) {
                    warn!(error = %e, "reading {}; keeping the last reading", api::HEALTH_STATUS_PATH);
                    last_error = Some(e);
                }
                continue;
            }
            Err(_) => continue,
        };
        last_error = None;
        if window.update(health.clone()) {
            info!(summary = %health.summary(), "checks of this boot");
            let mut text = banner::render_banner(&urls, &fingerprint, true);
            text.push_str(&banner::render_health_note(&health, window.ends_unix));
            if let Err(e) = banner::write_banner(&root, &text) {
                warn!(error = %e, "updating the console banner");
            }
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The process's descriptor limit (RLIMIT_NOFILE), after raising the soft limit to the hard
/// one; `None` when it cannot be read.
fn descriptor_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "reading the descriptor limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    // The kernel refuses more than fs.nr_open (1048576 by default), "unlimited" included.
    let wanted = hard.min(1 << 20);
    if soft >= wanted {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
        Ok(()) => Some(wanted),
        Err(e) => {
            warn!(error = %e, soft, hard, "raising the descriptor limit to its hard limit");
            Some(soft)
        }
    }
}

fn read_token(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<nodeboot_config::Secret<String>>> {
    let Some(path) = path else { return Ok(None) };
    let contents = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = access::Access::token_from_file_contents(&contents)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    Ok(Some(token))
}

/// Completes on SIGTERM (systemd stopping the service) or SIGINT (Ctrl-C). The handlers are
/// installed when this is called, not when the future is first polled: a SIGTERM that comes
/// right after "listening" still stops the agent gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move { wait_for_signal(term, int).await }
}

async fn wait_for_signal(
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
) {
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM received"),
                _ = int.recv() => info!("SIGINT received"),
            }
        }
        _ => {
            warn!("cannot watch signals; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
