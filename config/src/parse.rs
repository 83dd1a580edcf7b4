//! The XML reader of schema 1: walks the element tree of `crate::xml` and makes a positioned
//! draft (`crate::draft`), every value with its element path and line:column. It reports what
//! only a reader can know — unknown or repeated elements and attributes, text where elements
//! belong, control characters — and leaves every rule of the schema to `crate::rules`, which
//! turns the draft into a [`Document`] (whose bytes are the file as it came) or findings.
//!
//! Pure: the current time is an input (certificate expiry), nothing is read or written.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::document::Document;
use crate::draft::*;
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
    let mut reader = Reader {
        errors: Findings::by_position(),
    };
    let draft = reader.node_config(&root);
    let at = At::Pos {
        path: "/node-config".into(),
        pos: root.pos,
    };
    crate::rules::check(draft, reader.errors, now, Some(bytes.to_vec()), at)
}

/// How often a child element may appear.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    /// Zero or one.
    Opt,
    /// Zero or more.
    Many,
}

/// Walks the tree once, following the schema's shape (so its depth is fixed), collecting the
/// reader's findings (bounded: see [`Findings`]).
struct Reader {
    errors: Findings,
}

fn at(path: &str, pos: Pos) -> At {
    At::Pos {
        path: path.to_owned(),
        pos,
    }
}

type Kids<'e> = HashMap<String, Vec<&'e Element>>;

impl Reader {
    fn error(&mut self, path: &str, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push(Diagnostic {
            severity: Severity::Error,
            path: path.to_owned(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            help: Some(help.into()),
        });
    }

    /// Groups the children of `el` by name, reporting unknown children, repeated single
    /// children, and text where only elements belong.
    fn children<'e>(&mut self, el: &'e Element, path: &str, allowed: &[(&str, Card)]) -> Kids<'e> {
        if let Some(tp) = el.text_pos {
            self.error(
                path,
                tp,
                format!("text is not allowed directly inside <{}>", el.name),
                "put values in their child elements",
            );
        }
        let mut out: Kids<'e> = HashMap::new();
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

