//! `nodeboot push` and `nodeboot status` against real `nodeboot-agent serve` processes on
//! loopback (temporary roots, no reboot): one node, a fleet of 24 from an inventory, a node
//! that starts late, a node that rejects its file, a wrong fingerprint, an unknown node
//! refused, trust on first use when asked for, and the JSON output.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::process::{Command, Stdio};

use common::{
    AfterReboot, Agent, OFF_CONTRACT, binary, free_port, nodeboot, push_on_contract,
    push_through_reboot_on_contract, push_through_reboots,
};
use nodeboot_config::api::HealthPhase;
use nodeboot_tests::fixtures::{config_xml, write, write_private};
use nodeboot_tests::run::{json, shown};

/// The node's own view, through `nodeboot status`.
fn status_of(agent: &Agent) -> serde_json::Value {
    let out = nodeboot(&[
        "status",
        &agent.addr.to_string(),
        "--fingerprint",
        &agent.fingerprint(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    json(&out)["nodes"][0].clone()
}

/// Every inventory node's state, through `nodeboot status --inventory`.
fn fleet_states(inventory: &str) -> Vec<String> {
    let out = nodeboot(&["status", "--inventory", inventory, "--json"]);
    assert!(out.status.success(), "{}", shown(&out));
    json(&out)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_one_node_and_wait_until_its_first_boot_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start();
    let xml = config_xml(1);
    let file = write(dir.path(), "conf001.xml", &xml);
    let node = agent.addr.to_string();
    let fingerprint = agent.fingerprint();
    let digest = nodeboot_config::digest(xml.as_bytes());
    let out = push_through_reboots(
        &[
            "push",
            &node,
            &file,
            "--fingerprint",
            &fingerprint,
            "--wait",
            "--wait-timeout",
            "60",
            "--json",
        ],
        &mut [&mut agent],
        std::slice::from_ref(&digest),
        AfterReboot::Checks(HealthPhase::Healthy),
    );
    let report = json(&out);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(report["ok"], true);
    let n = &report["nodes"][0];
    assert_eq!(n["node"], node.as_str());
    assert_eq!(n["result"], "healthy", "{}", shown(&out));
    assert_eq!(n["verdict"], "healthy: 2 checks passed", "{}", shown(&out));
    assert_eq!(n["checks"].as_array().unwrap().len(), 2);
    assert_eq!(n["state"], "configured");
    assert_eq!(n["attempts"], 1);
    assert_eq!(n["fingerprint"], fingerprint.as_str());
    assert_eq!(n["digest"], digest.as_str());
    // The node applied it: its files are written under its root.
    let hostname = std::fs::read_to_string(agent.root.path().join("etc/hostname")).unwrap();
    assert_eq!(hostname.trim(), "conf001");
    let status = status_of(&agent);
    assert_eq!(status["state"], "configured");
    assert_eq!(status["digest"], digest.as_str());
}

#[test]
fn push_an_inventory_of_24_nodes_one_rejecting_its_file() {
    const N: usize = 24;
    const REJECTING: usize = 7;
    let dir = tempfile::tempdir().unwrap();
    // Node 0 only takes uploads that carry its bootstrap token.
    let token = write_private(dir.path(), "n00.token", "fleet-t0ken-secret\n");
    let mut agents = vec![Agent::start_with(&["--token-file", &token], true)];
    let mut digests = Vec::new();
    agents.extend((1..N).map(|_| Agent::start()));
    let mut inventory = String::new();
    for (i, agent) in agents.iter().enumerate() {
        let mut xml = config_xml(i as u32);
        if i == REJECTING {
            // Valid XML, invalid configuration: the gateway lies in no subnet of the node.
            xml = xml.replace("gateway=\"10.0.0.1\"", "gateway=\"192.0.2.1\"");
        }
        write(dir.path(), &format!("n{i}.xml"), &xml);
        digests.push(nodeboot_config::digest(xml.as_bytes()));
        inventory.push_str(&format!(
            "[[node]]\nname = \"n{i:02}\"\naddress = \"127.0.0.1\"\nport = {}\n\
             fingerprint = \"{}\"\nfile = \"n{i}.xml\"\n{}\n",
            agent.addr.port(),
            agent.fingerprint(),
            if i == 0 {
                "token_file = \"n00.token\"\n"
            } else {
                ""
            }
        ));
    }
    let inv = write(dir.path(), "fleet.toml", &inventory);

    // Checked locally first: the invalid file stops everything.
    let out = nodeboot(&["push", "--inventory", &inv, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(shown(&out).contains("nothing was sent"), "{}", shown(&out));
    assert_eq!(fleet_states(&inv), vec!["unconfigured"; N]);

    // Sent as they are, the node refuses its file and says why; the others apply, reboot
    // and come back healthy.
    let (mut rebooting, mut sent): (Vec<&mut Agent>, Vec<String>) = (Vec::new(), Vec::new());
    for (i, (agent, digest)) in agents.iter_mut().zip(&digests).enumerate() {
        if i != REJECTING {
            rebooting.push(agent);
            sent.push(digest.clone());
        }
    }
    let out = push_through_reboots(
        &[
            "push",
            "--inventory",
            &inv,
            "--no-validate",
            "--wait",
            "--json",
        ],
        &mut rebooting,
        &sent,
        AfterReboot::Checks(HealthPhase::Healthy),
    );
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(!shown(&out).contains("t0ken"), "the token is never printed");
    let report = json(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["succeeded"], N - 1);
    assert_eq!(report["failed"], 1);
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), N);
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["node"], format!("n{i:02}").as_str());
        if i == REJECTING {
            assert_eq!(n["result"], "rejected", "{n}");
            assert!(n["error"].as_str().unwrap().contains("422"), "{n}");
            let errors = n["errors"].as_array().unwrap();
            assert!(!errors.is_empty(), "{n}");
            assert_eq!(errors[0]["line"], 9, "{n}");
            assert!(errors[0]["path"].as_str().unwrap().contains("ipv4"), "{n}");
        } else {
            assert_eq!(n["result"], "healthy", "{n}");
        }
    }
    let mut want = vec!["configured"; N];
    want[REJECTING] = "unconfigured";
    assert_eq!(fleet_states(&inv), want);

    // The table shows the same, and the node's errors with their line.
    let out = nodeboot(&[
        "push",
        "--inventory",
        &inv,
        "--no-validate",
        "--only",
        "n07",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text.starts_with("NODE "), "{text}");
    assert!(text.contains("n07 (127.0.0.1:"), "{text}");
    assert!(text.contains("  9:"), "{text}");
    assert!(text.contains("1 rejected — 1 FAILED"), "{text}");
}

#[test]
fn a_node_that_starts_late_is_retried_and_trusted_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let file = write(dir.path(), "late.xml", &config_xml(30));
    let known = dir.path().join("known_nodes");
    let push = Command::new(binary("nodeboot"))
        .args([
            "push",
            &addr.to_string(),
            &file,
            "--timeout",
            "60",
            "--json",
            "--trust-first-use",
            "--known-nodes",
        ])
        .arg(&known)
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut agent = Agent::spawn(addr);
    agent.wait_listening();
    let out = push.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let n = &json(&out)["nodes"][0];
    assert_eq!(n["result"], "accepted", "{}", shown(&out));
    assert!(n["attempts"].as_u64().unwrap() > 1, "{n}");
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("{addr} {}\n", agent.fingerprint())),
        "{recorded}"
    );
}

