//! The schema's rules, apart from any reader: one function per field (usable on one value, as
//! the wizard does after each answer), and the one set of rules that turns a draft into a
//! [`Document`] or findings. A draft is positioned (the XML reader, `crate::parse`: every
//! value with its line:column) or named ([`ManagementDraft`]: JSON metadata and the wizard's
//! answers, every value with its field's name); a finding is placed the same way.
//!
//! One gateway rule, one hostname rule, one DNS-server rule: everywhere.
//!
//! Pure: nothing is read or written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::document::Document;
use crate::draft::*;
use crate::model::*;
use crate::secret::Secret;
use crate::tls;

/// The IPv4 address `value`; `what` names it in the message ("gateway", "netmask", ...).
pub fn ipv4(value: &str, what: &str) -> Result<Ipv4Addr, InvalidValue> {
    value.parse::<Ipv4Addr>().map_err(|_| {
        InvalidValue::new(
            format!("{what} {value:?} is not a valid IPv4 address"),
            "write four numbers from 0 to 255 separated by dots, e.g. 10.0.0.31",
        )
    })
}

/// The prefix length of a dotted netmask (`255.255.255.0` → 24).
pub fn netmask(value: &str) -> Result<u8, InvalidValue> {
    netmask_prefix(ipv4(value, "netmask")?)
}

/// `true` or `false`, as the file writes them.
pub fn boolean(value: &str) -> Result<bool, InvalidValue> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(InvalidValue::new(
            format!("{value:?} is not a boolean"),
            "write true or false",
        )),
    }
}

/// A free-text field of at most `max` characters on one printable line.
pub fn free_text(
    value: &str,
    what: &str,
    max: usize,
    allow_empty: bool,
) -> Result<String, InvalidValue> {
    if value.is_empty() && !allow_empty {
        return Err(InvalidValue::new(
            format!("the {what} is empty"),
            format!("give a {what} of 1 to {max} characters"),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(InvalidValue::new(
            format!("the {what} is {n} characters long, over the limit of {max}"),
            format!("shorten it to at most {max} characters"),
        ));
    }
    // Readers refuse these already; kept so that no caller can make a one-line field hold a
    // line break.
    if let Some(c) = crate::xml::forbidden_char(value) {
        return Err(InvalidValue::new(
            format!(
                "the {what} contains the control character {}",
                crate::xml::code_point(c)
            ),
            "write it on one line of printable text, without tabs",
        ));
    }
    Ok(value.to_owned())
}

/// One DNS server: a unicast IP address (a name cannot be used: the node would need a DNS
/// server to look it up).
pub fn dns_server(value: &str) -> Result<IpAddr, InvalidValue> {
    match value.parse::<IpAddr>() {
        Ok(a) if a.is_unspecified() || a.is_multicast() || a == IpAddr::V4(Ipv4Addr::BROADCAST) => {
            Err(InvalidValue::new(
                format!("DNS server {a} is not a unicast address"),
                "give the address of a DNS server, e.g. 10.0.0.2",
            ))
        }
        Ok(a) => Ok(a),
        Err(_) => Err(InvalidValue::new(
            format!("DNS server {value:?} is not an IP address"),
            "give the DNS server's IPv4 or IPv6 address: a host name cannot be used, because the node would need a DNS server to look it up",
        )),
    }
}

/// The host name and the domain together: the FQDN fits in 253 characters.
pub fn fqdn(hostname: &Hostname, domain: &DomainName) -> Result<(), InvalidValue> {
    let len = hostname.as_str().len() + 1 + domain.as_str().len();
    if len > 253 {
        return Err(InvalidValue::new(
            format!("the FQDN {hostname}.{domain} is {len} characters long, over the limit of 253"),
            "shorten the hostname or the domain",
        ));
    }
    Ok(())
}

/// Why a gateway cannot be used with the node's interfaces (see [`gateway`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayFault {
    /// The gateway is one of the node's own addresses.
    OwnAddress,
    /// The gateway is the network or broadcast address of this attached subnet.
    NetworkOrBroadcast(Ipv4Net),
    /// The gateway lies in none of these attached subnets.
    Outside(Vec<Ipv4Net>),
}

/// The gateway rule: a gateway (default or of a route) is a host of an attached subnet, and
/// not the node itself. `attached` are the node's interfaces (eth0, and eth1 when it has one).
pub fn gateway(g: Ipv4Addr, attached: &[Ipv4Interface]) -> Result<(), GatewayFault> {
    if attached.iter().any(|i| i.address() == g) {
        return Err(GatewayFault::OwnAddress);
    }
    match attached.iter().find(|i| i.subnet().contains(&g)) {
        Some(i)
            if i.prefix_len() <= 30
                && (g == i.subnet().network() || g == i.subnet().broadcast()) =>
        {
            Err(GatewayFault::NetworkOrBroadcast(i.subnet()))
        }
        Some(_) => Ok(()),
        None => Err(GatewayFault::Outside(
            attached.iter().map(|i| i.subnet()).collect(),
        )),
    }
}

impl GatewayFault {
    /// The fault in the words of a configuration (file, metadata): `what` is "the default
    /// gateway" or "the route gateway".
    pub fn describe(&self, what: &str, g: Ipv4Addr) -> InvalidValue {
        match self {
            GatewayFault::OwnAddress => InvalidValue::new(
                format!("{what} {g} is the node's own address"),
                "give the router's address",
            ),
            GatewayFault::NetworkOrBroadcast(net) => InvalidValue::new(
                format!("{what} {g} is the network or broadcast address of {net}"),
                "give the router's host address",
            ),
            GatewayFault::Outside(nets) => {
                let subnets: Vec<String> = nets.iter().map(ToString::to_string).collect();
                InvalidValue::new(
                    format!(
                        "{what} {g} is not in an attached subnet ({})",
                        subnets.join(" or ")
                    ),
                    "give a gateway inside the eth0 subnet (<ipv4>) or the eth1 subnet (<secondary-ipv4>)",
                )
            }
        }
    }
}

/// A whole number of seconds from `low` to `high` (digits only: no sign, unit or space).
pub fn seconds(value: &str, what: &str, low: u32, high: u32) -> Result<u32, InvalidValue> {
    let help = format!("give a whole number of seconds from {low} to {high}, e.g. {what}=\"120\"");
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidValue::new(
            format!("{what}={value:?} is not a number of seconds"),
            help,
        ));
    }
    match value.parse::<u32>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n),
        _ => Err(InvalidValue::new(
            format!("{what}={value} is outside {low} to {high} seconds"),
            help,
        )),
    }
}