    /// Attribute `name` of `el` (first occurrence); refused when it holds a control character.
    fn attr(&mut self, el: &Element, path: &str, name: &str) -> Slot {
        let Some(a) = el.attrs.iter().find(|a| a.name == name) else {
            return Slot::Absent;
        };
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
            return Slot::Refused;
        }
        Slot::Given(Val {
            text: a.value.clone(),
            at: at(&apath, a.pos),
            element: at(path, el.pos),
        })
    }

    /// The trimmed text of a text-only element, at the place of the text (or of the element
    /// when it is empty). Reports attributes and child elements, which such elements never
    /// have, and refuses a value holding a control character: one line of printable text, or
    /// printable lines for the PEM elements `<certificate>` and `<private-key>`.
    fn text(&mut self, el: &Element, path: &str) -> Slot {
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
            return Slot::Refused;
        }
        Slot::Given(Val {
            text: value.to_owned(),
            at: at(path, pos),
            element: at(path, el.pos),
        })
    }

    /// The single text child `name`, if present.
    fn text_child(&mut self, kids: &Kids<'_>, ppath: &str, name: &str) -> Slot {
        match kids.get(name).and_then(|v| v.first()) {
            Some(el) => self.text(el, &format!("{ppath}/{name}")),
            None => Slot::Absent,
        }
    }

    /// Every text child `name`, in order.
    fn text_children(&mut self, kids: &Kids<'_>, ppath: &str, name: &str) -> Vec<Slot> {
        let path = format!("{ppath}/{name}");
        let list: Vec<&Element> = kids.get(name).cloned().unwrap_or_default();
        list.into_iter().map(|e| self.text(e, &path)).collect()
    }

    /// The single child element `name` with the attributes `attrs` and no children, read by `f`.
    fn part<T>(
        &mut self,
        kids: &Kids<'_>,
        ppath: &str,
        name: &str,
        attrs: &[&str],
        f: impl FnOnce(&mut Self, &Element, &str) -> T,
    ) -> Part<T> {
        match kids.get(name).and_then(|v| v.first()) {
            None => Part::Absent,
            Some(e) => {
                let p = format!("{ppath}/{name}");
                self.check_attrs(e, &p, attrs);
                let v = f(self, e, &p);
                Part::Given(at(&p, e.pos), v)
            }
        }
    }

    fn node_config(&mut self, root: &Element) -> Option<Draft> {
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
        match self.attr(root, &rpath, "schema") {
            Slot::Absent => self.error(
                &rpath,
                root.pos,
                "<node-config> has no \"schema\" attribute",
                "add schema=\"...\" to <node-config>",
            ),
            Slot::Given(v) if v.text != "1" => {
                if let At::Pos { path, pos } = &v.at {
                    self.error(
                        path,
                        *pos,
                        format!("schema {:?} is not supported", v.text),
                        "this version reads schema=\"1\"",
                    );
                }
                return None;
            }
            _ => {}
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
                ("health", Opt),
            ],
        );
        let mut d = Draft::new(at(&rpath, root.pos));
        d.role = self.text_child(&kids, &rpath, "role");
        d.name = self.text_child(&kids, &rpath, "name");
        d.description = self.text_child(&kids, &rpath, "description");
        d.hostname = self.text_child(&kids, &rpath, "hostname");
        d.domain = self.text_child(&kids, &rpath, "domain");
        d.network = self.part(&kids, &rpath, "network", &[], |r, e, p| r.network(e, p));
        d.ssh = self.part(&kids, &rpath, "ssh", &["enabled"], |r, e, p| {
            let kids = r.children(e, p, &[("password-hash", Opt), ("authorized-key", Many)]);
            SshDraft {
                enabled: r.attr(e, p, "enabled"),
                password_hash: r.text_child(&kids, p, "password-hash"),
                authorized_keys: r.text_children(&kids, p, "authorized-key"),
            }
        });
        d.system_location = self.text_child(&kids, &rpath, "system-location");
        d.management_node = self.part(&kids, &rpath, "management-node", &["address"], |r, e, p| {
            let _ = r.children(e, p, &[]);
            r.attr(e, p, "address")
        });
        d.sip_tls_fqdn = self.text_child(&kids, &rpath, "sip-tls-fqdn");
        d.distributed_database = self.text_child(&kids, &rpath, "distributed-database");
        d.tls = self.part(&kids, &rpath, "tls", &[], |r, e, p| {
            let kids = r.children(e, p, &[("certificate", Opt), ("private-key", Opt)]);
            TlsDraft {
                certificate: r.text_child(&kids, p, "certificate"),
                private_key: r.text_child(&kids, p, "private-key"),
            }
        });
        d.web_admin = self.part(
            &kids,
            &rpath,
            "web-admin",
            &["username", "password-hash"],
            |r, e, p| {
                let _ = r.children(e, p, &[]);
                WebAdminDraft {
                    username: r.attr(e, p, "username"),
                    password_hash: r.attr(e, p, "password-hash"),
                }
            },
        );
        d.incident_reporting = self.text_child(&kids, &rpath, "incident-reporting");
        d.usage_statistics = self.text_child(&kids, &rpath, "usage-statistics");
        d.contact_email = self.text_child(&kids, &rpath, "contact-email");
        d.health = self.part(
            &kids,
            &rpath,
            "health",
            &["rollback", "grace", "report"],
            |r, e, p| {
                let _ = r.children(e, p, &[]);
                HealthDraft {
                    rollback: r.attr(e, p, "rollback"),
                    grace: r.attr(e, p, "grace"),
                    report: r.attr(e, p, "report"),
                }
            },
        );
        Some(d)
    }

    fn network(&mut self, el: &Element, path: &str) -> NetworkDraft {
        use Card::*;
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
        let ipv4 = |r: &mut Self, e: &Element, p: &str, gateway: bool| Ipv4Draft {
            address: r.attr(e, p, "address"),
            netmask: r.attr(e, p, "netmask"),
            gateway: if gateway {
                r.attr(e, p, "gateway")
            } else {
                Slot::Absent
            },
        };
        let mut n = NetworkDraft {
            ipv4: self.part(
                &kids,
                path,
                "ipv4",
                &["address", "netmask", "gateway"],
                |r, e, p| ipv4(r, e, p, true),
            ),
            secondary_ipv4: self.part(
                &kids,
                path,
                "secondary-ipv4",
                &["address", "netmask"],
                |r, e, p| ipv4(r, e, p, false),
            ),
            ipv6: self.part(&kids, path, "ipv6", &["address", "gateway"], |r, e, p| {
                Ipv6Draft {
                    address: r.attr(e, p, "address"),
                    gateway: r.attr(e, p, "gateway"),
                }
            }),
            static_nat: self.part(&kids, path, "static-nat", &["ipv4"], |r, e, p| {
                r.attr(e, p, "ipv4")
            }),
            ..NetworkDraft::default()
        };
        for (i, e) in kids.get("route").into_iter().flatten().enumerate() {
            let p = format!("{path}/route[{}]", i + 1);
            self.check_attrs(e, &p, &["name", "destination", "gateway"]);
            let route = RouteDraft {
                name: self.attr(e, &p, "name"),
                destination: self.attr(e, &p, "destination"),
                gateway: self.attr(e, &p, "gateway"),
            };
            n.routes.push((at(&p, e.pos), route));
        }
        n.dns_servers = self.text_children(&kids, path, "dns-server");
        n.ntp_servers = self.text_children(&kids, path, "ntp-server");
        n
    }
}
