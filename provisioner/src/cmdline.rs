//! The command line of `nodeboot`: the clap definitions and nothing else. `main.rs`
//! dispatches on them; `nodeboot-docgen` renders the man pages and completions from them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use nodeboot_config::inventory::RouteParam;

use crate::console::transport::Transport;

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
    Validate(ValidateArgs),
    /// Write a valid configuration file from flags or an inventory
    Generate(Box<GenerateArgs>),
    /// Send configurations to nodes
    Push(PushArgs),
    /// Show nodes' state (from their endpoint's /api/v1/status)
    Status(StatusArgs),
    /// Drive a node's console wizard unattended
    Bootstrap(BootstrapArgs),
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
  nodeboot push --inventory fleet.toml --dry-run
  nodeboot push --inventory fleet.toml --plan

With --wait, each node ends healthy, unhealthy: <failed check>, rolled back:
<reason> or timed out; the exit status is 0 only when every node is healthy.")]
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
    /// Ask each node what applying its file would change (every file, with a diff,
    /// secrets masked); the nodes change nothing
    #[arg(long, conflicts_with_all = ["dry_run", "wait"])]
    pub plan: bool,
    /// Give up on a node that has not accepted its file after SECONDS (retrying meanwhile)
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub timeout: f64,
    /// After acceptance, follow each node through apply and reboot until its first boot
    /// proves itself: healthy (same certificate, our file, every check passed), unhealthy
    /// (a check failed) or rolled back; only healthy counts as success
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting on a node after SECONDS; the default covers a reboot, the checks'
    /// 120 s grace period and the second reboot of a rollback, with room to spare
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

/// Arguments of `nodeboot validate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  nodeboot validate conf01.example.com.xml\n  nodeboot validate --strict *.xml\n  nodeboot validate --json conf01.xml | jq .files[0].errors"
)]
pub struct ValidateArgs {
    /// Configuration files (XML; metadata JSON when the name ends in .json)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON document instead of compiler-style text
    #[arg(long)]
    pub json: bool,
    /// Treat warnings (e.g. a certificate expiring within 30 days) as failures
    #[arg(long)]
    pub strict: bool,
}

/// Arguments of `nodeboot generate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  nodeboot generate --role transcoding --hostname conf01 --domain example.com \\
    --system-location London --ip 10.0.0.31 --netmask 255.255.255.0 \\
    --gateway 10.0.0.1 --dns 10.0.0.2 --ntp pool.ntp.org \\
    --management-node 10.0.0.10
  nodeboot generate --from inventory.toml --node conf01 --password-stdin < pw

Passwords are asked for without echo (twice), or read from stdin with
--password-stdin (first line: the OS admin password; second line, management
role only: the web admin password). They are never taken from a flag.")]
pub struct GenerateArgs {
    /// Inventory file to take the node's parameters from (flags override them)
    #[arg(long, value_name = "INVENTORY", requires = "node")]
    pub from: Option<PathBuf>,
    /// The inventory node to generate
    #[arg(long, value_name = "NAME", requires = "from")]
    pub node: Option<String>,
    /// Output file (default: <hostname>.<domain>.xml; "-" for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file
    #[arg(long)]
    pub force: bool,
    /// Read the password(s) from stdin instead of prompting
    #[arg(long)]
    pub password_stdin: bool,

    /// management, transcoding or proxying
    #[arg(long, help_heading = "Node")]
    pub role: Option<String>,
    /// The name the platform shows (default: the hostname)
    #[arg(long, help_heading = "Node")]
    pub name: Option<String>,
    /// Free-text description
    #[arg(long, help_heading = "Node")]
    pub description: Option<String>,
    /// Host name (first label of the FQDN)
    #[arg(long, help_heading = "Node")]
    pub hostname: Option<String>,
    /// Domain suffix
    #[arg(long, help_heading = "Node")]
    pub domain: Option<String>,
    /// System location (conferencing roles)
    #[arg(long, help_heading = "Node")]
    pub system_location: Option<String>,
    /// Management Node address (conferencing roles)
    #[arg(long, help_heading = "Node")]
    pub management_node: Option<String>,
    /// true or false (conferencing roles; default true)
    #[arg(long, value_name = "BOOL", help_heading = "Node")]
    pub distributed_database: Option<bool>,