#[test]
fn a_wrong_fingerprint_is_refused_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start();
    let before = agent.files();
    let file = write(dir.path(), "c.xml", &config_xml(40));
    let wrong = format!("SHA256:{}", ["00"; 32].join(":"));
    let node = agent.addr.to_string();
    let out = nodeboot(&["push", &node, &file, "--fingerprint", &wrong]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("untrusted"), "{text}");
    assert!(
        text.contains(&format!(
            "the node presents certificate {}",
            agent.fingerprint()
        )),
        "the fingerprint seen is printed: {text}"
    );
    assert!(text.contains("nothing was sent"), "{text}");
    assert_eq!(
        agent.files(),
        before,
        "nothing may change under the node's root"
    );
    assert_eq!(status_of(&agent)["state"], "unconfigured");
    assert!(!agent.log().contains("POST"), "{}", agent.log());
}

#[test]
fn first_use_records_the_certificate_then_refuses_a_different_one() {
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_nodes");
    let known_s = known.to_str().unwrap().to_string();
    let first = Agent::start();
    let addr = first.addr;
    // Unknown: refused, nothing recorded, the fingerprint and the fix shown.
    let out = nodeboot(&["status", &addr.to_string(), "--known-nodes", &known_s]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "REFUSED: unknown node: it presents certificate {}",
            first.fingerprint()
        )),
        "{text}"
    );
    assert!(text.contains("--trust-first-use"), "{text}");
    assert!(!known.exists());
    let file = write(dir.path(), "c.xml", &config_xml(50));
    let before = first.files();
    let out = nodeboot(&["push", &addr.to_string(), &file, "--known-nodes", &known_s]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(shown(&out).contains("nothing was sent"), "{}", shown(&out));
    assert_eq!(
        first.files(),
        before,
        "nothing may change under the node's root"
    );
    assert!(!first.log().contains("POST"), "{}", first.log());

    // Trusted on first use when told: recorded.
    let out = nodeboot(&[
        "status",
        &addr.to_string(),
        "--known-nodes",
        &known_s,
        "--trust-first-use",
    ]);
    let text = shown(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("first contact"), "{text}");
    assert!(text.contains(&first.fingerprint()), "{text}");
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("{addr} {}\n", first.fingerprint())),
        "{recorded}"
    );

    // Same node again: known, trusted without the flag.
    let out = nodeboot(&["push", &addr.to_string(), &file, "--known-nodes", &known_s]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(!shown(&out).contains("first contact"), "{}", shown(&out));
    drop(first);

    // Another agent (a new certificate) on the same address: refused, nothing sent.
    let mut second = Agent::spawn(addr);
    second.wait_listening();
    let before = second.files();
    let out = nodeboot(&["push", &addr.to_string(), &file, "--known-nodes", &known_s]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&second.fingerprint()), "{text}");
    assert!(text.contains("recorded in"), "{text}");
    assert!(text.contains("nothing was sent"), "{text}");
    assert_eq!(second.files(), before);
    assert_eq!(std::fs::read_to_string(&known).unwrap(), recorded);
}

