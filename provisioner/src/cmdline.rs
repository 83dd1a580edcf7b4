//! The command line of `nodeboot`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{console, offline};

/// Validate, generate and push node configurations; bootstrap nodes over their console.
#[derive(Debug, Parser)]
#[command(name = "nodeboot", version, max_term_width = 80)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The operator's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files offline
    Validate(offline::validate::Args),
    /// Write a valid configuration file from flags or an inventory
    Generate(Box<offline::generate::Args>),
    /// Send configurations to nodes
    Push(PushArgs),
    /// Show nodes' state (from their endpoint's /api/v1/status)
    Status(StatusArgs),
    /// Drive a node's console wizard unattended
    Bootstrap(console::BootstrapArgs),
}

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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
