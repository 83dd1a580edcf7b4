//! The inventory file (TOML) shared by `nodeboot generate --from` and `nodeboot push
//! --inventory`, and the parameters a configuration is generated from.
//!
//! ```toml
//! [defaults]                 # optional: parameters shared by every node
//! domain = "example.com"
//! dns = ["10.0.0.2"]
//! ntp = ["pool.ntp.org"]
//!
//! [[node]]
//! name = "conf01"            # the node's name (and <name> when generated)
//! address = "10.0.0.31"      # where push reaches the agent
//! port = 8443                # optional (default 8443)
//! fingerprint = "SHA256:…"   # optional: pin the agent's certificate
//! token_file = "conf01.token" # optional: bootstrap token
//! file = "conf01.xml"        # either an existing file …
//! # … or the generate parameters (role, hostname, ip, netmask, gateway, …)
//! ```
//!
//! Pure: parses text and builds documents; reading the files it names (`file`, `token_file`,
//! key and certificate files) is the caller's job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::document::Document;
use crate::model::PasswordHash;
use crate::parse::parse_at;
use crate::serialize::XmlBuilder;

/// The port the agent listens on unless an inventory says otherwise.
pub const DEFAULT_PORT: u16 = 8443;

/// One static route as a generate parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteParam {
    /// The route's name.
    pub name: String,
    /// Destination network in CIDR form.
    pub destination: String,
    /// Next hop.
    pub gateway: String,
}

impl std::str::FromStr for RouteParam {
    type Err = String;

    /// `NAME:DESTINATION:GATEWAY`, e.g. `media:192.168.50.0/24:192.168.10.1` (the form of
    /// `nodeboot generate --route`).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.splitn(3, ':');
        match (it.next(), it.next(), it.next()) {
            (Some(n), Some(d), Some(g)) if !n.is_empty() => Ok(RouteParam {
                name: n.to_owned(),
                destination: d.to_owned(),
                gateway: g.to_owned(),
            }),
            _ => Err(format!(
                "route {s:?} is not NAME:DESTINATION:GATEWAY (e.g. media:192.168.50.0/24:192.168.10.1)"
            )),
        }
    }
}

/// The values a configuration is generated from: every field of the file format, as plain
/// strings (checked when the document is built). Passwords are never here in plain text; the
/// optional hashes let an inventory carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeParams {
    /// management, transcoding or proxying.
    pub role: Option<String>,
    /// The name the platform shows (defaults to the hostname).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// First label of the FQDN.
    pub hostname: Option<String>,
    /// Domain suffix.
    pub domain: Option<String>,
    /// System location (conferencing roles).
    pub system_location: Option<String>,
    /// eth0 address.
    pub ip: Option<String>,
    /// eth0 netmask (dotted).
    pub netmask: Option<String>,
    /// IPv4 default gateway.
    pub gateway: Option<String>,
    /// eth1 address.
    pub secondary_ip: Option<String>,
    /// eth1 netmask.
    pub secondary_netmask: Option<String>,
    /// IPv6 address with prefix.
    pub ipv6: Option<String>,
    /// IPv6 gateway.
    pub ipv6_gateway: Option<String>,
    /// Public address behind one-to-one NAT.
    pub static_nat: Option<String>,
    /// Static routes.
    #[serde(default)]
    pub routes: Vec<RouteParam>,
    /// DNS server addresses.
    #[serde(default)]
    pub dns: Vec<String>,
    /// NTP servers.
    #[serde(default)]
    pub ntp: Vec<String>,
    /// global, on or off (default global).
    pub ssh: Option<String>,
    /// OpenSSH public key lines.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// SIP TLS FQDN (conferencing roles).
    pub sip_tls_fqdn: Option<String>,
    /// PEM certificate chain file (read by the caller).
    pub tls_certificate_file: Option<PathBuf>,
    /// PEM private key file (read by the caller).
    pub tls_key_file: Option<PathBuf>,
    /// Distributed database membership (conferencing roles).
    pub distributed_database: Option<bool>,
    /// Where a conferencing node reports.
    pub management_node: Option<String>,
    /// Web administration user name (management role).
    pub web_admin_user: Option<String>,
    /// Incident reporting (management role).
    pub incident_reporting: Option<bool>,
    /// Usage statistics (management role).
    pub usage_statistics: Option<bool>,
    /// Contact e-mail (management role).
    pub contact_email: Option<String>,
    /// The OS admin password as a SHA-512-crypt hash (else the caller asks for a password).
    pub password_hash: Option<String>,
    /// The web admin password as a SHA-512-crypt hash (management role).
    pub web_admin_password_hash: Option<String>,
}

