//! The installation wizard's dialog as a pure state machine: which question comes next, what
//! its prompt says, whether an answer is valid (with the configuration file's own rules, the
//! model's newtypes), and the summary to confirm.
//!
//! No terminal, no files: [`Dialog::prompt`] says what to ask, [`Dialog::answer`] takes a line
//! and says what happened. The terminal layer (`super::term`) only shows and reads.
//!
//! Transitions: `Address → Netmask → Gateway → Hostname → Domain → DnsServers → NtpServers →
//! WebUsername → WebPassword → WebPasswordAgain → IncidentReporting → UsageStatistics →
//! Confirm`. A refused answer stays on the same question; a second password that differs goes
//! back to `WebPassword`; "n" at `Confirm` starts over at `Address` with the previous answers
//! as defaults; "y" at `Confirm` asks for the pre-apply checks ([`Reply::Check`]).
//!
//! The checks themselves are an effect: the caller runs them and hands the results to
//! [`Dialog::checked`]. All passed: finished ([`Reply::Done`]). Some failed: `ChecksFailed`,
//! which offers `r` (re-enter the failing values: each failing question again, its previous
//! answer as the default, then `Confirm` and the checks again), `c` (continue anyway:
//! finished) or `q` (quit, nothing applied). After [`MAX_CHECK_ROUNDS`] failed rounds `r` is
//! no longer offered.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use nodeboot_config::api::{CheckKind, CheckResult};
use nodeboot_config::rules::{self, GatewayFault};
use nodeboot_config::text::printable_line;
use nodeboot_config::{
    DomainName, Hostname, InvalidValue, Ipv4Interface, Secret, ServerName, Username,
};

/// The width of a plain serial console; every line the dialog produces fits in it (but the
/// check lines, see [`check_line`]).
pub const WIDTH: usize = 80;

/// How many rounds of failed checks may be answered with "re-enter"; then only "continue
/// anyway" or "quit" are left, so an unattended console cannot loop for ever.
pub const MAX_CHECK_ROUNDS: u32 = 3;

/// One question of the wizard, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Question {
    /// eth0's IPv4 address.
    Address,
    /// eth0's netmask.
    Netmask,
    /// The default gateway.
    Gateway,
    /// The host name (one label).
    Hostname,
    /// The domain suffix.
    Domain,
    /// DNS servers (addresses).
    DnsServers,
    /// NTP servers (addresses or names).
    NtpServers,
    /// The web administration user name.
    WebUsername,
    /// The web administration password (not echoed).
    WebPassword,
    /// The same password again (not echoed).
    WebPasswordAgain,
    /// Enable incident reporting (y/n).
    IncidentReporting,
    /// Send deployment and usage statistics (y/n).
    UsageStatistics,
    /// Apply the summary shown (y/n).
    Confirm,
    /// Some pre-apply checks failed: re-enter, continue anyway or quit (r/c/q). Not in
    /// [`Question::ALL`]: it comes only after [`Dialog::checked`].
    ChecksFailed,
}

impl Question {
    /// Every question, in order.
    pub const ALL: [Question; 13] = [
        Question::Address,
        Question::Netmask,
        Question::Gateway,
        Question::Hostname,
        Question::Domain,
        Question::DnsServers,
        Question::NtpServers,
        Question::WebUsername,
        Question::WebPassword,
        Question::WebPasswordAgain,
        Question::IncidentReporting,
        Question::UsageStatistics,
        Question::Confirm,
    ];

    /// The words of the prompt, before any default and the colon.
    pub fn label(self) -> &'static str {
        match self {
            Question::Address => "IP address",
            Question::Netmask => "Network mask",
            Question::Gateway => "Gateway",
            Question::Hostname => "Hostname",
            Question::Domain => "Domain suffix",
            Question::DnsServers => "DNS servers",
            Question::NtpServers => "NTP servers",
            Question::WebUsername => "Web administration username",
            Question::WebPassword => "Web administration password",
            Question::WebPasswordAgain => "Re-enter the web administration password",
            Question::IncidentReporting => "Enable incident reporting? (y/n)",
            Question::UsageStatistics => "Send deployment and usage statistics? (y/n)",
            Question::Confirm => "Apply this configuration and restart? (y/n)",
            Question::ChecksFailed => "Re-enter the values, continue anyway, or quit? (r/c/q)",
        }
    }

    /// True for the two password questions: not echoed, never shown as a default.
    pub fn is_secret(self) -> bool {
        matches!(self, Question::WebPassword | Question::WebPasswordAgain)
    }

    fn next(self) -> Question {
        let i = Question::ALL.iter().position(|q| *q == self).unwrap_or(0);
        Question::ALL
            .get(i + 1)
            .copied()
            .unwrap_or(Question::Confirm)
    }

    /// What to type when the answer is empty and there is no default.
    fn required_help(self) -> &'static str {
        match self {
            Question::Address => "type the node's IPv4 address, e.g. 10.0.0.10",
            Question::Netmask => "type the subnet's netmask, e.g. 255.255.255.0",
            Question::Gateway => "type the default gateway's address, e.g. 10.0.0.1",
            Question::Hostname => "type the node's host name, e.g. mgr01",
            Question::Domain => "type the domain suffix, e.g. example.com",
            Question::DnsServers => "type one or more addresses separated by spaces",
            Question::NtpServers => "type one or more addresses or host names separated by spaces",
            Question::WebUsername => "type a user name, e.g. admin",
            Question::WebPassword | Question::WebPasswordAgain => {
                "type a password of at least one character"
            }
            Question::IncidentReporting | Question::UsageStatistics | Question::Confirm => {
                "type y for yes or n for no"
            }
            Question::ChecksFailed => {
                "type r to re-enter the values, c to apply anyway, or q to quit without changes"
            }
        }
    }
}

