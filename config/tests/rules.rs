//! One set of rules for every reader: the same value gives the same finding whether it comes
//! from a file (placed at line:column), metadata JSON or a named draft such as the wizard's
//! answers (placed at the field's name); a document's digest is that of its bytes.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::Ipv4Addr;

use nodeboot_config::rules::{self, GatewayFault, ManagementDraft, Named};
use nodeboot_config::{Ipv4Interface, from_metadata_json, parse};

const HASH: &str = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";

fn answers(gw: &str, hostname: &str, domain: &str) -> ManagementDraft {
    let n = |f: &str, v: &str| Named::new(f, v.to_owned());
    ManagementDraft {
        hostname: n("Hostname", hostname),
        domain: n("Domain suffix", domain),
        ip: n("IP address", "10.0.0.10"),
        mask: n("Network mask", "255.255.255.0"),
        gw: n("Gateway", gw),
        dns: vec![n("DNS servers", "10.0.0.2")],
        ntp: vec![n("NTP servers", "pool.ntp.org")],
        user: n("Web administration username", "admin"),
        pass: n("Web administration password", HASH),
        admin_password: n("admin password", HASH),
        error_reports: Named::new("Enable incident reporting", true),
        enable_analytics: Named::new("Send deployment and usage statistics", false),
        contact_email: None,
    }
}

fn file(gw: &str) -> String {
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/valid/management.xml"
    ))
    .unwrap();
    let doc = parse(xml.as_bytes()).unwrap();
    let current = doc.config().network.ipv4.gateway.to_string();
    xml.replace(
        &format!("gateway=\"{current}\""),
        &format!("gateway=\"{gw}\""),
    )
}

fn json(gw: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "management_node_config": {
        "hostname": "mgr01", "domain": "example.com", "ip": "10.0.0.10",
        "mask": "255.255.255.0", "gw": gw, "dns": "10.0.0.2", "ntp": "pool.ntp.org",
        "user": "admin", "pass": HASH, "admin_password": HASH,
        "error_reports": true, "enable_analytics": false
    }}))
    .unwrap()
}

#[test]
fn the_gateway_rule_is_one_for_file_metadata_and_answers() {
    let eth0 =
        Ipv4Interface::new(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(255, 255, 255, 0)).unwrap();
    let cases: &[(&str, Result<(), GatewayFault>, &str)] = &[
        ("10.0.0.1", Ok(()), ""),
        (
            "10.0.0.10",
            Err(GatewayFault::OwnAddress),
            "the default gateway 10.0.0.10 is the node's own address",
        ),
        (
            "10.0.0.255",
            Err(GatewayFault::NetworkOrBroadcast(eth0.subnet())),
            "the default gateway 10.0.0.255 is the network or broadcast address of 10.0.0.0/24",
        ),
        (
            "10.9.0.1",
            Err(GatewayFault::Outside(vec![eth0.subnet()])),
            "the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24)",
        ),
    ];
    for (gw, fault, message) in cases {
        let g: Ipv4Addr = gw.parse().unwrap();
        assert_eq!(&rules::gateway(g, &[eth0]), fault, "{gw}");
        let from_answers = rules::management(&answers(gw, "mgr01", "example.com"), "answers");
        let from_json = from_metadata_json(&json(gw));
        let file = file(gw);
        let from_file = parse(file.as_bytes());
        if fault.is_ok() {
            assert!(
                from_answers.is_ok() && from_json.is_ok() && from_file.is_ok(),
                "{gw}"
            );
            continue;
        }
        let (a, j, f) = (
            from_answers.unwrap_err(),
            from_json.unwrap_err(),
            from_file.unwrap_err(),
        );
        for (list, path) in [
            (&a, "Gateway"),
            (&j, "management_node_config.gw"),
            (&f, "/node-config/network/ipv4@gateway"),
        ] {
            assert_eq!(list.len(), 1, "{gw} {path}: {list:?}");
            assert_eq!(list[0].message, *message, "{path}");
            assert_eq!(list[0].path, path);
        }
        assert_eq!((a[0].line, a[0].column), (0, 0));
        assert_eq!((j[0].line, j[0].column), (0, 0));
        let line = file.lines().position(|l| l.contains("gateway=")).unwrap() + 1;
        assert_eq!(f[0].line as usize, line, "the file's finding has its line");
        assert!(f[0].column > 0);
    }
}

#[test]
fn a_named_draft_is_checked_value_by_value_and_across_values() {
    // the hostname rule, and the FQDN rule joining hostname and domain
    let e = rules::management(&answers("10.0.0.1", "-mgr", "example.com"), "answers").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "Hostname");
    assert_eq!(e[0].message, "hostname \"-mgr\" is not an RFC 1123 label");
    let label = "d".repeat(59);
    let long = format!("{label}.{label}.{label}.example.com"); // 191 characters
    let e = rules::management(&answers("10.0.0.1", &"h".repeat(63), &long), "answers").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "Hostname");
    assert!(e[0].message.contains("over the limit of 253"), "{e:?}");
}

#[test]
fn a_document_is_hashed_once_from_the_bytes_it_records() {
    let xml = file("10.0.0.1");
    let doc = parse(xml.as_bytes()).unwrap();
    assert_eq!(doc.bytes(), xml.as_bytes(), "a file is recorded as it came");
    assert_eq!(doc.digest(), nodeboot_config::digest(xml.as_bytes()));

    for doc in [
        rules::management(&answers("10.0.0.1", "mgr01", "example.com"), "answers").unwrap(),
        from_metadata_json(&json("10.0.0.1")).unwrap(),
    ] {
        let serialized = nodeboot_config::to_xml(doc.config());
        assert_eq!(
            doc.bytes(),
            serialized.as_bytes(),
            "answers are recorded as XML"
        );
        assert_eq!(doc.digest(), nodeboot_config::digest(serialized.as_bytes()));
        let again = parse(doc.bytes()).unwrap();
        assert_eq!(again.config(), doc.config());
        assert_eq!(again.digest(), doc.digest());
    }
}

#[test]
fn a_document_debug_shows_no_secret() {
    let doc = rules::management(&answers("10.0.0.1", "mgr01", "example.com"), "answers").unwrap();
    let debug = format!("{doc:?}");
    assert!(!debug.contains("$6$"), "{debug}");
    assert!(
        debug.contains(&format!("{} bytes", doc.bytes().len())),
        "{debug}"
    );
    assert!(debug.contains(doc.digest()), "{debug}");
}
