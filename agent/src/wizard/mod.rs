//! The console installation wizard: asks the seed's questions on the terminal it runs on (or
//! takes them from a file with `--answers`), builds a Management Node configuration, hands it
//! to the apply engine and reboots.
//!
//! `dialog` is the pure state machine, `term` the thin terminal layer; this module wires them
//! to the node: the current network settings (the defaults, through [`NetworkProbe`]), the OS
//! `admin` password hash (read from `<root>/etc/shadow`, set a moment ago by the forced
//! password change), the pre-apply checks (through [`PreApplyChecks`]: the gateway, DNS and
//! NTP checks of [`crate::health`], run from the node's current DHCP address) and
//! [`crate::apply::apply_config`]. The wizard never writes a node file itself.

pub mod dialog;
pub mod term;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use nodeboot_config::api::CheckResult;
use nodeboot_config::{Diagnostic, Document, ManagementDraft, Named, NodeConfig, PasswordHash};

use crate::apply;
use crate::cmdline::WizardCli;
use crate::health::{self, ArpSender, Check, Policy, SystemProbe};
use crate::rootfs;
use dialog::{Answers, Defaults, Dialog, Question, Reply, check_line};
use term::{ReadError, Terminal};

/// The checks run before the apply, as an effect: tests give a fake, the wizard
/// [`SystemChecks`].
pub trait PreApplyChecks {
    /// Runs `checks` and gives one result per check, in order.
    fn run(&self, checks: &[Check]) -> Vec<CheckResult>;
}

/// The real checks: [`health::run_checks`] with the [`SystemProbe`] on a current-thread
/// runtime, ARP sent as an RFC 5227 probe (sender 0.0.0.0: the node still holds its DHCP
/// address, and the configured one is not yet its own).
#[derive(Debug, Clone)]
pub struct SystemChecks {
    /// Deadline, attempt and pause of each check.
    pub policy: Policy,
}

impl SystemChecks {
    /// Each check may take `deadline` (retries included).
    pub fn new(deadline: Duration) -> SystemChecks {
        SystemChecks {
            policy: Policy {
                deadline,
                attempt: deadline.min(Duration::from_secs(1)),
                pause: Duration::from_millis(250),
            },
        }
    }
}

impl PreApplyChecks for SystemChecks {
    fn run(&self, checks: &[Check]) -> Vec<CheckResult> {
        let probe = SystemProbe {
            arp_sender: ArpSender::Unspecified,
            ..SystemProbe::default()
        };
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(health::run_checks(checks, &probe, &self.policy)),
            // no runtime, no checks: each one fails with why
            Err(e) => checks
                .iter()
                .map(|c| CheckResult {
                    kind: c.kind(),
                    subject: c.subject(),
                    passed: false,
                    attempts: 0,
                    elapsed_ms: 0,
                    tried: Vec::new(),
                    reason: format!("the check could not start: {e}"),
                })
                .collect(),
        }
    }
}

/// The checks that make sense before the apply, from the configuration to be applied: the
/// gateways (on `interface` for eth0's: the interface the wizard runs on), each DNS server,
/// each NTP server. The address and route checks are left out: the node holds its DHCP
/// address until the reboot. Pure.
pub fn pre_apply_checks(config: &NodeConfig, interface: &str) -> Vec<Check> {
    health::plan_checks(config)
        .into_iter()
        .filter_map(|c| match c {
            Check::Gateway { iface, addr } => Some(Check::Gateway {
                iface: if iface == "eth0" {
                    interface.to_owned()
                } else {
                    iface
                },
                addr,
            }),
            c @ (Check::Dns { .. } | Check::Ntp { .. }) => Some(c),
            Check::Addresses { .. } | Check::Management { .. } | Check::Route { .. } => None,
        })
        .collect()
}

/// The line before the check lines.
const CHECKING: &str = "Checking the gateway, the DNS servers and the NTP servers...";

/// The node's current network settings: the wizard's defaults.
pub trait NetworkProbe {
    /// What the interface and resolver hold now (DHCP-given values on a new node).
    fn current(&self) -> Defaults;
}

