//! Drafts: a configuration's values as a reader found them, each with where it came from,
//! before any rule has looked at them.
//!
//! The XML reader (`crate::parse`) makes a *positioned* draft (every value with its element
//! path and line:column); JSON metadata and the wizard's answers make a *named* draft (every
//! value with its field's name, see [`crate::rules::ManagementDraft`]). The rules
//! (`crate::rules::check`) turn either into a [`crate::Document`] or findings placed by
//! [`At`]. A slot says plainly whether a value is absent, refused by the reader (which has
//! reported why) or given: no nested `Option`s.

use crate::diagnostic::{Diagnostic, Severity};
use crate::xml::Pos;

/// Where a value came from: what a finding about it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum At {
    /// An element path (`/node-config/network/ipv4@gateway`) and its line:column.
    Pos { path: String, pos: Pos },
    /// A field's own name (`management_node_config.gw`, a wizard question); no line.
    Field(String),
}

impl At {
    /// The finding `message` (with `help`) about what is here.
    pub fn diagnostic(&self, severity: Severity, message: String, help: String) -> Diagnostic {
        let (path, line, column) = match self {
            At::Pos { path, pos } => (path.clone(), pos.line, pos.column),
            At::Field(name) => (name.clone(), 0, 0),
        };
        Diagnostic {
            severity,
            path,
            line,
            column,
            message,
            help: Some(help),
        }
    }
}

/// One value as read, with where it is and where the element holding it is (they differ for
/// a text element: the text, and the element's `<`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Val {
    pub text: String,
    pub at: At,
    pub element: At,
}

/// A single value: absent, refused by the reader (already reported), or given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Slot {
    #[default]
    Absent,
    Refused,
    Given(Val),
}

/// A group of values (an element with attributes or children): absent, or present at `At`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Part<T> {
    #[default]
    Absent,
    Given(At, T),
}

/// `<ipv4>`, `<secondary-ipv4>`: address, netmask and (eth0 only) gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ipv4Draft {
    pub address: Slot,
    pub netmask: Slot,
    pub gateway: Slot,
}

/// `<ipv6>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ipv6Draft {
    pub address: Slot,
    pub gateway: Slot,
}

/// One `<route>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteDraft {
    pub name: Slot,
    pub destination: Slot,
    pub gateway: Slot,
}

/// `<network>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetworkDraft {
    pub ipv4: Part<Ipv4Draft>,
    pub secondary_ipv4: Part<Ipv4Draft>,
    pub ipv6: Part<Ipv6Draft>,
    pub static_nat: Part<Slot>,
    pub routes: Vec<(At, RouteDraft)>,
    pub dns_servers: Vec<Slot>,
    pub ntp_servers: Vec<Slot>,
}

/// `<ssh>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SshDraft {
    pub enabled: Slot,
    pub password_hash: Slot,
    pub authorized_keys: Vec<Slot>,
}

/// `<tls>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsDraft {
    pub certificate: Slot,
    pub private_key: Slot,
}

/// `<web-admin>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WebAdminDraft {
    pub username: Slot,
    pub password_hash: Slot,
}

/// `<health>`: the policy of the first boot after an apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HealthDraft {
    pub rollback: Slot,
    pub grace: Slot,
    pub report: Slot,
}

/// A whole configuration as read. `root` is where a missing top-level value is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    pub root: At,
    pub role: Slot,
    pub name: Slot,
    pub description: Slot,
    pub hostname: Slot,
    pub domain: Slot,
    pub system_location: Slot,
    pub network: Part<NetworkDraft>,
    pub sip_tls_fqdn: Slot,
    pub tls: Part<TlsDraft>,
    pub ssh: Part<SshDraft>,
    pub distributed_database: Slot,
    /// `<management-node address=…/>`: the element, and its address.
    pub management_node: Part<Slot>,
    pub web_admin: Part<WebAdminDraft>,
    pub incident_reporting: Slot,
    pub usage_statistics: Slot,
    pub contact_email: Slot,
    pub health: Part<HealthDraft>,
}

impl Draft {
    /// An empty draft whose missing values are reported at `root`.
    pub fn new(root: At) -> Self {
        Draft {
            root,
            role: Slot::Absent,
            name: Slot::Absent,
            description: Slot::Absent,
            hostname: Slot::Absent,
            domain: Slot::Absent,
            system_location: Slot::Absent,
            network: Part::Absent,
            sip_tls_fqdn: Slot::Absent,
            tls: Part::Absent,
            ssh: Part::Absent,
            distributed_database: Slot::Absent,
            management_node: Part::Absent,
            web_admin: Part::Absent,
            incident_reporting: Slot::Absent,
            usage_statistics: Slot::Absent,
            contact_email: Slot::Absent,
            health: Part::Absent,
        }
    }
}

/// A value named by its field: text and element are the same place.
pub(crate) fn named(field: &str, text: impl Into<String>) -> Slot {
    Slot::Given(Val {
        text: text.into(),
        at: At::Field(field.to_owned()),
        element: At::Field(field.to_owned()),
    })
}