/// A parameter problem: which parameter (its inventory key; the flag is the same with `-`),
/// what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's key, e.g. `gateway`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What would be valid.
    pub help: Option<String>,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)?;
        if let Some(h) = &self.help {
            write!(f, " (help: {h})")?;
        }
        Ok(())
    }
}

/// Secrets and file contents the caller supplies alongside the parameters.
#[derive(Debug, Clone, Default)]
pub struct GenerateInputs {
    /// The OS admin password's hash (overrides `password_hash`).
    pub password_hash: Option<PasswordHash>,
    /// The web admin password's hash (overrides `web_admin_password_hash`).
    pub web_admin_password_hash: Option<PasswordHash>,
    /// Contents of `tls_certificate_file` and `tls_key_file`.
    pub tls: Option<(String, crate::Secret<String>)>,
}

impl NodeParams {
    /// `self` with every unset field taken from `defaults` (lists: the node's own when not
    /// empty).
    pub fn merged_over(&self, defaults: &NodeParams) -> NodeParams {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        fn list<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
            if a.is_empty() { b.to_vec() } else { a.to_vec() }
        }
        let d = defaults;
        NodeParams {
            role: pick(&self.role, &d.role),
            name: pick(&self.name, &d.name),
            description: pick(&self.description, &d.description),
            hostname: pick(&self.hostname, &d.hostname),
            domain: pick(&self.domain, &d.domain),
            system_location: pick(&self.system_location, &d.system_location),
            ip: pick(&self.ip, &d.ip),
            netmask: pick(&self.netmask, &d.netmask),
            gateway: pick(&self.gateway, &d.gateway),
            secondary_ip: pick(&self.secondary_ip, &d.secondary_ip),
            secondary_netmask: pick(&self.secondary_netmask, &d.secondary_netmask),
            ipv6: pick(&self.ipv6, &d.ipv6),
            ipv6_gateway: pick(&self.ipv6_gateway, &d.ipv6_gateway),
            static_nat: pick(&self.static_nat, &d.static_nat),
            routes: list(&self.routes, &d.routes),
            dns: list(&self.dns, &d.dns),
            ntp: list(&self.ntp, &d.ntp),
            ssh: pick(&self.ssh, &d.ssh),
            authorized_keys: list(&self.authorized_keys, &d.authorized_keys),
            sip_tls_fqdn: pick(&self.sip_tls_fqdn, &d.sip_tls_fqdn),
            tls_certificate_file: pick(&self.tls_certificate_file, &d.tls_certificate_file),
            tls_key_file: pick(&self.tls_key_file, &d.tls_key_file),
            distributed_database: pick(&self.distributed_database, &d.distributed_database),
            management_node: pick(&self.management_node, &d.management_node),
            web_admin_user: pick(&self.web_admin_user, &d.web_admin_user),
            incident_reporting: pick(&self.incident_reporting, &d.incident_reporting),
            usage_statistics: pick(&self.usage_statistics, &d.usage_statistics),
            contact_email: pick(&self.contact_email, &d.contact_email),
            password_hash: pick(&self.password_hash, &d.password_hash),
            web_admin_password_hash: pick(
                &self.web_admin_password_hash,
                &d.web_admin_password_hash,
            ),
        }
    }

    /// True when the role is management (decides which passwords the caller must ask for).
    pub fn is_management(&self) -> bool {
        self.role.as_deref() == Some("management")
    }

    /// The parameters that are missing for the role, each as an error naming the parameter.
    pub fn missing(&self, inputs: &GenerateInputs) -> Vec<ParamError> {
        let mut out = Vec::new();
        let mut need = |field: &str, present: bool, example: &str| {
            if !present {
                out.push(ParamError {
                    field: field.to_owned(),
                    message: "missing".to_owned(),
                    help: Some(format!("required here, e.g. {example}")),
                });
            }
        };
        need("role", self.role.is_some(), "transcoding");
        need("hostname", self.hostname.is_some(), "conf01");
        need("domain", self.domain.is_some(), "example.com");
        need("ip", self.ip.is_some(), "10.0.0.31");
        need("netmask", self.netmask.is_some(), "255.255.255.0");
        need("gateway", self.gateway.is_some(), "10.0.0.1");
        need("dns", !self.dns.is_empty(), "10.0.0.2");
        need("ntp", !self.ntp.is_empty(), "pool.ntp.org");
        need(
            "password",
            inputs.password_hash.is_some() || self.password_hash.is_some(),
            "a password typed at the prompt",
        );
        match self.role.as_deref() {
            Some("management") => {
                need("web_admin_user", self.web_admin_user.is_some(), "admin");
                need(
                    "incident_reporting",
                    self.incident_reporting.is_some(),
                    "false",
                );
                need("usage_statistics", self.usage_statistics.is_some(), "false");
                need(
                    "web_admin_password",
                    inputs.web_admin_password_hash.is_some()
                        || self.web_admin_password_hash.is_some(),
                    "a password typed at the prompt",
                );
            }
            Some("transcoding" | "proxying") => {
                need("system_location", self.system_location.is_some(), "London");
                need(
                    "management_node",
                    self.management_node.is_some(),
                    "10.0.0.10",
                );
            }
            _ => {}
        }
        if self.tls_certificate_file.is_some() != self.tls_key_file.is_some() {
            out.push(ParamError {
                field: "tls_key_file".into(),
                message: "a TLS certificate needs its key and a key its certificate".into(),
                help: Some("give both tls_certificate_file and tls_key_file, or neither".into()),
            });
        }
        out
    }

    /// Builds the schema-1 document these parameters stand for (role-specific parameters of
    /// another role are written too, so that validation names them).
    pub fn to_document(&self, inputs: &GenerateInputs) -> String {
        let role = self.role.as_deref().unwrap_or("");
        let mut b = XmlBuilder::new(role);
        let hostname = self.hostname.clone().unwrap_or_default();
        b.text("name", self.name.as_deref().unwrap_or(&hostname));
        if let Some(d) = &self.description {
            b.text("description", d);
        }
        b.text("hostname", &hostname);
        b.text("domain", self.domain.as_deref().unwrap_or(""));
        if let Some(l) = &self.system_location {
            b.text("system-location", l);
        }
        b.open("network", &[]);
        b.empty(
            "ipv4",
            &[
                ("address", self.ip.as_deref().unwrap_or("")),
                ("netmask", self.netmask.as_deref().unwrap_or("")),
                ("gateway", self.gateway.as_deref().unwrap_or("")),
            ],
        );
        if self.secondary_ip.is_some() || self.secondary_netmask.is_some() {
            b.empty(
                "secondary-ipv4",
                &[
                    ("address", self.secondary_ip.as_deref().unwrap_or("")),
                    ("netmask", self.secondary_netmask.as_deref().unwrap_or("")),
                ],
            );
        }
        match (&self.ipv6, &self.ipv6_gateway) {
            (Some(a), Some(g)) => b.empty("ipv6", &[("address", a), ("gateway", g)]),
            (Some(a), None) => b.empty("ipv6", &[("address", a)]),
            (None, Some(g)) => b.empty("ipv6", &[("gateway", g)]),
            (None, None) => {}
        }
        if let Some(n) = &self.static_nat {
            b.empty("static-nat", &[("ipv4", n)]);
        }
        for r in &self.routes {
            b.empty(
                "route",
                &[
                    ("name", &r.name),
                    ("destination", &r.destination),
                    ("gateway", &r.gateway),
                ],
            );
        }
        for d in &self.dns {
            b.text("dns-server", d);
        }
        for n in &self.ntp {
            b.text("ntp-server", n);
        }
        b.close("network");
        if let Some(f) = &self.sip_tls_fqdn {
            b.text("sip-tls-fqdn", f);
        }
        if let Some((cert, key)) = &inputs.tls {
            b.open("tls", &[]);
            b.text("certificate", cert);
            b.text("private-key", key.expose());
            b.close("tls");
        }
        b.open(
            "ssh",
            &[("enabled", self.ssh.as_deref().unwrap_or("global"))],
        );
        let hash = inputs
            .password_hash
            .as_ref()
            .map(|h| h.expose().to_owned())
            .or_else(|| self.password_hash.clone())
            .unwrap_or_default();
        b.text("password-hash", &hash);
        for k in &self.authorized_keys {
            b.text("authorized-key", k);
        }
        b.close("ssh");
        if let Some(d) = self.distributed_database {
            b.text("distributed-database", if d { "true" } else { "false" });
        }
        if let Some(m) = &self.management_node {
            b.empty("management-node", &[("address", m)]);
        }
        if self.web_admin_user.is_some() || role == "management" {
            let web_hash = inputs
                .web_admin_password_hash
                .as_ref()
                .map(|h| h.expose().to_owned())
                .or_else(|| self.web_admin_password_hash.clone())
                .unwrap_or_default();
            b.empty(
                "web-admin",
                &[
                    ("username", self.web_admin_user.as_deref().unwrap_or("")),
                    ("password-hash", &web_hash),
                ],
            );
        }
        let yes_no = |v: bool| if v { "true" } else { "false" };
        if let Some(v) = self.incident_reporting {
            b.text("incident-reporting", yes_no(v));
        }
        if let Some(v) = self.usage_statistics {
            b.text("usage-statistics", yes_no(v));
        }
        if let Some(e) = &self.contact_email {
            b.text("contact-email", e);
        }
        b.finish()
    }

    /// Checks the parameters and builds the validated configuration they describe; every
    /// problem is reported with the parameter's name.
    pub fn generate(
        &self,
        inputs: &GenerateInputs,
        now: SystemTime,
    ) -> Result<Document, Vec<ParamError>> {
        let missing = self.missing(inputs);
        if !missing.is_empty() {
            return Err(missing);
        }
        let doc = self.to_document(inputs);
        parse_at(doc.as_bytes(), now).map_err(|ds| ds.into_iter().map(param_error).collect())
    }
}