/// The live system: the interface's address from getifaddrs, the default gateway from
/// `/proc/net/route`, DNS servers and search domain from the interface's DHCP lease
/// (systemd-networkd's `<root>/run/systemd/netif/leases/IFINDEX`: nothing writes a DHCP
/// node's resolv.conf), else from `<root>/etc/resolv.conf`; the lease's router when the
/// routing table has no default route yet.
#[derive(Debug, Clone)]
pub struct SystemNetwork {
    /// The interface, e.g. `eth0`.
    pub interface: String,
    /// The node's root (for resolv.conf).
    pub root: PathBuf,
}

impl NetworkProbe for SystemNetwork {
    fn current(&self) -> Defaults {
        let (address, netmask) = interface_address(&self.interface).unwrap_or((None, None));
        let lease = std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", self.interface))
            .ok()
            .and_then(|index| {
                let path = format!("run/systemd/netif/leases/{}", index.trim());
                rootfs::read_text_or_none(&self.root, Path::new(&path))
            })
            .map(|text| parse_networkd_lease(&text))
            .unwrap_or_default();
        let gateway = std::fs::read_to_string("/proc/net/route")
            .ok()
            .and_then(|t| default_gateway(&t, &self.interface))
            .or(lease.router);
        // A link here is not followed (an image's systemd-resolved link reads as no defaults).
        let resolv =
            rootfs::read_text_or_none(&self.root, Path::new("etc/resolv.conf")).unwrap_or_default();
        let (mut dns, mut domain) = parse_resolv_conf(&resolv);
        if !lease.dns.is_empty() {
            dns = lease.dns;
        }
        if lease.domain.is_some() {
            domain = lease.domain;
        }
        Defaults::current(address, netmask, gateway, domain, &dns)
    }
}

type AddressAndMask = (Option<Ipv4Addr>, Option<Ipv4Addr>);

fn interface_address(name: &str) -> Option<AddressAndMask> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != name {
            continue;
        }
        let addr = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|s| s.ip());
        let mask = ifa
            .netmask
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|s| s.ip());
        if addr.is_some() {
            return Some((addr, mask));
        }
    }
    None
}

/// The default gateway of `interface` in the text of `/proc/net/route` (hex, host order).
pub fn default_gateway(route: &str, interface: &str) -> Option<Ipv4Addr> {
    route.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, gw, flags) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        // RTF_UP | RTF_GATEWAY
        if *iface != interface || *dest != "00000000" || flags & 0x3 != 0x3 {
            return None;
        }
        let gw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(gw.to_le_bytes()))
    })
}

/// What a DHCP server gave, from a systemd-networkd lease file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The first router (`ROUTER=`).
    pub router: Option<Ipv4Addr>,
    /// DNS servers (`DNS=`), loopback left out.
    pub dns: Vec<IpAddr>,
    /// The domain name (`DOMAINNAME=`).
    pub domain: Option<String>,
}

/// Reads the `KEY=value` lines of a systemd-networkd DHCP lease (space-separated lists);
/// unknown keys and values that do not parse are ignored.
pub fn parse_networkd_lease(text: &str) -> Lease {
    let mut lease = Lease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let mut words = value.split_whitespace();
        match key.trim() {
            "ROUTER" => lease.router = words.find_map(|w| w.parse().ok()),
            "DNS" => {
                lease.dns = words
                    .filter_map(|w| w.parse::<IpAddr>().ok())
                    .filter(|ip| !ip.is_loopback())
                    .collect();
            }
            "DOMAINNAME" => {
                lease.domain = words.next().map(|d| d.trim_end_matches('.').to_owned());
            }
            _ => {}
        }
    }
    lease
}

/// DNS servers (loopback stubs left out) and the first search domain of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> (Vec<IpAddr>, Option<String>) {
    let mut dns = Vec::new();
    let mut domain = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    if !ip.is_loopback() {
                        dns.push(ip);
                    }
                }
            }
            Some("search" | "domain") if domain.is_none() => {
                domain = words.next().map(|d| d.trim_end_matches('.').to_owned());
            }
            _ => {}
        }
    }
    (dns, domain)
}

