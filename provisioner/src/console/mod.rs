//! Driving a node's console wizard unattended: transports, expect engine, profiles.
//!
//! `nodeboot bootstrap --console TRANSPORT --answers FILE` reads a schema-1 Management Node
//! file (hashes only), takes the two plain-text passwords the dialog needs from a no-echo
//! prompt, stdin or a 0600 file, checks them against the file's hashes, and plays the profile
//! (built-in or `--profile FILE`) over the console until the node greets with
//! `<hostname> login:` after its restart.
//!
//! The wizard checks the gateway, the DNS and the NTP servers before it applies and prints
//! one `Check passed|failed: <kind> <subject>: <reason>` line per check; the profile's
//! `findings` keep those lines, and bootstrap reports them ([`WizardCheck`]). When one
//! failed, the profile answers `{on_failed_checks}`: `q` (quit, nothing applied, bootstrap
//! fails with the findings) unless `--continue-on-failed-checks` makes it `c`.

pub mod engine;
pub mod profile;
pub mod text;
pub mod transport;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nodeboot_config::text::printable_line;
use nodeboot_config::{NodeConfig, Secret};
use serde::Serialize;

use crate::cmdline::BootstrapArgs;
use profile::{Profile, Var, Vars};
use transport::Transport;

/// The two plain-text passwords the dialog types.
#[derive(Debug, Clone)]
pub struct Passwords {
    /// The new password of the OS `admin` account (forced change, then sudo).
    pub os: Secret<String>,
    /// The web administration password.
    pub web: Secret<String>,
}

