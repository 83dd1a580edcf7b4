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

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nodeboot_config::api::NodeState;
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
    let interrupted = crate::rootfs::Root::open(&args.root)
        .map_err(anyhow::Error::msg)
        .and_then(|root| crate::apply::transaction::pending(&root).map_err(anyhow::Error::msg))
        .context("reading the journal of an interrupted apply")?;
    node::Node::recover(node.as_ref())
        .map_err(anyhow::Error::msg)
        .context("finishing an interrupted apply")?;
    // A power cut after the commit point: recovery completed the apply, but this boot read
    // the old files (hostname, network). Reboot into the configuration instead of serving.
    let configured = node::Node::status(node.as_ref()).map(|s| s.phase == NodeState::Configured);
    if let (Some(digest), Ok(true)) = (interrupted, configured) {
        warn!(%digest, "completed an interrupted apply at start; rebooting into it");
        if let Err(e) = crate::apply::reboot::after(Duration::ZERO, args.reboot.reboot().as_ref()) {
            warn!(error = %e, "reboot failed");
        }
        shutdown_signal().await;
        return Ok(());
    }

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

    let configured = node::Node::status(node.as_ref())
        .map(|s| s.phase == nodeboot_config::api::NodeState::Configured)
        .unwrap_or(false);
    let mut banner_text = banner::render_banner(&urls, &identity.fingerprint, configured);
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
        .with_banner(args.root.clone(), urls)
        .with_source(source);
    serve(listener, tls_config, Arc::new(agent), shutdown).await;
    Ok(())
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
