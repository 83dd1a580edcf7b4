//! The validated node configuration (schema 1): a tree of newtypes that cannot hold a bad value.
//!
//! Each newtype checks its own value in its constructor (`parse`); rules that involve several
//! values (the gateway lies in an attached subnet, role-specific elements) are checked by
//! `crate::rules` before a [`NodeConfig`] is built. Nothing here does I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::secret::Secret;

/// Why a single value was refused: a plain statement of the problem and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// What is wrong, e.g. `"hostname \"-web\" starts with a hyphen"`.
    pub message: String,
    /// What would be valid, e.g. `"use letters, digits and inner hyphens"`.
    pub help: String,
}

impl InvalidValue {
    pub(crate) fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        InvalidValue {
            message: message.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.help)
    }
}

/// What the node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Management Node: web administration, configured by the install wizard or a file.
    Management,
    /// A Transcoding Conferencing Node.
    Transcoding,
    /// A Proxying Edge Node.
    Proxying,
}

impl Role {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Management => "management",
            Role::Transcoding => "transcoding",
            Role::Proxying => "proxying",
        }
    }

    /// True for the two conferencing roles.
    pub fn is_conferencing(self) -> bool {
        !matches!(self, Role::Management)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 1123 host label of at most 63 characters: letters, digits and inner hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

/// A DNS domain of at most 192 characters, made of RFC 1123 labels, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// A host address with its subnet, e.g. `10.0.0.31/24`: never the network or broadcast
/// address of a subnet that has them, always from a contiguous netmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Ipv4Interface(Ipv4Net);

/// An IPv6 address with its prefix length, e.g. `2001:db8::31/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Ipv6Interface(Ipv6Net);

/// A server given by address or by host name (NTP servers, the Management Node).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum ServerName {
    /// An IPv4 or IPv6 address.
    Address(IpAddr),
    /// A DNS name (one label or a dotted name).
    Name(DomainName),
}

/// A SHA-512-crypt password hash (`$6$[rounds=N$]salt$hash`). Plain text is never accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PasswordHash(Secret<String>);

/// One OpenSSH public key line as found in `authorized_keys` (`type base64 [comment]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AuthorizedKey(String);

/// A web administration user name: 1–64 characters, letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// A contact e-mail address (`local@domain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Whether SSH serves on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SshMode {
    /// Follow the platform-wide setting (see docs/config-format.md for the default).
    Global,
    /// SSH on, whatever the platform-wide setting.
    On,
    /// SSH off, whatever the platform-wide setting.
    Off,
}

/// The eth0 configuration: address, subnet and the default gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv4Settings {
    /// eth0's address and subnet.
    pub interface: Ipv4Interface,
    /// The IPv4 default gateway; lies in the eth0 or the eth1 subnet.
    pub gateway: Ipv4Addr,
}

/// The IPv6 configuration of eth0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6Settings {
    /// Address and prefix.
    pub interface: Ipv6Interface,
    /// The default gateway; `None` means: learn it from router advertisements.
    pub gateway: Option<Ipv6Addr>,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The route's name, as shown in the platform's route list.
    pub name: String,
    /// Destination network.
    pub destination: Ipv4Net,
    /// Next hop; lies in the eth0 or the eth1 subnet.
    pub gateway: Ipv4Addr,
}

/// Addresses, routes and name/time servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    /// eth0.
    pub ipv4: Ipv4Settings,
    /// eth1, when the node has a second interface.
    pub secondary_ipv4: Option<Ipv4Interface>,
    /// eth0's IPv6 address.
    pub ipv6: Option<Ipv6Settings>,
    /// The public address the node is reached at through one-to-one NAT.
    pub static_nat: Option<Ipv4Addr>,
    /// Static routes, in file order.
    pub routes: Vec<Route>,
    /// DNS servers (addresses: a resolver cannot look up its own server's name), at least one.
    pub dns_servers: Vec<IpAddr>,
    /// NTP servers, at least one.
    pub ntp_servers: Vec<ServerName>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsMaterial {
    /// PEM certificates, the node's own first.
    pub certificate_chain_pem: String,
    /// The PEM private key matching the first certificate.
    pub private_key_pem: Secret<String>,
}

