//! The inventory TOML shared by `generate --from` and `push --inventory`, and generating a
//! configuration from its parameters.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::SystemTime;

use nodeboot_config::inventory::{GenerateInputs, Inventory};

const HASH: &str = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";

fn inventory() -> String {
    format!(
        r#"
[defaults]
role = "transcoding"
domain = "example.com"
system_location = "London"
netmask = "255.255.255.0"
gateway = "10.0.0.1"
dns = ["10.0.0.2"]
ntp = ["pool.ntp.org"]
management_node = "10.0.0.10"
password_hash = "{HASH}"

[[node]]
name = "conf01"
address = "10.0.0.31"
hostname = "conf01"
ip = "10.0.0.31"
routes = [{{ name = "media", destination = "192.168.50.0/24", gateway = "10.0.0.254" }}]

[[node]]
name = "conf02"
address = "192.0.2.50"
port = 9443
fingerprint = "SHA256:abc"
token_file = "conf02.token"
file = "conf02.xml"
"#
    )
}

#[test]
fn nodes_carry_push_fields_and_merged_parameters() {
    let inv = Inventory::parse(&inventory()).unwrap();
    assert_eq!(inv.nodes.len(), 2);
    let a = inv.node("conf01").unwrap();
    assert_eq!(a.port, 8443);
    assert_eq!(a.params.domain.as_deref(), Some("example.com"));
    assert_eq!(a.params.name.as_deref(), Some("conf01"));
    let b = inv.node("conf02").unwrap();
    assert_eq!(
        (b.port, b.fingerprint.as_deref()),
        (9443, Some("SHA256:abc"))
    );
    assert_eq!(b.file.as_deref(), Some(std::path::Path::new("conf02.xml")));
    assert_eq!(
        b.token_file.as_deref(),
        Some(std::path::Path::new("conf02.token"))
    );

    let parsed = a
        .params
        .generate(&GenerateInputs::default(), SystemTime::now())
        .unwrap();
    assert_eq!(parsed.config().fqdn(), "conf01.example.com");
    assert_eq!(parsed.config().network.routes.len(), 1);
}

#[test]
fn mistakes_are_named() {
    let cases = [
        (
            "[[node]]\nname = \"a\"\naddress = \"x\"\nipaddr = \"1\"\n",
            "node 1 (\"a\"): unknown field `ipaddr`",
        ),
        (
            "[[node]]\nname = \"a\"\n",
            "node 1 (\"a\"): address is missing",
        ),
        ("[[node]]\naddress = \"x\"\n", "node 1: name is missing"),
        (
            "[[node]]\nname = \"a\"\naddress = \"x\"\nport = 0\n",
            "node 1: port 0 is not from 1 to 65535",
        ),
        (
            "[[node]]\nname = \"a\"\naddress = \"x\"\nfile = \"a.xml\"\nhostname = \"a\"\n",
            "node 1 (\"a\"): give either file",
        ),
        (
            "[[node]]\nname = \"a\"\naddress = \"x\"\n[[node]]\nname = \"a\"\naddress = \"y\"\n",
            "node 2 (\"a\"): another node is named \"a\"",
        ),
    ];
    for (text, want) in cases {
        let errs = Inventory::parse(text).unwrap_err();
        assert!(
            errs.iter().any(|e| e.message.starts_with(want)),
            "{want}: {errs:?}"
        );
    }
}

#[test]
fn parameter_errors_name_the_parameter() {
    let mut inv = Inventory::parse(&inventory()).unwrap();
    let mut p = inv.nodes.remove(0).params;
    p.gateway = Some("10.9.0.1".into());
    p.dns = vec!["ns1".into()];
    p.web_admin_user = Some("admin".into());
    let errs = p
        .generate(&GenerateInputs::default(), SystemTime::now())
        .unwrap_err();
    let got: Vec<(String, String)> = errs.into_iter().map(|e| (e.field, e.message)).collect();
    assert_eq!(
        got,
        vec![
            (
                "gateway".to_string(),
                "the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24)"
                    .to_string()
            ),
            (
                "dns".to_string(),
                "DNS server \"ns1\" is not an IP address".to_string()
            ),
            (
                "web_admin_user".to_string(),
                "not used by the transcoding role".to_string()
            ),
        ]
    );
}

#[test]
fn missing_parameters_are_listed_for_the_role() {
    let p = nodeboot_config::inventory::NodeParams {
        role: Some("management".into()),
        ..Default::default()
    };
    let fields: Vec<String> = p
        .missing(&GenerateInputs::default())
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "hostname",
            "domain",
            "ip",
            "netmask",
            "gateway",
            "dns",
            "ntp",
            "password",
            "web_admin_user",
            "incident_reporting",
            "usage_statistics",
            "web_admin_password"
        ]
    );
}
