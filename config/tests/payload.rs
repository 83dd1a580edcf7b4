//! What a configuration source carries, read by `from_payload`: XML or every Management Node
//! JSON shape, the bootstrap token, base64, and the attacker's payloads (deep JSON, garbage).
#![allow(clippy::unwrap_used)] // tests may unwrap

use nodeboot_config::{RoleSettings, decode_base64, from_payload};
use serde_json::json;

const HASH: &str = "$6$Nodeboot.Salt12$QO2Y0MbFzxYYLTZCc1/cW5prwtZoxJAEsFnh75eiiP7Vlr5UgNBa7/qXhCTHwhIX5N6OEqj9P7BC5.KQ.kbK0/";
const DJANGO: &str = "pbkdf2_sha256$870000$abcDEF123$qU6tTn+9n1R3s6pPZWmF0vWc2m0kQz0b0WlFz3ZpK2c=";

fn answers() -> serde_json::Value {
    json!({
        "hostname": "mgr01", "domain": "example.com", "ip": "10.0.0.10",
        "mask": "255.255.255.0", "gw": "10.0.0.1", "dns": "10.0.0.2",
        "ntp": "pool.ntp.org", "user": "admin", "pass": DJANGO,
        "admin_password": HASH, "error_reports": false, "enable_analytics": false
    })
}

fn web_hash(p: &nodeboot_config::Payload) -> String {
    let RoleSettings::Management(m) = &p.document.as_ref().unwrap().config().role else {
        panic!("not a management configuration")
    };
    m.web_admin.password_hash.expose().to_owned()
}

#[test]
fn every_management_shape_reads_as_the_same_document() {
    let a = answers();
    let shapes = [
        serde_json::to_vec(&a).unwrap(),
        serde_json::to_vec(&json!({ "management_node_config": a })).unwrap(),
        serde_json::to_vec(&json!({ "management_node_config": a.to_string() })).unwrap(),
    ];
    let digests: Vec<String> = shapes
        .iter()
        .map(|s| {
            let p = from_payload(s).unwrap();
            assert!(p.token.is_none());
            assert_eq!(
                web_hash(&p),
                DJANGO,
                "the Django hash is kept for the web admin"
            );
            p.document.unwrap().digest().to_owned()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[1], digests[2]);
}

#[test]
fn xml_raw_and_in_json_and_the_token() {
    let a = answers();
    let doc = from_payload(&serde_json::to_vec(&a).unwrap())
        .unwrap()
        .document
        .unwrap();
    let xml = String::from_utf8(doc.bytes().to_vec()).unwrap();
    let raw = from_payload(format!("\n  {xml}").as_bytes()).unwrap();
    assert_eq!(raw.document.unwrap().config(), doc.config());
    let wrapped = json!({ "conferencing_node_config": xml, "nodeboot_token": " t0ken " });
    let p = from_payload(&serde_json::to_vec(&wrapped).unwrap()).unwrap();
    assert_eq!(p.token.as_ref().unwrap().expose(), "t0ken");
    assert!(!format!("{p:?}").contains("t0ken"), "Debug shows no token");
    let only = from_payload(br#"{"nodeboot_token": "abc"}"#).unwrap();
    assert!(only.document.is_none());
    assert_eq!(only.token.unwrap().expose(), "abc");
}

#[test]
fn errors_name_the_json_field() {
    let mut a = answers();
    a["pass"] = json!("pbkdf2_sha256$1000$salt$short");
    let e = from_payload(&serde_json::to_vec(&json!({ "management_node_config": a })).unwrap())
        .unwrap_err();
    assert_eq!(e[0].path, "management_node_config.pass");
    assert_eq!(
        e[0].message,
        "the Django hash's last field is not standard base64 (A-Za-z0-9+/, = padding)"
    );
    let cases: &[(&[u8], &str, &str)] = &[
        (
            br#"{"management_node_config": "not json"}"#,
            "management_node_config",
            "\"management_node_config\" is a string that is not a JSON object: the metadata is not valid JSON: expected ident at line 1 column 2",
        ),
        (
            br#"{"nodeboot_token": 5}"#,
            "nodeboot_token",
            "field \"nodeboot_token\" is a number, not a string",
        ),
        (
            b"{\"nodeboot_token\": \"a\\u0007b\"}",
            "nodeboot_token",
            "field \"nodeboot_token\" is not 1 to 256 printable ASCII characters without spaces",
        ),
        (
            b"hostname: x",
            "",
            "the configuration is neither XML (it would start with \"<\") nor JSON (\"{\")",
        ),
        (
            br#"{"hostnam": "x"}"#,
            "management_node_config.hostnam",
            "unknown field \"hostnam\"",
        ),
    ];
    for (input, path, message) in cases {
        let e = from_payload(input).unwrap_err();
        assert_eq!(e[0].path, *path, "{}", String::from_utf8_lossy(input));
        assert_eq!(e[0].message, *message, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn deep_or_huge_json_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let e = from_payload(deep.as_bytes()).unwrap_err();
    assert!(
        e[0].message.contains("recursion limit exceeded"),
        "{}",
        e[0].message
    );
    let huge = vec![b'{'; nodeboot_config::MAX_FILE_SIZE + 1];
    let e = from_payload(&huge).unwrap_err();
    assert!(e[0].message.contains("over the limit"), "{}", e[0].message);
}

#[test]
fn base64_values() {
    assert_eq!(
        decode_base64("nodeboot.config", "PHg+\nPC94Pg==").unwrap(),
        b"<x></x>"
    );
    let e = decode_base64("nodeboot.config", "<x/>").unwrap_err();
    assert_eq!(e.path, "nodeboot.config");
    assert_eq!(e.message, "\"nodeboot.config\" is not base64");
}
