//! Schema 1: turns the element tree of `crate::xml` into a validated [`NodeConfig`], collecting
//! every error (element path, line:column, what is wrong, what would be valid) in one pass.
//!
//! Pure: the current time is an input (certificate expiry), nothing is read or written.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::document::Document;
use crate::model::*;
use crate::rules;
use crate::secret::Secret;
use crate::tls;
use crate::xml::{Element, Pos, code_point};

/// Parses and validates a schema-1 configuration file, taking the current time from the clock.
///
/// Returns every error found (sorted by line and column), never only the first.
pub fn parse(bytes: &[u8]) -> Result<Document, Vec<Diagnostic>> {
    parse_at(bytes, SystemTime::now())
}

/// Like [`parse`], with the time certificates are checked against given as an input, so tests
/// (and a caller with its own clock) get the same answer every time.
pub fn parse_at(bytes: &[u8], now: SystemTime) -> Result<Document, Vec<Diagnostic>> {
    if bytes.len() > crate::MAX_FILE_SIZE {
        return Err(vec![Diagnostic {
            severity: Severity::Error,
            path: String::new(),
            line: 1,
            column: 1,
            message: format!(
                "the file is {} bytes long, over the limit of {} bytes (1 MiB)",
                bytes.len(),
                crate::MAX_FILE_SIZE
            ),
            help: Some(
                "a node configuration is a few KiB; check that this is the right file".into(),
            ),
        }]);
    }
    let root = crate::xml::read_tree(bytes)?;
    let mut v = Validator {
        errors: Findings::by_position(),
        warnings: Findings::by_position(),
        now,
    };
    let config = v.node_config(&root);
    let errors = v.errors.finish();
    let warnings = v.warnings.finish();
    match config {
        Some(config) if errors.is_empty() => Ok(Document::new(bytes.to_vec(), config, warnings)),
        _ => {
            let mut all = errors;
            if all.is_empty() {
                // Unreachable by construction; never report "invalid" without saying why.
                all.push(Diagnostic {
                    severity: Severity::Error,
                    path: "/node-config".into(),
                    line: root.pos.line,
                    column: root.pos.column,
                    message: "the configuration is incomplete".into(),
                    help: None,
                });
            }
            Err(all)
        }
    }
}

/// How often a child element may appear.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    /// Zero or one.
    Opt,
    /// Zero or more.
    Many,
}

/// Walks the tree once, collecting findings (bounded: see [`Findings`]). Its walk follows
/// the schema, not the input, so its depth is fixed.
struct Validator {
    errors: Findings,
    warnings: Findings,
    now: SystemTime,
}

/// A value together with where it came from, for checks that involve several values.
#[derive(Clone, Copy)]
struct At<'a> {
    path: &'a str,
    pos: Pos,
}

impl Validator {
    fn error(&mut self, path: &str, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.push(
            Severity::Error,
            path,
            pos,
            message.into(),
            Some(help.into()),
        );
    }

    fn warning(
        &mut self,
        path: &str,
        pos: Pos,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(
            Severity::Warning,
            path,
            pos,
            message.into(),
            Some(help.into()),
        );
    }

    fn push(
        &mut self,
        severity: Severity,
        path: &str,
        pos: Pos,
        message: String,
        help: Option<String>,
    ) {
        let list = match severity {
            Severity::Error => &mut self.errors,
            Severity::Warning => &mut self.warnings,
        };
        list.push(Diagnostic {
            severity,
            path: path.to_owned(),
            line: pos.line,
            column: pos.column,
            message,
            help,
        });
    }

    fn invalid(&mut self, at: At<'_>, e: InvalidValue) {
        self.error(at.path, at.pos, e.message, e.help);
    }

