//! Every invalid fixture is refused with exactly the expected errors: element path, line,
//! column and message (table-driven), and the table covers every file of the directory.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::path::PathBuf;

/// (file, element path, line, column, message); a file with several errors has several rows,
/// in the order they are reported (by line and column).
const EXPECTED: &[(&str, &str, u32, u32, &str)] = &[
    (
        "broadcast-address.xml",
        "/node-config/network/ipv4@address",
        10,
        11,
        "10.0.0.255 is the broadcast address of 10.0.0.0/24",
    ),
    // Columns count characters, not bytes: ü, —, Ø, ï, ö and é are multi-byte in UTF-8.
    (
        "columns-count-characters.xml",
        "/node-config/colour",
        4,
        65,
        "unknown element <colour> in <node-config>",
    ),
    (
        "contact-email-bad.xml",
        "/node-config/contact-email",
        22,
        18,
        "\"ops.example.com\" has no \"@\"",
    ),
    (
        "distributed-database-not-bool.xml",
        "/node-config/distributed-database",
        22,
        25,
        "\"1\" is not a boolean",
    ),
    (
        "dns-hostname.xml",
        "/node-config/network/dns-server",
        15,
        17,
        "DNS server \"dns.example.com\" is not an IP address",
    ),
    (
        "dns-missing.xml",
        "/node-config/network",
        9,
        3,
        "<network> has no <dns-server>",
    ),
    (
        "doctype.xml",
        "",
        2,
        1,
        "a DOCTYPE (and any entity declaration) is not allowed",
    ),
    (
        "domain-label.xml",
        "/node-config/domain",
        7,
        11,
        "domain \"example..com\" has an invalid label \"\"",
    ),
    (
        "domain-long.xml",
        "/node-config/domain",
        7,
        11,
        "domain is 196 characters long, over the limit of 192",
    ),
    (
        "entity-bomb.xml",
        "",
        2,
        1,
        "a DOCTYPE (and any entity declaration) is not allowed",
    ),
    (
        "external-entity.xml",
        "",
        2,
        1,
        "a DOCTYPE (and any entity declaration) is not allowed",
    ),
    (
        "fqdn-long.xml",
        "/node-config/hostname",
        6,
        13,
        "the FQDN hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh.dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.dd is 255 characters long, over the limit of 253",
    ),
    (
        "gateway-outside.xml",
        "/node-config/network/ipv4@gateway",
        10,
        55,
        "the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24 or 192.168.10.0/24)",
    ),
    (
        "gateway-own-address.xml",
        "/node-config/network/ipv4@gateway",
        10,
        55,
        "the default gateway 10.0.0.31 is the node's own address",
    ),
    (
        "hostname-dot.xml",
        "/node-config/hostname",
        6,
        13,
        "hostname \"conf01.example.com\" contains a dot",
    ),
    (
        "hostname-hyphen.xml",
        "/node-config/hostname",
        6,
        13,
        "hostname \"-conf01\" is not an RFC 1123 label",
    ),
    (
        "hostname-long.xml",
        "/node-config/hostname",
        6,
        13,
        "hostname is 64 characters long, over the limit of 63",
    ),
    (
        "incident-reporting-not-bool.xml",
        "/node-config/incident-reporting",
        20,
        23,
        "\"yes\" is not a boolean",
    ),
    (
        "ipv4-bad.xml",
        "/node-config/network/ipv4@address",
        10,
        11,
        "address \"10.0.0.310\" is not a valid IPv4 address",
    ),
    (
        "ipv6-gateway-without-address.xml",
        "/node-config/network/ipv6",
        12,
        5,
        "an IPv6 gateway requires an IPv6 address",
    ),
    (
        "ipv6-no-prefix.xml",
        "/node-config/network/ipv6@address",
        12,
        11,
        "IPv6 address \"2001:db8::31\" has no prefix length",
    ),
    (
        "management-node-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <management-node> (required for conferencing roles)",
    ),
    (
        "many-errors.xml",
        "/node-config/hostname",
        6,
        13,
        "hostname \"conf_01\" is not an RFC 1123 label",
    ),
    (
        "many-errors.xml",
        "/node-config/network/ipv4@gateway",
        10,
        55,
        "the default gateway 10.9.0.1 is not in an attached subnet (10.0.0.0/24 or 192.168.10.0/24)",
    ),
    (
        "many-errors.xml",
        "/node-config/network/dns-server",
        15,
        17,
        "DNS server \"ns1\" is not an IP address",
    ),
    (
        "md5-web-password.xml",
        "/node-config/web-admin@password-hash",
        19,
        31,
        "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
    ),
    (
        "name-empty.xml",
        "/node-config/name",
        4,
        3,
        "the name is empty",
    ),
    (
        "netmask-noncontiguous.xml",
        "/node-config/network/ipv4@netmask",
        10,
        31,
        "netmask 255.0.255.0 is not contiguous",
    ),
    (
        "network-address.xml",
        "/node-config/network/ipv4@address",
        10,
        11,
        "10.0.0.0 is the network address of 10.0.0.0/24",
    ),
    (
        "no-schema.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no \"schema\" attribute",
    ),
    (
        "not-utf8.xml",
        "",
        5,
        35,
        "the file is not valid UTF-8 (invalid byte at offset 147)",
    ),
    (
        "ntp-bad.xml",
        "/node-config/network/ntp-server",
        16,
        17,
        "\"pool_ntp.org\" is neither an IP address nor a valid host name",
    ),
    (
        "ntp-missing.xml",
        "/node-config/network",
        9,
        3,
        "<network> has no <ntp-server>",
    ),
    (
        "plain-password.xml",
        "/node-config/ssh/password-hash",
        19,
        20,
        "the password is not a SHA-512-crypt hash (it does not start with \"$6$\")",
    ),
    (
        "processing-instruction.xml",
        "",
        2,
        1,
        "processing instruction <?xml-stylesheet ...?> is not allowed",
    ),
    (
        "repeated-attribute.xml",
        "/node-config/network/ipv4@netmask",
        10,
        55,
        "attribute \"netmask\" appears more than once",
    ),
    (
        "repeated-element.xml",
        "/node-config/hostname",
        7,
        3,
        "element <hostname> appears more than once",
    ),
    (
        "role-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <role>",
    ),
    (
        "role-unknown.xml",
        "/node-config/role",
        3,
        9,
        "role \"conferencing\" is not known",
    ),
    (
        "route-gateway-off-subnet.xml",
        "/node-config/network/route[1]@gateway",
        13,
        55,
        "the route gateway 192.168.11.1 is not in an attached subnet (10.0.0.0/24 or 192.168.10.0/24)",
    ),
    (
        "route-host-bits.xml",
        "/node-config/network/route[1]@destination",
        13,
        25,
        "destination 192.168.50.7/24 has host bits set",
    ),
    (
        "route-no-name.xml",
        "/node-config/network/route[1]",
        13,
        5,
        "<route> has no \"name\" attribute",
    ),
    (
        "route-not-cidr.xml",
        "/node-config/network/route[1]@destination",
        13,
        25,
        "destination \"192.168.50.0\" is not an IPv4 network in CIDR form",
    ),
    (
        "schema-2.xml",
        "/node-config@schema",
        2,
        14,
        "schema \"2\" is not supported",
    ),
    (
        "second-root.xml",
        "/node-config",
        25,
        1,
        "a second root element is not allowed",
    ),
    (
        "ssh-enabled-bad.xml",
        "/node-config/ssh@enabled",
        18,
        8,
        "enabled=\"yes\" is not known",
    ),
    (
        "ssh-key-bad.xml",
        "/node-config/ssh/authorized-key",
        20,
        21,
        "not an OpenSSH public key: Base64 encoding error: invalid Base64 encoding",
    ),
    (
        "ssh-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <ssh>",
    ),
    (
        "static-nat-multicast.xml",
        "/node-config/network/static-nat@ipv4",
        10,
        17,
        "static NAT address 224.0.0.5 is not a unicast address",
    ),
    (
        "subnets-overlap.xml",
        "/node-config/network/secondary-ipv4",
        11,
        5,
        "the eth1 subnet 10.0.0.0/16 overlaps the eth0 subnet 10.0.0.0/24",
    ),
    (
        "subnets-overlap.xml",
        "/node-config/network/route[1]@gateway",
        13,
        55,
        "the route gateway 192.168.10.1 is not in an attached subnet (10.0.0.0/24 or 10.0.0.0/16)",
    ),
    (
        "system-location-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <system-location>",
    ),
    (
        "system-location-on-management.xml",
        "/node-config/system-location",
        8,
        3,
        "<system-location> is not allowed for the management role",
    ),
    (
        "text-in-network.xml",
        "/node-config/network",
        10,
        5,
        "text is not allowed directly inside <network>",
    ),
    (
        "unclosed.xml",
        "/node-config/network",
        24,
        1,
        "the file is not well-formed XML: ill-formed document: expected `</network>`, but `</node-config>` was found",
    ),
    (
        "undefined-entity.xml",
        "/node-config/name",
        4,
        9,
        "reference &xxe; is not allowed",
    ),
    (
        "unknown-attribute.xml",
        "/node-config/network/ipv4@mtu",
        10,
        11,
        "unknown attribute \"mtu\" on <ipv4>",
    ),
    (
        "unknown-element.xml",
        "/node-config/colour",
        22,
        3,
        "unknown element <colour> in <node-config>",
    ),
    (
        "usage-statistics-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <usage-statistics>",
    ),
    (
        "username-bad.xml",
        "/node-config/web-admin@username",
        19,
        14,
        "user name \"ad min\" has a character that is not allowed",
    ),
    (
        "web-admin-missing.xml",
        "/node-config",
        2,
        1,
        "<node-config> has no <web-admin> (required for the management role)",
    ),
    (
        "web-admin-on-transcoding.xml",
        "/node-config/web-admin",
        23,
        3,
        "<web-admin> is not allowed for the transcoding role",
    ),
    (
        "wrong-root.xml",
        "/config",
        2,
        1,
        "the root element is <config>, not <node-config>",
    ),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/invalid")
}