/// Runs `nodeboot bootstrap`.
pub fn run(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    if args.print_profile {
        print!("{}", profile::BUILTIN);
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(console), Some(answers)) = (&args.console, &args.answers) else {
        bail!("--console and --answers are required");
    };
    let config = load_answers(answers)?;
    let passwords = read_passwords(&args)?;
    check_passwords(&config, &passwords)?;
    let mut vars = dialog_vars(&config, &passwords)?;
    if args.continue_on_failed_checks {
        vars.insert("on_failed_checks".into(), plain("c".into()));
    }
    let profile = match &args.profile {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Profile::load(&text, &path.display().to_string(), &vars)?
        }
        None => Profile::load(profile::BUILTIN, "built-in profile", &vars)?,
    };
    let mut transcript = match &args.transcript {
        Some(path) => Some(create_private(path)?),
        None => None,
    };
    let secrets = vec![
        passwords.os.expose().as_bytes().to_vec(),
        passwords.web.expose().as_bytes().to_vec(),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let quiet = args.quiet;
    let (result, findings) = rt.block_on(async {
        let stream = match transport::connect(console).await {
            Ok(s) => s,
            Err(e) => {
                let e = anyhow::Error::from(e)
                    .context(format!("connecting to the console {}", describe(console)));
                return (Err(e), Vec::new());
            }
        };
        let mut progress = |n: usize, total: usize, step: &profile::Step| {
            if !quiet {
                eprintln!("[{n:>2}/{total}] {}", step.name);
            }
        };
        let t = transcript.as_mut().map(|w| w as &mut dyn Write);
        let (r, f) =
            engine::run_dialog_with_findings(stream, &profile, secrets, t, &mut progress).await;
        (r.map_err(anyhow::Error::from), f)
    });
    let checks = wizard_checks(&findings);
    if !quiet && !checks.is_empty() {
        let failed = checks.iter().filter(|c| !c.passed).count();
        eprintln!(
            "the wizard's checks before the apply: {} passed, {failed} failed",
            checks.len() - failed
        );
        for line in &findings {
            eprintln!("  {}", printable_line(line));
        }
    }
    let result = result.map_err(|e| match checks.iter().filter(|c| !c.passed).count() {
        0 => e,
        n => e.context(format!(
            "{n} of the wizard's checks before the apply failed ({}); nothing was applied (help: correct the answers file, or pass --continue-on-failed-checks to apply anyway)",
            checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
    });
    if args.json {
        let outcome = BootstrapOutcome {
            node: config.fqdn(),
            configured: result.is_ok(),
            checks: checks.clone(),
            error: result.as_ref().err().map(|e| format!("{e:#}")),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).context("writing the JSON outcome")?
        );
    }
    let report = result?;
    if !quiet {
        eprintln!(
            "bootstrap complete: {} answered the wizard and restarted ({} steps, {} bytes received, {} sent, {:.2} s)",
            config.fqdn(),
            report.steps_run.len(),
            report.bytes_received,
            report.bytes_sent,
            report.elapsed.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One of the wizard's checks before the apply, read from its console line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WizardCheck {
    /// `gateway`, `dns` or `ntp`.
    pub kind: String,
    /// What was checked: `10.0.0.1 on eth0`, a server's address or name.
    pub subject: String,
    /// Whether it passed.
    pub passed: bool,
    /// The wizard's one line for a person.
    pub reason: String,
}

/// What `nodeboot bootstrap --json` prints.
#[derive(Debug, Clone, Serialize)]
struct BootstrapOutcome {
    node: String,
    /// The dialog ran to the login after the restart.
    configured: bool,
    checks: Vec<WizardCheck>,
    error: Option<String>,
}

/// Reads a wizard check line, `Check passed: <kind> <subject>: <reason>` (or `failed`).
/// Pure; anything else is `None`.
pub fn parse_check_line(line: &str) -> Option<WizardCheck> {
    let line = line.trim();
    let (passed, rest) = if let Some(r) = line.strip_prefix("Check passed: ") {
        (true, r)
    } else {
        (false, line.strip_prefix("Check failed: ")?)
    };
    let (kind, rest) = rest.split_once(' ')?;
    let (subject, reason) = rest.split_once(": ")?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some(WizardCheck {
        kind: kind.to_owned(),
        subject: printable_line(subject),
        passed,
        reason: printable_line(reason),
    })
}

/// The checks among the findings; a check seen again (a later round) replaces the earlier.
pub fn wizard_checks(findings: &[String]) -> Vec<WizardCheck> {
    let mut checks: Vec<WizardCheck> = Vec::new();
    for c in findings.iter().filter_map(|l| parse_check_line(l)) {
        match checks
            .iter_mut()
            .find(|k| k.kind == c.kind && k.subject == c.subject)
        {
            Some(old) => *old = c,
            None => checks.push(c),
        }
    }
    checks
}

fn plain(value: String) -> Var {
    Var {
        value,
        secret: false,
    }
}

fn describe(t: &Transport) -> String {
    match t {
        Transport::Exec(_) => "exec:… (command)".into(),
        Transport::Tcp(a) => format!("tcp:{a}"),
        Transport::Unix(p) => format!("unix:{}", p.display()),
        Transport::Serial(p, b) => format!("serial:{}@{b}", p.display()),
        Transport::Pty(p) => format!("pty:{}", p.display()),
    }
}

/// The transcript: created 0600; an existing one must be a regular file of mode 0600 or
/// stricter (it is refused untouched otherwise), not a link.
fn create_private(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    let f = crate::secret_file::create(path, "transcript")?;
    Ok(std::io::BufWriter::new(f))
}

/// Reads and validates the answers file; it must describe a Management Node.
pub fn load_answers(path: &Path) -> anyhow::Result<NodeConfig> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = nodeboot_config::parse(&bytes).map_err(|diags| {
        let lines: Vec<String> = diags
            .iter()
            .map(|d| format!("{}:{d}", path.display()))
            .collect();
        anyhow::anyhow!(
            "{} is not a valid configuration:\n{}",
            path.display(),
            lines.join("\n")
        )
    })?;
    if parsed.config().management().is_none() {
        bail!(
            "{}: the role is {}, but the console wizard configures a Management Node (help: use `nodeboot push` for conferencing nodes)",
            path.display(),
            parsed.config().role()
        );
    }
    Ok(parsed.into_config())
}

/// Parses `os_password=…` / `web_password=…` lines (blank lines and `#` comments ignored).
pub fn parse_secrets(text: &str, origin: &str) -> anyhow::Result<Passwords> {
    let mut os = None;
    let mut web = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{origin}:{}: expected `os_password=…` or `web_password=…` (the line is not shown: it may hold a secret)",
                n + 1
            );
        };
        let slot = match key.trim() {
            "os_password" => &mut os,
            "web_password" => &mut web,
            other => bail!(
                "{origin}:{}: unknown key {other:?} (help: use os_password or web_password)",
                n + 1
            ),
        };
        if value.is_empty() {
            bail!("{origin}:{}: {} is empty", n + 1, key.trim());
        }
        if value.chars().any(char::is_control) {
            bail!(
                "{origin}:{}: {} contains a control character (help: a console cannot type it)",
                n + 1,
                key.trim()
            );
        }
        *slot = Some(Secret::new(value.to_owned()));
    }
    match (os, web) {
        (Some(os), Some(web)) => Ok(Passwords { os, web }),
        (None, _) => bail!("{origin}: os_password is missing"),
        (_, None) => bail!("{origin}: web_password is missing"),
    }
}

fn read_passwords(args: &BootstrapArgs) -> anyhow::Result<Passwords> {
    if let Some(path) = &args.secrets_file {
        let text = crate::secret_file::read(path, "secrets file")?;
        return parse_secrets(&text, &path.display().to_string());
    }
    if args.secrets_stdin {
        let mut text = String::new();
        for line in std::io::stdin().lock().lines() {
            text.push_str(&line.context("reading the secrets from stdin")?);
            text.push('\n');
        }
        return parse_secrets(&text, "stdin");
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passwords given (help: use --secrets-file FILE or --secrets-stdin, or run on a terminal to be asked)"
        );
    }
    let os = rpassword::prompt_password("New password of the OS account admin: ")
        .context("reading the OS password")?;
    let web = rpassword::prompt_password("Web administration password: ")
        .context("reading the web administration password")?;
    parse_secrets(
        &format!("os_password={os}\nweb_password={web}\n"),
        "the prompt",
    )
}

