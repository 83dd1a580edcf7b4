//! `POST /configuration/plan` over real HTTPS against the real server and the real apply
//! engine on a temporary node image: what an apply would do, file by file, secrets masked,
//! the same refusals as an upload, and not one byte of the root changed.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use https::{Options, Reply, invalid_xml, start, valid_xml};
use nodeboot_agent::server::access::Access;
use nodeboot_config::Secret;
use nodeboot_config::api::{FileChange, PLAN_PATH, PlanReply, UploadReply};

/// The secret parts of the valid fixture: its password hash (salt and hash).
const HASH_TEXT: &str = "QO2Y0MbFzxYYLTZCc1";
const SALT_TEXT: &str = "Nodeboot.Salt12";

async fn plan(client: &https::Client, xml: &[u8], extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("content-type", "text/xml")];
    headers.extend_from_slice(extra);
    client.send("POST", PLAN_PATH, &headers, xml.to_vec()).await
}

fn refusal(r: &Reply) -> String {
    match serde_json::from_str::<UploadReply>(&r.body).unwrap() {
        UploadReply::Refused(refusal) => {
            assert_eq!(refusal.code, r.status);
            refusal.error
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_valid_file_gets_every_file_with_masked_diffs_and_nothing_changes() {
    let mut server = start(Options::default()).await;
    let before = common::tree(server.root.path());
    let r = plan(&server.client(), &valid_xml(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "application/json");
    assert!(!r.body.contains(HASH_TEXT), "the hash is in the plan");
    assert!(!r.body.contains(SALT_TEXT), "the salt is in the plan");
    let reply: PlanReply = serde_json::from_str(&r.body).unwrap();
    assert_eq!(reply.digest, nodeboot_config::digest(&valid_xml()));
    let file = |path: &str| {
        reply
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} is not in the plan: {:#?}", reply.files))
    };
    let hostname = file("/etc/hostname");
    assert_eq!(hostname.change, FileChange::Changed);
    let diff = hostname.diff.as_deref().unwrap();
    assert!(diff.contains("+conf01\n"), "{diff}");
    assert!(diff.contains("--- /etc/hostname (on disk)"), "{diff}");
    let unit = file("/etc/systemd/network/10-nodeboot-eth0.network");
    assert_eq!(unit.change, FileChange::Created);
    assert!(
        unit.diff.as_deref().unwrap().contains("10.0.0.31/24"),
        "{:?}",
        unit.diff
    );
    let shadow = file("/etc/shadow");
    assert_eq!(shadow.change, FileChange::Changed);
    assert!(shadow.diff.as_deref().unwrap().contains("admin:***:"));
    // What `apply --dry-run` prints for the same root, file by file, is what the reply holds.
    let doc = nodeboot_config::parse(&valid_xml()).unwrap();
    let dry = nodeboot_agent::apply::plan_config(server.root.path(), &doc).unwrap();
    let dry = nodeboot_agent::apply::cli::render_diff(server.root.path(), &dry);
    for f in &reply.files {
        if let Some(d) = &f.diff {
            assert!(
                dry.contains(d.as_str()),
                "{} differs from the dry run",
                f.path
            );
        }
    }
    let after = common::tree(server.root.path());
    assert!(
        before == after,
        "the plan changed the root: {:?}",
        common::tree_diff(&before, &after)
    );
    // The status is as it was: a plan is not an attempt.
    let status = server.client().get("/api/v1/status", "*/*").await.json();
    assert_eq!(status["state"], "unconfigured");
    assert!(status["last_attempt"].is_null(), "{status}");
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_file_gets_422_with_the_findings_an_upload_gets() {
    let mut server = start(Options::default()).await;
    let before = common::tree(server.root.path());
    let planned = plan(&server.client(), &invalid_xml(), &[]).await;
    assert_eq!(planned.status, 422, "{}", planned.body);
    let uploaded = server.client().post_xml(&invalid_xml(), &[]).await;
    assert_eq!(uploaded.status, 422);
    let (UploadReply::Rejected(p), UploadReply::Rejected(u)) = (
        serde_json::from_str(&planned.body).unwrap(),
        serde_json::from_str(&uploaded.body).unwrap(),
    ) else {
        panic!("{} / {}", planned.body, uploaded.body)
    };
    assert_eq!(p.errors, u.errors);
    assert_eq!(p.total, u.total);
    assert!(p.total >= 2);
    assert_eq!(
        common::tree_diff(&before, &common::tree(server.root.path())),
        Vec::<String>::new()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_token_is_required_as_for_an_upload() {
    let mut server = start(Options {
        access: Some(Access::new(Some(Secret::new("tok-3141".into())), vec![])),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let r = plan(&client, &valid_xml(), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(refusal(&r).contains("bootstrap token"));
    let r = plan(&client, &valid_xml(), &[("authorization", "Bearer wrong")]).await;
    assert_eq!(r.status, 401);
    let r = plan(
        &client,
        &valid_xml(),
        &[("authorization", "Bearer tok-3141")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The form, with the token as its field.
    let (ct, body) = https::multipart(&[
        ("token", None, b"tok-3141"),
        ("file", Some("node.xml"), &valid_xml()),
    ]);
    let r = client
        .send("POST", PLAN_PATH, &[("content-type", &ct)], body)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await;
}

#[tokio::test]
async fn a_configured_node_answers_409_and_says_so() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    assert_eq!(client.post_xml(&valid_xml(), &[]).await.status, 202);
    server.wait_for_reboots(1).await;
    let before = common::tree(server.root.path());
    let r = plan(&client, &valid_xml(), &[]).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let message = refusal(&r);
    assert!(
        message.contains("already configured") && message.contains("nothing to plan"),
        "{message}"
    );
    assert_eq!(
        common::tree_diff(&before, &common::tree(server.root.path())),
        Vec::<String>::new()
    );
    server.stop().await;
}

#[tokio::test]
async fn oversize_bodies_and_other_media_types_are_refused_as_uploads_are() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    let big = vec![b'x'; nodeboot_config::MAX_FILE_SIZE + 1];
    let r = plan(&client, &big, &[]).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let u = client.post_xml(&big, &[]).await;
    assert_eq!(refusal(&r), refusal(&u));
    let r = client
        .send(
            "POST",
            PLAN_PATH,
            &[("content-type", "text/plain")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = client.get(PLAN_PATH, "*/*").await;
    assert_eq!((r.status, r.header("allow")), (405, "POST"));
    server.stop().await;
}
