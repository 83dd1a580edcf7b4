//! What to check, derived from the configuration alone: a list of values, no I/O.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use nodeboot_config::api::CheckKind;
use nodeboot_config::{Ipv4Interface, NodeConfig, ServerName};

/// The port the management node is reached on.
pub const MANAGEMENT_PORT: u16 = 443;

/// One thing to check after the reboot. A value: it says what to check, not how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `iface` has exactly the `expected` addresses (IPv6 link-local ones aside). With
    /// `slaac`, further IPv6 addresses are accepted: router advertisements may add them.
    Addresses {
        /// `eth0` or `eth1`.
        iface: String,
        /// The configured addresses with their prefixes.
        expected: Vec<IpNet>,
        /// Whether extra IPv6 addresses are expected (the unit accepts router advertisements).
        slaac: bool,
    },
    /// The gateway answers ARP (IPv4) or neighbour discovery (IPv6) on `iface`.
    Gateway {
        /// The interface whose subnet holds the gateway.
        iface: String,
        /// The gateway's address.
        addr: IpAddr,
    },
    /// The DNS server answers `query`.
    Dns {
        /// The server's address (port 53).
        server: IpAddr,
        /// What to ask.
        query: DnsQuery,
    },
    /// The NTP server (resolved through `resolvers` when it is a name) answers one client
    /// request.
    Ntp {
        /// The server, by address or name.
        server: ServerName,
        /// The configured DNS servers, asked in order for a name.
        resolvers: Vec<IpAddr>,
    },
    /// The management node (resolved through `resolvers` when it is a name) accepts a TCP
    /// connection on `port`.
    Management {
        /// The management node, by address or name.
        addr: ServerName,
        /// 443.
        port: u16,
        /// The configured DNS servers, asked in order for a name.
        resolvers: Vec<IpAddr>,
    },
    /// A route to `dest` via `via` is in the kernel's main table.
    Route {
        /// The destination network (`0.0.0.0/0` for the default route).
        dest: IpNet,
        /// The next hop.
        via: IpAddr,
    },
}

/// The question a DNS check asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsQuery {
    /// The A record of a name (the node's own FQDN).
    Address(String),
    /// The root zone's SOA record (for a node without a name of its own).
    RootSoa,
}

impl std::fmt::Display for DnsQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsQuery::Address(name) => write!(f, "{name} A"),
            DnsQuery::RootSoa => f.write_str(". SOA"),
        }
    }
}

impl Check {
    /// The kind, as the status document names it.
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Addresses { .. } => CheckKind::Addresses,
            Check::Gateway { .. } => CheckKind::Gateway,
            Check::Dns { .. } => CheckKind::Dns,
            Check::Ntp { .. } => CheckKind::Ntp,
            Check::Management { .. } => CheckKind::Management,
            Check::Route { .. } => CheckKind::Route,
        }
    }

    /// What is checked, in a few words: `eth0`, `10.0.0.1 on eth0`, `10.0.0.53`,
    /// `0.0.0.0/0 via 10.0.0.1`.
    pub fn subject(&self) -> String {
        match self {
            Check::Addresses { iface, .. } => iface.clone(),
            Check::Gateway { iface, addr } => format!("{addr} on {iface}"),
            Check::Dns { server, .. } => server.to_string(),
            Check::Ntp { server, .. } => server.to_string(),
            Check::Management { addr, port, .. } => match addr {
                ServerName::Address(IpAddr::V6(a)) => format!("[{a}]:{port}"),
                other => format!("{other}:{port}"),
            },
            Check::Route { dest, via } => format!("{dest} via {via}"),
        }
    }
}

/// The interface whose subnet holds `addr`: eth1 when only its subnet does, else eth0 (as the
/// renderer places gateways and routes).
fn iface_for(config: &NodeConfig, addr: Ipv4Addr) -> &'static str {
    let on = |i: &Ipv4Interface| i.subnet().contains(&addr);
    if !on(&config.network.ipv4.interface) && config.network.secondary_ipv4.as_ref().is_some_and(on)
    {
        "eth1"
    } else {
        "eth0"
    }
}