#[test]
fn invalid_fixtures_report_exactly_the_expected_errors() {
    let mut by_file: BTreeMap<&str, Vec<(String, u32, u32, String)>> = BTreeMap::new();
    for (file, path, line, col, msg) in EXPECTED {
        by_file
            .entry(file)
            .or_default()
            .push((path.to_string(), *line, *col, msg.to_string()));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    on_disk.sort();
    let in_table: Vec<String> = by_file.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        on_disk, in_table,
        "every invalid fixture has a row, every row a file"
    );
    assert!(on_disk.len() >= 40, "at least 40 invalid fixtures");

    let mut failures = Vec::new();
    for (file, want) in &by_file {
        let bytes = std::fs::read(dir().join(file)).unwrap();
        let got: Vec<(String, u32, u32, String)> = match nodeboot_config::parse(&bytes) {
            Ok(_) => {
                failures.push(format!("{file}: accepted"));
                continue;
            }
            Err(diags) => diags
                .into_iter()
                .map(|d| {
                    assert_eq!(d.severity, nodeboot_config::Severity::Error);
                    assert!(d.help.is_some(), "{file}: every error says how to fix it");
                    (d.path, d.line, d.column, d.message)
                })
                .collect(),
        };
        if &got != want {
            failures.push(format!("{file}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