/// The parameter an element path of a generated document came from.
pub fn param_for_path(path: &str) -> &str {
    let p = path.strip_prefix("/node-config").unwrap_or(path);
    // route[3]@gateway -> route
    let base: String = {
        let mut s = String::with_capacity(p.len());
        let mut skip = false;
        for c in p.chars() {
            match c {
                '[' => skip = true,
                ']' => skip = false,
                _ if !skip => s.push(c),
                _ => {}
            }
        }
        s
    };
    match base.as_str() {
        "/name" => "name",
        "/description" => "description",
        "/hostname" => "hostname",
        "/domain" => "domain",
        "/role" => "role",
        "/system-location" => "system_location",
        "/network/ipv4@address" => "ip",
        "/network/ipv4@netmask" => "netmask",
        "/network/ipv4@gateway" => "gateway",
        "/network/secondary-ipv4" | "/network/secondary-ipv4@address" => "secondary_ip",
        "/network/secondary-ipv4@netmask" => "secondary_netmask",
        "/network/ipv6" | "/network/ipv6@address" => "ipv6",
        "/network/ipv6@gateway" => "ipv6_gateway",
        "/network/static-nat@ipv4" => "static_nat",
        "/network/route"
        | "/network/route@name"
        | "/network/route@destination"
        | "/network/route@gateway" => "route",
        "/network/dns-server" => "dns",
        "/network/ntp-server" => "ntp",
        "/sip-tls-fqdn" => "sip_tls_fqdn",
        "/tls/certificate" => "tls_certificate_file",
        "/tls/private-key" => "tls_key_file",
        "/ssh@enabled" => "ssh",
        "/ssh/password-hash" => "password",
        "/ssh/authorized-key" => "authorized_key",
        "/distributed-database" => "distributed_database",
        "/management-node@address" => "management_node",
        "/web-admin" | "/web-admin@username" => "web_admin_user",
        "/tls" => "tls_certificate_file",
        "/management-node" => "management_node",
        "/web-admin@password-hash" => "web_admin_password",
        "/incident-reporting" => "incident_reporting",
        "/usage-statistics" => "usage_statistics",
        "/contact-email" => "contact_email",
        _ => "parameters",
    }
}