/// Checks the plain-text passwords against the answers file's hashes, so the node ends up with
/// exactly the passwords the file describes.
pub fn check_passwords(config: &NodeConfig, p: &Passwords) -> anyhow::Result<()> {
    if !nodeboot_config::verify_password(p.os.expose(), &config.ssh.password_hash) {
        bail!(
            "the OS password given does not match <ssh><password-hash> of the answers file (help: give the password that hash was made from)"
        );
    }
    let Some(m) = config.management() else {
        bail!("the answers file does not describe a Management Node");
    };
    if !nodeboot_config::verify_password(p.web.expose(), &m.web_admin.password_hash) {
        bail!(
            "the web administration password given does not match <web-admin password-hash> of the answers file (help: give the password that hash was made from)"
        );
    }
    Ok(())
}

/// The values the dialog is filled in with, taken from the configuration and the passwords.
pub fn dialog_vars(config: &NodeConfig, p: &Passwords) -> anyhow::Result<Vars> {
    let Some(m) = config.management() else {
        bail!("the answers file does not describe a Management Node");
    };
    let yn = |b: bool| if b { "y" } else { "n" }.to_owned();
    let net = &config.network;
    let mut vars = Vars::new();
    let join = |items: Vec<String>| items.join(" ");
    for (k, v) in [
        ("address", net.ipv4.interface.address().to_string()),
        ("netmask", net.ipv4.interface.netmask().to_string()),
        ("gateway", net.ipv4.gateway.to_string()),
        ("hostname", config.hostname.to_string()),
        ("domain", config.domain.to_string()),
        (
            "dns_servers",
            join(net.dns_servers.iter().map(ToString::to_string).collect()),
        ),
        (
            "ntp_servers",
            join(net.ntp_servers.iter().map(ToString::to_string).collect()),
        ),
        ("web_username", m.web_admin.username.as_str().to_owned()),
        ("incident_reporting", yn(m.incident_reporting)),
        ("usage_statistics", yn(m.usage_statistics)),
    ] {
        vars.insert(k.to_owned(), plain(v));
    }
    // the answer when a check before the apply failed: quit (see `run`)
    vars.insert("on_failed_checks".into(), plain("q".into()));
    vars.insert(
        "os_password".into(),
        Var {
            value: p.os.expose().clone(),
            secret: true,
        },
    );
    vars.insert(
        "web_password".into(),
        Var {
            value: p.web.expose().clone(),
            secret: true,
        },
    );
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lines_are_read_and_a_later_round_replaces_an_earlier() {
        let findings = [
            "Check passed: gateway 10.0.2.2 on eth0: gateway 10.0.2.2 answered ARP on eth0 from 52:55:0a:00:02:02",
            "Check failed: dns 2001:db8::53: DNS server 2001:db8::53 did not answer mgr01.example.com A within 5 s",
            "Check failed: ntp pool.ntp.org: NTP server pool.ntp.org did not resolve (10.0.2.3: no answer)",
            "Check passed: ntp pool.ntp.org: NTP server pool.ntp.org answered",
            "Check failed: nonsense",
            "Check maybe: dns 1.2.3.4: x",
            "Check failed: DNS x: y",
        ]
        .map(String::from);
        let checks = wizard_checks(&findings);
        assert_eq!(
            checks,
            [
                WizardCheck {
                    kind: "gateway".into(),
                    subject: "10.0.2.2 on eth0".into(),
                    passed: true,
                    reason: "gateway 10.0.2.2 answered ARP on eth0 from 52:55:0a:00:02:02".into(),
                },
                WizardCheck {
                    kind: "dns".into(),
                    subject: "2001:db8::53".into(),
                    passed: false,
                    reason: "DNS server 2001:db8::53 did not answer mgr01.example.com A within 5 s"
                        .into(),
                },
                WizardCheck {
                    kind: "ntp".into(),
                    subject: "pool.ntp.org".into(),
                    passed: true,
                    reason: "NTP server pool.ntp.org answered".into(),
                },
            ]
        );
    }

    #[test]
    fn secrets_parse_without_showing_a_line() {
        let p = parse_secrets("# c\nos_password=a b=c\r\n\nweb_password=w\n", "f").unwrap();
        assert_eq!(p.os.expose(), "a b=c");
        assert_eq!(p.web.expose(), "w");
        let cases = [
            ("os_password=x\n", "f: web_password is missing"),
            ("web_password=x\n", "f: os_password is missing"),
            (
                "hunter2\n",
                "f:1: expected `os_password=…` or `web_password=…` (the line is not shown: it may hold a secret)",
            ),
            (
                "pw=hunter2\n",
                "f:1: unknown key \"pw\" (help: use os_password or web_password)",
            ),
            ("os_password=\n", "f:1: os_password is empty"),
            (
                "os_password=\u{16}x\n",
                "f:1: os_password contains a control character (help: a console cannot type it)",
            ),
        ];
        for (text, want) in cases {
            let e = parse_secrets(text, "f").unwrap_err().to_string();
            assert_eq!(e, want);
            assert!(!e.contains("hunter2"));
        }
    }
}