/// A value together with the name of the field it came from (`management_node_config.gw`,
/// or the wizard's question), which every finding about it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<T = String> {
    /// The field's own name.
    pub field: String,
    /// The value as given (trimmed).
    pub value: T,
}

impl<T> Named<T> {
    /// `value`, from the field `field`.
    pub fn new(field: impl Into<String>, value: T) -> Self {
        Named {
            field: field.into(),
            value,
        }
    }
}

/// A Management Node's settings as named values: what the JSON metadata field
/// `management_node_config` and the install wizard's answers both are. [`management`] turns
/// it into a [`Document`].
#[derive(Debug, Clone)]
pub struct ManagementDraft {
    /// The host name (also the node's name).
    pub hostname: Named,
    /// The domain suffix.
    pub domain: Named,
    /// eth0's address.
    pub ip: Named,
    /// eth0's netmask, dotted.
    pub mask: Named,
    /// The default gateway.
    pub gw: Named,
    /// The DNS servers, one value each.
    pub dns: Vec<Named>,
    /// The NTP servers, one value each.
    pub ntp: Vec<Named>,
    /// The web administration user.
    pub user: Named,
    /// The web administration password's SHA-512-crypt hash.
    pub pass: Named,
    /// The OS `admin` account's SHA-512-crypt hash.
    pub admin_password: Named,
    /// Enable incident reporting.
    pub error_reports: Named<bool>,
    /// Send deployment and usage statistics.
    pub enable_analytics: Named<bool>,
    /// The contact e-mail address, if any.
    pub contact_email: Option<Named>,
}

