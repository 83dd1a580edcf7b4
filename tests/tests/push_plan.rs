//! `nodeboot push --plan` against real `nodeboot-agent serve` processes on loopback
//! (temporary node images): one node's files and diffs, secrets masked, in the table and in
//! `--json` (read back with the wire contract's type); a small inventory's counts of which
//! files would change on how many nodes; and no node's root changed by a byte.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::collections::BTreeMap;

use common::{Agent, nodeboot, push_on_contract, push_through_reboot_on_contract};
use nodeboot_config::api::{FileChange, PlanReply};
use nodeboot_tests::fixtures::{config_xml, write, write_private};
use nodeboot_tests::run::{json, shown};

/// The fixture's password hash text (after its salt): never printed.
const HASH_TEXT: &str = "D911Z.xpU";

/// Every file under the agent's root with its content.
fn contents(agent: &Agent) -> BTreeMap<String, Vec<u8>> {
    agent
        .files()
        .into_iter()
        .map(|f| {
            let content = std::fs::read(agent.root.path().join(&f)).unwrap();
            (f, content)
        })
        .collect()
}

#[test]
fn plan_one_node_shows_its_files_and_diffs_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start();
    let xml = config_xml(1);
    let file = write(dir.path(), "conf001.xml", &xml);
    let node = agent.addr.to_string();
    let fingerprint = agent.fingerprint();
    let before = contents(&agent);

    let plan = |extra: &[&str]| {
        let args = [
            "push",
            &node,
            &file,
            "--fingerprint",
            &fingerprint,
            "--plan",
        ];
        nodeboot(&[&args[..], extra].concat())
    };
    let out = plan(&[]);
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !shown(&out).contains(HASH_TEXT),
        "the hash is shown: {text}"
    );
    assert!(text.contains("planned"), "{text}");
    assert!(text.contains("  changed   /etc/hostname\n"), "{text}");
    assert!(text.contains("    +conf001\n"), "{text}");
    assert!(text.contains("admin:***:"), "{text}");
    assert!(text.contains("across 1 planned node(s):"), "{text}");
    assert!(text.contains("  /etc/hostname: 1 node changed\n"), "{text}");

    let out = plan(&["--json"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(!shown(&out).contains(HASH_TEXT));
    let report = json(&out);
    let n = &report["nodes"][0];
    assert_eq!(n["result"], "planned", "{}", shown(&out));
    let plan: PlanReply = serde_json::from_value(n["plan"].clone()).unwrap();
    assert_eq!(plan.digest, nodeboot_config::digest(xml.as_bytes()));
    let hostname = plan
        .files
        .iter()
        .find(|f| f.path == "/etc/hostname")
        .unwrap();
    assert_eq!(hostname.change, FileChange::Changed);
    assert!(hostname.diff.as_deref().unwrap().contains("+conf001"));
    assert!(
        report["plan_summary"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "/etc/hostname" && c["change"] == "changed" && c["nodes"] == 1),
        "{report}"
    );

    assert!(before == contents(&agent), "a plan changed the node's root");
    let status = nodeboot(&["status", &node, "--fingerprint", &fingerprint, "--json"]);
    assert_eq!(json(&status)["nodes"][0]["state"], "unconfigured");
}

#[test]
fn plan_an_inventory_counts_the_nodes_each_file_would_change_on() {
    const N: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let agents: Vec<Agent> = (0..N).map(|_| Agent::start()).collect();
    let mut inventory = String::new();
    for (i, agent) in agents.iter().enumerate() {
        write(dir.path(), &format!("n{i}.xml"), &config_xml(i as u32));
        inventory.push_str(&format!(
            "[[node]]\nname = \"n{i:02}\"\naddress = \"127.0.0.1\"\nport = {}\n\
             fingerprint = \"{}\"\nfile = \"n{i}.xml\"\n\n",
            agent.addr.port(),
            agent.fingerprint()
        ));
    }
    let inv = write(dir.path(), "fleet.toml", &inventory);
    // Node 2 already runs its file: its plan is "unchanged" (the node answers 409 and its
    // status names our digest).
    let out = nodeboot(&["push", "--inventory", &inv, "--only", "n02"]);
    assert!(out.status.success(), "{}", shown(&out));
    agents[2].wait_applied();
    let before: Vec<_> = agents.iter().map(contents).collect();

    let out = nodeboot(&["push", "--inventory", &inv, "--plan"]);
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!shown(&out).contains(HASH_TEXT));
    assert!(text.contains("across 2 planned node(s):"), "{text}");
    assert!(
        text.contains("  /etc/hostname: 2 nodes changed\n"),
        "{text}"
    );
    assert!(text.contains("3 node(s) in"), "{text}");
    assert!(text.contains("2 planned, 1 unchanged"), "{text}");

    let out = nodeboot(&["push", "--inventory", &inv, "--plan", "--json"]);
    assert!(out.status.success(), "{}", shown(&out));
    let report = json(&out);
    let results: Vec<&str> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["planned", "planned", "unchanged"]);
    let hostname = report["plan_summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "/etc/hostname")
        .unwrap()
        .clone();
    assert_eq!(hostname["nodes"], 2, "{report}");
    let after: Vec<_> = agents.iter().map(contents).collect();
    assert!(before == after, "a plan changed a node's root");
}

/// The contract test of `--plan`: every kind of answer a real agent gives the plan request
/// (the plan, refused by token, rejected with findings, refused when configured with our file
/// and with another) is read by `nodeboot` as the contract's types; none is off the contract.
#[test]
fn every_plan_answer_of_a_real_agent_is_read_as_the_contract_types() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_private(dir.path(), "t.token", "right-token\n");
    let wrong = write_private(dir.path(), "w.token", "wrong-token\n");
    let mut agent = Agent::start_with(&["--token-file", &token], true);
    let good = write(dir.path(), "good.xml", &config_xml(70));
    let other = write(dir.path(), "other.xml", &config_xml(72));
    let bad = config_xml(71).replace("<hostname>conf071</hostname>", "<hostname>-bad-</hostname>");
    let bad = write(dir.path(), "bad.xml", &bad);

    let (n, text) = push_on_contract(&agent, &good, &token, &["--plan"]);
    assert_eq!(n["result"], "planned", "{text}");
    let plan: PlanReply = serde_json::from_value(n["plan"].clone()).unwrap();
    assert!(plan.files.iter().any(|f| f.change == FileChange::Created));
    let (n, text) = push_on_contract(&agent, &good, &wrong, &["--plan"]);
    assert_eq!(n["result"], "rejected", "{text}");
    assert!(
        n["error"].as_str().unwrap().contains("bootstrap token"),
        "{text}"
    );
    let (n, text) = push_on_contract(&agent, &bad, &token, &["--plan", "--no-validate"]);
    assert_eq!(n["result"], "rejected", "{text}");
    assert_eq!(n["errors"][0]["path"], "/node-config/hostname", "{text}");
    let out = push_through_reboot_on_contract(
        &mut agent,
        &good,
        &token,
        &nodeboot_config::digest(config_xml(70).as_bytes()),
        common::AfterReboot::Checks(nodeboot_config::api::HealthPhase::Healthy),
    );
    let text = shown(&out);
    assert_eq!(json(&out)["nodes"][0]["result"], "healthy", "{text}");
    let (n, text) = push_on_contract(&agent, &good, &token, &["--plan"]);
    assert_eq!(n["result"], "unchanged", "{text}");
    let (n, text) = push_on_contract(&agent, &other, &token, &["--plan"]);
    assert_eq!(n["result"], "failed", "{text}");
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .starts_with("the node refused (409 configured): "),
        "{text}"
    );
}
