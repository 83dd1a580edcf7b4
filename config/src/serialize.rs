//! Writes a [`NodeConfig`] back as a schema-1 XML document, in the canonical element order of
//! docs/config-format.md. What it writes parses back to an equal `NodeConfig`.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::model::*;

/// Serializes a configuration as a schema-1 document (UTF-8, two-space indentation, ending in
/// a newline). Secrets are written as they are: the file is the place they belong.
pub fn to_xml(c: &NodeConfig) -> String {
    let mut x = Xml(String::with_capacity(2048));
    x.0.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<node-config schema=\"1\">\n");
    x.text(1, "role", c.role().as_str());
    x.text(1, "name", &c.name);
    if let Some(d) = &c.description {
        x.text(1, "description", d);
    }
    x.text(1, "hostname", c.hostname.as_str());
    x.text(1, "domain", c.domain.as_str());
    if let Some(conf) = c.conferencing() {
        x.text(1, "system-location", &conf.system_location);
    }
    let n = &c.network;
    x.open(1, "network", &[]);
    let i = &n.ipv4;
    x.empty(
        2,
        "ipv4",
        &[
            ("address", &i.interface.address().to_string()),
            ("netmask", &i.interface.netmask().to_string()),
            ("gateway", &i.gateway.to_string()),
        ],
    );
    if let Some(s) = &n.secondary_ipv4 {
        x.empty(
            2,
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
            Some(g) => x.empty(
                2,
                "ipv6",
                &[("address", &addr), ("gateway", &g.to_string())],
            ),
            None => x.empty(2, "ipv6", &[("address", &addr)]),
        }
    }
    if let Some(nat) = n.static_nat {
        x.empty(2, "static-nat", &[("ipv4", &nat.to_string())]);
    }
    for r in &n.routes {
        x.empty(
            2,
            "route",
            &[
                ("name", &r.name),
                ("destination", &r.destination.to_string()),
                ("gateway", &r.gateway.to_string()),
            ],
        );
    }
    for d in &n.dns_servers {
        x.text(2, "dns-server", &d.to_string());
    }
    for s in &n.ntp_servers {
        x.text(2, "ntp-server", &s.to_string());
    }
    x.close(1, "network");
    if let Some(conf) = c.conferencing() {
        if let Some(f) = &conf.sip_tls_fqdn {
            x.text(1, "sip-tls-fqdn", f.as_str());
        }
        if let Some(t) = &conf.tls {
            x.open(1, "tls", &[]);
            x.text(2, "certificate", &format!("\n{}", t.certificate_chain_pem));
            x.text(
                2,
                "private-key",
                &format!("\n{}", t.private_key_pem.expose()),
            );
            x.close(1, "tls");
        }
    }
    let mode = match c.ssh.mode {
        SshMode::Global => "global",
        SshMode::On => "on",
        SshMode::Off => "off",
    };
    x.open(1, "ssh", &[("enabled", mode)]);
    x.text(2, "password-hash", c.ssh.password_hash.expose());
    for k in &c.ssh.authorized_keys {
        x.text(2, "authorized-key", k.as_str());
    }
    x.close(1, "ssh");
    match &c.role {
        RoleSettings::Management(m) => {
            x.empty(
                1,
                "web-admin",
                &[
                    ("username", m.web_admin.username.as_str()),
                    ("password-hash", m.web_admin.password_hash.expose()),
                ],
            );
            x.text(1, "incident-reporting", bool_str(m.incident_reporting));
            x.text(1, "usage-statistics", bool_str(m.usage_statistics));
            if let Some(e) = &m.contact_email {
                x.text(1, "contact-email", e.as_str());
            }
        }
        RoleSettings::Transcoding(conf) | RoleSettings::Proxying(conf) => {
            x.text(
                1,
                "distributed-database",
                bool_str(conf.distributed_database),
            );
            x.empty(
                1,
                "management-node",
                &[("address", &conf.management_node.to_string())],
            );
        }
    }
    x.0.push_str("</node-config>\n");
    x.0
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

struct Xml(String);

impl Xml {
    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            self.0.push_str("  ");
        }
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (k, v) in attrs {
            let _ = write!(self.0, " {k}=\"{}\"", escape(*v));
        }
    }

    fn open(&mut self, level: usize, name: &str, attrs: &[(&str, &str)]) {
        self.indent(level);
        let _ = write!(self.0, "<{name}");
        self.attrs(attrs);
        self.0.push_str(">\n");
    }

    fn close(&mut self, level: usize, name: &str) {
        self.indent(level);
        let _ = writeln!(self.0, "</{name}>");
    }

    fn empty(&mut self, level: usize, name: &str, attrs: &[(&str, &str)]) {
        self.indent(level);
        let _ = write!(self.0, "<{name}");
        self.attrs(attrs);
        self.0.push_str("/>\n");
    }

    fn text(&mut self, level: usize, name: &str, text: &str) {
        self.indent(level);
        let _ = writeln!(self.0, "<{name}>{}</{name}>", escape(text));
    }
}
