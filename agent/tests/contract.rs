//! The wire contract against the real endpoint: every JSON reply the agent gives over real
//! HTTPS (202, 422, each refusal code a client can provoke, the status in each state, with
//! bounded findings) is read with the contract's types (`nodeboot_config::api`), the ones
//! `nodeboot push` reads with, and strictly: deserialized then serialized again, it must be the
//! very JSON the agent sent. A field renamed, added or dropped on one side fails here, not in
//! an operator's run.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use std::time::Duration;

use https::{Options, Reply, invalid_xml, start, valid_xml};
use nodeboot_agent::server::access::Access;
use nodeboot_agent::server::limits::Limits;
use nodeboot_config::Secret;
use nodeboot_config::api::{
    AttemptOutcome, BOOTSTRAP_PATH, NodeState, PAGE_PATH, STATUS_PATH, StatusReport, UploadReply,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `body` read as a `T`, strictly: the typed value serializes back to exactly the JSON sent
/// (no field the type lacks, none it has missing, no value changed on the way).
fn strict<T: DeserializeOwned + Serialize>(what: &str, body: &str) -> T {
    let sent: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    let typed: T = serde_json::from_value(sent.clone())
        .unwrap_or_else(|e| panic!("{what}: does not match the contract ({e}): {body}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(again, sent, "{what}: the reply and the contract differ");
    typed
}

/// The reply to an upload (or any refusal), checked against the contract and its code.
fn reply(what: &str, r: &Reply) -> UploadReply {
    assert_eq!(r.header("content-type"), "application/json", "{what}");
    let typed: UploadReply = strict(what, &r.body);
    let code = match &typed {
        UploadReply::Accepted(_) => 202,
        UploadReply::Rejected(_) => 422,
        UploadReply::Refused(refusal) => refusal.code,
    };
    assert_eq!(code, r.status, "{what}: the body's code is the status sent");
    typed
}

fn refused(what: &str, r: &Reply, code: u16) {
    assert_eq!(r.status, code, "{what}: {}", r.body);
    match reply(what, r) {
        UploadReply::Refused(refusal) => assert!(!refusal.error.is_empty(), "{what}"),
        other => panic!("{what}: {other:?}"),
    }
}

async fn status(client: &https::Client) -> StatusReport {
    let r = client.get(STATUS_PATH, "*/*").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    strict("status", &r.body)
}

async fn wait_for(client: &https::Client, state: NodeState) -> StatusReport {
    for _ in 0..2000 {
        let s = status(client).await;
        if s.state == state {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the node never reached {state}: {:?}", status(client).await);
}

#[tokio::test]
async fn every_state_and_the_upload_replies_match_the_contract() {
    let mut server = start(Options {
        gated: true,
        ..Options::default()
    })
    .await;
    let client = server.client();

    let s = status(&client).await;
    assert_eq!((s.state, s.last_attempt), (NodeState::Unconfigured, None));
    assert_eq!(s.fingerprint, server.fingerprint);

    // 422, then the status with the findings kept beside a `rejected` attempt.
    let r = client.post_xml(&invalid_xml(), &[]).await;
    let UploadReply::Rejected(rejected) = reply("422", &r) else {
        panic!("{}", r.body)
    };
    assert_eq!((rejected.total, rejected.errors.len()), (2, 2));
    let s = status(&client).await;
    assert_eq!(s.state, NodeState::Unconfigured);
    assert_eq!(s.errors, rejected.errors);
    assert!(matches!(
        s.last_attempt.unwrap().outcome,
        AttemptOutcome::Rejected { total: 2 }
    ));

    // 202 (held before its apply): the status says applying, a second upload gets 409.
    let xml = valid_xml();
    let digest = nodeboot_config::digest(&xml);
    let r = client.post_xml(&xml, &[]).await;
    let UploadReply::Accepted(accepted) = reply("202", &r) else {
        panic!("{}", r.body)
    };
    assert_eq!(accepted.digest, digest);
    let s = status(&client).await;
    assert_eq!(s.state, NodeState::Applying);
    assert_eq!(s.digest.as_deref(), Some(digest.as_str()));
    assert!(matches!(
        s.last_attempt.unwrap().outcome,
        AttemptOutcome::Accepted { .. }
    ));
    refused("409 busy", &client.post_xml(&xml, &[]).await, 409);

    // Configured: the status with an `applied` attempt, then a `refused` one after a 409.
    server.open_gate();
    let s = wait_for(&client, NodeState::Configured).await;
    assert!(matches!(
        s.last_attempt.unwrap().outcome,
        AttemptOutcome::Applied { .. }
    ));
    refused("409 configured", &client.post_xml(&xml, &[]).await, 409);
    let s = status(&client).await;
    assert!(matches!(
        s.last_attempt.unwrap().outcome,
        AttemptOutcome::Refused { code: 409, .. }
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_failed_apply_and_bounded_findings_match_the_contract() {
    let mut server = start(Options {
        bare_root: true,
        ..Options::default()
    })
    .await;
    let client = server.client();
    // Thousands of findings: the 422 and the status carry the first ones and a count.
    let mut flood = b"<node-config schema=\"1\">".to_vec();
    flood.extend_from_slice(&b"<x/>".repeat(nodeboot_config::MAX_ELEMENTS - 8));
    flood.extend_from_slice(b"</node-config>");
    let r = client.post_xml(&flood, &[]).await;
    let UploadReply::Rejected(rejected) = reply("422 flood", &r) else {
        panic!("{}", r.body)
    };
    assert!(
        rejected.errors.len() <= 101 && rejected.total > 21,
        "{}",
        r.body.len()
    );
    let s = status(&client).await;
    let last = s.errors.last().unwrap();
    assert!(last.message.ends_with("not shown"), "{last:?}");
    assert_eq!(last.line, 0);

    // An apply that fails (an empty root: no `admin` account): `failed` with its message.
    let r = client.post_xml(&valid_xml(), &[]).await;
    reply("202", &r);
    let s = wait_for(&client, NodeState::Failed).await;
    let message = s.error.clone().unwrap();
    assert!(message.starts_with("the configuration could not be applied: "));
    match s.last_attempt.unwrap().outcome {
        AttemptOutcome::Failed { message: m } => assert_eq!(m, message),
        other => panic!("{other:?}"),
    }
    assert!(s.errors.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn every_refusal_a_client_can_provoke_matches_the_contract() {
    let mut server = start(Options {
        access: Some(Access::new(Some(Secret::new("tok-2718".into())), vec![])),
        limits: Some(Limits {
            body_timeout: Duration::from_millis(300),
            max_uploads: 1,
            upload_wait: Duration::from_millis(200),
            ..Limits::default()
        }),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let auth = [("authorization", "Bearer tok-2718")];
    let xml = valid_xml();

    refused("404", &client.get("/nope", "*/*").await, 404);
    refused("405", &client.get(BOOTSTRAP_PATH, "*/*").await, 405);
    refused(
        "405 page",
        &client.send("DELETE", PAGE_PATH, &[], vec![]).await,
        405,
    );
    refused("401 missing", &client.post_xml(&xml, &[]).await, 401);
    refused(
        "401 wrong",
        &client
            .post_xml(&xml, &[("authorization", "Bearer nope")])
            .await,
        401,
    );
    let r = client
        .send(
            "POST",
            BOOTSTRAP_PATH,
            &[("content-type", "text/plain"), auth[0]],
            xml.clone(),
        )
        .await;
    refused("415", &r, 415);
    let r = client
        .send(
            "POST",
            BOOTSTRAP_PATH,
            &[("content-type", "multipart/form-data"), auth[0]],
            vec![],
        )
        .await;
    refused("400 no boundary", &r, 400);
    let (ct, body) = https::multipart(&[("notes", None, b"hi".as_slice())]);
    let r = client
        .send(
            "POST",
            BOOTSTRAP_PATH,
            &[("content-type", &ct), auth[0]],
            body,
        )
        .await;
    refused("400 no file", &r, 400);
    let mut big = xml.clone();
    big.resize(1024 * 1024 + 1, b' ');
    refused("413", &client.post_xml(&big, &auth).await, 413);

    // 408: the body stops short of its length.
    let mut stream = client.connect().await;
    stream
        .write_all(
            b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
              Authorization: Bearer tok-2718\r\nContent-Length: 1000\r\n\r\n<node-config",
        )
        .await
        .unwrap();
    let r = raw_reply(&mut stream).await;
    refused("408", &r, 408);

    // 503: the only upload slot is held by a body that has not arrived yet.
    let mut slow = client.connect().await;
    slow.write_all(
        b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
          Authorization: Bearer tok-2718\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let mut buf = [0u8; 256];
        let n = slow.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 100"));
    refused("503", &client.post_xml(&xml, &auth).await, 503);
    drop(slow);

    let s = status(&client).await;
    assert_eq!(s.state, NodeState::Unconfigured);
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;
}

/// Reads a whole reply from a raw connection (the server closes it after a refusal).
async fn raw_reply(stream: &mut https::TlsStream) -> Reply {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let mut headers = hyper::HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(": ").unwrap();
        headers.insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

#[test]
#[should_panic(expected = "the reply and the contract differ")]
fn strict_reading_refuses_a_field_the_contract_lacks() {
    strict::<UploadReply>(
        "extra field",
        r#"{"status":"refused","code":404,"error":"e","extra":1}"#,
    );
}

/// Every answer of `POST /configuration/plan` a client can provoke, read strictly with the
/// contract's types: the plan (200), the rejection (422), the refusals (401, 409, 413, 415).
#[tokio::test]
async fn every_plan_reply_reads_as_the_contract() {
    use nodeboot_config::api::{PLAN_PATH, PlanReply};
    let mut server = start(Options::default()).await;
    let client = server.client();
    let xml = [("content-type", "text/xml")];
    let r = client.send("POST", PLAN_PATH, &xml, valid_xml()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let plan: PlanReply = strict("the plan", &r.body);
    assert!(!plan.files.is_empty());
    let r = client.send("POST", PLAN_PATH, &xml, invalid_xml()).await;
    assert!(matches!(
        reply("an invalid plan", &r),
        UploadReply::Rejected(_)
    ));
    let big = vec![b'x'; nodeboot_config::MAX_FILE_SIZE + 1];
    refused(
        "an oversize plan",
        &client.send("POST", PLAN_PATH, &xml, big).await,
        413,
    );
    let text = [("content-type", "text/plain")];
    refused(
        "a text plan",
        &client.send("POST", PLAN_PATH, &text, b"x".to_vec()).await,
        415,
    );
    assert_eq!(client.post_xml(&valid_xml(), &[]).await.status, 202);
    server.wait_for_reboots(1).await;
    let r = client.send("POST", PLAN_PATH, &xml, valid_xml()).await;
    refused("a plan for a configured node", &r, 409);
    server.stop().await;

    let mut server = start(Options {
        access: Some(Access::new(Some(Secret::new("t".into())), vec![])),
        ..Options::default()
    })
    .await;
    let r = server
        .client()
        .send("POST", PLAN_PATH, &xml, valid_xml())
        .await;
    refused("a plan without the token", &r, 401);
    server.stop().await;
}

/// The checks of the first boot after an apply, with a failed gateway.
fn checks(digest: &str) -> nodeboot_config::api::HealthStatus {
    use nodeboot_config::api::{
        CheckKind, CheckResult, HealthPhase, HealthReport, HealthStatus, RollbackOn,
    };
    HealthStatus {
        digest: digest.into(),
        phase: HealthPhase::Checking,
        rollback_on: RollbackOn::Gateway,
        grace_secs: 120,
        started_unix: 1_796_000_000,
        window_ends_unix: 1_796_000_600,
        report: HealthReport::new(
            vec![CheckResult {
                kind: CheckKind::Gateway,
                subject: "10.0.0.1 on eth0".into(),
                passed: false,
                attempts: 2,
                elapsed_ms: 4000,
                tried: vec!["ARP who-has 10.0.0.1".into()],
                reason: "gateway 10.0.0.1 did not answer ARP on eth0 within 20 s".into(),
            }],
            4001,
        ),
    }
}

#[tokio::test]
async fn the_read_only_window_and_a_rollback_match_the_contract() {
    // The window: a configured root, its checks carried by the status; uploads and plans
    // refused with 409.
    let mut server = start(Options {
        window: Some(checks("ab")),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let doc = common::doc_for(&common::proxying_dual());
    nodeboot_agent::apply::apply_config(server.root.path(), &doc).unwrap();
    let s = status(&client).await;
    assert_eq!(s.state, NodeState::Configured);
    assert_eq!(s.health, Some(checks("ab")));
    assert!(s.rolled_back.is_none());
    refused(
        "upload in the window",
        &client.post_xml(&valid_xml(), &[]).await,
        409,
    );
    let plan = client
        .send(
            "POST",
            nodeboot_config::api::PLAN_PATH,
            &[("content-type", "text/xml")],
            valid_xml(),
        )
        .await;
    refused("plan in the window", &plan, 409);
    server.stop().await;

    // A rollback: the record in the status of the unconfigured node.
    let record = nodeboot_config::api::RolledBack {
        digest: "cd".into(),
        reason: "gateway 10.0.0.1 did not answer ARP on eth0 within 120 s".into(),
        at_unix: 1_796_000_130,
        checks: checks("cd").report.checks,
    };
    let mut server = start(Options {
        rolled_back: Some(record.clone()),
        ..Options::default()
    })
    .await;
    let s = status(&server.client()).await;
    assert_eq!(s.state, NodeState::Unconfigured);
    assert_eq!(s.rolled_back, Some(record));
    assert!(s.health.is_none());
    server.stop().await;
}
