//! Metadata JSON mapped onto the same model: the conferencing XML string, and the Management
//! Node's wizard answers with errors naming the JSON field.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use nodeboot_config::{RoleSettings, from_metadata_json};

const HASH: &str = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";

fn management(overrides: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut m = serde_json::json!({
        "hostname": "mgr01", "domain": "example.com", "ip": "10.0.0.10",
        "mask": "255.255.255.0", "gw": "10.0.0.1", "dns": "10.0.0.2 10.0.0.3",
        "ntp": "pool.ntp.org 10.0.0.4", "user": "admin", "pass": HASH,
        "admin_password": HASH, "error_reports": true, "enable_analytics": "no",
        "contact_email_address": "ops@example.com"
    });
    for (k, v) in overrides {
        if v.is_null() {
            m.as_object_mut().unwrap().remove(*k);
        } else {
            m[*k] = v.clone();
        }
    }
    serde_json::to_vec(&serde_json::json!({ "management_node_config": m })).unwrap()
}

#[test]
fn management_answers_map_onto_the_model() {
    let p = from_metadata_json(&management(&[])).unwrap();
    let c = p.config();
    assert_eq!(c.fqdn(), "mgr01.example.com");
    assert_eq!(c.name, "mgr01");
    assert_eq!(c.network.dns_servers.len(), 2);
    assert_eq!(c.network.ntp_servers.len(), 2);
    assert_eq!(c.network.ipv4.gateway.to_string(), "10.0.0.1");
    let RoleSettings::Management(m) = &c.role else {
        panic!("role")
    };
    assert_eq!(m.web_admin.username.as_str(), "admin");
    assert!(m.incident_reporting);
    assert!(!m.usage_statistics);
    assert_eq!(
        m.contact_email.as_ref().unwrap().as_str(),
        "ops@example.com"
    );
    // What the node records (and hashes) is the XML serialized from the answers, which reads
    // back as the same configuration.
    let xml = nodeboot_config::to_xml(c);
    assert_eq!(p.bytes(), xml.as_bytes());
    assert_eq!(p.digest(), nodeboot_config::digest(xml.as_bytes()));
    assert_eq!(nodeboot_config::parse(xml.as_bytes()).unwrap().config(), c);
}

#[test]
fn management_errors_name_the_json_field() {
    let cases: &[(&str, serde_json::Value, &str, &str)] = &[
        (
            "gw",
            "10.9.0.1".into(),
            "management_node_config.gw",
            "the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24)",
        ),
        (
            "mask",
            "255.0.255.0".into(),
            "management_node_config.mask",
            "netmask 255.0.255.0 is not contiguous",
        ),
        (
            "pass",
            "secret".into(),
            "management_node_config.pass",
            "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
        ),
        (
            "admin_password",
            "secret".into(),
            "management_node_config.admin_password",
            "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
        ),
        (
            "dns",
            "ns1.example.com".into(),
            "management_node_config.dns",
            "DNS server \"ns1.example.com\" is not an IP address",
        ),
        (
            "dns",
            " ".into(),
            "management_node_config.dns",
            "field \"dns\" is empty",
        ),
        (
            "ip",
            10.into(),
            "management_node_config.ip",
            "field \"ip\" is a number, not a string",
        ),
        (
            "hostname",
            serde_json::Value::Null,
            "management_node_config.hostname",
            "field \"hostname\" is missing",
        ),
        (
            "error_reports",
            "maybe".into(),
            "management_node_config.error_reports",
            "field \"error_reports\" is \"maybe\", not a yes/no answer",
        ),
        (
            "colour",
            "blue".into(),
            "management_node_config.colour",
            "unknown field \"colour\"",
        ),
    ];
    for (field, value, path, message) in cases {
        let errs = from_metadata_json(&management(&[(field, value.clone())])).unwrap_err();
        assert_eq!(errs.len(), 1, "{field}: {errs:?}");
        assert_eq!(errs[0].path, *path, "{field}");
        assert_eq!(errs[0].message, *message, "{field}");
        assert_eq!((errs[0].line, errs[0].column), (0, 0));
    }
}

#[test]
fn conferencing_xml_string_is_parsed_as_a_file() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/valid/transcoding.xml");
    let xml = std::fs::read_to_string(p).unwrap();
    let json = serde_json::to_vec(&serde_json::json!({ "conferencing_node_config": xml })).unwrap();
    let from_json = from_metadata_json(&json).unwrap();
    let from_file = nodeboot_config::parse(xml.as_bytes()).unwrap();
    assert_eq!(from_json.config(), from_file.config());

    let bad = xml.replace("gateway=\"10.0.0.1\"", "gateway=\"10.9.0.1\"");
    let json = serde_json::to_vec(&serde_json::json!({ "conferencing_node_config": bad })).unwrap();
    let errs = from_metadata_json(&json).unwrap_err();
    assert_eq!(
        (errs[0].line, errs[0].column),
        (10, 55),
        "positions inside the XML string"
    );
}

#[test]
fn other_shapes_are_refused() {
    for (doc, msg) in [
        (&b"[]"[..], "the metadata is not a JSON object"),
        (
            b"{}",
            "the metadata has neither \"conferencing_node_config\" nor \"management_node_config\"",
        ),
        (
            b"{\"conferencing_node_config\": 1}",
            "\"conferencing_node_config\" is not a string",
        ),
        (
            b"{\"management_node_config\": \"x\"}",
            "\"management_node_config\" is not an object",
        ),
    ] {
        let errs = from_metadata_json(doc).unwrap_err();
        assert_eq!(errs[0].message, msg);
    }
    let errs = from_metadata_json(b"{").unwrap_err();
    assert!(
        errs[0]
            .message
            .starts_with("the metadata is not valid JSON")
    );
}