    /// eth0 IPv4 address
    #[arg(long, help_heading = "Network")]
    pub ip: Option<String>,
    /// eth0 netmask, e.g. 255.255.255.0
    #[arg(long, help_heading = "Network")]
    pub netmask: Option<String>,
    /// IPv4 default gateway
    #[arg(long, help_heading = "Network")]
    pub gateway: Option<String>,
    /// eth1 IPv4 address
    #[arg(long, help_heading = "Network")]
    pub secondary_ip: Option<String>,
    /// eth1 netmask
    #[arg(long, help_heading = "Network")]
    pub secondary_netmask: Option<String>,
    /// eth0 IPv6 address with prefix, e.g. 2001:db8::31/64
    #[arg(long, help_heading = "Network")]
    pub ipv6: Option<String>,
    /// IPv6 gateway (default: router advertisements)
    #[arg(long, help_heading = "Network")]
    pub ipv6_gateway: Option<String>,
    /// Public IPv4 address behind one-to-one NAT
    #[arg(long, help_heading = "Network")]
    pub static_nat: Option<String>,
    /// Static route NAME:DESTINATION:GATEWAY (repeatable)
    #[arg(long, value_name = "ROUTE", help_heading = "Network")]
    pub route: Vec<RouteParam>,
    /// DNS server address (repeatable, or comma-separated)
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub dns: Vec<String>,
    /// NTP server (repeatable, or comma-separated)
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub ntp: Vec<String>,

    /// SSH: global, on or off (default global)
    #[arg(long, help_heading = "Access")]
    pub ssh: Option<String>,
    /// OpenSSH public key file for the admin account (repeatable)
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    pub authorized_key_file: Vec<PathBuf>,
    /// SIP TLS FQDN (conferencing roles)
    #[arg(long, help_heading = "Access")]
    pub sip_tls_fqdn: Option<String>,
    /// PEM certificate chain file (conferencing roles)
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    pub tls_certificate_file: Option<PathBuf>,
    /// PEM private key file matching the certificate
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    pub tls_key_file: Option<PathBuf>,

    /// Web administration user name (management role)
    #[arg(long, help_heading = "Management role")]
    pub web_admin_user: Option<String>,
    /// true or false (management role)
    #[arg(long, value_name = "BOOL", help_heading = "Management role")]
    pub incident_reporting: Option<bool>,
    /// true or false (management role)
    #[arg(long, value_name = "BOOL", help_heading = "Management role")]
    pub usage_statistics: Option<bool>,
    /// Contact e-mail address (management role)
    #[arg(long, help_heading = "Management role")]
    pub contact_email: Option<String>,
}

/// Arguments of `nodeboot bootstrap`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nodeboot bootstrap --console unix:/run/vm/mgr.sock \\
      --answers mgr.xml --secrets-file mgr.secrets
  nodeboot bootstrap --console 'exec:ssh -t console@host' \\
      --answers mgr.xml --transcript mgr.log
  printf 'os_password=...\\nweb_password=...\\n' | nodeboot bootstrap \\
      --console tcp:127.0.0.1:4555 --answers mgr.xml --secrets-stdin

The secrets file (mode 0600) and stdin hold two lines:
  os_password=<the new password of the OS account admin>
  web_password=<the web administration password>
Both must match the hashes in the answers file.")]
pub struct BootstrapArgs {
    /// How to reach the console: exec:CMD, tcp:HOST:PORT, unix:PATH,
    /// serial:/dev/ttyX[@BAUD] or pty:PATH
    #[arg(
        long,
        value_name = "TRANSPORT",
        required_unless_present = "print_profile"
    )]
    pub console: Option<Transport>,
    /// The Management Node's schema-1 configuration file (hashes only)
    #[arg(long, value_name = "FILE", required_unless_present = "print_profile")]
    pub answers: Option<PathBuf>,
    /// A dialog profile (TOML) instead of the built-in one
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Read the passwords from this file (mode 0600, no group or other access)
    #[arg(long, value_name = "FILE", conflicts_with = "secrets_stdin")]
    pub secrets_file: Option<PathBuf>,
    /// Read the passwords from standard input
    #[arg(long)]
    pub secrets_stdin: bool,
    /// Write what was exchanged to this file, every secret masked (created 0600; an
    /// existing file must be 0600 or stricter)
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Print the built-in profile and exit
    #[arg(long, conflicts_with_all = ["console", "answers", "profile"])]
    pub print_profile: bool,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
    /// When the wizard's checks before the apply fail (gateway, DNS, NTP), answer
    /// "continue anyway" instead of quitting it (nothing applied, bootstrap fails)
    #[arg(long)]
    pub continue_on_failed_checks: bool,
    /// Print the outcome and the wizard's checks as JSON on standard output
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