impl ManagementDraft {
    /// The general draft these named values stand for: a Management Node with eth0 only and
    /// SSH `global`, its name its host name. A missing value is reported at `root`.
    fn to_draft(&self, root: &str) -> Draft {
        let one = |v: &Named| named(&v.field, v.value.clone());
        let yes_no = |v: &Named<bool>| named(&v.field, if v.value { "true" } else { "false" });
        let root_at = At::Field(root.to_owned());
        let mut d = Draft::new(root_at.clone());
        d.role = named(root, "management");
        d.name = one(&self.hostname);
        d.hostname = one(&self.hostname);
        d.domain = one(&self.domain);
        d.network = Part::Given(
            root_at.clone(),
            NetworkDraft {
                ipv4: Part::Given(
                    root_at.clone(),
                    Ipv4Draft {
                        address: one(&self.ip),
                        netmask: one(&self.mask),
                        gateway: one(&self.gw),
                    },
                ),
                dns_servers: self.dns.iter().map(one).collect(),
                ntp_servers: self.ntp.iter().map(one).collect(),
                ..NetworkDraft::default()
            },
        );
        d.ssh = Part::Given(
            root_at.clone(),
            SshDraft {
                enabled: Slot::Absent,
                password_hash: one(&self.admin_password),
                authorized_keys: Vec::new(),
            },
        );
        d.web_admin = Part::Given(
            root_at,
            WebAdminDraft {
                username: one(&self.user),
                password_hash: one(&self.pass),
            },
        );
        d.incident_reporting = yes_no(&self.error_reports);
        d.usage_statistics = yes_no(&self.enable_analytics);
        d.contact_email = self.contact_email.as_ref().map_or(Slot::Absent, one);
        d
    }
}

/// A Management Node's named draft through the one set of rules ([`check`]); a value missing
/// altogether is reported at `root` (e.g. `management_node_config`). The document's bytes are
/// the XML serialized from the configuration.
pub fn management(d: &ManagementDraft, root: &str) -> Result<Document, Vec<Diagnostic>> {
    management_at(d, root, SystemTime::now())
}

/// [`management`] with the time as an input.
pub(crate) fn management_at(
    d: &ManagementDraft,
    root: &str,
    now: SystemTime,
) -> Result<Document, Vec<Diagnostic>> {
    check(
        Some(d.to_draft(root)),
        Findings::by_position(),
        now,
        None,
        At::Field(root.to_owned()),
    )
}

/// Applies the rules to a draft (positioned or named) with the reader's findings so far:
/// the [`Document`] — of `bytes` as they came, or of the XML serialized from the model when
/// there are none — or every finding, sorted by place.
pub(crate) fn check(
    draft: Option<Draft>,
    reader_errors: Findings,
    now: SystemTime,
    bytes: Option<Vec<u8>>,
    root: At,
) -> Result<Document, Vec<Diagnostic>> {
    let mut r = Rules {
        errors: reader_errors,
        warnings: Findings::by_position(),
        now,
    };
    let config = draft.and_then(|d| r.node_config(&d));
    let errors = r.errors.finish();
    let warnings = r.warnings.finish();
    match config {
        Some(config) if errors.is_empty() => Ok(match bytes {
            Some(bytes) => Document::new(bytes, config, warnings),
            None => Document::serialized(config, warnings),
        }),
        _ => {
            let mut all = errors;
            if all.is_empty() {
                // Unreachable by construction; never report "invalid" without saying why.
                all.push(root.diagnostic(
                    Severity::Error,
                    "the configuration is incomplete".into(),
                    "check every required value".into(),
                ));
            }
            Err(all)
        }
    }
}

/// The findings of one run of the rules (bounded: see [`Findings`]).
struct Rules {
    errors: Findings,
    warnings: Findings,
    now: SystemTime,
}

fn missing_child(parent: &str, name: &str, hint: &str) -> InvalidValue {
    InvalidValue::new(
        format!("<{parent}> has no <{name}>"),
        format!("add <{name}>{hint}</{name}>"),
    )
}

fn missing_attr(element: &str, name: &str) -> InvalidValue {
    InvalidValue::new(
        format!("<{element}> has no {name:?} attribute"),
        format!("add {name}=\"...\" to <{element}>"),
    )
}

impl Rules {
    fn error(&mut self, at: &At, message: impl Into<String>, help: impl Into<String>) {
        self.errors
            .push(at.diagnostic(Severity::Error, message.into(), help.into()));
    }

    fn invalid(&mut self, at: &At, e: InvalidValue) {
        self.error(at, e.message, e.help);
    }

    /// The outcome of a field rule on `v`, reported at `v`.
    fn value<T>(&mut self, v: &Val, r: Result<T, InvalidValue>) -> Option<T> {
        r.map_err(|e| self.invalid(&v.at, e)).ok()
    }