fn param_error(d: Diagnostic) -> ParamError {
    let field = param_for_path(&d.path).to_owned();
    // Role mismatches speak of elements; say which parameter instead.
    if d.message.contains("is not allowed for the") {
        let role = d
            .message
            .rsplit("for the ")
            .next()
            .unwrap_or("this role")
            .to_owned();
        return ParamError {
            field,
            message: format!("not used by the {role}"),
            help: Some("leave it out for this role".into()),
        };
    }
    ParamError {
        field,
        message: d.message,
        help: d.help,
    }
}

/// One `[[node]]` of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryNode {
    /// The node's name: what `--node` selects and push reports.
    pub name: String,
    /// Where push reaches the node's agent (address or host name).
    pub address: String,
    /// The agent's port.
    pub port: u16,
    /// Pinned certificate fingerprint (`SHA256:…` or hex).
    pub fingerprint: Option<String>,
    /// File holding the bootstrap token.
    pub token_file: Option<PathBuf>,
    /// An existing configuration file to send, instead of generating one.
    pub file: Option<PathBuf>,
    /// Generate parameters (with the inventory's defaults merged in); `name` defaults to the
    /// node's name.
    pub params: NodeParams,
}

/// A parsed inventory: nodes in file order, defaults already merged into each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// The nodes.
    pub nodes: Vec<InventoryNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: Option<NodeParams>,
    #[serde(default)]
    node: Vec<BTreeMap<String, toml::Value>>,
}

