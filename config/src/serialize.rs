//! Writes a [`NodeConfig`] back as a schema-1 XML document, in the canonical element order of
//! docs/config-format.md. What it writes parses back to an equal `NodeConfig`.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::model::*;

/// Serializes a configuration as a schema-1 document (UTF-8, two-space indentation, ending in
/// a newline). Secrets are written as they are: the file is the place they belong.
pub fn to_xml(c: &NodeConfig) -> String {
    let mut x = XmlBuilder::new(c.role().as_str());
    x.text("name", &c.name);
    if let Some(d) = &c.description {
        x.text("description", d);
    }
    x.text("hostname", c.hostname.as_str());
    x.text("domain", c.domain.as_str());
    if let Some(conf) = c.conferencing() {
        x.text("system-location", &conf.system_location);
    }
    let n = &c.network;
    x.open("network", &[]);
    let i = &n.ipv4;
    x.empty(
        "ipv4",
        &[
            ("address", &i.interface.address().to_string()),
            ("netmask", &i.interface.netmask().to_string()),
            ("gateway", &i.gateway.to_string()),
        ],
    );
    if let Some(s) = &n.secondary_ipv4 {
        x.empty(
            "secondary-ipv4",
            &[
                ("address", &s.address().to_string()),
                ("netmask", &s.netmask().to_string()),
            ],
        );
    }
    if let Some(v6) = &n.ipv6 {
        let addr = v6.interface.to_string();
        match v6.gateway {
            Some(g) => x.empty("ipv6", &[("address", &addr), ("gateway", &g.to_string())]),
            None => x.empty("ipv6", &[("address", &addr)]),
        }
    }
    if let Some(nat) = n.static_nat {
        x.empty("static-nat", &[("ipv4", &nat.to_string())]);
    }
    for r in &n.routes {
        x.empty(
            "route",
            &[
                ("name", &r.name),
                ("destination", &r.destination.to_string()),
                ("gateway", &r.gateway.to_string()),
            ],
        );
    }
    for d in &n.dns_servers {
        x.text("dns-server", &d.to_string());
    }
    for s in &n.ntp_servers {
        x.text("ntp-server", &s.to_string());
    }
    x.close("network");
    if let Some(conf) = c.conferencing() {
        if let Some(f) = &conf.sip_tls_fqdn {
            x.text("sip-tls-fqdn", f.as_str());
        }
        if let Some(t) = &conf.tls {
            x.open("tls", &[]);
            x.text("certificate", &format!("\n{}", t.certificate_chain_pem));
            x.text("private-key", &format!("\n{}", t.private_key_pem.expose()));
            x.close("tls");
        }
    }
    let mode = match c.ssh.mode {
        SshMode::Global => "global",
        SshMode::On => "on",
        SshMode::Off => "off",
    };
    x.open("ssh", &[("enabled", mode)]);
    x.text("password-hash", c.ssh.password_hash.expose());
    for k in &c.ssh.authorized_keys {
        x.text("authorized-key", k.as_str());
    }
    x.close("ssh");
    match &c.role {
        RoleSettings::Management(m) => {
            x.empty(
                "web-admin",
                &[
                    ("username", m.web_admin.username.as_str()),
                    ("password-hash", m.web_admin.password_hash.expose()),
                ],
            );
            x.text("incident-reporting", bool_str(m.incident_reporting));
            x.text("usage-statistics", bool_str(m.usage_statistics));
            if let Some(e) = &m.contact_email {
                x.text("contact-email", e.as_str());
            }
        }
        RoleSettings::Transcoding(conf) | RoleSettings::Proxying(conf) => {
            x.text("distributed-database", bool_str(conf.distributed_database));
            x.empty(
                "management-node",
                &[("address", &conf.management_node.to_string())],
            );
        }
    }
    let h = &c.health;
    if !h.is_default() {
        let rollback = h.rollback.map(|r| r.as_str().to_owned());
        let grace = h.grace_secs.map(|g| g.to_string());
        let report = h.report_secs.map(|r| r.to_string());
        let attrs: Vec<(&str, &str)> = [
            ("rollback", rollback.as_deref()),
            ("grace", grace.as_deref()),
            ("report", report.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        x.empty("health", &attrs);
    }
    x.finish()
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Writes a schema-1 document element by element, indenting by depth and escaping every value.
/// Shared by [`to_xml`], the metadata mapping and `nodeboot generate`'s parameters, so that all
/// of them produce what the parser reads.
#[derive(Debug)]
pub(crate) struct XmlBuilder {
    out: String,
    level: usize,
}

impl XmlBuilder {
    /// Starts a document with the declaration, `<node-config schema="1">` and `<role>`.
    pub fn new(role: &str) -> Self {
        let mut b = XmlBuilder {
            out: String::with_capacity(2048),
            level: 1,
        };
        b.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<node-config schema=\"1\">\n");
        b.text("role", role);
        b
    }

    fn indent(&mut self) {
        for _ in 0..self.level {
            self.out.push_str("  ");
        }
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape(*v));
        }
    }

    /// `<name attrs>` and one level deeper.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        let _ = write!(self.out, "<{name}");
        self.attrs(attrs);
        self.out.push_str(">\n");
        self.level += 1;
    }

    /// One level up and `</name>`.
    pub fn close(&mut self, name: &str) {
        self.level = self.level.saturating_sub(1);
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        let _ = write!(self.out, "<{name}");
        self.attrs(attrs);
        self.out.push_str("/>\n");
    }

    /// `<name>text</name>`.
    pub fn text(&mut self, name: &str, text: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>{}</{name}>", escape(text));
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self) -> String {
        self.out.push_str("</node-config>\n");
        self.out
    }
}