    /// A required value: its absence is reported at `parent` as `missing` says.
    fn required<'s>(
        &mut self,
        slot: &'s Slot,
        parent: &At,
        missing: InvalidValue,
    ) -> Option<&'s Val> {
        match slot {
            Slot::Given(v) => Some(v),
            Slot::Refused => None,
            Slot::Absent => {
                self.invalid(parent, missing);
                None
            }
        }
    }

    /// An optional value read by `f`: `Some(None)` when absent, `None` when refused or invalid.
    #[allow(clippy::option_option)]
    fn optional<T>(
        &mut self,
        slot: &Slot,
        f: impl FnOnce(&mut Self, &Val) -> Option<T>,
    ) -> Option<Option<T>> {
        match slot {
            Slot::Absent => Some(None),
            Slot::Refused => None,
            Slot::Given(v) => f(self, v).map(Some),
        }
    }

    fn node_config(&mut self, d: &Draft) -> Option<NodeConfig> {
        let root = &d.root;
        let role = self
            .required(
                &d.role,
                root,
                missing_child("node-config", "role", "transcoding"),
            )
            .and_then(|v| match v.text.as_str() {
                "management" => Some(Role::Management),
                "transcoding" => Some(Role::Transcoding),
                "proxying" => Some(Role::Proxying),
                other => {
                    self.error(
                        &v.at,
                        format!("role {other:?} is not known"),
                        "write management, transcoding or proxying",
                    );
                    None
                }
            });
        let name = self
            .required(
                &d.name,
                root,
                missing_child("node-config", "name", "conf01"),
            )
            .and_then(|v| self.value(v, free_text(&v.text, "name", 100, false)));
        let description = self.optional(&d.description, |r, v| {
            r.value(v, free_text(&v.text, "description", 250, true))
        });
        let hostname_val = self.required(
            &d.hostname,
            root,
            missing_child("node-config", "hostname", "conf01"),
        );
        let hostname = hostname_val.and_then(|v| self.value(v, Hostname::parse(&v.text)));
        let domain = self
            .required(
                &d.domain,
                root,
                missing_child("node-config", "domain", "example.com"),
            )
            .and_then(|v| self.value(v, DomainName::parse(&v.text)));
        if let (Some(h), Some(dn), Some(v)) = (&hostname, &domain, hostname_val) {
            self.value(v, fqdn(h, dn));
        }
        let network = match &d.network {
            Part::Given(at, n) => self.network(n, at),
            Part::Absent => {
                self.error(
                    root,
                    "<node-config> has no <network>",
                    "add <network> with <ipv4>, <dns-server> and <ntp-server>",
                );
                None
            }
        };
        let ssh = match &d.ssh {
            Part::Given(at, s) => self.ssh(s, at),
            Part::Absent => {
                self.error(
                    root,
                    "<node-config> has no <ssh>",
                    "add <ssh enabled=\"global\"><password-hash>$6$...</password-hash></ssh>",
                );
                None
            }
        };
        let health = match &d.health {
            Part::Given(_, h) => self.health(h),
            Part::Absent => Some(HealthPolicy::default()),
        };
        // Role-specific elements: present or absent as the role requires.
        let role_settings = match role {
            None => None,
            Some(Role::Management) => {
                let conf_only = [
                    ("system-location", slot_at(&d.system_location)),
                    ("sip-tls-fqdn", slot_at(&d.sip_tls_fqdn)),
                    ("tls", part_at(&d.tls)),
                    ("distributed-database", slot_at(&d.distributed_database)),
                    ("management-node", part_at(&d.management_node)),
                ];
                self.refuse_for_role(&conf_only, "management", "transcoding or proxying");
                self.management(d).map(RoleSettings::Management)
            }
            Some(role) => {
                let mgmt_only = [
                    ("web-admin", part_at(&d.web_admin)),
                    ("incident-reporting", slot_at(&d.incident_reporting)),
                    ("usage-statistics", slot_at(&d.usage_statistics)),
                    ("contact-email", slot_at(&d.contact_email)),
                ];
                self.refuse_for_role(&mgmt_only, role.as_str(), "management");
                self.conferencing(d).map(|c| match role {
                    Role::Transcoding => RoleSettings::Transcoding(c),
                    _ => RoleSettings::Proxying(c),
                })
            }
        };
        Some(NodeConfig {
            role: role_settings?,
            name: name?,
            description: description?,
            hostname: hostname?,
            domain: domain?,
            network: network?,
            ssh: ssh?,
            health: health?,
        })
    }

    fn refuse_for_role(&mut self, present: &[(&str, Option<&At>)], role: &str, other: &str) {
        for (name, at) in present {
            if let Some(at) = at {
                self.error(
                    at,
                    format!("<{name}> is not allowed for the {role} role"),
                    format!("remove it, or set <role> to {other}"),
                );
            }
        }
    }

    /// address= and netmask= of `<ipv4>` or `<secondary-ipv4>` (`element` names it).
    fn interface(&mut self, i: &Ipv4Draft, at: &At, element: &str) -> Option<Ipv4Interface> {
        let addr = self
            .required(&i.address, at, missing_attr(element, "address"))
            .and_then(|v| {
                self.value(v, ipv4(v.text.trim(), "address"))
                    .map(|a| (a, v))
            });
        let prefix = self
            .required(&i.netmask, at, missing_attr(element, "netmask"))
            .and_then(|v| self.value(v, netmask(v.text.trim())));
        let (a, v) = addr?;
        let prefix = prefix?;
        self.value(v, Ipv4Interface::from_prefix(a, prefix))
    }

    /// A gateway checked by [`gateway`] against the node's interfaces, reported at `v`.
    fn on_attached(&mut self, g: Ipv4Addr, attached: &[Ipv4Interface], v: &Val, what: &str) {
        if let Err(fault) = gateway(g, attached) {
            self.invalid(&v.at, fault.describe(what, g));
        }
    }

    fn network(&mut self, n: &NetworkDraft, at: &At) -> Option<Network> {
        // eth0
        let eth0 = match &n.ipv4 {
            Part::Absent => {
                self.error(
                    at,
                    "<network> has no <ipv4>",
                    "add <ipv4 address=\"10.0.0.31\" netmask=\"255.255.255.0\" gateway=\"10.0.0.1\"/>",
                );
                None
            }
            Part::Given(eat, i) => {
                let iface = self.interface(i, eat, "ipv4");
                let gw = self
                    .required(&i.gateway, eat, missing_attr("ipv4", "gateway"))
                    .and_then(|v| self.value(v, ipv4(&v.text, "gateway")).map(|g| (g, v)));
                Some((iface, gw))
            }
        };
        // eth1
        let secondary = match &n.secondary_ipv4 {
            Part::Absent => Some(None),
            Part::Given(eat, i) => {
                let iface = self.interface(i, eat, "secondary-ipv4");
                if let (Some(Some(eth0)), Some(eth1)) = (eth0.as_ref().map(|(i, _)| *i), iface) {
                    let (a, b) = (eth0.subnet(), eth1.subnet());
                    if a.contains(&b) || b.contains(&a) {
                        self.error(
                            eat,
                            format!("the eth1 subnet {b} overlaps the eth0 subnet {a}"),
                            "give eth0 and eth1 addresses in separate subnets",
                        );
                    }
                }
                iface.map(Some)
            }
        };
        let attached: Vec<Ipv4Interface> = eth0
            .as_ref()
            .and_then(|(i, _)| *i)
            .into_iter()
            .chain(secondary.flatten())
            .collect();
        // Gateways are checked against the subnets only when every interface is known, so
        // that one bad address does not make every gateway look wrong too.
        let subnets_known = matches!(eth0, Some((Some(_), _))) && secondary.is_some();
        let gateway = match &eth0 {
            Some((_, Some((g, v)))) => {
                if subnets_known {
                    self.on_attached(*g, &attached, v, "the default gateway");
                }
                Some(*g)
            }
            _ => None,
        };
        let ipv6 = match &n.ipv6 {
            Part::Absent => Some(None),
            Part::Given(eat, i) => self.ipv6(i, eat).map(Some),
        };
        let static_nat = match &n.static_nat {
            Part::Absent => Some(None),
            Part::Given(eat, slot) => self
                .required(slot, eat, missing_attr("static-nat", "ipv4"))
                .and_then(|v| {
                    let a = self.value(v, ipv4(&v.text, "static NAT address"))?;
                    if a.is_unspecified()
                        || a.is_broadcast()
                        || a.is_multicast()
                        || a.is_loopback()
                        || a.is_link_local()
                    {
                        self.error(
                            &v.at,
                            format!("static NAT address {a} is not a unicast address"),
                            "give the public unicast IPv4 address the node is reached at",
                        );
                        return None;
                    }
                    Some(Some(a))
                }),
        };
        let mut routes = Some(Vec::new());
        for (rat, route) in &n.routes {
            let name = self
                .required(&route.name, rat, missing_attr("route", "name"))
                .and_then(|v| self.value(v, free_text(v.text.trim(), "route name", 100, false)));
            let dest = self
                .required(
                    &route.destination,
                    rat,
                    missing_attr("route", "destination"),
                )
                .and_then(|v| self.value(v, destination(v.text.trim())));
            let gw = self
                .required(&route.gateway, rat, missing_attr("route", "gateway"))
                .and_then(|v| {
                    let g = self.value(v, ipv4(v.text.trim(), "route gateway"))?;
                    if subnets_known {
                        self.on_attached(g, &attached, v, "the route gateway");
                    }
                    Some(g)
                });
            match (name, dest, gw, routes.as_mut()) {
                (Some(name), Some(destination), Some(gateway), Some(r)) => r.push(Route {
                    name,
                    destination,
                    gateway,
                }),
                _ => routes = None,
            }
        }
        let dns = self.list(&n.dns_servers, |v| dns_server(&v.text));
        if n.dns_servers.is_empty() {
            self.error(
                at,
                "<network> has no <dns-server>",
                "add at least one <dns-server>, e.g. <dns-server>10.0.0.2</dns-server>",
            );
        }
        let ntp = self.list(&n.ntp_servers, |v| ServerName::parse(&v.text));
        if n.ntp_servers.is_empty() {
            self.error(
                at,
                "<network> has no <ntp-server>",
                "add at least one <ntp-server>, e.g. <ntp-server>pool.ntp.org</ntp-server>",
            );
        }
        let (iface, _) = eth0?;
        let dns = dns.filter(|d| !d.is_empty())?;
        let ntp = ntp.filter(|n| !n.is_empty())?;
        Some(Network {
            ipv4: Ipv4Settings {
                interface: iface?,
                gateway: gateway?,
            },
            secondary_ipv4: secondary?,
            ipv6: ipv6?,
            static_nat: static_nat?,
            routes: routes?,
            dns_servers: dns,
            ntp_servers: ntp,
        })
    }

    /// Every value of a list through `rule`: `None` when any is refused or invalid.
    fn list<T>(
        &mut self,
        slots: &[Slot],
        rule: impl Fn(&Val) -> Result<T, InvalidValue>,
    ) -> Option<Vec<T>> {
        let mut out = Some(Vec::with_capacity(slots.len()));
        for slot in slots {
            let item = match slot {
                Slot::Given(v) => self.value(v, rule(v)),
                _ => None,
            };
            match (item, out.as_mut()) {
                (Some(x), Some(list)) => list.push(x),
                (None, _) => out = None,
                _ => {}
            }
        }
        out
    }

    fn ipv6(&mut self, i: &Ipv6Draft, at: &At) -> Option<Ipv6Settings> {
        let gw = match &i.gateway {
            Slot::Absent => Some(None),
            Slot::Refused => None,
            Slot::Given(v) => match v.text.parse::<Ipv6Addr>() {
                Ok(g) => Some(Some(g)),
                Err(_) => {
                    self.error(
                        &v.at,
                        format!("gateway {:?} is not a valid IPv6 address", v.text),
                        "write an IPv6 address without prefix, e.g. 2001:db8::1",
                    );
                    None
                }
            },
        };
        match &i.address {
            Slot::Given(v) => {
                let interface = self.value(v, Ipv6Interface::parse(v.text.trim()));
                Some(Ipv6Settings {
                    interface: interface?,
                    gateway: gw?,
                })
            }
            Slot::Refused => None,
            Slot::Absent => {
                if gw.is_some_and(|g| g.is_some()) {
                    self.error(
                        at,
                        "an IPv6 gateway requires an IPv6 address",
                        "add address=\"2001:db8::31/64\" to <ipv6>, or remove the gateway",
                    );
                } else {
                    self.error(
                        at,
                        "<ipv6> has no \"address\" attribute",
                        "add address=\"2001:db8::31/64\", or remove <ipv6> for an IPv4-only node",
                    );
                }
                None
            }
        }
    }

    fn health(&mut self, h: &HealthDraft) -> Option<HealthPolicy> {
        let rollback = self.optional(&h.rollback, |r, v| match RollbackOn::parse(&v.text) {
            Some(on) => Some(on),
            None => {
                r.error(
                    &v.at,
                    format!("rollback={:?} is not known", v.text),
                    "write gateway (roll back when the gateway does not answer), any (when any check fails) or never",
                );
                None
            }
        });
        let (low, high) = HealthPolicy::GRACE_RANGE;
        let grace = self.optional(&h.grace, |r, v| {
            r.value(v, seconds(&v.text, "grace", low, high))
        });
        let report = self.optional(&h.report, |r, v| {
            r.value(v, seconds(&v.text, "report", 0, HealthPolicy::REPORT_MAX))
        });
        Some(HealthPolicy {
            rollback: rollback?,
            grace_secs: grace?,
            report_secs: report?,
        })
    }

    fn ssh(&mut self, s: &SshDraft, at: &At) -> Option<Ssh> {
        let mode = self.optional(&s.enabled, |r, v| match v.text.as_str() {
            "global" => Some(SshMode::Global),
            "on" => Some(SshMode::On),
            "off" => Some(SshMode::Off),
            other => {
                r.error(
                    &v.at,
                    format!("enabled={other:?} is not known"),
                    "write global, on or off",
                );
                None
            }
        });
        let hash = self
            .required(
                &s.password_hash,
                at,
                missing_child("ssh", "password-hash", "$6$..."),
            )
            .and_then(|v| self.value(v, PasswordHash::parse(&v.text)));
        let keys = self.list(&s.authorized_keys, |v| AuthorizedKey::parse(&v.text));
        Some(Ssh {
            mode: mode?.unwrap_or(SshMode::Global),
            password_hash: hash?,
            authorized_keys: keys?,
        })
    }

    fn management(&mut self, d: &Draft) -> Option<ManagementSettings> {
        let root = &d.root;
        let web_admin = match &d.web_admin {
            Part::Absent => {
                self.error(
                    root,
                    "<node-config> has no <web-admin> (required for the management role)",
                    "add <web-admin username=\"admin\" password-hash=\"$6$...\"/>",
                );
                None
            }
            Part::Given(at, w) => {
                let user = self
                    .required(&w.username, at, missing_attr("web-admin", "username"))
                    .and_then(|v| self.value(v, Username::parse(&v.text)));
                let hash = self
                    .required(
                        &w.password_hash,
                        at,
                        missing_attr("web-admin", "password-hash"),
                    )
                    .and_then(|v| self.value(v, PasswordHash::parse_web(&v.text)));
                match (user, hash) {
                    (Some(username), Some(password_hash)) => Some(WebAdmin {
                        username,
                        password_hash,
                    }),
                    _ => None,
                }
            }
        };
        let incident = self
            .required(
                &d.incident_reporting,
                root,
                missing_child("node-config", "incident-reporting", "false"),
            )
            .and_then(|v| self.value(v, boolean(&v.text)));
        let usage = self
            .required(
                &d.usage_statistics,
                root,
                missing_child("node-config", "usage-statistics", "false"),
            )
            .and_then(|v| self.value(v, boolean(&v.text)));
        let contact = self.optional(&d.contact_email, |r, v| {
            r.value(v, EmailAddress::parse(&v.text))
        });
        Some(ManagementSettings {
            web_admin: web_admin?,
            incident_reporting: incident?,
            usage_statistics: usage?,
            contact_email: contact?,
        })
    }

    fn conferencing(&mut self, d: &Draft) -> Option<ConferencingSettings> {
        let root = &d.root;
        let location = self
            .required(
                &d.system_location,
                root,
                missing_child("node-config", "system-location", "London"),
            )
            .and_then(|v| self.value(v, free_text(&v.text, "system location", 100, false)));
        let mgmt = match &d.management_node {
            Part::Absent => {
                self.error(
                    root,
                    "<node-config> has no <management-node> (required for conferencing roles)",
                    "add <management-node address=\"10.0.0.10\"/>: where the node reports after its reboot",
                );
                None
            }
            Part::Given(at, slot) => self
                .required(slot, at, missing_attr("management-node", "address"))
                .and_then(|v| self.value(v, ServerName::parse(v.text.trim()))),
        };
        let sip = self.optional(&d.sip_tls_fqdn, |r, v| {
            r.value(v, DomainName::parse_named(&v.text, 253, "SIP TLS FQDN"))
        });
        let dd = match &d.distributed_database {
            Slot::Absent => Some(true),
            Slot::Refused => None,
            Slot::Given(v) => self.value(v, boolean(&v.text)),
        };
        let tls = match &d.tls {
            Part::Absent => Some(None),
            Part::Given(at, t) => {
                let cert = self.required(
                    &t.certificate,
                    at,
                    missing_child("tls", "certificate", "-----BEGIN CERTIFICATE-----..."),
                );
                let key = self.required(
                    &t.private_key,
                    at,
                    missing_child("tls", "private-key", "-----BEGIN PRIVATE KEY-----..."),
                );
                match (cert, key) {
                    (Some(c), Some(k)) => {
                        let sip_name = sip.as_ref().and_then(|s| s.as_ref()).map(|d| d.as_str());
                        self.tls(c, k, sip_name)
                    }
                    _ => None,
                }
            }
        };
        Some(ConferencingSettings {
            system_location: location?,
            management_node: mgmt?,
            sip_tls_fqdn: sip?,
            tls: tls?,
            distributed_database: dd?,
        })
    }

    /// The certificate chain and key: they match, the leaf names the SIP TLS FQDN, and it is
    /// valid now (a warning within 30 days of its end).
    fn tls(&mut self, cert: &Val, key: &Val, sip: Option<&str>) -> Option<Option<TlsMaterial>> {
        let certs = self.value(cert, tls::parse_chain(&cert.text))?;
        let spki = self.value(key, tls::key_public_der(&key.text))?;
        let mut ok = true;
        let leaf = certs.first()?;
        if leaf.spki != spki {
            self.error(
                &key.at,
                "the private key does not match the certificate",
                "give the key the certificate was issued for (the first certificate of the chain is the node's own)",
            );
            ok = false;
        }
        if let Some(name) = sip
            && !leaf.names(name)
        {
            let list = if leaf.dns_names.is_empty() {
                "none".to_owned()
            } else {
                leaf.dns_names.join(", ")
            };
            self.error(
                &cert.at,
                format!("the certificate does not name the SIP TLS FQDN {name} (its DNS names: {list})"),
                "use a certificate whose subjectAltName includes the <sip-tls-fqdn>, or change <sip-tls-fqdn>",
            );
            ok = false;
        }
        let now = self
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let left = leaf.not_after - now;
        if left < 0 {
            self.error(
                &cert.at,
                format!(
                    "the certificate expired on {}",
                    crate::format_utc(leaf.not_after)
                ),
                "renew the certificate",
            );
            ok = false;
        } else if left < 30 * 86_400 {
            self.warnings.push(cert.at.diagnostic(
                Severity::Warning,
                format!(
                    "the certificate expires on {}, in {} days",
                    crate::format_utc(leaf.not_after),
                    left / 86_400
                ),
                "renew the certificate soon".into(),
            ));
        }
        if leaf.not_before > now {
            self.error(
                &cert.at,
                format!(
                    "the certificate is not valid before {}",
                    crate::format_utc(leaf.not_before)
                ),
                "check the certificate, or the clock of the machine checking it",
            );
            ok = false;
        }
        ok.then(|| {
            Some(TlsMaterial {
                certificate_chain_pem: tls::normalize_pem(&cert.text),
                private_key_pem: Secret::new(tls::normalize_pem(&key.text)),
            })
        })
    }
}

/// A route's destination: an IPv4 network in CIDR form without host bits.
pub fn destination(value: &str) -> Result<Ipv4Net, InvalidValue> {
    match value.parse::<Ipv4Net>() {
        Ok(n) if n.network() != n.addr() => Err(InvalidValue::new(
            format!("destination {n} has host bits set"),
            format!("write the network address: {}", n.trunc()),
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(InvalidValue::new(
            format!("destination {value:?} is not an IPv4 network in CIDR form"),
            "write network/prefix, e.g. 192.168.50.0/24",
        )),
    }
}

fn slot_at(slot: &Slot) -> Option<&At> {
    match slot {
        Slot::Given(v) => Some(&v.element),
        _ => None,
    }
}

fn part_at<T>(part: &Part<T>) -> Option<&At> {
    match part {
        Part::Given(at, _) => Some(at),
        Part::Absent => None,
    }
}