/// An inventory that cannot be used: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InventoryError {
    /// What is wrong, naming the node and key.
    pub message: String,
}

impl Inventory {
    /// Parses inventory TOML text. Unknown keys, duplicate node names, a node with both `file`
    /// and generate parameters are errors.
    pub fn parse(text: &str) -> Result<Inventory, Vec<InventoryError>> {
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            vec![InventoryError {
                message: e.to_string().trim_end().to_owned(),
            }]
        })?;
        let defaults = raw.defaults.unwrap_or_default();
        let mut errors = Vec::new();
        let mut nodes: Vec<InventoryNode> = Vec::new();
        for (i, mut table) in raw.node.into_iter().enumerate() {
            let n = i + 1;
            let mut take_str = |key: &str, errors: &mut Vec<InventoryError>| -> Option<String> {
                match table.remove(key) {
                    None => None,
                    Some(toml::Value::String(s)) => Some(s),
                    Some(other) => {
                        errors.push(InventoryError {
                            message: format!(
                                "node {n}: {key} is a {}, not a string",
                                other.type_str()
                            ),
                        });
                        None
                    }
                }
            };
            let name = take_str("name", &mut errors);
            let address = take_str("address", &mut errors);
            let fingerprint = take_str("fingerprint", &mut errors);
            let token_file = take_str("token_file", &mut errors).map(PathBuf::from);
            let file = take_str("file", &mut errors).map(PathBuf::from);
            let port = match table.remove("port") {
                None => Some(DEFAULT_PORT),
                Some(toml::Value::Integer(p)) => match u16::try_from(p) {
                    Ok(p) if p > 0 => Some(p),
                    _ => {
                        errors.push(InventoryError {
                            message: format!("node {n}: port {p} is not from 1 to 65535"),
                        });
                        None
                    }
                },
                Some(other) => {
                    errors.push(InventoryError {
                        message: format!("node {n}: port is a {}, not a number", other.type_str()),
                    });
                    None
                }
            };
            let label = match &name {
                Some(s) => format!("node {n} ({s:?})"),
                None => format!("node {n}"),
            };
            let has_params = !table.is_empty();
            let params =
                match NodeParams::deserialize(toml::Value::Table(table.into_iter().collect())) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        errors.push(InventoryError {
                            message: format!("{label}: {}", e.to_string().trim_end()),
                        });
                        None
                    }
                };
            let Some(name) = name else {
                errors.push(InventoryError {
                    message: format!("{label}: name is missing"),
                });
                continue;
            };
            let Some(address) = address else {
                errors.push(InventoryError {
                    message: format!(
                        "{label}: address is missing (where push reaches the node's agent)"
                    ),
                });
                continue;
            };
            if file.is_some() && has_params {
                errors.push(InventoryError {
                    message: format!(
                        "{label}: give either file = \"….xml\" or generate parameters, not both"
                    ),
                });
            }
            if nodes.iter().any(|o| o.name == name) {
                errors.push(InventoryError {
                    message: format!("{label}: another node is named {name:?}"),
                });
            }
            let (Some(port), Some(params)) = (port, params) else {
                continue;
            };
            let mut params = params.merged_over(&defaults);
            if params.name.is_none() {
                params.name = Some(name.clone());
            }
            nodes.push(InventoryNode {
                name,
                address,
                port,
                fingerprint,
                token_file,
                file,
                params,
            });
        }
        if errors.is_empty() {
            Ok(Inventory { nodes })
        } else {
            Err(errors)
        }
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&InventoryNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