#[test]
fn a_node_whose_apply_fails_is_reported_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // An empty root is not a node image: the agent accepts the file, then its apply fails.
    let agent = Agent::start_with(&[], false);
    let file = write(dir.path(), "c.xml", &config_xml(60));
    let node = agent.addr.to_string();
    let fp = agent.fingerprint();
    let out = nodeboot(&["push", &node, &file, "--fingerprint", &fp, "--wait"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("failed"), "{text}");
    assert!(
        text.contains(
            "the node reports failed: the configuration could not be applied: \
             the node image lacks something the configuration needs"
        ),
        "{text}"
    );
}

#[test]
fn a_wrong_token_is_refused_by_the_node_without_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_private(dir.path(), "good.token", "right-token\n");
    let bad = write_private(dir.path(), "bad.token", "wrong-token\n");
    let agent = Agent::start_with(&["--token-file", &good], true);
    let file = write(dir.path(), "c.xml", &config_xml(61));
    let node = agent.addr.to_string();
    let fp = agent.fingerprint();
    let out = nodeboot(&[
        "push",
        &node,
        &file,
        "--fingerprint",
        &fp,
        "--token-file",
        &bad,
        "--json",
    ]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("wrong-token"), "{text}");
    let n = &json(&out)["nodes"][0];
    assert_eq!(n["result"], "rejected", "{text}");
    assert_eq!(n["attempts"], 1, "{text}");
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .contains("check the bootstrap token"),
        "{text}"
    );
    assert_eq!(status_of(&agent)["state"], "unconfigured");
    let out = nodeboot(&[
        "push",
        &node,
        &file,
        "--fingerprint",
        &fp,
        "--token-file",
        &good,
    ]);
    assert!(out.status.success(), "{}", shown(&out));
}

#[test]
fn a_node_given_by_generate_parameters_is_generated_checked_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start();
    let inventory = format!(
        r#"[defaults]
role = "transcoding"
domain = "example.com"
netmask = "255.255.255.0"
gateway = "10.0.0.1"
dns = ["10.0.0.2"]
ntp = ["10.0.0.3"]
system_location = "London"
management_node = "10.0.0.10"
password_hash = "$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/"

[[node]]
name = "gen01"
address = "127.0.0.1"
port = {}
fingerprint = "{}"
hostname = "gen01"
ip = "10.0.0.41"
"#,
        agent.addr.port(),
        agent.fingerprint()
    );
    let inv = write(dir.path(), "fleet.toml", &inventory);
    let child = common::nodeboot_spawn(&["push", "--inventory", &inv, "--wait", "--json"]);
    // The file is generated: its digest is the one the node applied.
    agent.wait_applied();
    let record = agent.root.path().join("var/lib/nodeboot/configured.json");
    let applied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let digest = applied["digest"].as_str().unwrap().to_string();
    agent.reboot_after_apply(&digest, AfterReboot::Checks(HealthPhase::Healthy));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        json(&out)["nodes"][0]["result"],
        "healthy",
        "{}",
        shown(&out)
    );
    let hostname = std::fs::read_to_string(agent.root.path().join("etc/hostname")).unwrap();
    assert_eq!(hostname.trim(), "gen01");
}

