//! The schema's rules, apart from any reader: one function per field (usable on one value, as
//! the wizard does after each answer) and the rules that turn a *named draft* — values with
//! the name of the field they came from, as JSON metadata and the wizard's answers give them —
//! into a [`Document`] or findings that name the field.
//!
//! The XML reader (`crate::parse`) calls the same field rules and places their findings at the
//! value's line:column. One gateway rule, one hostname rule, one DNS-server rule: everywhere.
//!
//! Pure: nothing is read or written.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::document::Document;
use crate::model::*;

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

/// Collects findings that name their field (line and column 0).
struct ByName(Findings);

impl ByName {
    fn check<T>(&mut self, field: &str, r: Result<T, InvalidValue>) -> Option<T> {
        r.map_err(|e| {
            self.0.push(Diagnostic {
                severity: Severity::Error,
                path: field.to_owned(),
                line: 0,
                column: 0,
                message: e.message,
                help: Some(e.help),
            })
        })
        .ok()
    }
}

/// The rules for a Management Node's named draft: every field checked by the field rules
/// above, then the rules that join fields (FQDN length, the gateway in eth0's subnet). The
/// document's bytes are the XML serialized from the configuration.
pub fn management(d: &ManagementDraft) -> Result<Document, Vec<Diagnostic>> {
    let mut f = ByName(Findings::in_order());
    let h = &d.hostname;
    let hostname = f.check(&h.field, Hostname::parse(&h.value));
    let name = f.check(&h.field, free_text(&h.value, "name", 100, false));
    let domain = f.check(&d.domain.field, DomainName::parse(&d.domain.value));
    if let (Some(h), Some(dn)) = (&hostname, &domain) {
        f.check(&d.hostname.field, fqdn(h, dn));
    }
    let address = f.check(&d.ip.field, ipv4(&d.ip.value, "address"));
    let prefix = f.check(&d.mask.field, netmask(&d.mask.value));
    let interface = match (address, prefix) {
        (Some(a), Some(p)) => f.check(&d.ip.field, Ipv4Interface::from_prefix(a, p)),
        _ => None,
    };
    let gw = f.check(&d.gw.field, ipv4(&d.gw.value, "gateway"));
    if let (Some(g), Some(i)) = (gw, interface) {
        f.check(
            &d.gw.field,
            gateway(g, &[i]).map_err(|e| e.describe("the default gateway", g)),
        );
    }
    let dns: Vec<_> = d
        .dns
        .iter()
        .filter_map(|v| f.check(&v.field, dns_server(&v.value)))
        .collect();
    let ntp: Vec<_> = d
        .ntp
        .iter()
        .filter_map(|v| f.check(&v.field, ServerName::parse(&v.value)))
        .collect();
    let user = f.check(&d.user.field, Username::parse(&d.user.value));
    let web_hash = f.check(&d.pass.field, PasswordHash::parse(&d.pass.value));
    let admin_hash = f.check(
        &d.admin_password.field,
        PasswordHash::parse(&d.admin_password.value),
    );
    let contact = match &d.contact_email {
        None => Some(None),
        Some(e) => f.check(&e.field, EmailAddress::parse(&e.value)).map(Some),
    };
    for (list, valid, what, field) in [
        (&d.dns, dns.len(), "DNS", "dns"),
        (&d.ntp, ntp.len(), "NTP", "ntp"),
    ] {
        if list.is_empty() && valid == 0 {
            f.check::<()>(
                field,
                Err(InvalidValue::new(
                    format!("no {what} server is given"),
                    format!("give one or more {what} servers"),
                )),
            );
        }
    }
    let (
        Some(hostname),
        Some(name),
        Some(domain),
        Some(interface),
        Some(gateway),
        Some(username),
        Some(web_hash),
        Some(admin_hash),
        Some(contact_email),
    ) = (
        hostname, name, domain, interface, gw, user, web_hash, admin_hash, contact,
    )
    else {
        return Err(f.0.finish());
    };
    if !f.0.is_empty() {
        return Err(f.0.finish());
    }
    let config = NodeConfig {
        role: RoleSettings::Management(ManagementSettings {
            web_admin: WebAdmin {
                username,
                password_hash: web_hash,
            },
            incident_reporting: d.error_reports.value,
            usage_statistics: d.enable_analytics.value,
            contact_email,
        }),
        name,
        description: None,
        hostname,
        domain,
        network: Network {
            ipv4: Ipv4Settings { interface, gateway },
            secondary_ipv4: None,
            ipv6: None,
            static_nat: None,
            routes: Vec::new(),
            dns_servers: dns,
            ntp_servers: ntp,
        },
        ssh: Ssh {
            mode: SshMode::Global,
            password_hash: admin_hash,
            authorized_keys: Vec::new(),
        },
    };
    Ok(Document::serialized(config, Vec::new()))
}