/// Values offered when the operator just presses Enter: the interface's current (DHCP-given)
/// settings at the start, the previous answers after "n" at the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults(pub BTreeMap<Question, String>);

impl Defaults {
    /// Defaults from what the node holds now. Missing values have no default.
    pub fn current(
        address: Option<Ipv4Addr>,
        netmask: Option<Ipv4Addr>,
        gateway: Option<Ipv4Addr>,
        domain: Option<String>,
        dns_servers: &[IpAddr],
    ) -> Defaults {
        let mut d = BTreeMap::new();
        let mut put = |q, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                d.insert(q, v);
            }
        };
        put(Question::Address, address.map(|a| a.to_string()));
        put(Question::Netmask, netmask.map(|a| a.to_string()));
        put(Question::Gateway, gateway.map(|a| a.to_string()));
        put(Question::Domain, domain);
        put(Question::DnsServers, Some(join(dns_servers)));
        put(Question::WebUsername, Some("admin".to_owned()));
        Defaults(d)
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything the wizard asked, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// eth0's address and subnet.
    pub interface: Ipv4Interface,
    /// The default gateway, inside eth0's subnet.
    pub gateway: Ipv4Addr,
    /// The host name.
    pub hostname: Hostname,
    /// The domain suffix.
    pub domain: DomainName,
    /// DNS servers.
    pub dns_servers: Vec<IpAddr>,
    /// NTP servers.
    pub ntp_servers: Vec<ServerName>,
    /// The web administration user name.
    pub web_username: Username,
    /// The web administration password as typed (hashed before it leaves the wizard).
    pub web_password: Secret<String>,
    /// Enable incident reporting.
    pub incident_reporting: bool,
    /// Send deployment and usage statistics.
    pub usage_statistics: bool,
}

/// What to show and ask now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The question.
    pub question: Question,
    /// Lines to show before the prompt (the summary before the confirmation).
    pub preface: Vec<String>,
    /// The prompt itself, e.g. `"IP address [10.0.2.15]: "`.
    pub text: String,
    /// Do not echo what is typed.
    pub secret: bool,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Accepted: ask [`Dialog::prompt`] next.
    Next,
    /// Refused: show these lines (each within 80 columns), then the same or an earlier
    /// question comes again.
    Invalid(Vec<String>),
    /// "n" at the summary: everything is asked again, previous answers as defaults.
    StartOver,
    /// "y" at the summary: run the pre-apply checks on these answers and hand the results to
    /// [`Dialog::checked`].
    Check(Box<Answers>),
    /// The checks passed, or "c" after they failed: apply these answers.
    Done(Box<Answers>),
    /// "q" after failed checks: stop, nothing applied.
    Quit,
}

#[derive(Debug, Clone, Default)]
struct Partial {
    address: Option<Ipv4Addr>,
    interface: Option<Ipv4Interface>,
    gateway: Option<Ipv4Addr>,
    hostname: Option<Hostname>,
    domain: Option<DomainName>,
    dns_servers: Option<Vec<IpAddr>>,
    ntp_servers: Option<Vec<ServerName>>,
    web_username: Option<Username>,
    web_password: Option<Secret<String>>,
    incident_reporting: Option<bool>,
    usage_statistics: Option<bool>,
}

/// The wizard's state: the current question, the answers so far, the defaults.
#[derive(Debug, Clone)]
pub struct Dialog {
    question: Question,
    defaults: Defaults,
    partial: Partial,
    /// While re-entering after failed checks: the failing questions still to ask.
    revisit: Vec<Question>,
    /// The questions whose values failed the last checks, in question order.
    failing: Vec<Question>,
    /// How many rounds of checks failed.
    rounds: u32,
    /// How many checks failed in the last round, of how many.
    failed_counts: (usize, usize),
}

impl Dialog {
    /// A dialog at its first question.
    pub fn new(defaults: Defaults) -> Dialog {
        Dialog {
            question: Question::Address,
            defaults,
            partial: Partial::default(),
            revisit: Vec::new(),
            failing: Vec::new(),
            rounds: 0,
            failed_counts: (0, 0),
        }
    }

    /// Takes the results of the pre-apply checks asked for by [`Reply::Check`]: all passed
    /// gives [`Reply::Done`]; a failure moves to [`Question::ChecksFailed`] ([`Reply::Next`]).
    /// Results of kinds the wizard does not ask about (none today) count but point at no
    /// question.
    pub fn checked(&mut self, results: &[CheckResult]) -> Reply {
        let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
        if failed.is_empty() {
            return match self.answers() {
                Some(a) => Reply::Done(Box::new(a)),
                None => self.start_over(),
            };
        }
        self.rounds = self.rounds.saturating_add(1);
        self.failed_counts = (failed.len(), results.len());
        let mut failing: Vec<Question> =
            failed.iter().filter_map(|r| question_of(r.kind)).collect();
        failing.sort();
        failing.dedup();
        self.failing = failing;
        self.question = Question::ChecksFailed;
        Reply::Next
    }

    /// Whether "re-enter" is still offered after failed checks.
    fn may_reenter(&self) -> bool {
        self.rounds < MAX_CHECK_ROUNDS && !self.failing.is_empty()
    }

    /// The question asked now.
    pub fn question(&self) -> Question {
        self.question
    }

    /// What to show for the current question.
    pub fn prompt(&self) -> Prompt {
        let q = self.question;
        let default = if q.is_secret() {
            None
        } else {
            self.defaults.0.get(&q)
        };
        let text = match default {
            _ if q == Question::ChecksFailed && !self.may_reenter() => {
                "Continue anyway, or quit? (c/q): ".to_owned()
            }
            Some(d) => format!("{} [{}]: ", q.label(), d),
            None => format!("{}: ", q.label()),
        };
        let preface = match q {
            Question::Confirm => self.summary(),
            Question::ChecksFailed => self.failed_preface(),
            _ => Vec::new(),
        };
        Prompt {
            question: q,
            preface,
            text,
            secret: q.is_secret(),
        }
    }