/// The OS `admin` account's password hash from `<root>/etc/shadow`: the one the operator set
/// at the forced password change just before the wizard started.
pub fn admin_password_hash(root: &Path) -> anyhow::Result<PasswordHash> {
    let path = root.join("etc/shadow");
    let shadow = match rootfs::read_under(root, Path::new("etc/shadow")) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => bail!("reading {}: not found", path.display()),
        Err(e) => bail!("reading {e}"),
    };
    let Some(fields) = apply::render::shadow_fields(&shadow, "admin") else {
        bail!("{}: there is no admin account", path.display());
    };
    let field = String::from_utf8_lossy(fields[1]);
    let field = field.trim_end_matches('\r');
    if field.is_empty() || field.starts_with('!') || field.starts_with('*') {
        bail!(
            "{}: the admin account has no password yet (help: log in as admin on the console; the forced password change comes before the wizard)",
            path.display()
        );
    }
    PasswordHash::parse(field).map_err(|_| {
        anyhow::anyhow!(
            "{}: the admin password is not hashed with SHA-512-crypt (\"$6$\"), which the configuration needs (help: the image must set pam_unix to sha512, see packaging/wizard/README.md)",
            path.display()
        )
    })
}

/// The answers as a named draft (each value named by its question) through the
/// configuration crate's rules: the same rules JSON metadata goes through, so what is applied
/// passed every check a file passes. The document's bytes are the XML serialized from it. Pure.
pub fn to_document(
    a: &Answers,
    admin_hash: &PasswordHash,
    web_hash: &PasswordHash,
) -> Result<Document, Vec<Diagnostic>> {
    let named = |q: Question, value: String| Named::new(q.label(), value);
    let draft = ManagementDraft {
        hostname: named(Question::Hostname, a.hostname.to_string()),
        domain: named(Question::Domain, a.domain.to_string()),
        ip: named(Question::Address, a.interface.address().to_string()),
        mask: named(Question::Netmask, a.interface.netmask().to_string()),
        gw: named(Question::Gateway, a.gateway.to_string()),
        dns: (a.dns_servers.iter())
            .map(|d| named(Question::DnsServers, d.to_string()))
            .collect(),
        ntp: (a.ntp_servers.iter())
            .map(|n| named(Question::NtpServers, n.to_string()))
            .collect(),
        user: named(Question::WebUsername, a.web_username.as_str().to_owned()),
        pass: named(Question::WebPassword, web_hash.expose().to_owned()),
        admin_password: Named::new("admin password", admin_hash.expose().to_owned()),
        error_reports: Named::new(Question::IncidentReporting.label(), a.incident_reporting),
        enable_analytics: Named::new(Question::UsageStatistics.label(), a.usage_statistics),
        contact_email: None,
    };
    nodeboot_config::rules::management(&draft, "answers")
}

/// The lines describing a configured node, from its identity file (`/etc/nodeboot/node.json`,
/// written by the apply engine): role, host name, address, and for a Management Node the web
/// administration user and the two yes/no answers. Password hashes are never shown. A file
/// that is not the expected JSON gives no lines.
pub fn configured_summary(identity_json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(identity_json) else {
        return Vec::new();
    };
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(true) => Some("yes".to_string()),
        serde_json::Value::Bool(false) => Some("no".to_string()),
        _ => None,
    };
    let mut lines = Vec::new();
    for (key, label) in [
        ("role", "Role"),
        ("fqdn", "Host name"),
        ("ipv4_address", "IP address"),
    ] {
        if let Some(value) = v.get(key).and_then(text) {
            lines.push(format!("{label:<38}{value}"));
        }
    }
    if let Some(m) = v.get("management") {
        for (key, label) in [
            ("web_admin_username", "Web administration username"),
            ("incident_reporting", "Enable incident reporting"),
            ("usage_statistics", "Send deployment and usage statistics"),
        ] {
            if let Some(value) = m.get(key).and_then(text) {
                lines.push(format!("{label:<38}{value}"));
            }
        }
    }
    lines
}