/// The OS `admin` account and the SSH service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ssh {
    /// SSH on, off or following the platform setting.
    pub mode: SshMode,
    /// The OS `admin` account's password hash.
    pub password_hash: PasswordHash,
    /// Keys allowed to log in as `admin`.
    pub authorized_keys: Vec<AuthorizedKey>,
}

/// The web administration account of a Management Node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebAdmin {
    /// Login name.
    pub username: Username,
    /// Hash of the password: SHA-512-crypt, or Django's `pbkdf2_sha256$…`
    /// ([`PasswordHash::parse_web`]).
    pub password_hash: PasswordHash,
}

/// Settings only a Management Node has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagementSettings {
    /// The web administration account.
    pub web_admin: WebAdmin,
    /// The wizard's "Enable incident reporting" answer.
    pub incident_reporting: bool,
    /// The wizard's "Send deployment and usage statistics" answer.
    pub usage_statistics: bool,
    /// Where incident reports name a contact.
    pub contact_email: Option<EmailAddress>,
}

/// Settings only the two conferencing roles have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConferencingSettings {
    /// The system location the node belongs to.
    pub system_location: String,
    /// Where the node reports after its reboot.
    pub management_node: ServerName,
    /// The node's SIP TLS identity.
    pub sip_tls_fqdn: Option<DomainName>,
    /// The node's TLS certificate and key.
    pub tls: Option<TlsMaterial>,
    /// Whether the node takes part in the distributed database (default true).
    pub distributed_database: bool,
}

/// The role together with the settings only that role has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum RoleSettings {
    /// A Management Node.
    Management(ManagementSettings),
    /// A Transcoding Conferencing Node.
    Transcoding(ConferencingSettings),
    /// A Proxying Edge Node.
    Proxying(ConferencingSettings),
}

/// A complete, validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeConfig {
    /// Role and role-specific settings.
    pub role: RoleSettings,
    /// The name the platform shows for the node.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The node's host name (first label of its FQDN).
    pub hostname: Hostname,
    /// The node's domain.
    pub domain: DomainName,
    /// Addresses, routes, DNS and NTP.
    pub network: Network,
    /// The `admin` account and SSH.
    pub ssh: Ssh,
    /// What the first boot with this configuration does about failed checks (`<health>`).
    pub health: HealthPolicy,
}

/// Which failed checks after the reboot roll a node back to its generic state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackOn {
    /// The default gateway did not answer (a node cut off): the default.
    #[default]
    Gateway,
    /// Any check failed.
    Any,
    /// Never: failures are reported only.
    Never,
}

impl RollbackOn {
    /// The name in the file and on the wire (`gateway`, `any`, `never`).
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOn::Gateway => "gateway",
            RollbackOn::Any => "any",
            RollbackOn::Never => "never",
        }
    }

    /// Reads `gateway`, `any` or `never`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway" => Some(RollbackOn::Gateway),
            "any" => Some(RollbackOn::Any),
            "never" => Some(RollbackOn::Never),
            _ => None,
        }
    }
}