    /// Takes the line typed for the current question.
    pub fn answer(&mut self, line: &str) -> Reply {
        let q = self.question;
        if let Some(c) = line.chars().find(|c| c.is_control()) {
            let (what, help) = if q.is_secret() {
                (
                    "the password",
                    "type it again; to paste, use the terminal's Paste menu rather than Ctrl-V",
                )
            } else {
                ("the answer", "type it again without it")
            };
            return invalid(&InvalidValue {
                message: format!("{what} contains the control character {}", caret(c)),
                help: help.to_owned(),
            });
        }
        let typed = if q.is_secret() { line } else { line.trim() };
        let value = if typed.is_empty() && !q.is_secret() {
            match self.defaults.0.get(&q) {
                Some(d) => d.clone(),
                None => {
                    return invalid(&InvalidValue {
                        message: "an answer is required".to_owned(),
                        help: q.required_help().to_owned(),
                    });
                }
            }
        } else {
            typed.to_owned()
        };
        match self.accept(q, &value) {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                self.question = if self.revisit.is_empty() {
                    q.next()
                } else {
                    self.revisit.remove(0)
                };
                Reply::Next
            }
            Err(e) => invalid(&e),
        }
    }

    /// Validates and stores one answer. `Ok(Some(_))` for the replies other than `Next`.
    fn accept(&mut self, q: Question, value: &str) -> Result<Option<Reply>, InvalidValue> {
        let p = &mut self.partial;
        match q {
            Question::Address => {
                let a = parse_ipv4(value, "IP address")?;
                // a host address on its own: unicast, not loopback (the subnet comes next)
                Ipv4Interface::from_prefix(a, 32)?;
                p.address = Some(a);
            }
            Question::Netmask => {
                let m = parse_ipv4(value, "network mask")?;
                let a = p.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
                p.interface = Some(Ipv4Interface::new(a, m)?);
            }
            Question::Gateway => {
                let g = parse_ipv4(value, "gateway")?;
                if let Some(i) = p.interface {
                    check_gateway(&i, g)?;
                }
                p.gateway = Some(g);
            }
            Question::Hostname => p.hostname = Some(Hostname::parse(value)?),
            Question::Domain => {
                let d = DomainName::parse(value)?;
                if let Some(h) = &p.hostname {
                    rules::fqdn(h, &d)?;
                }
                p.domain = Some(d);
            }
            Question::DnsServers => {
                let mut list = Vec::new();
                for item in split_list(value) {
                    // the file's DNS-server rule; only the hint speaks of the answer's form
                    list.push(rules::dns_server(item).map_err(|e| InvalidValue {
                        help: if item.parse::<IpAddr>().is_ok() {
                            e.help
                        } else {
                            "give addresses separated by spaces, e.g. 10.0.0.2 10.0.0.3 (a resolver cannot look up its own server's name)".to_owned()
                        },
                        message: e.message,
                    })?);
                }
                if list.is_empty() {
                    return Err(required(q));
                }
                p.dns_servers = Some(list);
            }
            Question::NtpServers => {
                let list = split_list(value)
                    .map(ServerName::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                if list.is_empty() {
                    return Err(required(q));
                }
                p.ntp_servers = Some(list);
            }
            Question::WebUsername => p.web_username = Some(Username::parse(value)?),
            Question::WebPassword => {
                if value.is_empty() {
                    return Err(required(q));
                }
                p.web_password = Some(Secret::new(value.to_owned()));
            }
            Question::WebPasswordAgain => {
                let same = p
                    .web_password
                    .as_ref()
                    .is_some_and(|first| first.expose() == value);
                if !same {
                    p.web_password = None;
                    self.question = Question::WebPassword;
                    return Ok(Some(invalid(&InvalidValue {
                        message: "the two passwords differ".to_owned(),
                        help: "type the password again, twice".to_owned(),
                    })));
                }
            }
            Question::IncidentReporting => p.incident_reporting = Some(parse_yes_no(value)?),
            Question::UsageStatistics => p.usage_statistics = Some(parse_yes_no(value)?),
            Question::Confirm => {
                if parse_yes_no(value)? {
                    return Ok(Some(match self.answers() {
                        Some(a) => Reply::Check(Box::new(a)),
                        // unreachable by the order of questions; start over rather than panic
                        None => self.start_over(),
                    }));
                }
                return Ok(Some(self.start_over()));
            }
            Question::ChecksFailed => return self.after_failed_checks(value).map(Some),
        }
        Ok(None)
    }

    /// The answer to "re-enter, continue anyway, or quit?".
    fn after_failed_checks(&mut self, value: &str) -> Result<Reply, InvalidValue> {
        match value.to_ascii_lowercase().as_str() {
            "r" | "re-enter" | "reenter" if self.may_reenter() => {
                self.defaults = self.previous_answers();
                let mut queue = self.failing.clone();
                queue.push(Question::Confirm);
                self.question = queue.remove(0);
                self.revisit = queue;
                Ok(Reply::Next)
            }
            "r" | "re-enter" | "reenter" => Err(InvalidValue {
                message: format!(
                    "the checks failed {} times; re-entering is no longer offered",
                    self.rounds
                ),
                help: "type c to apply anyway, or q to quit without changes and start the wizard again".to_owned(),
            }),
            "c" | "continue" => Ok(match self.answers() {
                Some(a) => Reply::Done(Box::new(a)),
                None => self.start_over(),
            }),
            "q" | "quit" => Ok(Reply::Quit),
            _ => Err(InvalidValue {
                message: format!("{value:?} is not one of the choices"),
                help: if self.may_reenter() {
                    Question::ChecksFailed.required_help().to_owned()
                } else {
                    "type c to apply anyway or q to quit without changes".to_owned()
                },
            }),
        }
    }

    /// The lines before "re-enter, continue anyway, or quit?".
    fn failed_preface(&self) -> Vec<String> {
        let (failed, total) = self.failed_counts;
        let mut lines = vec![
            String::new(),
            format!("{failed} of {total} checks failed; nothing has been applied yet."),
        ];
        if self.may_reenter() {
            let names: Vec<&str> = self.failing.iter().map(|q| q.label()).collect();
            let text = format!(
                "r  re-enter: {}, then confirm and check again",
                names.join(", ")
            );
            for (i, line) in wrap(&text, WIDTH - 6).into_iter().enumerate() {
                lines.push(format!("{}{line}", if i == 0 { "  " } else { "     " }));
            }
        }
        lines.push("  c  continue anyway: apply these values and restart".to_owned());
        lines.push("  q  quit: change nothing".to_owned());
        lines
    }

    fn start_over(&mut self) -> Reply {
        self.defaults = self.previous_answers();
        self.partial = Partial::default();
        self.question = Question::Address;
        self.revisit.clear();
        Reply::StartOver
    }

    /// The answers given so far as defaults (the passwords never).
    fn previous_answers(&self) -> Defaults {
        let p = &self.partial;
        let yn = |b: Option<bool>| b.map(|b| if b { "y" } else { "n" }.to_owned());
        let mut d = BTreeMap::new();
        let values = [
            (Question::Address, p.address.map(|a| a.to_string())),
            (
                Question::Netmask,
                p.interface.map(|i| i.netmask().to_string()),
            ),
            (Question::Gateway, p.gateway.map(|g| g.to_string())),
            (
                Question::Hostname,
                p.hostname.as_ref().map(ToString::to_string),
            ),
            (Question::Domain, p.domain.as_ref().map(ToString::to_string)),
            (Question::DnsServers, p.dns_servers.as_deref().map(join)),
            (Question::NtpServers, p.ntp_servers.as_deref().map(join)),
            (
                Question::WebUsername,
                p.web_username.as_ref().map(|u| u.as_str().to_owned()),
            ),
            (Question::IncidentReporting, yn(p.incident_reporting)),
            (Question::UsageStatistics, yn(p.usage_statistics)),
        ];
        for (q, v) in values {
            if let Some(v) = v {
                d.insert(q, v);
            }
        }
        Defaults(d)
    }

    fn answers(&self) -> Option<Answers> {
        let p = &self.partial;
        Some(Answers {
            interface: p.interface?,
            gateway: p.gateway?,
            hostname: p.hostname.clone()?,
            domain: p.domain.clone()?,
            dns_servers: p.dns_servers.clone()?,
            ntp_servers: p.ntp_servers.clone()?,
            web_username: p.web_username.clone()?,
            web_password: p.web_password.clone()?,
            incident_reporting: p.incident_reporting?,
            usage_statistics: p.usage_statistics?,
        })
    }

    /// The summary shown before the confirmation, one line per setting, within 80 columns.
    pub fn summary(&self) -> Vec<String> {
        let p = &self.partial;
        let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let yes_no = |b: Option<bool>| show(b.map(|b| if b { "yes" } else { "no" }.to_owned()));
        let rows = [
            (
                "IP address",
                show(p.interface.map(|i| i.address().to_string())),
            ),
            (
                "Network mask",
                show(p.interface.map(|i| i.netmask().to_string())),
            ),
            ("Gateway", show(p.gateway.map(|g| g.to_string()))),
            (
                "Hostname",
                show(p.hostname.as_ref().map(ToString::to_string)),
            ),
            (
                "Domain suffix",
                show(p.domain.as_ref().map(ToString::to_string)),
            ),
            ("DNS servers", show(p.dns_servers.as_deref().map(join))),
            ("NTP servers", show(p.ntp_servers.as_deref().map(join))),
            (
                "Web administration username",
                show(p.web_username.as_ref().map(|u| u.as_str().to_owned())),
            ),
            (
                "Web administration password",
                show(p.web_password.as_ref().map(|_| "(set)".to_owned())),
            ),
            ("Incident reporting", yes_no(p.incident_reporting)),
            ("Usage statistics", yes_no(p.usage_statistics)),
        ];
        let mut out = vec![String::new(), "Summary:".to_owned()];
        for (label, value) in rows {
            let head = format!("  {label:<29} ");
            let indent = " ".repeat(head.len());
            for (i, line) in wrap(&value, WIDTH - head.len()).into_iter().enumerate() {
                out.push(if i == 0 {
                    format!("{head}{line}")
                } else {
                    format!("{indent}{line}")
                });
            }
        }
        out.push(String::new());
        out
    }
}