/// Runs `nodeboot-wizard`.
pub fn run(args: WizardCli) -> anyhow::Result<ExitCode> {
    apply::recover(&args.root).context("finishing an interrupted apply")?;
    if let Some(path) = &args.answers {
        return run_unattended(&args, path);
    }
    if let apply::NodeState::Configured { digest, .. } = apply::read_state(&args.root)? {
        println!(
            "This node is already configured (sha256 {digest}); the wizard has nothing to do."
        );
        // What it is configured as (no secret: the identity's password hash is left out), so
        // an operator on the console sees it without reading root's files.
        let identity = rootfs::read_text_or_none(&args.root, Path::new(apply::render::IDENTITY));
        if let Some(text) = identity {
            for line in configured_summary(&text) {
                println!("  {line}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let admin_hash = admin_password_hash(&args.root)?;
    let probe = SystemNetwork {
        interface: args.interface.clone(),
        root: args.root.clone(),
    };
    let mut terminal = Terminal::open().context("opening the terminal")?;
    let checks = SystemChecks::new(Duration::from_secs(args.check_timeout));
    let checks: Option<&dyn PreApplyChecks> = (!args.skip_checks).then_some(&checks);
    let build = |a: &Answers| {
        nodeboot_config::hash_password(a.web_password.expose())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|web_hash| {
                to_document(a, &admin_hash, &web_hash).map_err(|diags| {
                    let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
                    anyhow::anyhow!(
                        "the answers do not make a valid configuration:\n{}",
                        lines.join("\n")
                    )
                })
            })
    };
    let dialog = Dialog::new(probe.current());
    let result = match ask(&mut terminal, dialog, &build, checks, &args.interface)? {
        Asked::Apply(doc) => {
            terminal.write("\nApplying the configuration...\n")?;
            apply::apply_config(&args.root, &doc).map_err(anyhow::Error::from)
        }
        Asked::Cancelled => {
            terminal.write("\nCancelled; nothing was changed.\n")?;
            return Ok(ExitCode::from(130));
        }
        Asked::Quit => {
            terminal.write_lines(&dialog::wrap(
                "Not applied: the checks failed and the wizard was quit; nothing was changed. Run the wizard again once the network is ready.",
                dialog::WIDTH - 1,
            ))?;
            return Ok(ExitCode::from(3));
        }
        Asked::Failed(e) => Err(e),
    };
    match result {
        Ok(_) => {
            terminal.write("The configuration is applied. The node restarts now.\n")?;
            drop(terminal);
            reboot_now(&args);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let mut lines = Vec::new();
            for (i, line) in format!("{e:#}").lines().enumerate() {
                let text = if i == 0 {
                    format!("Error: the configuration was not applied: {line}")
                } else {
                    line.to_owned()
                };
                lines.extend(dialog::wrap(&text, dialog::WIDTH - 1));
            }
            terminal.write_lines(&lines)?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reboots the way every applying command does (a failure is logged: the operator's
/// terminal has been handed back).
fn reboot_now(args: &WizardCli) {
    if let Err(e) = apply::reboot::after(args.reboot.delay(), args.reboot.reboot().as_ref()) {
        tracing::error!(error = %e, "reboot failed");
    }
}

/// How the dialog ended.
enum Asked {
    /// Apply this document (checked, or the operator chose to continue anyway).
    Apply(Box<Document>),
    /// Ctrl-C.
    Cancelled,
    /// "q" after failed checks.
    Quit,
    /// The answers did not make a configuration.
    Failed(anyhow::Error),
}

/// Runs the dialog on the terminal: asks, builds the document with `build` at the
/// confirmation, runs the pre-apply checks (none when `checks` is `None`) and hands their
/// results to the dialog.
fn ask(
    terminal: &mut Terminal,
    mut dialog: Dialog,
    build: &dyn Fn(&Answers) -> anyhow::Result<Document>,
    checks: Option<&dyn PreApplyChecks>,
    interface: &str,
) -> anyhow::Result<Asked> {
    let mut checked: Option<Document> = None;
    terminal.write_lines(&[
        String::new(),
        "nodeboot installation wizard".to_owned(),
        "Press Enter to accept the value in [brackets]; Ctrl-C cancels without changes.".to_owned(),
        String::new(),
    ])?;
    loop {
        let prompt = dialog.prompt();
        if !prompt.preface.is_empty() {
            terminal.write_lines(&prompt.preface)?;
        }
        terminal.write(&prompt.text)?;
        let line = match terminal.read_line(prompt.secret) {
            Ok(line) => line,
            Err(ReadError::Cancelled) => return Ok(Asked::Cancelled),
            Err(ReadError::Io(e)) => return Err(e).context("reading the terminal"),
        };
        match dialog.answer(&line) {
            Reply::Next => {}
            Reply::Invalid(lines) => terminal.write_lines(&lines)?,
            Reply::StartOver => {
                terminal.write("\nAgain from the start; Enter keeps the previous answer.\n\n")?
            }
            Reply::Check(answers) => {
                let doc = match build(&answers) {
                    Ok(doc) => doc,
                    Err(e) => return Ok(Asked::Failed(e)),
                };
                let Some(checks) = checks else {
                    return Ok(Asked::Apply(Box::new(doc)));
                };
                let planned = pre_apply_checks(doc.config(), interface);
                terminal.write_lines(&[String::new(), CHECKING.to_owned()])?;
                let results = checks.run(&planned);
                let lines: Vec<String> = results.iter().map(check_line).collect();
                terminal.write_lines(&lines)?;
                checked = Some(doc);
                match dialog.checked(&results) {
                    Reply::Done(_) => {
                        if let Some(doc) = checked.take() {
                            return Ok(Asked::Apply(Box::new(doc)));
                        }
                    }
                    Reply::StartOver => terminal
                        .write("\nAgain from the start; Enter keeps the previous answer.\n\n")?,
                    _ => {}
                }
            }
            Reply::Done(_) => {
                // "continue anyway": the document of the answers just checked
                if let Some(doc) = checked.take() {
                    return Ok(Asked::Apply(Box::new(doc)));
                }
            }
            Reply::Quit => return Ok(Asked::Quit),
        }
    }
}

fn run_unattended(args: &WizardCli, path: &Path) -> anyhow::Result<ExitCode> {
    let Some(doc) = apply::cli::read_document(path)? else {
        return Ok(ExitCode::from(2));
    };
    if doc.config().management().is_none() {
        bail!(
            "{}: the role is {}, but the wizard configures a Management Node (help: use `nodeboot-agent apply` for other roles)",
            path.display(),
            doc.config().role()
        );
    }
    if !args.skip_checks {
        let checks = SystemChecks::new(Duration::from_secs(args.check_timeout));
        check_before_apply(&doc, args, path, &checks)?;
    }
    let outcome = apply::apply_config(&args.root, &doc)?;
    match outcome {
        apply::Outcome::Applied { digest, changed } => {
            println!(
                "applied sha256 {digest}: {} files changed; restarting",
                changed.len()
            );
            reboot_now(args);
        }
        apply::Outcome::Unchanged { digest } => {
            println!("sha256 {digest} is already applied; nothing to do");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The pre-apply checks of an `--answers` run: each result on its own line; a failure stops
/// the run (nothing applied) unless `--continue-on-failed-checks` was given.
fn check_before_apply(
    doc: &Document,
    args: &WizardCli,
    path: &Path,
    checks: &dyn PreApplyChecks,
) -> anyhow::Result<()> {
    let planned = pre_apply_checks(doc.config(), &args.interface);
    println!("{CHECKING}");
    let results = checks.run(&planned);
    for r in &results {
        println!("{}", check_line(r));
    }
    let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let which = failed
        .iter()
        .map(|r| nodeboot_config::text::printable_line(&r.reason))
        .collect::<Vec<_>>()
        .join("; ");
    if args.continue_on_failed_checks {
        println!(
            "{} of {} checks failed; applying anyway (--continue-on-failed-checks)",
            failed.len(),
            results.len()
        );
        return Ok(());
    }
    bail!(
        "{}: {} of {} pre-apply checks failed, so nothing was applied: {which} (help: correct the file, or pass --continue-on-failed-checks to apply anyway)",
        path.display(),
        failed.len(),
        results.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A fake check effect: every check fails, or every check passes.
    struct Fake(bool);

    impl PreApplyChecks for Fake {
        fn run(&self, checks: &[Check]) -> Vec<CheckResult> {
            checks
                .iter()
                .map(|c| CheckResult {
                    kind: c.kind(),
                    subject: c.subject(),
                    passed: self.0,
                    attempts: 1,
                    elapsed_ms: 0,
                    tried: Vec::new(),
                    reason: format!(
                        "{} {}",
                        c.subject(),
                        if self.0 { "answered" } else { "did not answer" }
                    ),
                })
                .collect()
        }
    }

    fn management_doc() -> Document {
        let xml = include_bytes!("../../../tests/fixtures/valid/management.xml");
        nodeboot_config::parse(xml).unwrap()
    }

    #[test]
    fn pre_apply_checks_are_the_gateway_dns_and_ntp_on_the_wizard_interface() {
        let doc = management_doc();
        let planned: Vec<String> = pre_apply_checks(doc.config(), "ens3")
            .iter()
            .map(|c| format!("{} {}", c.kind(), c.subject()))
            .collect();
        assert_eq!(planned[0], "gateway 10.0.0.1 on ens3");
        assert!(
            planned[1..]
                .iter()
                .all(|c| c.starts_with("dns ") || c.starts_with("ntp ")),
            "{planned:?}"
        );
        assert!(planned.iter().any(|c| c.starts_with("ntp ")), "{planned:?}");
    }

    #[test]
    fn an_answers_run_stops_on_a_failed_check_unless_allowed() {
        let doc = management_doc();
        let path = Path::new("mgr01.xml");
        let args = WizardCli::parse_from(["nodeboot-wizard", "--answers", "mgr01.xml"]);
        let e = format!(
            "{:#}",
            check_before_apply(&doc, &args, path, &Fake(false)).unwrap_err()
        );
        assert!(e.starts_with("mgr01.xml: "), "{e}");
        assert!(
            e.contains(
                "pre-apply checks failed, so nothing was applied: 10.0.0.1 on eth0 did not answer"
            ),
            "{e}"
        );
        assert!(
            e.ends_with(
                "(help: correct the file, or pass --continue-on-failed-checks to apply anyway)"
            ),
            "{e}"
        );
        check_before_apply(&doc, &args, path, &Fake(true)).unwrap();
        let args = WizardCli::parse_from([
            "nodeboot-wizard",
            "--answers",
            "mgr01.xml",
            "--continue-on-failed-checks",
        ]);
        check_before_apply(&doc, &args, path, &Fake(false)).unwrap();
        // the flag needs --answers, and contradicts --skip-checks
        assert!(
            WizardCli::try_parse_from(["nodeboot-wizard", "--continue-on-failed-checks"]).is_err()
        );
        assert!(
            WizardCli::try_parse_from([
                "nodeboot-wizard",
                "--answers",
                "f",
                "--continue-on-failed-checks",
                "--skip-checks"
            ])
            .is_err()
        );
    }

    #[test]
    fn configured_summary_shows_the_identity_without_the_hash() {
        let xml = include_bytes!("../../../tests/fixtures/valid/management.xml");
        let config = nodeboot_config::parse(xml).unwrap().into_config();
        let (json, _) = apply::render::render_identity(&config, false);
        let lines = configured_summary(&json);
        let expected = [
            ("Role", "management"),
            ("Host name", "mgr01.example.com"),
            ("IP address", "10.0.0.10"),
            ("Web administration username", "admin"),
            ("Enable incident reporting", "yes"),
            ("Send deployment and usage statistics", "no"),
        ];
        assert_eq!(lines.len(), expected.len(), "{lines:?}");
        for (line, (label, value)) in lines.iter().zip(expected) {
            assert_eq!(line, &format!("{label:<38}{value}"));
            assert!(line.len() <= 78);
        }
        assert!(!lines.concat().contains("$6$"));
        assert!(configured_summary("not json").is_empty());
    }

    #[test]
    fn default_gateway_reads_proc_net_route() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            default_gateway(route, "eth0"),
            Some(Ipv4Addr::new(10, 0, 2, 2))
        );
        assert_eq!(default_gateway(route, "eth1"), None);
        assert_eq!(default_gateway("", "eth0"), None);
    }

    #[test]
    fn networkd_lease_gives_router_dns_and_domain() {
        let lease = parse_networkd_lease(
            "# This is private data. Do not parse.\nADDRESS=10.0.2.15\nNETMASK=255.255.255.0\n\
             ROUTER=10.0.2.2 10.0.2.1\nSERVER_ADDRESS=10.0.2.2\nDNS=10.0.2.3 127.0.0.1 bogus 10.0.2.4\n\
             DOMAINNAME=corp.example.\nLIFETIME=86400\n",
        );
        assert_eq!(
            lease,
            Lease {
                router: Some(Ipv4Addr::new(10, 0, 2, 2)),
                dns: vec![
                    IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3)),
                    IpAddr::V4(Ipv4Addr::new(10, 0, 2, 4))
                ],
                domain: Some("corp.example".into()),
            }
        );
        // QEMU's restricted user network gives neither a router nor DNS.
        let restricted = parse_networkd_lease(
            "ADDRESS=10.0.2.15\nNETMASK=255.255.255.0\nSERVER_ADDRESS=10.0.2.2\nT1=43200\n",
        );
        assert_eq!(restricted, Lease::default());
    }

    #[test]
    fn resolv_conf_gives_dns_servers_and_the_search_domain() {
        let (dns, domain) = parse_resolv_conf(
            "# generated\nnameserver 10.0.2.3\nnameserver 127.0.0.53\nsearch corp.example. other\nnameserver 2001:db8::1\n",
        );
        assert_eq!(
            dns,
            [
                "10.0.2.3".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(domain.as_deref(), Some("corp.example"));
    }

    #[test]
    fn the_admin_hash_comes_from_shadow_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let shadow = dir.path().join("etc/shadow");
        let hash = nodeboot_config::hash_password("pw").unwrap();
        std::fs::write(
            &shadow,
            format!("root:*:1::::::\nadmin:{}:0:0:99999:7:::\n", hash.expose()),
        )
        .unwrap();
        assert_eq!(admin_password_hash(dir.path()).unwrap(), hash);
        let cases = [
            ("root:*:1::::::\n", "there is no admin account"),
            (
                "admin::0:0:99999:7:::\n",
                "the admin account has no password yet",
            ),
            (
                "admin:!:0:0:99999:7:::\n",
                "the admin account has no password yet",
            ),
            (
                "admin:$y$j9T$abc$def:0:0:99999:7:::\n",
                "not hashed with SHA-512-crypt",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&shadow, text).unwrap();
            let e = format!("{:#}", admin_password_hash(dir.path()).unwrap_err());
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("$y$"), "{e}");
        }
    }

    #[test]
    fn answers_become_a_management_configuration_that_parses() {
        let mut d = Dialog::new(Defaults::default());
        for a in [
            "10.0.0.10",
            "255.255.255.0",
            "10.0.0.1",
            "mgr01",
            "example.com",
            "10.0.0.2",
            "pool.ntp.org",
            "admin",
            "pw",
            "pw",
            "y",
            "n",
        ] {
            assert_eq!(d.answer(a), Reply::Next, "{a}");
        }
        let Reply::Check(a) = d.answer("y") else {
            panic!()
        };
        let admin = nodeboot_config::hash_password("os").unwrap();
        let web = nodeboot_config::hash_password("pw").unwrap();
        let doc = to_document(&a, &admin, &web).unwrap();
        let text = std::str::from_utf8(doc.bytes()).unwrap();
        assert!(text.contains("<role>management</role>"), "{text}");
        assert!(!text.contains(">pw<"));
        assert_eq!(doc.digest(), nodeboot_config::digest(doc.bytes()));
        let config = doc.config();
        let m = config.management().unwrap();
        assert_eq!(m.web_admin.password_hash, web);
        assert!(m.incident_reporting && !m.usage_statistics);
        assert_eq!(config.fqdn(), "mgr01.example.com");
    }
}