impl fmt::Display for RollbackOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<health rollback="gateway" grace="120" report="600"/>`: the policy for the first boot
/// after an apply. A value the file leaves out is the agent's default (its flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HealthPolicy {
    /// Which failed checks roll the node back.
    pub rollback: Option<RollbackOn>,
    /// Seconds the checks may keep failing before the node rolls back (10 to 3600).
    pub grace_secs: Option<u32>,
    /// Seconds the status is served read-only on 8443 after the reboot (0 to 3600; 0: not).
    pub report_secs: Option<u32>,
}

impl HealthPolicy {
    /// The least and most seconds of grace a file may ask for.
    pub const GRACE_RANGE: (u32, u32) = (10, 3600);
    /// The most seconds of read-only status a file may ask for.
    pub const REPORT_MAX: u32 = 3600;
    /// The agent's defaults: 120 s of grace, 600 s of read-only status, roll back when the
    /// gateway does not answer.
    pub const DEFAULT_GRACE_SECS: u32 = 120;
    /// See [`HealthPolicy::DEFAULT_GRACE_SECS`].
    pub const DEFAULT_REPORT_SECS: u32 = 600;

    /// True when the file said nothing (the element is not written back).
    pub fn is_default(&self) -> bool {
        *self == HealthPolicy::default()
    }
}

impl NodeConfig {
    /// The node's role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleSettings::Management(_) => Role::Management,
            RoleSettings::Transcoding(_) => Role::Transcoding,
            RoleSettings::Proxying(_) => Role::Proxying,
        }
    }

    /// `hostname.domain`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }

    /// Conferencing settings, for the two conferencing roles.
    pub fn conferencing(&self) -> Option<&ConferencingSettings> {
        match &self.role {
            RoleSettings::Transcoding(c) | RoleSettings::Proxying(c) => Some(c),
            RoleSettings::Management(_) => None,
        }
    }

    /// Management settings, for the management role.
    pub fn management(&self) -> Option<&ManagementSettings> {
        match &self.role {
            RoleSettings::Management(m) => Some(m),
            _ => None,
        }
    }
}

/// True for an RFC 1123 label: 1–63 letters, digits or hyphens, no hyphen at either end.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Hostname {
    /// Checks an RFC 1123 label of at most 63 characters.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str = "use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen (e.g. \"conf01\")";
        if s.is_empty() {
            return Err(InvalidValue::new("the hostname is empty", HELP));
        }
        if s.contains('.') {
            return Err(InvalidValue::new(
                format!("hostname {s:?} contains a dot"),
                "give only the first label here and the rest in <domain>",
            ));
        }
        if s.len() > 63 {
            return Err(InvalidValue::new(
                format!(
                    "hostname is {} characters long, over the limit of 63",
                    s.len()
                ),
                HELP,
            ));
        }
        if !is_label(s) {
            return Err(InvalidValue::new(
                format!("hostname {s:?} is not an RFC 1123 label"),
                HELP,
            ));
        }
        Ok(Hostname(s.to_owned()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DomainName {
    /// Checks a dotted DNS name of at most 192 characters made of RFC 1123 labels.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        Self::parse_named(s, 192, "domain")
    }

    /// Checks a dotted DNS name of at most `max` characters (253 for a full name).
    pub fn parse_max(s: &str, max: usize) -> Result<Self, InvalidValue> {
        Self::parse_named(s, max, "name")
    }

    /// Checks a dotted DNS name; `what` names it in messages ("domain", "name", ...).
    pub fn parse_named(s: &str, max: usize, what: &str) -> Result<Self, InvalidValue> {
        let help = format!(
            "use dot-separated labels of letters, digits and inner hyphens, at most {max} characters (e.g. \"example.com\")"
        );
        if s.is_empty() {
            return Err(InvalidValue::new(format!("the {what} is empty"), help));
        }
        if s.len() > max {
            return Err(InvalidValue::new(
                format!(
                    "{what} is {} characters long, over the limit of {max}",
                    s.len()
                ),
                help,
            ));
        }
        if s.ends_with('.') {
            return Err(InvalidValue::new(
                format!("{what} {s:?} ends with a dot"),
                "leave out the trailing dot",
            ));
        }
        if let Some(bad) = s.split('.').find(|l| !is_label(l)) {
            return Err(InvalidValue::new(
                format!("{what} {s:?} has an invalid label {bad:?}"),
                help,
            ));
        }
        Ok(DomainName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ipv4Interface {
    /// Builds an interface address from an address and a dotted netmask.
    pub fn new(address: Ipv4Addr, netmask: Ipv4Addr) -> Result<Self, InvalidValue> {
        let prefix = netmask_prefix(netmask)?;
        Self::from_prefix(address, prefix)
    }

    /// Builds an interface address from an address and a prefix length.
    pub fn from_prefix(address: Ipv4Addr, prefix: u8) -> Result<Self, InvalidValue> {
        let net = Ipv4Net::new(address, prefix).map_err(|_| {
            InvalidValue::new(
                format!("prefix length {prefix} is over 32"),
                "use a prefix length from 0 to 32",
            )
        })?;
        if address.is_unspecified() || address.is_multicast() || address.is_broadcast() {
            return Err(InvalidValue::new(
                format!("{address} is not a unicast host address"),
                "use the node's own unicast address",
            ));
        }
        if address.is_loopback() {
            return Err(InvalidValue::new(
                format!("{address} is a loopback address"),
                "use the address of the node's network interface",
            ));
        }
        if prefix <= 30 {
            if address == net.network() {
                return Err(InvalidValue::new(
                    format!("{address} is the network address of {}", net.trunc()),
                    format!(
                        "use a host address from {} to {}",
                        first_host(net),
                        last_host(net)
                    ),
                ));
            }
            if address == net.broadcast() {
                return Err(InvalidValue::new(
                    format!("{address} is the broadcast address of {}", net.trunc()),
                    format!(
                        "use a host address from {} to {}",
                        first_host(net),
                        last_host(net)
                    ),
                ));
            }
        }
        Ok(Ipv4Interface(net))
    }

    /// The host address.
    pub fn address(&self) -> Ipv4Addr {
        self.0.addr()
    }

    /// The dotted netmask.
    pub fn netmask(&self) -> Ipv4Addr {
        self.0.netmask()
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The subnet (address bits beyond the prefix cleared).
    pub fn subnet(&self) -> Ipv4Net {
        self.0.trunc()
    }

    /// Address and prefix, e.g. `10.0.0.31/24`.
    pub fn as_net(&self) -> Ipv4Net {
        self.0
    }
}

impl fmt::Display for Ipv4Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(1))
}

fn last_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.broadcast()).saturating_sub(1))
}

/// The prefix length of a contiguous dotted netmask such as `255.255.255.0`.
pub fn netmask_prefix(netmask: Ipv4Addr) -> Result<u8, InvalidValue> {
    let bits = u32::from(netmask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(InvalidValue::new(
            format!("netmask {netmask} is not contiguous"),
            "use a netmask whose one bits all come first, e.g. 255.255.255.0 (/24) or 255.255.252.0 (/22)",
        ));
    }
    if prefix == 0 {
        return Err(InvalidValue::new(
            format!("netmask {netmask} has no network bits"),
            "use the subnet's netmask, e.g. 255.255.255.0",
        ));
    }
    // leading_ones of a u32 is at most 32
    Ok(u8::try_from(prefix).unwrap_or(32))
}

impl Ipv6Interface {
    /// Checks an IPv6 address with prefix (`2001:db8::31/64`).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str = "write the address with its prefix length, e.g. \"2001:db8::31/64\"";
        let Some((addr, _)) = s.split_once('/') else {
            return Err(InvalidValue::new(
                format!("IPv6 address {s:?} has no prefix length"),
                HELP,
            ));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(InvalidValue::new(
                format!("{addr:?} is not an IPv6 address"),
                HELP,
            ));
        }
        let net: Ipv6Net = s.parse().map_err(|_| {
            InvalidValue::new(format!("{s:?} is not an IPv6 address with prefix"), HELP)
        })?;
        let a = net.addr();
        if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
            return Err(InvalidValue::new(
                format!("{a} is not a unicast host address"),
                "use the node's own global or unique-local IPv6 address",
            ));
        }
        Ok(Ipv6Interface(net))
    }

    /// The address.
    pub fn address(&self) -> Ipv6Addr {
        self.0.addr()
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// Address and prefix.
    pub fn as_net(&self) -> Ipv6Net {
        self.0
    }
}

impl fmt::Display for Ipv6Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ServerName {
    /// An IP address, or else a valid DNS name of at most 253 characters.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(ServerName::Address(ip));
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(InvalidValue::new(
                format!("{s:?} is not a valid IPv4 address"),
                "use four numbers from 0 to 255 separated by dots, or a host name",
            ));
        }
        DomainName::parse_max(s, 253)
            .map(ServerName::Name)
            .map_err(|e| {
                InvalidValue::new(
                    format!("{s:?} is neither an IP address nor a valid host name"),
                    e.help,
                )
            })
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerName::Address(a) => a.fmt(f),
            ServerName::Name(n) => f.write_str(n.as_str()),
        }
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PasswordHash {
    /// Checks the SHA-512-crypt form `$6$[rounds=N$]salt$hash` (salt 1–16 characters, hash 86,
    /// both from `./0-9A-Za-z`). Anything else, plain text above all, is refused.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str = "give a SHA-512-crypt hash such as the one `nodeboot generate` or `mkpasswd -m sha-512` prints; plain-text passwords are never accepted in a file";
        let is_b64 = |c: u8| c == b'.' || c == b'/' || c.is_ascii_alphanumeric();
        let Some(rest) = s.strip_prefix("$6$") else {
            return Err(InvalidValue::new(
                "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
                HELP,
            ));
        };
        let rest = match rest.strip_prefix("rounds=") {
            Some(r) => {
                let Some((n, r)) = r.split_once('$') else {
                    return Err(InvalidValue::new(
                        "the hash's rounds field is not closed by \"$\"",
                        HELP,
                    ));
                };
                match n.parse::<u32>() {
                    Ok(v) if (1000..=999_999_999).contains(&v) => r,
                    _ => {
                        return Err(InvalidValue::new(
                            format!(
                                "the hash's rounds value {n:?} is not a number from 1000 to 999999999"
                            ),
                            HELP,
                        ));
                    }
                }
            }
            None => rest,
        };
        let Some((salt, hash)) = rest.split_once('$') else {
            return Err(InvalidValue::new(
                "the hash has no \"$\" between salt and hash",
                HELP,
            ));
        };
        if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(is_b64) {
            return Err(InvalidValue::new(
                "the hash's salt is not 1 to 16 characters from ./0-9A-Za-z",
                HELP,
            ));
        }
        if hash.len() != 86 || !hash.bytes().all(is_b64) {
            return Err(InvalidValue::new(
                "the hash part is not 86 characters from ./0-9A-Za-z",
                HELP,
            ));
        }
        Ok(PasswordHash(Secret::new(s.to_owned())))
    }

    /// The web administrator's hash: SHA-512-crypt as [`PasswordHash::parse`] takes it, or the
    /// Django form `pbkdf2_sha256$<iterations>$<salt>$<base64 of 32 bytes>` that the
    /// platform's Management Node JSON (`pass`) carries. The OS `admin` account takes only
    /// `$6$` (see [`PasswordHash::parse`]): `/etc/shadow` cannot check a Django hash.
    pub fn parse_web(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str = "give a SHA-512-crypt hash (`$6$…`, as `nodeboot generate` prints) or a Django hash `pbkdf2_sha256$<iterations>$<salt>$<base64>`; plain-text passwords are never accepted";
        let Some(rest) = s.strip_prefix("pbkdf2_sha256$") else {
            if s.starts_with("pbkdf2_") {
                return Err(InvalidValue::new(
                    "the Django password hash is not pbkdf2_sha256 (only that algorithm is accepted)",
                    HELP,
                ));
            }
            return Self::parse(s).map_err(|e| InvalidValue::new(e.message, HELP));
        };
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidValue::new(
                "the Django hash does not have the four fields pbkdf2_sha256$<iterations>$<salt>$<hash>",
                HELP,
            ));
        };
        match iterations.parse::<u32>() {
            Ok(n) if (1000..=100_000_000).contains(&n) && !iterations.starts_with('0') => {}
            _ => {
                return Err(InvalidValue::new(
                    format!(
                        "the Django hash's iterations {:?} is not a number from 1000 to 100000000",
                        crate::text::printable_line(iterations)
                    ),
                    HELP,
                ));
            }
        }
        let salt_ok = |c: u8| c.is_ascii_alphanumeric() || b"./+-_".contains(&c);
        if salt.is_empty() || salt.len() > 128 || !salt.bytes().all(salt_ok) {
            return Err(InvalidValue::new(
                "the Django hash's salt is not 1 to 128 characters from A-Za-z0-9./+-_",
                HELP,
            ));
        }
        use base64ct::Encoding as _;
        match base64ct::Base64::decode_vec(hash) {
            Ok(bytes) if bytes.len() == 32 => {}
            Ok(bytes) => {
                return Err(InvalidValue::new(
                    format!(
                        "the Django hash's last field decodes to {} bytes, not the 32 of a SHA-256 key",
                        bytes.len()
                    ),
                    HELP,
                ));
            }
            Err(_) => {
                return Err(InvalidValue::new(
                    "the Django hash's last field is not standard base64 (A-Za-z0-9+/, = padding)",
                    HELP,
                ));
            }
        }
        Ok(PasswordHash(Secret::new(s.to_owned())))
    }

    /// The hash string, for writing into `/etc/shadow` and the node identity. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl AuthorizedKey {
    /// Checks one OpenSSH public key (`ssh-ed25519 AAAA… comment`) and keeps it re-written by
    /// the `ssh-key` crate as `type base64 comment`: no options (`command=`, `from=`), a
    /// comment of printable characters, one line — so one element is one `authorized_keys`
    /// line, whatever the file held.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str =
            "paste one line from a .pub file, e.g. \"ssh-ed25519 AAAAC3Nza… user@host\"";
        let line = s.trim();
        if let Some(c) = crate::text::find_forbidden_in_value(line) {
            return Err(InvalidValue::new(
                format!(
                    "the key contains the control character U+{:04X}",
                    u32::from(c)
                ),
                HELP,
            ));
        }
        let mut key = ssh_key::PublicKey::from_openssh(line)
            .map_err(|e| InvalidValue::new(format!("not an OpenSSH public key: {e}"), HELP))?;
        // the comment is printable (checked above); blanks around it are not part of it
        let comment = key.comment().trim().to_owned();
        key.set_comment(comment);
        let canonical = key
            .to_openssh()
            .map_err(|e| InvalidValue::new(format!("not an OpenSSH public key: {e}"), HELP))?;
        Ok(AuthorizedKey(canonical))
    }

    /// The key line: `type base64 comment`, printable, never a line break.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Username {
    /// Checks a user name of 1–64 characters from letters, digits, `.`, `_` and `-`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str =
            "use 1 to 64 letters, digits, dots, underscores or hyphens (e.g. \"admin\")";
        if s.is_empty() || s.len() > 64 {
            return Err(InvalidValue::new(
                format!("user name is {} characters long", s.len()),
                HELP,
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(InvalidValue::new(
                format!("user name {s:?} has a character that is not allowed"),
                HELP,
            ));
        }
        Ok(Username(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EmailAddress {
    /// Checks `local@domain` with a valid domain.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const HELP: &str = "use an address of the form name@example.com";
        if let Some(c) = crate::text::find_forbidden_in_value(s) {
            return Err(InvalidValue::new(
                format!(
                    "the e-mail address contains the control character U+{:04X}",
                    u32::from(c)
                ),
                HELP,
            ));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(InvalidValue::new(format!("{s:?} has no \"@\""), HELP));
        };
        if local.is_empty()
            || local.len() > 64
            || local
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'@')
        {
            return Err(InvalidValue::new(
                format!("{s:?} has an invalid part before \"@\""),
                HELP,
            ));
        }
        if DomainName::parse_max(domain, 253).is_err() || !domain.contains('.') {
            return Err(InvalidValue::new(
                format!("{s:?} has an invalid domain after \"@\""),
                HELP,
            ));
        }
        Ok(EmailAddress(s.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(Hostname::parse("conf01").is_ok());
        assert!(Hostname::parse(&"a".repeat(63)).is_ok());
        assert!(Hostname::parse(&"a".repeat(64)).is_err());
        assert!(Hostname::parse("-a").is_err());
        assert!(Hostname::parse("a_b").is_err());
        assert!(Hostname::parse("a.b").is_err());
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Ok(24));
        assert_eq!(netmask_prefix(Ipv4Addr::new(255, 255, 255, 255)), Ok(32));
        assert!(netmask_prefix(Ipv4Addr::new(255, 0, 255, 0)).is_err());
        assert!(netmask_prefix(Ipv4Addr::new(0, 0, 0, 0)).is_err());
    }

    #[test]
    fn interfaces_refuse_network_and_broadcast() {
        let m = Ipv4Addr::new(255, 255, 255, 0);
        assert!(Ipv4Interface::new(Ipv4Addr::new(10, 0, 0, 31), m).is_ok());
        let e = Ipv4Interface::new(Ipv4Addr::new(10, 0, 0, 0), m).unwrap_err();
        assert_eq!(e.message, "10.0.0.0 is the network address of 10.0.0.0/24");
        assert_eq!(e.help, "use a host address from 10.0.0.1 to 10.0.0.254");
        assert!(Ipv4Interface::new(Ipv4Addr::new(10, 0, 0, 255), m).is_err());
        // /31 and /32 have no network or broadcast address
        assert!(Ipv4Interface::from_prefix(Ipv4Addr::new(10, 0, 0, 0), 31).is_ok());
    }

    #[test]
    fn password_hashes() {
        let good = format!("$6$saltsalt${}", "a".repeat(86));
        assert!(PasswordHash::parse(&good).is_ok());
        let rounds = format!("$6$rounds=5000$saltsalt${}", "a".repeat(86));
        assert!(PasswordHash::parse(&rounds).is_ok());
        assert!(PasswordHash::parse("hunter2").is_err());
        assert!(PasswordHash::parse(&format!("$5$salt${}", "a".repeat(43))).is_err());
        let django = "pbkdf2_sha256$870000$abcDEF123$qU6tTn+9n1R3s6pPZWmF0vWc2m0kQz0b0WlFz3ZpK2c=";
        assert!(PasswordHash::parse_web(django).is_ok());
        assert!(
            PasswordHash::parse(django).is_err(),
            "the OS account takes $6$ only"
        );
        assert!(PasswordHash::parse_web(&good).is_ok());
        for (bad, message) in [
            (
                "pbkdf2_sha1$1000$s$aGFzaA==",
                "the Django password hash is not pbkdf2_sha256 (only that algorithm is accepted)",
            ),
            (
                "pbkdf2_sha256$1000$s",
                "the Django hash does not have the four fields pbkdf2_sha256$<iterations>$<salt>$<hash>",
            ),
            (
                "pbkdf2_sha256$12$s$qU6tTn+9n1R3s6pPZWmF0vWc2m0kQz0b0WlFz3ZpK2c=",
                "the Django hash's iterations \"12\" is not a number from 1000 to 100000000",
            ),
            (
                "pbkdf2_sha256$1000$a b$qU6tTn+9n1R3s6pPZWmF0vWc2m0kQz0b0WlFz3ZpK2c=",
                "the Django hash's salt is not 1 to 128 characters from A-Za-z0-9./+-_",
            ),
            (
                "pbkdf2_sha256$1000$s$aGFzaA==",
                "the Django hash's last field decodes to 4 bytes, not the 32 of a SHA-256 key",
            ),
            (
                "pbkdf2_sha256$1000$s$not*base64",
                "the Django hash's last field is not standard base64 (A-Za-z0-9+/, = padding)",
            ),
            (
                "hunter2",
                "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
            ),
        ] {
            assert_eq!(
                PasswordHash::parse_web(bad).unwrap_err().message,
                message,
                "{bad}"
            );
        }
        let h = PasswordHash::parse(&good).unwrap();
        assert_eq!(format!("{h:?}"), "PasswordHash(***)");
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            ServerName::parse("10.0.0.1"),
            Ok(ServerName::Address(_))
        ));
        assert!(matches!(
            ServerName::parse("pool.ntp.org"),
            Ok(ServerName::Name(_))
        ));
        assert!(ServerName::parse("10.0.0.300").is_err());
        assert!(ServerName::parse("bad_name").is_err());
    }
}