/// The question whose answer a check of `kind` tests.
fn question_of(kind: CheckKind) -> Option<Question> {
    match kind {
        CheckKind::Gateway => Some(Question::Gateway),
        CheckKind::Dns => Some(Question::DnsServers),
        CheckKind::Ntp => Some(Question::NtpServers),
        CheckKind::Addresses | CheckKind::Management | CheckKind::Route => None,
    }
}

/// One line per check result, as the wizard prints it and console automation reads it:
/// `Check passed: <kind> <subject>: <reason>` or `Check failed: …`. Never wrapped (a reader
/// takes one line per check); the subject and reason are cleaned of control characters.
pub fn check_line(r: &CheckResult) -> String {
    format!(
        "Check {}: {} {}: {}",
        if r.passed { "passed" } else { "failed" },
        r.kind,
        printable_line(&r.subject),
        printable_line(&r.reason)
    )
}

fn required(q: Question) -> InvalidValue {
    InvalidValue {
        message: "an answer is required".to_owned(),
        help: q.required_help().to_owned(),
    }
}

fn invalid(e: &InvalidValue) -> Reply {
    let mut lines = wrap(&format!("Invalid: {}", e.message), WIDTH - 1);
    lines.extend(
        wrap(&e.help, WIDTH - 3)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    Reply::Invalid(lines)
}

/// `^V` for a C0 control character, `^?` for DEL, `U+0085` for the others.
fn caret(c: char) -> String {
    match c as u32 {
        v @ 0..=0x1f => format!("^{}", char::from(b'@' + v as u8)),
        0x7f => "^?".to_owned(),
        v => format!("U+{v:04X}"),
    }
}

fn parse_ipv4(s: &str, what: &str) -> Result<Ipv4Addr, InvalidValue> {
    s.parse().map_err(|_| InvalidValue {
        message: format!("{s:?} is not an IPv4 address"),
        help: format!("type the {what} as four numbers from 0 to 255 separated by dots"),
    })
}

/// The configuration crate's gateway rule ([`rules::gateway`]), worded for the one interface
/// the wizard asks about.
fn check_gateway(i: &Ipv4Interface, g: Ipv4Addr) -> Result<(), InvalidValue> {
    let net = i.subnet();
    let range = || {
        let lo = u32::from(net.network()).saturating_add(1);
        let hi = u32::from(net.broadcast()).saturating_sub(1);
        format!(
            "use an address from {} to {}",
            Ipv4Addr::from(lo),
            Ipv4Addr::from(hi)
        )
    };
    match rules::gateway(g, &[*i]) {
        Ok(()) => Ok(()),
        Err(GatewayFault::Outside(_)) => Err(InvalidValue {
            message: format!("gateway {g} is not in the subnet {net} of the IP address"),
            help: range(),
        }),
        Err(GatewayFault::OwnAddress) => Err(InvalidValue {
            message: format!("gateway {g} is the node's own IP address"),
            help: "type the address of the router".to_owned(),
        }),
        Err(GatewayFault::NetworkOrBroadcast(_)) => Err(InvalidValue {
            message: format!("gateway {g} is the network or broadcast address of {net}"),
            help: range(),
        }),
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
}

fn parse_yes_no(s: &str) -> Result<bool, InvalidValue> {
    match s.to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(true),
        "n" | "no" => Ok(false),
        _ => Err(InvalidValue {
            message: format!("{s:?} is not y or n"),
            help: "type y for yes or n for no".to_owned(),
        }),
    }
}

/// Breaks text into lines of at most `width` characters at spaces (a word longer than the
/// width is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        loop {
            let len = line.chars().count();
            let wlen = word.chars().count();
            let sep = usize::from(len > 0);
            if len + sep + wlen <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // a word longer than a whole line
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's FQDN rule joins the host name and the domain at the domain's answer.
    #[test]
    fn a_domain_that_makes_the_fqdn_too_long_is_refused_at_once() {
        let (mut d, _) = run(&GOOD[..3]);
        assert_eq!(d.answer(&"h".repeat(63)), Reply::Next);
        let label = "d".repeat(59);
        let Reply::Invalid(lines) = d.answer(&format!("{label}.{label}.{label}.example.com"))
        else {
            panic!("a 255-character FQDN was accepted")
        };
        assert_eq!(lines[0], "Invalid: the FQDN", "{lines:?}");
        assert!(
            lines.join(" ").contains("over the limit of 253"),
            "{lines:?}"
        );
        assert_eq!(d.question(), Question::Domain);
        assert_eq!(d.answer("example.com"), Reply::Next);
    }

    fn defaults() -> Defaults {
        Defaults::current(
            Some(Ipv4Addr::new(10, 0, 2, 15)),
            Some(Ipv4Addr::new(255, 255, 255, 0)),
            Some(Ipv4Addr::new(10, 0, 2, 2)),
            None,
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3))],
        )
    }

    /// The answers of a whole good run, defaults taken where there are some.
    const GOOD: [&str; 13] = [
        "",
        "",
        "",
        "mgr01",
        "example.com",
        "",
        "pool.ntp.org 10.0.0.4",
        "",
        "s3cret pw",
        "s3cret pw",
        "y",
        "n",
        "y",
    ];

    #[test]
    fn prompts_come_in_the_seed_order_with_defaults() {
        let mut d = Dialog::new(defaults());
        let mut prompts = Vec::new();
        for a in GOOD {
            let p = d.prompt();
            prompts.push((p.text.clone(), p.secret));
            let r = d.answer(a);
            assert!(matches!(r, Reply::Next | Reply::Check(_)), "{a:?}: {r:?}");
        }
        let want = [
            ("IP address [10.0.2.15]: ", false),
            ("Network mask [255.255.255.0]: ", false),
            ("Gateway [10.0.2.2]: ", false),
            ("Hostname: ", false),
            ("Domain suffix: ", false),
            ("DNS servers [10.0.2.3]: ", false),
            ("NTP servers: ", false),
            ("Web administration username [admin]: ", false),
            ("Web administration password: ", true),
            ("Re-enter the web administration password: ", true),
            ("Enable incident reporting? (y/n): ", false),
            ("Send deployment and usage statistics? (y/n): ", false),
            ("Apply this configuration and restart? (y/n): ", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(t, s)| (t.to_string(), *s)).collect();
        assert_eq!(prompts, want);
    }

    fn run(answers: &[&str]) -> (Dialog, Reply) {
        let mut d = Dialog::new(defaults());
        let mut last = Reply::Next;
        for a in answers {
            last = d.answer(a);
        }
        (d, last)
    }

    #[test]
    fn a_whole_run_gives_the_answers() {
        let (_, reply) = run(&GOOD);
        let Reply::Check(a) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(a.interface.to_string(), "10.0.2.15/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(a.hostname.to_string(), "mgr01");
        assert_eq!(a.domain.to_string(), "example.com");
        assert_eq!(join(&a.dns_servers), "10.0.2.3");
        assert_eq!(join(&a.ntp_servers), "pool.ntp.org 10.0.0.4");
        assert_eq!(a.web_username.as_str(), "admin");
        assert_eq!(a.web_password.expose(), "s3cret pw");
        assert!(a.incident_reporting);
        assert!(!a.usage_statistics);
    }

    /// (question index, bad answer, first line of the message, second line)
    #[test]
    fn every_question_refuses_a_bad_answer_and_asks_again() {
        let cases: &[(usize, &str, &str, &str)] = &[
            (
                0,
                "10.0.2",
                "Invalid: \"10.0.2\" is not an IPv4 address",
                "  type the IP address as four numbers from 0 to 255 separated by dots",
            ),
            (
                0,
                "127.0.0.1",
                "Invalid: 127.0.0.1 is a loopback address",
                "  use the address of the node's network interface",
            ),
            (
                0,
                "224.0.0.1",
                "Invalid: 224.0.0.1 is not a unicast host address",
                "  use the node's own unicast address",
            ),
            (
                1,
                "255.0.255.0",
                "Invalid: netmask 255.0.255.0 is not contiguous",
                "  use a netmask whose one bits all come first, e.g. 255.255.255.0 (/24) or",
            ),
            (
                1,
                "255.255.255.252",
                "Invalid: 10.0.2.15 is the broadcast address of 10.0.2.12/30",
                "  use a host address from 10.0.2.13 to 10.0.2.14",
            ),
            (
                2,
                "10.0.3.1",
                "Invalid: gateway 10.0.3.1 is not in the subnet 10.0.2.0/24 of the IP address",
                "  use an address from 10.0.2.1 to 10.0.2.254",
            ),
            (
                2,
                "10.0.2.15",
                "Invalid: gateway 10.0.2.15 is the node's own IP address",
                "  type the address of the router",
            ),
            (
                2,
                "10.0.2.255",
                "Invalid: gateway 10.0.2.255 is the network or broadcast address of 10.0.2.0/24",
                "  use an address from 10.0.2.1 to 10.0.2.254",
            ),
            (
                3,
                "",
                "Invalid: an answer is required",
                "  type the node's host name, e.g. mgr01",
            ),
            (
                3,
                "mgr01.example.com",
                "Invalid: hostname \"mgr01.example.com\" contains a dot",
                "  give only the first label here and the rest in <domain>",
            ),
            (
                3,
                "-mgr",
                "Invalid: hostname \"-mgr\" is not an RFC 1123 label",
                "  use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen",
            ),
            (
                4,
                "example..com",
                "Invalid: domain \"example..com\" has an invalid label \"\"",
                "  use dot-separated labels of letters, digits and inner hyphens",
            ),
            (
                5,
                "dns.example.com",
                "Invalid: DNS server \"dns.example.com\" is not an IP address",
                "  give addresses separated by spaces, e.g. 10.0.0.2 10.0.0.3 (a resolver cannot",
            ),
            (
                5,
                " , ",
                "Invalid: an answer is required",
                "  type one or more addresses separated by spaces",
            ),
            (
                6,
                "",
                "Invalid: an answer is required",
                "  type one or more addresses or host names separated by spaces",
            ),
            (
                6,
                "10.0.0.300",
                "Invalid: \"10.0.0.300\" is not a valid IPv4 address",
                "  use four numbers from 0 to 255 separated by dots, or a host name",
            ),
            (
                7,
                "web admin",
                "Invalid: user name \"web admin\" has a character that is not allowed",
                "  use 1 to 64 letters, digits, dots, underscores or hyphens (e.g. \"admin\")",
            ),
            (
                8,
                "",
                "Invalid: an answer is required",
                "  type a password of at least one character",
            ),
            (
                8,
                "\u{16}pasted",
                "Invalid: the password contains the control character ^V",
                "  type it again; to paste, use the terminal's Paste menu rather than Ctrl-V",
            ),
            (
                10,
                "maybe",
                "Invalid: \"maybe\" is not y or n",
                "  type y for yes or n for no",
            ),
            (
                11,
                "",
                "Invalid: an answer is required",
                "  type y for yes or n for no",
            ),
            (
                12,
                "ok",
                "Invalid: \"ok\" is not y or n",
                "  type y for yes or n for no",
            ),
            (
                3,
                "mgr\u{7f}01",
                "Invalid: the answer contains the control character ^?",
                "  type it again without it",
            ),
            // the file's DNS-server rule: an address, and a unicast one
            (
                5,
                "0.0.0.0",
                "Invalid: DNS server 0.0.0.0 is not a unicast address",
                "  give the address of a DNS server, e.g. 10.0.0.2",
            ),
        ];
        for (at, bad, first, second) in cases {
            let (mut d, _) = run(&GOOD[..*at]);
            let q = d.question();
            assert_eq!(q, Question::ALL[*at]);
            let Reply::Invalid(lines) = d.answer(bad) else {
                panic!("{bad:?} was accepted at {q:?}")
            };
            assert!(lines.iter().all(|l| l.chars().count() < WIDTH), "{lines:?}");
            assert!(lines[0].starts_with(first), "{q:?} {bad:?}: {lines:?}");
            if !second.is_empty() {
                assert!(lines[1].starts_with(second), "{q:?} {bad:?}: {lines:?}");
            }
            // the same question again, and a good answer moves on
            assert_eq!(d.question(), q);
            assert!(matches!(d.answer(GOOD[*at]), Reply::Next | Reply::Check(_)));
        }
    }

    #[test]
    fn answers_are_trimmed_and_lists_split_on_commas() {
        let mut answers = GOOD;
        answers[5] = " 10.0.0.2, 10.0.0.3 ";
        answers[10] = "YES";
        let (_, reply) = run(&answers);
        let Reply::Check(a) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(join(&a.dns_servers), "10.0.0.2 10.0.0.3");
        assert!(a.incident_reporting);
    }

    #[test]
    fn differing_passwords_ask_for_both_again() {
        let (mut d, _) = run(&GOOD[..9]);
        assert_eq!(d.question(), Question::WebPasswordAgain);
        let Reply::Invalid(lines) = d.answer("other") else {
            panic!()
        };
        assert_eq!(
            lines,
            [
                "Invalid: the two passwords differ",
                "  type the password again, twice"
            ]
        );
        assert_eq!(d.question(), Question::WebPassword);
        assert_eq!(d.answer("x y"), Reply::Next);
        assert_eq!(d.answer("x y"), Reply::Next);
        assert_eq!(d.question(), Question::IncidentReporting);
    }

    #[test]
    fn no_defaults_means_every_answer_is_needed() {
        let mut d = Dialog::new(Defaults::default());
        assert_eq!(d.prompt().text, "IP address: ");
        let Reply::Invalid(lines) = d.answer("") else {
            panic!()
        };
        assert_eq!(lines[1], "  type the node's IPv4 address, e.g. 10.0.0.10");
    }

    #[test]
    fn the_summary_shows_every_answer_but_the_password() {
        let (d, _) = run(&GOOD[..12]);
        let p = d.prompt();
        assert_eq!(p.question, Question::Confirm);
        assert_eq!(
            p.preface,
            [
                "",
                "Summary:",
                "  IP address                    10.0.2.15",
                "  Network mask                  255.255.255.0",
                "  Gateway                       10.0.2.2",
                "  Hostname                      mgr01",
                "  Domain suffix                 example.com",
                "  DNS servers                   10.0.2.3",
                "  NTP servers                   pool.ntp.org 10.0.0.4",
                "  Web administration username   admin",
                "  Web administration password   (set)",
                "  Incident reporting            yes",
                "  Usage statistics              no",
                "",
            ]
        );
        assert!(!p.preface.concat().contains("s3cret"));
        assert!(!format!("{d:?}").contains("s3cret"));
    }

    #[test]
    fn long_summary_values_wrap_within_80_columns() {
        let mut answers = GOOD;
        let many = "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8";
        answers[5] = many;
        let (d, _) = run(&answers[..12]);
        let lines = d.summary();
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("  DNS servers ")));
        assert!(lines.iter().any(|l| l.starts_with(&" ".repeat(32))));
    }

    #[test]
    fn no_at_the_summary_starts_over_with_the_answers_as_defaults() {
        let mut answers = GOOD.to_vec();
        answers[12] = "n";
        let (mut d, reply) = run(&answers);
        assert_eq!(reply, Reply::StartOver);
        assert_eq!(d.question(), Question::Address);
        let mut texts = Vec::new();
        for _ in 0..13 {
            texts.push(d.prompt().text);
            let r = d.answer(if d.prompt().secret { "new pw" } else { "" });
            if let Reply::Check(a) = r {
                assert_eq!(a.web_password.expose(), "new pw");
                assert_eq!(a.hostname.to_string(), "mgr01");
            }
        }
        assert_eq!(texts[3], "Hostname [mgr01]: ");
        assert_eq!(texts[6], "NTP servers [pool.ntp.org 10.0.0.4]: ");
        assert_eq!(texts[8], "Web administration password: ");
        assert_eq!(texts[10], "Enable incident reporting? (y/n) [y]: ");
        assert_eq!(
            texts[11],
            "Send deployment and usage statistics? (y/n) [n]: "
        );
    }

    fn result(kind: CheckKind, subject: &str, passed: bool, reason: &str) -> CheckResult {
        CheckResult {
            kind,
            subject: subject.to_owned(),
            passed,
            attempts: 1,
            elapsed_ms: 1,
            tried: Vec::new(),
            reason: reason.to_owned(),
        }
    }

    /// A dialog at the checks (the whole good run answered) and the results of one round:
    /// the gateway passes, the DNS server and an NTP server fail.
    fn at_checks() -> (Dialog, Vec<CheckResult>) {
        let (d, reply) = run(&GOOD);
        assert!(matches!(reply, Reply::Check(_)), "{reply:?}");
        let results = vec![
            result(
                CheckKind::Gateway,
                "10.0.2.2 on eth0",
                true,
                "gateway 10.0.2.2 answered ARP on eth0",
            ),
            result(
                CheckKind::Dns,
                "10.0.2.3",
                false,
                "DNS server 10.0.2.3 did not answer mgr01.example.com A within 5 s",
            ),
            result(
                CheckKind::Ntp,
                "pool.ntp.org",
                false,
                "NTP server pool.ntp.org did not resolve",
            ),
            result(
                CheckKind::Ntp,
                "10.0.0.4",
                true,
                "NTP server 10.0.0.4 answered",
            ),
        ];
        (d, results)
    }

    #[test]
    fn checks_that_all_pass_finish_the_dialog() {
        let (mut d, mut results) = at_checks();
        for r in &mut results {
            r.passed = true;
        }
        let Reply::Done(a) = d.checked(&results) else {
            panic!("passing checks did not finish")
        };
        assert_eq!(a.hostname.to_string(), "mgr01");
    }

    #[test]
    fn failed_checks_offer_reenter_continue_or_quit() {
        let (mut d, results) = at_checks();
        assert_eq!(d.checked(&results), Reply::Next);
        assert_eq!(d.question(), Question::ChecksFailed);
        let p = d.prompt();
        assert_eq!(
            p.text,
            "Re-enter the values, continue anyway, or quit? (r/c/q): "
        );
        assert_eq!(
            p.preface,
            [
                "",
                "2 of 4 checks failed; nothing has been applied yet.",
                "  r  re-enter: DNS servers, NTP servers, then confirm and check again",
                "  c  continue anyway: apply these values and restart",
                "  q  quit: change nothing",
            ]
        );
        assert!(p.preface.iter().all(|l| l.chars().count() < WIDTH));

        // a bad choice is refused and asked again
        let Reply::Invalid(lines) = d.answer("maybe") else {
            panic!()
        };
        assert_eq!(
            lines,
            [
                "Invalid: \"maybe\" is not one of the choices",
                "  type r to re-enter the values, c to apply anyway, or q to quit without",
                "  changes",
            ]
        );
        assert_eq!(d.question(), Question::ChecksFailed);

        // quit
        let mut q = d.clone();
        assert_eq!(q.answer("q"), Reply::Quit);
        // continue anyway: the answers as they are
        let mut c = d.clone();
        let Reply::Done(a) = c.answer("C") else {
            panic!()
        };
        assert_eq!(join(&a.dns_servers), "10.0.2.3");
    }

    #[test]
    fn reenter_asks_only_the_failing_values_then_the_summary_and_the_checks() {
        let (mut d, results) = at_checks();
        d.checked(&results);
        assert_eq!(d.answer("r"), Reply::Next);
        assert_eq!(d.question(), Question::DnsServers);
        assert_eq!(d.prompt().text, "DNS servers [10.0.2.3]: ");
        // a bad value is still refused at once
        assert!(matches!(d.answer("dns.example.com"), Reply::Invalid(_)));
        assert_eq!(d.answer("10.0.2.53"), Reply::Next);
        assert_eq!(d.question(), Question::NtpServers);
        assert_eq!(d.prompt().text, "NTP servers [pool.ntp.org 10.0.0.4]: ");
        assert_eq!(d.answer("10.0.0.4"), Reply::Next);
        assert_eq!(d.question(), Question::Confirm);
        let summary = d.prompt().preface.join("\n");
        assert!(
            summary.contains("DNS servers                   10.0.2.53"),
            "{summary}"
        );
        let Reply::Check(a) = d.answer("y") else {
            panic!()
        };
        assert_eq!(join(&a.dns_servers), "10.0.2.53");
        assert_eq!(join(&a.ntp_servers), "10.0.0.4");
        // the values not re-entered are kept, the password too
        assert_eq!(a.gateway, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(a.web_password.expose(), "s3cret pw");
    }

    #[test]
    fn a_failed_gateway_goes_back_to_the_gateway_and_its_subnet_rule() {
        let (mut d, _) = at_checks();
        let failed = [result(
            CheckKind::Gateway,
            "10.0.2.2 on eth0",
            false,
            "gateway 10.0.2.2 did not answer ARP on eth0 within 5 s",
        )];
        d.checked(&failed);
        assert_eq!(d.answer("r"), Reply::Next);
        assert_eq!(d.question(), Question::Gateway);
        assert!(matches!(d.answer("10.0.3.1"), Reply::Invalid(_)));
        assert_eq!(d.answer("10.0.2.1"), Reply::Next);
        assert_eq!(d.question(), Question::Confirm);
        // "n" at the summary still starts over
        assert_eq!(d.answer("n"), Reply::StartOver);
        assert_eq!(d.question(), Question::Address);
        assert_eq!(d.prompt().text, "IP address [10.0.2.15]: ");
    }

    #[test]
    fn reenter_is_offered_a_bounded_number_of_rounds() {
        let (mut d, results) = at_checks();
        for round in 1..=MAX_CHECK_ROUNDS {
            assert_eq!(d.checked(&results), Reply::Next, "round {round}");
            if round == MAX_CHECK_ROUNDS {
                break;
            }
            assert_eq!(d.answer("r"), Reply::Next);
            assert_eq!(d.answer(""), Reply::Next);
            assert_eq!(d.answer(""), Reply::Next);
            assert!(matches!(d.answer("y"), Reply::Check(_)));
        }
        assert_eq!(d.question(), Question::ChecksFailed);
        let p = d.prompt();
        assert_eq!(p.text, "Continue anyway, or quit? (c/q): ");
        assert!(
            !p.preface.iter().any(|l| l.contains("re-enter")),
            "{:?}",
            p.preface
        );
        let Reply::Invalid(lines) = d.answer("r") else {
            panic!()
        };
        assert_eq!(
            lines[0],
            "Invalid: the checks failed 3 times; re-entering is no longer offered"
        );
        assert!(matches!(d.answer("c"), Reply::Done(_)));
    }

    #[test]
    fn a_check_line_is_one_clean_line() {
        let r = result(
            CheckKind::Dns,
            "10.0.2.3",
            false,
            "DNS server 10.0.2.3 did not answer\n\x1b[31m x",
        );
        assert_eq!(
            check_line(&r),
            "Check failed: dns 10.0.2.3: DNS server 10.0.2.3 did not answer [31m x"
        );
        let ok = result(
            CheckKind::Gateway,
            "10.0.2.2 on eth0",
            true,
            "gateway 10.0.2.2 answered ARP on eth0",
        );
        assert_eq!(
            check_line(&ok),
            "Check passed: gateway 10.0.2.2 on eth0: gateway 10.0.2.2 answered ARP on eth0"
        );
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