/// The contract test: every kind of answer a real agent gives `nodeboot` (accepted, rejected,
/// refused by token, refused when configured, the status in each state) is read as the wire
/// contract's types; none is reported as off the contract.
#[test]
fn every_answer_of_a_real_agent_is_read_as_the_contract_types() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_private(dir.path(), "t.token", "right-token\n");
    let wrong = write_private(dir.path(), "w.token", "wrong-token\n");
    let mut agent = Agent::start_with(&["--token-file", &token], true);
    let good = write(dir.path(), "good.xml", &config_xml(70));
    let bad = config_xml(71).replace("<hostname>conf071</hostname>", "<hostname>-bad-</hostname>");
    let bad = write(dir.path(), "bad.xml", &bad);

    // 401 with a refusal
    let (n, text) = push_on_contract(&agent, &good, &wrong, &[]);
    assert_eq!(n["result"], "rejected", "{text}");
    assert!(
        n["errors"][0]["message"].as_str().unwrap().len() > 3,
        "{text}"
    );
    // 422 with the findings, each with its line and element
    let (n, text) = push_on_contract(&agent, &bad, &token, &["--no-validate"]);
    assert_eq!(n["result"], "rejected", "{text}");
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .starts_with("the node refused the file (422 Unprocessable Entity, "),
        "{text}"
    );
    assert_eq!(n["errors"][0]["path"], "/node-config/hostname", "{text}");
    assert!(n["errors"][0]["line"].as_u64().unwrap() > 0, "{text}");
    // the status after a rejection: unconfigured, the findings listed
    let s = status_of_with_token(&agent, &token);
    assert_eq!(s["state"], "unconfigured", "{s}");
    assert!(!s["errors"].as_array().unwrap().is_empty(), "{s}");
    // 202, followed through the reboot until the first boot's status (the read-only window)
    // says configured with our digest and its checks passed
    let good_digest = nodeboot_config::digest(config_xml(70).as_bytes());
    let out = push_through_reboot_on_contract(
        &mut agent,
        &good,
        &token,
        &good_digest,
        AfterReboot::Checks(HealthPhase::Healthy),
    );
    let text = shown(&out);
    let n = &json(&out)["nodes"][0];
    assert_eq!(n["result"], "healthy", "{text}");
    assert_eq!(n["state"], "configured", "{text}");
    assert_eq!(n["checks"][1]["kind"], "gateway", "{text}");
    // In the window, 409 with a refusal, then the status: the same file is unchanged,
    // another is refused
    let (n, text) = push_on_contract(&agent, &good, &token, &[]);
    assert_eq!(n["result"], "unchanged", "{text}");
    let (n, text) = push_on_contract(&agent, &bad, &token, &["--no-validate"]);
    assert_eq!(n["result"], "failed", "{text}");
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .starts_with("the node refused (409 configured): "),
        "{text}"
    );
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .contains("served read-only until"),
        "{text}"
    );
    let s = status_of_with_token(&agent, &token);
    assert_eq!(s["result"], "answered", "{s}");
    assert_eq!(s["state"], "configured", "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"), "{s}");

    // A first boot whose checks failed (kept configured): unhealthy, with the check.
    let mut sick = Agent::start_with(&["--token-file", &token], true);
    let out = push_through_reboot_on_contract(
        &mut sick,
        &good,
        &token,
        &good_digest,
        AfterReboot::Checks(HealthPhase::Unhealthy),
    );
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let n = &json(&out)["nodes"][0];
    assert_eq!(n["result"], "unhealthy", "{text}");
    assert_eq!(
        n["verdict"],
        format!("unhealthy: {}", common::GATEWAY_FAILED).as_str(),
        "{text}"
    );

    // A node that rolled the file back: rolled back with the reason, then it accepts a
    // corrected file.
    let mut undone = Agent::start_with(&["--token-file", &token], true);
    let out = push_through_reboot_on_contract(
        &mut undone,
        &good,
        &token,
        &good_digest,
        AfterReboot::RolledBack,
    );
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let n = &json(&out)["nodes"][0];
    assert_eq!(n["result"], "rolled-back", "{text}");
    assert_eq!(
        n["verdict"],
        format!("rolled back: {}", common::GATEWAY_FAILED).as_str(),
        "{text}"
    );
    assert_eq!(n["checks"].as_array().unwrap().len(), 2, "{text}");
    let s = status_of_with_token(&undone, &token);
    assert_eq!(s["state"], "unconfigured", "{s}");
    let other = write(dir.path(), "other.xml", &config_xml(72));
    let (n, text) = push_on_contract(&undone, &other, &token, &[]);
    assert_eq!(n["result"], "accepted", "{text}");
}

/// `nodeboot status --json` of one node with a token file.
fn status_of_with_token(agent: &Agent, token: &str) -> serde_json::Value {
    let out = nodeboot(&[
        "status",
        &agent.addr.to_string(),
        "--fingerprint",
        &agent.fingerprint(),
        "--token-file",
        token,
        "--json",
    ]);
    assert!(!shown(&out).contains(OFF_CONTRACT), "{}", shown(&out));
    json(&out)["nodes"][0].clone()
}