    /// Groups the children of `el` by name, reporting unknown children, repeated single
    /// children, and text where only elements belong.
    fn children<'e>(
        &mut self,
        el: &'e Element,
        path: &str,
        allowed: &[(&str, Card)],
    ) -> HashMap<String, Vec<&'e Element>> {
        if let Some(tp) = el.text_pos {
            self.error(
                path,
                tp,
                format!("text is not allowed directly inside <{}>", el.name),
                "put values in their child elements",
            );
        }
        let mut out: HashMap<String, Vec<&Element>> = HashMap::new();
        for c in &el.children {
            let cpath = format!("{path}/{}", c.name);
            match allowed.iter().find(|(n, _)| *n == c.name) {
                None => {
                    let names: Vec<String> =
                        allowed.iter().map(|(n, _)| format!("<{n}>")).collect();
                    self.error(
                        &cpath,
                        c.pos,
                        format!("unknown element <{}> in <{}>", c.name, el.name),
                        format!("allowed here: {}", names.join(", ")),
                    );
                }
                Some((_, card)) => {
                    let list = out.entry(c.name.clone()).or_default();
                    if *card == Card::Opt && !list.is_empty() {
                        let first = list.first().map(|f| f.pos.line).unwrap_or(0);
                        self.error(
                            &cpath,
                            c.pos,
                            format!("element <{}> appears more than once", c.name),
                            format!("keep one <{}> (the first is on line {first})", c.name),
                        );
                    } else {
                        list.push(c);
                    }
                }
            }
        }
        out
    }

    /// Reports every attribute of `el` that is not in `allowed`, and repeated attributes.
    fn check_attrs(&mut self, el: &Element, path: &str, allowed: &[&str]) {
        let mut seen: Vec<&str> = Vec::new();
        for a in &el.attrs {
            let apath = format!("{path}@{}", a.name);
            if !allowed.contains(&a.name.as_str()) {
                let help = if allowed.is_empty() {
                    format!("<{}> takes no attributes", el.name)
                } else {
                    let names: Vec<String> = allowed.iter().map(|n| format!("{n}=")).collect();
                    format!("allowed on <{}>: {}", el.name, names.join(", "))
                };
                self.error(
                    &apath,
                    a.pos,
                    format!("unknown attribute {:?} on <{}>", a.name, el.name),
                    help,
                );
            } else if seen.contains(&a.name.as_str()) {
                self.error(
                    &apath,
                    a.pos,
                    format!("attribute {:?} appears more than once", a.name),
                    "give each attribute once",
                );
            } else {
                seen.push(&a.name);
            }
        }
    }

    /// The value of attribute `name` (first occurrence) with its place.
    fn attr<'e>(
        &mut self,
        el: &'e Element,
        path: &str,
        name: &str,
        required: bool,
    ) -> Option<(&'e str, String, Pos)> {
        match el.attrs.iter().find(|a| a.name == name) {
            Some(a) => {
                let apath = format!("{path}@{name}");
                if let Some(c) = crate::xml::forbidden_char(&a.value) {
                    self.error(
                        &apath,
                        a.pos,
                        format!(
                            "attribute {name:?} of <{}> contains the control character {}",
                            el.name,
                            code_point(c)
                        ),
                        "write the value on one line of printable text: remove the character (a reference such as &#10; counts too)",
                    );
                    return None;
                }
                Some((a.value.as_str(), apath, a.pos))
            }
            None => {
                if required {
                    self.error(
                        path,
                        el.pos,
                        format!("<{}> has no {name:?} attribute", el.name),
                        format!("add {name}=\"...\" to <{}>", el.name),
                    );
                }
                None
            }
        }
    }

    /// The trimmed text of a text-only element, with the place of the text (or of the element
    /// when it is empty). Reports attributes and child elements, which such elements never have,
    /// and refuses (`None`) a value holding a control character: one line of printable text,
    /// or printable lines for the PEM elements `<certificate>` and `<private-key>`.
    fn text<'e>(&mut self, el: &'e Element, path: &str) -> Option<(&'e str, Pos)> {
        self.check_attrs(el, path, &[]);
        for c in &el.children {
            self.error(
                &format!("{path}/{}", c.name),
                c.pos,
                format!("element <{}> is not allowed inside <{}>", c.name, el.name),
                format!("<{}> holds only text", el.name),
            );
        }
        let (value, pos) = (el.text.trim(), el.text_pos.unwrap_or(el.pos));
        let multiline = matches!(el.name.as_str(), "certificate" | "private-key");
        let bad = if multiline {
            crate::text::find_unsafe(value)
        } else {
            crate::xml::forbidden_char(value)
        };
        if let Some(c) = bad {
            let help = if multiline {
                "paste the PEM text as it is: lines of printable characters, nothing else"
            } else {
                "write the value on one line of printable text: remove the character (a reference such as &#10; counts too)"
            };
            self.error(
                path,
                pos,
                format!(
                    "<{}> contains the control character {}",
                    el.name,
                    code_point(c)
                ),
                help,
            );
            return None;
        }
        Some((value, pos))
    }

    /// A required single text child; reports its absence at the parent.
    fn required_text<'e>(
        &mut self,
        kids: &HashMap<String, Vec<&'e Element>>,
        parent: &Element,
        ppath: &str,
        name: &str,
        hint: &str,
    ) -> Option<(&'e str, String, Pos)> {
        match kids.get(name).and_then(|v| v.first()) {
            Some(el) => {
                let path = format!("{ppath}/{name}");
                let (t, pos) = self.text(el, &path)?;
                Some((t, path, pos))
            }
            None => {
                self.error(
                    ppath,
                    parent.pos,
                    format!("<{}> has no <{name}>", parent.name),
                    format!("add <{name}>{hint}</{name}>"),
                );
                None
            }
        }
    }

    /// An optional single text child: `Some(None)` when absent, `None` when refused.
    #[allow(clippy::option_option)]
    fn optional_text<'e>(
        &mut self,
        kids: &HashMap<String, Vec<&'e Element>>,
        ppath: &str,
        name: &str,
    ) -> Option<Option<(&'e str, String, Pos)>> {
        match kids.get(name).and_then(|v| v.first()) {
            None => Some(None),
            Some(el) => {
                let path = format!("{ppath}/{name}");
                let (t, pos) = self.text(el, &path)?;
                Some(Some((t, path, pos)))
            }
        }
    }

    fn free_text(
        &mut self,
        value: &str,
        path: &str,
        pos: Pos,
        what: &str,
        max: usize,
        allow_empty: bool,
    ) -> Option<String> {
        rules::free_text(value, what, max, allow_empty)
            .map_err(|e| self.invalid(At { path, pos }, e))
            .ok()
    }

    fn boolean(&mut self, value: &str, path: &str, pos: Pos) -> Option<bool> {
        rules::boolean(value)
            .map_err(|e| self.invalid(At { path, pos }, e))
            .ok()
    }

    fn ipv4(&mut self, value: &str, path: &str, pos: Pos, what: &str) -> Option<Ipv4Addr> {
        rules::ipv4(value, what)
            .map_err(|e| self.invalid(At { path, pos }, e))
            .ok()
    }

    fn node_config(&mut self, root: &Element) -> Option<NodeConfig> {
        let rpath = format!("/{}", root.name);
        if root.name != "node-config" {
            self.error(
                &rpath,
                root.pos,
                format!("the root element is <{}>, not <node-config>", root.name),
                "the file must start with <node-config schema=\"1\">",
            );
            return None;
        }
        self.check_attrs(root, &rpath, &["schema"]);
        if let Some((schema, path, pos)) = self.attr(root, &rpath, "schema", true)
            && schema != "1"
        {
            self.error(
                &path,
                pos,
                format!("schema {schema:?} is not supported"),
                "this version reads schema=\"1\"",
            );
            return None;
        }
        use Card::*;
        let kids = self.children(
            root,
            &rpath,
            &[
                ("role", Opt),
                ("name", Opt),
                ("description", Opt),
                ("hostname", Opt),
                ("domain", Opt),
                ("system-location", Opt),
                ("network", Opt),
                ("sip-tls-fqdn", Opt),
                ("tls", Opt),
                ("ssh", Opt),
                ("distributed-database", Opt),
                ("management-node", Opt),
                ("web-admin", Opt),
                ("incident-reporting", Opt),
                ("usage-statistics", Opt),
                ("contact-email", Opt),
            ],
        );

        let role = self
            .required_text(&kids, root, &rpath, "role", "transcoding")
            .and_then(|(v, path, pos)| match v {
                "management" => Some(Role::Management),
                "transcoding" => Some(Role::Transcoding),
                "proxying" => Some(Role::Proxying),
                _ => {
                    self.error(
                        &path,
                        pos,
                        format!("role {v:?} is not known"),
                        "write management, transcoding or proxying",
                    );
                    None
                }
            });
        let name = self
            .required_text(&kids, root, &rpath, "name", "conf01")
            .and_then(|(v, path, pos)| self.free_text(v, &path, pos, "name", 100, false));
        let description = match self.optional_text(&kids, &rpath, "description") {
            Some(Some((v, path, pos))) => self
                .free_text(v, &path, pos, "description", 250, true)
                .map(Some),
            Some(None) => Some(None),
            None => None,
        };
        let hostname_at = self.required_text(&kids, root, &rpath, "hostname", "conf01");
        let hostname = hostname_at.as_ref().and_then(|(v, path, pos)| {
            Hostname::parse(v)
                .map_err(|e| self.invalid(At { path, pos: *pos }, e))
                .ok()
        });
        let domain = self
            .required_text(&kids, root, &rpath, "domain", "example.com")
            .and_then(|(v, path, pos)| {
                DomainName::parse(v)
                    .map_err(|e| self.invalid(At { path: &path, pos }, e))
                    .ok()
            });
        if let (Some(h), Some(d), Some((_, path, pos))) = (&hostname, &domain, &hostname_at)
            && let Err(e) = rules::fqdn(h, d)
        {
            self.invalid(At { path, pos: *pos }, e);
        }

        let network = match kids.get("network").and_then(|v| v.first()) {
            Some(el) => self.network(el, &format!("{rpath}/network")),
            None => {
                self.error(
                    &rpath,
                    root.pos,
                    "<node-config> has no <network>",
                    "add <network> with <ipv4>, <dns-server> and <ntp-server>",
                );
                None
            }
        };
        let ssh = match kids.get("ssh").and_then(|v| v.first()) {
            Some(el) => self.ssh(el, &format!("{rpath}/ssh")),
            None => {
                self.error(
                    &rpath,
                    root.pos,
                    "<node-config> has no <ssh>",
                    "add <ssh enabled=\"global\"><password-hash>$6$...</password-hash></ssh>",
                );
                None
            }
        };

        // Role-specific elements: present or absent as the role requires.
        const MGMT_ONLY: &[&str] = &[
            "web-admin",
            "incident-reporting",
            "usage-statistics",
            "contact-email",
        ];
        const CONF_ONLY: &[&str] = &[
            "system-location",
            "sip-tls-fqdn",
            "tls",
            "distributed-database",
            "management-node",
        ];
        let role_settings = match role {
            None => None,
            Some(Role::Management) => {
                self.refuse_for_role(
                    &kids,
                    &rpath,
                    CONF_ONLY,
                    "management",
                    "transcoding or proxying",
                );
                self.management(root, &rpath, &kids)
                    .map(RoleSettings::Management)
            }
            Some(r) => {
                self.refuse_for_role(&kids, &rpath, MGMT_ONLY, r.as_str(), "management");
                let fqdn = match (&hostname, &domain) {
                    (Some(h), Some(d)) => Some(format!("{h}.{d}")),
                    _ => None,
                };
                self.conferencing(root, &rpath, &kids, fqdn)
                    .map(|c| match r {
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
        })
    }

    fn refuse_for_role(
        &mut self,
        kids: &HashMap<String, Vec<&Element>>,
        rpath: &str,
        names: &[&str],
        role: &str,
        other: &str,
    ) {
        for n in names {
            if let Some(el) = kids.get(*n).and_then(|v| v.first()) {
                self.error(
                    &format!("{rpath}/{n}"),
                    el.pos,
                    format!("<{n}> is not allowed for the {role} role"),
                    format!("remove it, or set <role> to {other}"),
                );
            }
        }
    }

    fn network(&mut self, el: &Element, path: &str) -> Option<Network> {
        use Card::*;
        self.check_attrs(el, path, &[]);
        let kids = self.children(
            el,
            path,
            &[
                ("ipv4", Opt),
                ("secondary-ipv4", Opt),
                ("ipv6", Opt),
                ("static-nat", Opt),
                ("route", Many),
                ("dns-server", Many),
                ("ntp-server", Many),
            ],
        );
        // eth0
        let ipv4 = match kids.get("ipv4").and_then(|v| v.first()) {
            None => {
                self.error(
                    path,
                    el.pos,
                    "<network> has no <ipv4>",
                    "add <ipv4 address=\"10.0.0.31\" netmask=\"255.255.255.0\" gateway=\"10.0.0.1\"/>",
                );
                None
            }
            Some(e) => {
                let p = format!("{path}/ipv4");
                self.check_attrs(e, &p, &["address", "netmask", "gateway"]);
                let iface = self.interface(e, &p);
                let gw = self.attr(e, &p, "gateway", true).and_then(|(v, ap, pos)| {
                    self.ipv4(v, &ap, pos, "gateway").map(|g| (g, ap, pos))
                });
                Some((iface, gw))
            }
        };
        // eth1
        let secondary = match kids.get("secondary-ipv4").and_then(|v| v.first()) {
            None => Some(None),
            Some(e) => {
                let p = format!("{path}/secondary-ipv4");
                self.check_attrs(e, &p, &["address", "netmask"]);
                let iface = self.interface(e, &p);
                if let (Some(Some(eth0)), Some(eth1)) = (ipv4.as_ref().map(|(i, _)| *i), iface) {
                    let (a, b) = (eth0.subnet(), eth1.subnet());
                    if a.contains(&b) || b.contains(&a) {
                        self.error(
                            &p,
                            e.pos,
                            format!("the eth1 subnet {b} overlaps the eth0 subnet {a}"),
                            "give eth0 and eth1 addresses in separate subnets",
                        );
                    }
                }
                iface.map(Some)
            }
        };
        let attached: Vec<Ipv4Interface> = ipv4
            .as_ref()
            .and_then(|(i, _)| *i)
            .into_iter()
            .chain(secondary.flatten())
            .collect();
        // Gateways are checked against the subnets only when every interface is known, so
        // that one bad address does not make every gateway look wrong too.
        let subnets_known = matches!(ipv4, Some((Some(_), _))) && secondary.is_some();
        let gateway = match &ipv4 {
            Some((_, Some((g, gpath, gpos)))) => {
                if subnets_known {
                    self.on_attached(*g, &attached, gpath, *gpos, "the default gateway");
                }
                Some(*g)
            }
            _ => None,
        };
        // IPv6
        let ipv6 = match kids.get("ipv6").and_then(|v| v.first()) {
            None => Some(None),
            Some(e) => {
                let p = format!("{path}/ipv6");
                self.check_attrs(e, &p, &["address", "gateway"]);
                let addr = e.attrs.iter().find(|a| a.name == "address");
                let gw = match self.attr(e, &p, "gateway", false) {
                    None => Some(None),
                    Some((v, ap, pos)) => match v.parse::<Ipv6Addr>() {
                        Ok(g) => Some(Some(g)),
                        Err(_) => {
                            self.error(
                                &ap,
                                pos,
                                format!("gateway {v:?} is not a valid IPv6 address"),
                                "write an IPv6 address without prefix, e.g. 2001:db8::1",
                            );
                            None
                        }
                    },
                };
                match addr {
                    None => {
                        if gw.is_some_and(|g| g.is_some()) {
                            self.error(
                                &p,
                                e.pos,
                                "an IPv6 gateway requires an IPv6 address",
                                "add address=\"2001:db8::31/64\" to <ipv6>, or remove the gateway",
                            );
                        } else {
                            self.error(
                                &p,
                                e.pos,
                                "<ipv6> has no \"address\" attribute",
                                "add address=\"2001:db8::31/64\", or remove <ipv6> for an IPv4-only node",
                            );
                        }
                        None
                    }
                    Some(a) => {
                        let ap = format!("{p}@address");
                        let iface = Ipv6Interface::parse(a.value.trim())
                            .map_err(|err| {
                                self.invalid(
                                    At {
                                        path: &ap,
                                        pos: a.pos,
                                    },
                                    err,
                                )
                            })
                            .ok();
                        match (iface, gw) {
                            (Some(interface), Some(gateway)) => {
                                Some(Some(Ipv6Settings { interface, gateway }))
                            }
                            _ => None,
                        }
                    }
                }
            }
        };
        // static NAT
        let static_nat = match kids.get("static-nat").and_then(|v| v.first()) {
            None => Some(None),
            Some(e) => {
                let p = format!("{path}/static-nat");
                self.check_attrs(e, &p, &["ipv4"]);
                self.attr(e, &p, "ipv4", true).and_then(|(v, ap, pos)| {
                    let a = self.ipv4(v, &ap, pos, "static NAT address")?;
                    if a.is_unspecified()
                        || a.is_broadcast()
                        || a.is_multicast()
                        || a.is_loopback()
                        || a.is_link_local()
                    {
                        self.error(
                            &ap,
                            pos,
                            format!("static NAT address {a} is not a unicast address"),
                            "give the public unicast IPv4 address the node is reached at",
                        );
                        return None;
                    }
                    Some(Some(a))
                })
            }
        };
        // routes
        let mut routes = Some(Vec::new());
        for (i, e) in kids.get("route").into_iter().flatten().enumerate() {
            let p = format!("{path}/route[{}]", i + 1);
            self.check_attrs(e, &p, &["name", "destination", "gateway"]);
            let name = self.attr(e, &p, "name", true).and_then(|(v, ap, pos)| {
                self.free_text(v.trim(), &ap, pos, "route name", 100, false)
            });
            let dest = self
                .attr(e, &p, "destination", true)
                .and_then(|(v, ap, pos)| {
                    let v = v.trim();
                    match v.parse::<Ipv4Net>() {
                        Ok(n) if n.network() != n.addr() => {
                            self.error(
                                &ap,
                                pos,
                                format!("destination {n} has host bits set"),
                                format!("write the network address: {}", n.trunc()),
                            );
                            None
                        }
                        Ok(n) => Some(n),
                        Err(_) => {
                            self.error(
                                &ap,
                                pos,
                                format!("destination {v:?} is not an IPv4 network in CIDR form"),
                                "write network/prefix, e.g. 192.168.50.0/24",
                            );
                            None
                        }
                    }
                });
            let gw = self.attr(e, &p, "gateway", true).and_then(|(v, ap, pos)| {
                let g = self.ipv4(v.trim(), &ap, pos, "route gateway")?;
                if subnets_known {
                    self.on_attached(g, &attached, &ap, pos, "the route gateway");
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
        // DNS and NTP
        let mut dns = Some(Vec::new());
        for e in kids.get("dns-server").into_iter().flatten() {
            let p = format!("{path}/dns-server");
            let Some((v, pos)) = self.text(e, &p) else {
                dns = None;
                continue;
            };
            match rules::dns_server(v) {
                Ok(a) => {
                    if let Some(d) = dns.as_mut() {
                        d.push(a);
                    }
                }
                Err(err) => {
                    self.invalid(At { path: &p, pos }, err);
                    dns = None;
                }
            }
        }
        if kids.get("dns-server").is_none_or(|v| v.is_empty()) {
            self.error(
                path,
                el.pos,
                "<network> has no <dns-server>",
                "add at least one <dns-server>, e.g. <dns-server>10.0.0.2</dns-server>",
            );
        }
        let mut ntp = Some(Vec::new());
        for e in kids.get("ntp-server").into_iter().flatten() {
            let p = format!("{path}/ntp-server");
            let Some((v, pos)) = self.text(e, &p) else {
                ntp = None;
                continue;
            };
            match ServerName::parse(v) {
                Ok(s) => {
                    if let Some(n) = ntp.as_mut() {
                        n.push(s);
                    }
                }
                Err(err) => {
                    self.invalid(At { path: &p, pos }, err);
                    ntp = None;
                }
            }
        }
        if kids.get("ntp-server").is_none_or(|v| v.is_empty()) {
            self.error(
                path,
                el.pos,
                "<network> has no <ntp-server>",
                "add at least one <ntp-server>, e.g. <ntp-server>pool.ntp.org</ntp-server>",
            );
        }
        let (iface, _) = ipv4?;
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

    /// address= and netmask= of <ipv4> or <secondary-ipv4>.
    fn interface(&mut self, e: &Element, p: &str) -> Option<Ipv4Interface> {
        let addr = self.attr(e, p, "address", true).and_then(|(v, ap, pos)| {
            self.ipv4(v.trim(), &ap, pos, "address")
                .map(|a| (a, ap, pos))
        });
        let mask = self.attr(e, p, "netmask", true).and_then(|(v, ap, pos)| {
            rules::netmask(v.trim())
                .map_err(|err| self.invalid(At { path: &ap, pos }, err))
                .ok()
        });
        let (a, ap, apos) = addr?;
        let prefix = mask?;
        match Ipv4Interface::from_prefix(a, prefix) {
            Ok(i) => Some(i),
            Err(err) => {
                self.invalid(
                    At {
                        path: &ap,
                        pos: apos,
                    },
                    err,
                );
                None
            }
        }
    }

    fn on_attached(
        &mut self,
        g: Ipv4Addr,
        attached: &[Ipv4Interface],
        path: &str,
        pos: Pos,
        what: &str,
    ) {
        if let Err(fault) = rules::gateway(g, attached) {
            self.invalid(At { path, pos }, fault.describe(what, g));
        }
    }

    fn ssh(&mut self, el: &Element, path: &str) -> Option<Ssh> {
        use Card::*;
        self.check_attrs(el, path, &["enabled"]);
        let mode = match self.attr(el, path, "enabled", false) {
            None => Some(SshMode::Global),
            Some((v, ap, pos)) => match v {
                "global" => Some(SshMode::Global),
                "on" => Some(SshMode::On),
                "off" => Some(SshMode::Off),
                _ => {
                    self.error(
                        &ap,
                        pos,
                        format!("enabled={v:?} is not known"),
                        "write global, on or off",
                    );
                    None
                }
            },
        };
        let kids = self.children(
            el,
            path,
            &[("password-hash", Opt), ("authorized-key", Many)],
        );
        let hash = self
            .required_text(&kids, el, path, "password-hash", "$6$...")
            .and_then(|(v, p, pos)| {
                PasswordHash::parse(v)
                    .map_err(|e| self.invalid(At { path: &p, pos }, e))
                    .ok()
            });
        let mut keys = Some(Vec::new());
        for k in kids.get("authorized-key").into_iter().flatten() {
            let p = format!("{path}/authorized-key");
            let Some((v, pos)) = self.text(k, &p) else {
                keys = None;
                continue;
            };
            match AuthorizedKey::parse(v) {
                Ok(key) => {
                    if let Some(ks) = keys.as_mut() {
                        ks.push(key);
                    }
                }
                Err(e) => {
                    self.invalid(At { path: &p, pos }, e);
                    keys = None;
                }
            }
        }
        Some(Ssh {
            mode: mode?,
            password_hash: hash?,
            authorized_keys: keys?,
        })
    }

    fn management(
        &mut self,
        root: &Element,
        rpath: &str,
        kids: &HashMap<String, Vec<&Element>>,
    ) -> Option<ManagementSettings> {
        let web_admin = match kids.get("web-admin").and_then(|v| v.first()) {
            None => {
                self.error(
                    rpath,
                    root.pos,
                    "<node-config> has no <web-admin> (required for the management role)",
                    "add <web-admin username=\"admin\" password-hash=\"$6$...\"/>",
                );
                None
            }
            Some(e) => {
                let p = format!("{rpath}/web-admin");
                self.check_attrs(e, &p, &["username", "password-hash"]);
                let _ = self.children(e, &p, &[]);
                let user = self.attr(e, &p, "username", true).and_then(|(v, ap, pos)| {
                    Username::parse(v)
                        .map_err(|err| self.invalid(At { path: &ap, pos }, err))
                        .ok()
                });
                let hash = self
                    .attr(e, &p, "password-hash", true)
                    .and_then(|(v, ap, pos)| {
                        PasswordHash::parse(v)
                            .map_err(|err| self.invalid(At { path: &ap, pos }, err))
                            .ok()
                    });
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
            .required_text(kids, root, rpath, "incident-reporting", "false")
            .and_then(|(v, p, pos)| self.boolean(v, &p, pos));
        let usage = self
            .required_text(kids, root, rpath, "usage-statistics", "false")
            .and_then(|(v, p, pos)| self.boolean(v, &p, pos));
        let contact = match self.optional_text(kids, rpath, "contact-email") {
            None => None,
            Some(None) => Some(None),
            Some(Some((v, p, pos))) => EmailAddress::parse(v)
                .map_err(|e| self.invalid(At { path: &p, pos }, e))
                .ok()
                .map(Some),
        };
        Some(ManagementSettings {
            web_admin: web_admin?,
            incident_reporting: incident?,
            usage_statistics: usage?,
            contact_email: contact?,
        })
    }

    fn conferencing(
        &mut self,
        root: &Element,
        rpath: &str,
        kids: &HashMap<String, Vec<&Element>>,
        fqdn: Option<String>,
    ) -> Option<ConferencingSettings> {
        let _ = fqdn;
        let location = self
            .required_text(kids, root, rpath, "system-location", "London")
            .and_then(|(v, p, pos)| self.free_text(v, &p, pos, "system location", 100, false));
        let mgmt = match kids.get("management-node").and_then(|v| v.first()) {
            None => {
                self.error(
                    rpath,
                    root.pos,
                    "<node-config> has no <management-node> (required for conferencing roles)",
                    "add <management-node address=\"10.0.0.10\"/>: where the node reports after its reboot",
                );
                None
            }
            Some(e) => {
                let p = format!("{rpath}/management-node");
                self.check_attrs(e, &p, &["address"]);
                let _ = self.children(e, &p, &[]);
                self.attr(e, &p, "address", true).and_then(|(v, ap, pos)| {
                    ServerName::parse(v.trim())
                        .map_err(|err| self.invalid(At { path: &ap, pos }, err))
                        .ok()
                })
            }
        };
        let sip = match self.optional_text(kids, rpath, "sip-tls-fqdn") {
            None => None,
            Some(None) => Some(None),
            Some(Some((v, p, pos))) => DomainName::parse_named(v, 253, "SIP TLS FQDN")
                .map_err(|e| self.invalid(At { path: &p, pos }, e))
                .ok()
                .map(|d| Some((d, p, pos))),
        };
        let dd = match self.optional_text(kids, rpath, "distributed-database") {
            None => None,
            Some(None) => Some(true),
            Some(Some((v, p, pos))) => self.boolean(v, &p, pos),
        };
        let tls = match kids.get("tls").and_then(|v| v.first()) {
            None => Some(None),
            Some(e) => {
                let p = format!("{rpath}/tls");
                self.check_attrs(e, &p, &[]);
                let tk = self.children(
                    e,
                    &p,
                    &[("certificate", Card::Opt), ("private-key", Card::Opt)],
                );
                let cert =
                    self.required_text(&tk, e, &p, "certificate", "-----BEGIN CERTIFICATE-----...");
                let key =
                    self.required_text(&tk, e, &p, "private-key", "-----BEGIN PRIVATE KEY-----...");
                match (cert, key) {
                    (Some((c, cp, cpos)), Some((k, kp, kpos))) => {
                        let sip_name = sip
                            .as_ref()
                            .and_then(|s| s.as_ref())
                            .map(|(d, _, _)| d.as_str().to_owned());
                        self.tls(c, &cp, cpos, k, &kp, kpos, sip_name.as_deref())
                    }
                    _ => None,
                }
            }
        };
        Some(ConferencingSettings {
            system_location: location?,
            management_node: mgmt?,
            sip_tls_fqdn: sip?.map(|(d, _, _)| d),
            tls: tls?,
            distributed_database: dd?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn tls(
        &mut self,
        cert: &str,
        cpath: &str,
        cpos: Pos,
        key: &str,
        kpath: &str,
        kpos: Pos,
        sip: Option<&str>,
    ) -> Option<Option<TlsMaterial>> {
        let certs = match tls::parse_chain(cert) {
            Ok(c) => c,
            Err(e) => {
                self.invalid(
                    At {
                        path: cpath,
                        pos: cpos,
                    },
                    e,
                );
                return None;
            }
        };
        let spki = match tls::key_public_der(key) {
            Ok(s) => s,
            Err(e) => {
                self.invalid(
                    At {
                        path: kpath,
                        pos: kpos,
                    },
                    e,
                );
                return None;
            }
        };
        let mut ok = true;
        let leaf = certs.first()?;
        if leaf.spki != spki {
            self.error(
                kpath,
                kpos,
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
                cpath,
                cpos,
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
                cpath,
                cpos,
                format!(
                    "the certificate expired on {}",
                    crate::format_utc(leaf.not_after)
                ),
                "renew the certificate",
            );
            ok = false;
        } else if left < 30 * 86_400 {
            self.warning(
                cpath,
                cpos,
                format!(
                    "the certificate expires on {}, in {} days",
                    crate::format_utc(leaf.not_after),
                    left / 86_400
                ),
                "renew the certificate soon",
            );
        }
        if leaf.not_before > now {
            self.error(
                cpath,
                cpos,
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
                certificate_chain_pem: tls::normalize_pem(cert),
                private_key_pem: Secret::new(tls::normalize_pem(key)),
            })
        })
    }
}
