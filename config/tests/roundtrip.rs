//! Property: any configuration generated from valid parameters serializes to XML that parses
//! back to an equal configuration (generate → serialize → parse → equal), and the metadata
//! JSON of a Management Node gives the same configuration as its XML.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::Ipv4Addr;
use std::time::SystemTime;

use nodeboot_config::inventory::{GenerateInputs, NodeParams, RouteParam};
use proptest::prelude::*;

const HASH: &str = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";

fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}[a-z0-9]"
}

/// A subnet (prefix 8..=30) with two distinct host addresses in it.
fn subnet_hosts() -> impl Strategy<Value = (Ipv4Addr, u8, Ipv4Addr, Ipv4Addr)> {
    (8u8..=30, any::<u32>(), any::<u32>(), any::<u32>()).prop_filter_map(
        "two distinct hosts",
        |(prefix, base, a, b)| {
            let size = 1u32 << (32 - prefix);
            let net = base & !(size - 1);
            let hosts = size - 2;
            let ha = net + 1 + a % hosts;
            let hb = net + 1 + b % hosts;
            let first = net >> 24;
            // keep clear of 0/8, loopback and multicast/reserved
            if ha == hb || first == 0 || first == 127 || first >= 224 {
                return None;
            }
            Some((
                Ipv4Addr::from(net),
                prefix,
                Ipv4Addr::from(ha),
                Ipv4Addr::from(hb),
            ))
        },
    )
}

fn mask(prefix: u8) -> String {
    Ipv4Addr::from(u32::MAX << (32 - prefix)).to_string()
}

fn server() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        (label(), label()).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

prop_compose! {
    fn params()(
        role in prop_oneof![Just("management"), Just("transcoding"), Just("proxying")],
        name in "[ -~]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty()),
        description in proptest::option::of("[ -~&<>\"']{0,60}"),
        hostname in label(),
        domain in (label(), label()).prop_map(|(a, b)| format!("{a}.{b}")),
        (_net, prefix, ip, gw) in subnet_hosts(),
        dns in proptest::collection::vec((1u8..=223, any::<[u8; 3]>()).prop_map(|(a, r)| Ipv4Addr::new(a, r[0], r[1], r[2]).to_string()), 1..3),
        ntp in proptest::collection::vec(server(), 1..3),
        ssh in prop_oneof![Just("global"), Just("on"), Just("off")],
        flags in any::<(bool, bool, bool)>(),
        location in "[A-Za-z][A-Za-z0-9 ]{0,20}",
        mgmt in server(),
        nat in proptest::option::of((1u8..=223, any::<[u8; 3]>()).prop_filter_map("unicast", |(a, r)| (a != 127 && a != 169).then(|| Ipv4Addr::new(a, r[0], r[1], r[2]).to_string()))),
        route_prefix in 8u8..=32,
        route_net in any::<u32>(),
    ) -> NodeParams {
        let management = role == "management";
        let routes = vec![RouteParam {
            name: "r1".into(),
            destination: format!("{}/{}", Ipv4Addr::from(route_net & u32::MAX.checked_shl(32 - u32::from(route_prefix)).unwrap_or(0)), route_prefix),
            gateway: gw.to_string(),
        }];
        NodeParams {
            role: Some(role.into()),
            name: Some(name),
            description,
            hostname: Some(hostname),
            domain: Some(domain),
            ip: Some(ip.to_string()),
            netmask: Some(mask(prefix)),
            gateway: Some(gw.to_string()),
            routes,
            dns,
            ntp,
            ssh: Some(ssh.into()),
            password_hash: Some(HASH.into()),
            system_location: (!management).then_some(location),
            management_node: (!management).then_some(mgmt),
            distributed_database: (!management).then_some(flags.0),
            static_nat: if management { None } else { nat },
            web_admin_user: management.then(|| "admin".into()),
            web_admin_password_hash: management.then(|| HASH.into()),
            incident_reporting: management.then_some(flags.1),
            usage_statistics: management.then_some(flags.2),
            ..NodeParams::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generate_serialize_parse_is_identity(p in params()) {
        let parsed = p.generate(&GenerateInputs::default(), SystemTime::now())
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let xml = nodeboot_config::to_xml(parsed.config());
        let again = nodeboot_config::parse(xml.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{xml}")))?;
        prop_assert_eq!(&again.config(), &parsed.config());
        // and serializing is stable
        prop_assert_eq!(nodeboot_config::to_xml(again.config()), xml);
    }

    #[test]
    fn parser_never_panics_on_mutated_documents(
        cut in 0usize..2000,
        byte in any::<u8>(),
    ) {
        let base = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/valid/transcoding.xml")).unwrap();
        let mut doc = base.clone();
        let i = cut % doc.len();
        doc[i] = byte;
        let _ = nodeboot_config::parse(&doc);
        doc.truncate(i);
        let _ = nodeboot_config::parse(&doc);
    }
}