/// Every check the configuration calls for, in a stable order: addresses, gateways, routes
/// (the default routes first), DNS servers, NTP servers, the management node.
pub fn plan_checks(config: &NodeConfig) -> Vec<Check> {
    let net = &config.network;
    let mut checks = Vec::new();

    let mut eth0 = vec![IpNet::V4(net.ipv4.interface.as_net())];
    if let Some(v6) = &net.ipv6 {
        eth0.push(IpNet::V6(v6.interface.as_net()));
    }
    checks.push(Check::Addresses {
        iface: "eth0".into(),
        expected: eth0,
        slaac: net.ipv6.as_ref().is_some_and(|v6| v6.gateway.is_none()),
    });
    if let Some(eth1) = &net.secondary_ipv4 {
        checks.push(Check::Addresses {
            iface: "eth1".into(),
            expected: vec![IpNet::V4(eth1.as_net())],
            slaac: false,
        });
    }

    checks.push(Check::Gateway {
        iface: iface_for(config, net.ipv4.gateway).into(),
        addr: IpAddr::V4(net.ipv4.gateway),
    });
    let v6_gateway = net.ipv6.as_ref().and_then(|v6| v6.gateway);
    if let Some(g) = v6_gateway {
        checks.push(Check::Gateway {
            iface: "eth0".into(),
            addr: IpAddr::V6(g),
        });
    }

    checks.push(Check::Route {
        dest: IpNet::V4(Ipv4Net::default()),
        via: IpAddr::V4(net.ipv4.gateway),
    });
    if let Some(g) = v6_gateway {
        checks.push(Check::Route {
            dest: IpNet::V6(ipnet::Ipv6Net::default()),
            via: IpAddr::V6(g),
        });
    }
    for route in &net.routes {
        checks.push(Check::Route {
            dest: IpNet::V4(route.destination.trunc()),
            via: IpAddr::V4(route.gateway),
        });
    }

    let fqdn = config.fqdn();
    for &server in &net.dns_servers {
        let query = if fqdn.is_empty() {
            DnsQuery::RootSoa
        } else {
            DnsQuery::Address(fqdn.clone())
        };
        checks.push(Check::Dns { server, query });
    }
    for server in &net.ntp_servers {
        checks.push(Check::Ntp {
            server: server.clone(),
            resolvers: net.dns_servers.clone(),
        });
    }
    if let Some(conf) = config.conferencing() {
        checks.push(Check::Management {
            addr: conf.management_node.clone(),
            port: MANAGEMENT_PORT,
            resolvers: net.dns_servers.clone(),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(network: &str, role: &str) -> NodeConfig {
        let xml = format!(
            r#"<node-config schema="1">
  <role>{role}</role><name>n</name><hostname>conf01</hostname><domain>example.com</domain>
  {location}
  <network>{network}</network>
  <ssh enabled="global"><password-hash>$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/</password-hash></ssh>
  {tail}
</node-config>"#,
            location = if role == "management" {
                ""
            } else {
                "<system-location>L</system-location>"
            },
            tail = if role == "management" {
                r#"<web-admin username="admin" password-hash="$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/"/><incident-reporting>false</incident-reporting><usage-statistics>false</usage-statistics>"#
            } else {
                r#"<management-node address="mgr.example.com"/>"#
            }
        );
        nodeboot_config::parse(xml.as_bytes())
            .unwrap_or_else(|d| panic!("{d:?}"))
            .config()
            .clone()
    }

    #[test]
    fn a_full_configuration_plans_every_check_in_order() {
        let c = config(
            r#"<ipv4 address="10.0.0.31" netmask="255.255.255.0" gateway="10.0.1.1"/>
               <secondary-ipv4 address="10.0.1.31" netmask="255.255.255.0"/>
               <ipv6 address="2001:db8::31/64" gateway="2001:db8::1"/>
               <route name="lab" destination="192.168.7.0/24" gateway="10.0.0.254"/>
               <dns-server>10.0.0.53</dns-server><dns-server>2001:db8::53</dns-server>
               <ntp-server>ntp.example.com</ntp-server>"#,
            "transcoding",
        );
        let summary: Vec<String> = plan_checks(&c)
            .iter()
            .map(|c| format!("{} {}", c.kind(), c.subject()))
            .collect();
        assert_eq!(
            summary,
            [
                "addresses eth0",
                "addresses eth1",
                "gateway 10.0.1.1 on eth1",
                "gateway 2001:db8::1 on eth0",
                "route 0.0.0.0/0 via 10.0.1.1",
                "route ::/0 via 2001:db8::1",
                "route 192.168.7.0/24 via 10.0.0.254",
                "dns 10.0.0.53",
                "dns 2001:db8::53",
                "ntp ntp.example.com",
                "management mgr.example.com:443",
            ]
        );
        let checks = plan_checks(&c);
        assert_eq!(
            checks[0],
            Check::Addresses {
                iface: "eth0".into(),
                expected: vec![
                    "10.0.0.31/24".parse().unwrap(),
                    "2001:db8::31/64".parse().unwrap()
                ],
                slaac: false,
            }
        );
        assert_eq!(
            checks[7],
            Check::Dns {
                server: "10.0.0.53".parse().unwrap(),
                query: DnsQuery::Address("conf01.example.com".into())
            }
        );
        let Check::Ntp { resolvers, .. } = &checks[9] else {
            panic!("{:?}", checks[9])
        };
        assert_eq!(resolvers.len(), 2);
    }

    #[test]
    fn a_management_node_has_no_management_check_and_ra_allows_more_ipv6() {
        let c = config(
            r#"<ipv4 address="10.0.0.31" netmask="255.255.255.0" gateway="10.0.0.1"/>
               <ipv6 address="2001:db8::31/64"/>
               <dns-server>10.0.0.53</dns-server><ntp-server>10.0.0.123</ntp-server>"#,
            "management",
        );
        let checks = plan_checks(&c);
        assert!(!checks.iter().any(|c| matches!(c, Check::Management { .. })));
        assert!(matches!(checks[0], Check::Addresses { slaac: true, .. }));
        assert_eq!(checks.len(), 5, "{checks:?}");
    }
}
