//! The HTTPS configuration receiver on port 8443 (`nodeboot-agent serve`): a browser form and
//! `POST /configuration/bootstrap` for scripts, answered in HTML or JSON; a valid file is
//! handed to the apply engine once the reply has gone out, then the node reboots.
//!
//! Rooms: [`tls`] (certificate and fingerprint), [`banner`] (console banner, addresses),
//! [`access`] (token, allow-list), [`limits`], [`page`] (HTML), [`status`] (what is reported),
//! [`node`] (the seam to validation and apply), [`http`] (accept loop and routes). This module
//! only wires them together for the command line; tests call [`http::serve`] directly.

pub mod access;
pub mod banner;
pub mod http;
pub mod limits;
pub mod node;
pub mod page;
pub mod status;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ipnet::IpNet;
use tracing::{info, warn};

pub use http::{Agent, serve};

use crate::apply::RebootArgs;

/// Arguments of `nodeboot-agent serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    nodeboot-agent serve\n  \
    nodeboot-agent serve --listen 127.0.0.1:8443 --root /tmp/node --reboot none\n  \
    nodeboot-agent serve --token-file /etc/nodeboot/token --allow 10.0.0.0/24")]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Root of the node's file system (a temporary directory in tests and demos)
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Certificate chain (PEM) to serve instead of the generated one
    #[arg(long, requires = "key", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert
    #[arg(long, requires = "cert", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Accept only uploads carrying the token in this file (form field or Bearer)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept clients from this network only (repeatable), e.g. 10.0.0.0/24
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<IpNet>,
    /// Seconds between a finished apply and the reboot
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub reboot_delay: u64,
    #[command(flatten)]
    pub reboot: RebootArgs,
    /// Connections served at once
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
}

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
    let node = Arc::new(node::RootNode {
        root: args.root.clone(),
    });
    let interrupted = crate::apply::transaction::pending(&args.root)
        .map_err(anyhow::Error::msg)
        .context("reading the journal of an interrupted apply")?;
    node::Node::recover(node.as_ref())
        .map_err(anyhow::Error::msg)
        .context("finishing an interrupted apply")?;
    // A power cut after the commit point: recovery completed the apply, but this boot read
    // the old files (hostname, network). Reboot into the configuration instead of serving.
    let configured = node::Node::status(node.as_ref()).map(|s| s.phase == node::Phase::Configured);
    if let (Some(digest), Ok(true)) = (interrupted, configured) {
        warn!(%digest, "completed an interrupted apply at start; rebooting into it");
        if let Err(e) = args.reboot.reboot().reboot() {
            warn!(error = %e, "reboot failed");
        }
        shutdown_signal().await;
        return Ok(());
    }

    let access = access::Access::new(read_token(args.token_file.as_deref())?, args.allow.clone());

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
        .map(|s| s.phase == node::Phase::Configured)
        .unwrap_or(false);
    let banner_text = banner::render_banner(&urls, &identity.fingerprint, configured);
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
            max_connections: args.max_connections,
            ..limits::Limits::default()
        })
        .with_banner(args.root.clone(), urls);
    serve(listener, tls_config, Arc::new(agent), shutdown_signal()).await;
    Ok(())
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

/// Completes on SIGTERM (systemd stopping the service) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
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
