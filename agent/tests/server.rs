//! The HTTPS endpoint over real TLS on loopback: pages, uploads (XML body and form), every
//! refusal, token and allow-list, TLS versions, garbage and slow clients, shutdown, and the
//! bounds that keep a hostile network from starving the node.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;
mod https;

use std::time::Duration;

use https::{Options, applied_files_present, invalid_xml, start, valid_xml};
use nodeboot_agent::server::access::Access;
use nodeboot_agent::server::limits::Limits;
use nodeboot_config::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn form_page_shows_state_fingerprint_and_upload_form() {
    let mut server = start(Options::default()).await;
    let page = server.client().get("/", HTML).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert!(
        page.body
            .contains("Unconfigured — waiting for its configuration")
    );
    assert!(page.body.contains(&server.fingerprint));
    assert!(page.body.contains(
        "<form method=\"post\" action=\"/configuration/bootstrap\" enctype=\"multipart/form-data\">"
    ));
    assert!(
        page.body
            .contains("<input type=\"file\" id=\"file\" name=\"file\"")
    );
    assert!(!page.body.contains("<script"));
    assert!(
        !page.body.contains("name=\"token\""),
        "no token field unless one is required"
    );
    server.stop().await;
}

#[tokio::test]
async fn status_reports_unconfigured_fingerprint_and_version() {
    let mut server = start(Options::default()).await;
    let status = server.client().get("/api/v1/status", "*/*").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), "application/json");
    let v = status.json();
    assert_eq!(v["state"], "unconfigured");
    assert_eq!(v["digest"], serde_json::Value::Null);
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_eq!(v["fingerprint"], server.fingerprint.as_str());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    server.stop().await;
}

#[tokio::test]
async fn xml_upload_is_answered_then_applied_then_rebooted_once() {
    let mut server = start(Options {
        gated: true,
        ..Options::default()
    })
    .await;
    let client = server.client();
    let xml = valid_xml();
    let digest = nodeboot_config::digest(&xml);

    // The apply is held until the gate opens: getting this reply proves it was sent first.
    let reply = client.post_xml(&xml, &[]).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.header("connection"), "close");
    let v = reply.json();
    assert_eq!(v["status"], "accepted");
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["reboot_delay_seconds"], 0);
    assert!(!applied_files_present(server.root.path()));
    assert_eq!(server.reboot.calls(), 0);

    // Meanwhile: applying, and a second upload is refused as busy.
    let status = client.status().await;
    assert_eq!(status["state"], "applying");
    assert_eq!(status["digest"], digest.as_str());
    let second = client.post_xml(&xml, &[]).await;
    assert_eq!(second.status, 409);
    assert!(
        second.json()["error"]
            .as_str()
            .unwrap()
            .contains("being applied")
    );

    server.open_gate();
    server.wait_for_reboots(1).await;
    assert!(applied_files_present(server.root.path()));
    let status = client.status().await;
    assert_eq!(status["state"], "configured");
    assert_eq!(status["digest"], digest.as_str());
    assert_eq!(status["last_attempt"]["outcome"], "applied");

    // Configured: a further upload is refused, saying so, and nothing reboots again.
    let again = client.post_xml(&xml, &[]).await;
    assert_eq!(again.status, 409);
    let msg = again.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("already configured"), "{msg}");
    assert!(msg.contains(&digest), "{msg}");
    let page = client.get("/", HTML).await;
    assert!(page.body.contains("This node is configured"));
    assert!(!page.body.contains("<form"));
    assert_eq!(server.reboot.calls(), 1);
    server.stop().await;
}

#[tokio::test]
async fn form_upload_from_a_browser_gets_the_result_page_and_is_applied() {
    let mut server = start(Options::default()).await;
    let xml = valid_xml();
    let reply = server
        .client()
        .post_form(&[("file", Some("node.xml"), &xml)], HTML)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    assert!(reply.body.contains("Applied, rebooting in 0 s."));
    assert!(reply.body.contains(&nodeboot_config::digest(&xml)));
    server.wait_for_reboots(1).await;
    assert!(applied_files_present(server.root.path()));
    server.stop().await;
}

#[tokio::test]
async fn form_upload_from_curl_gets_json() {
    let mut server = start(Options::default()).await;
    let xml = valid_xml();
    let reply = server
        .client()
        .post_form(&[("file", Some("node.xml"), &xml)], "*/*")
        .await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.json()["status"], "accepted");
    server.wait_for_reboots(1).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_file_is_rejected_with_every_error_and_nothing_changes() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    let bad = invalid_xml();

    let reply = client.post_xml(&bad, &[]).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["status"], "rejected");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["path"], "/node-config/hostname");
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["column"].as_u64()),
        (Some(5), Some(13))
    );
    assert_eq!(errors[1]["path"], "/node-config/network/ipv4@gateway");
    assert_eq!(
        (errors[1]["line"].as_u64(), errors[1]["column"].as_u64()),
        (Some(9), Some(55))
    );
    for e in errors {
        assert!(e["line"].as_u64().unwrap() >= 1);
        assert!(e["column"].as_u64().unwrap() >= 1);
        assert!(e["path"].as_str().unwrap().starts_with("/node-config"));
        assert!(!e["message"].as_str().unwrap().is_empty());
    }

    let page = client
        .post_form(&[("file", Some("invalid.xml"), &bad)], HTML)
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Configuration rejected"));
    assert!(
        page.body
            .contains("line 5, column 13 · /node-config/hostname · error")
    );
    assert!(
        page.body
            .contains("line 9, column 55 · /node-config/network/ipv4@gateway · error")
    );
    assert!(page.body.contains("is not an RFC 1123 label"));

    let status = client.status().await;
    assert_eq!(status["state"], "unconfigured");
    assert_eq!(status["last_attempt"]["outcome"], "rejected");
    assert_eq!(status["errors"].as_array().unwrap().len(), errors.len());
    let home = client.get("/", HTML).await;
    assert!(home.body.contains("Rejected"));

    assert!(!applied_files_present(server.root.path()));
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_failed_apply_is_reported_and_a_new_upload_is_accepted() {
    let mut server = start(Options {
        bare_root: true,
        ..Options::default()
    })
    .await;
    let client = server.client();
    let xml = valid_xml();
    let r = client.post_xml(&xml, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let status = client.wait_for_state("failed").await;
    assert_eq!(status["last_attempt"]["outcome"], "failed");
    assert!(!status["error"].as_str().unwrap().is_empty());
    // The client reads the class of failure, not the detail (which names host paths).
    assert_eq!(
        status["error"],
        "the configuration could not be applied: the node image lacks something the \
         configuration needs; the node keeps its previous configuration; see `journalctl -u \
         nodeboot-agent`"
    );
    assert_eq!(status["last_attempt"]["message"], status["error"]);
    let host_path = server.root.path().to_str().unwrap();
    assert!(!status.to_string().contains(host_path), "{status}");
    let page = client.get("/", HTML).await;
    assert!(page.body.contains("Apply failed"));
    assert!(!page.body.contains(host_path));
    assert!(
        page.body.contains("<form"),
        "a failed node takes a new upload"
    );
    assert_eq!(server.reboot.calls(), 0);
    // Not busy any more: the next upload is taken (and fails the same way).
    let r = client.post_xml(&xml, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    server.stop().await;
}

#[tokio::test]
async fn other_media_types_get_415() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    let xml = valid_xml();
    for ct in [
        "text/plain",
        "application/json",
        "application/x-www-form-urlencoded",
    ] {
        let r = client
            .send(
                "POST",
                "/configuration/bootstrap",
                &[("content-type", ct)],
                xml.clone(),
            )
            .await;
        assert_eq!(r.status, 415, "{ct}");
        assert!(r.json()["error"].as_str().unwrap().contains("text/xml"));
    }
    let r = client
        .send("POST", "/configuration/bootstrap", &[], xml)
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_one_mib_get_413() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    let mut big = valid_xml();
    big.resize(1024 * 1024 + 1, b' ');
    let r = client.post_xml(&big, &[]).await;
    assert_eq!(r.status, 413);
    assert!(r.json()["error"].as_str().unwrap().contains("1024 KiB"));
    let r = client
        .post_form(&[("file", Some("big.xml"), &big)], "*/*")
        .await;
    assert_eq!(r.status, 413);
    // Exactly the limit is not refused for its size.
    big.truncate(1024 * 1024);
    let r = client.post_xml(&big, &[]).await;
    assert_ne!(r.status, 413);
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let mut server = start(Options::default()).await;
    let mut stream = server.client().connect().await;
    let head = "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\n\
                Content-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut reply = Vec::new();
    for _ in 0..20 {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        if stream.write_all(&c).await.is_err() {
            break;
        }
    }
    let _ = stream.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_400_404_405() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    let r = client
        .post_form(&[("notes", None, b"hello".as_slice())], "*/*")
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("\"file\""));
    let r = client
        .send(
            "POST",
            "/configuration/bootstrap",
            &[("content-type", "multipart/form-data")],
            vec![],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = client.get("/nope", "*/*").await;
    assert_eq!(r.status, 404);
    let r = client.get("/configuration/bootstrap", HTML).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "POST");
    let r = client.send("DELETE", "/", &[], vec![]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "GET, HEAD");
    server.stop().await;
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let mut server = start(Options {
        access: Some(Access::new(Some(Secret::new("tok-3141".into())), vec![])),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let xml = valid_xml();

    let page = client.get("/", HTML).await;
    assert!(page.body.contains("name=\"token\""));

    let r = client.post_xml(&xml, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    let r = client
        .post_xml(&xml, &[("authorization", "Bearer tok-314")])
        .await;
    assert_eq!(r.status, 401);
    let r = client
        .post_form(
            &[("file", Some("n.xml"), &xml), ("token", None, b"wrong")],
            "*/*",
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(!r.body.contains("tok-3141"));
    // A token field that is not UTF-8 is a wrong token (its bytes are not decoded).
    let r = client
        .post_form(
            &[
                ("file", Some("n.xml"), &xml),
                ("token", None, b"tok-3141\xff"),
            ],
            "*/*",
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(server.reboot.calls(), 0);

    // The form field works (token after the file, as field order is the browser's choice).
    let r = client
        .post_form(
            &[("file", Some("n.xml"), &xml), ("token", None, b"tok-3141")],
            "*/*",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    server.wait_for_reboots(1).await;
    server.stop().await;
}

#[tokio::test]
async fn bearer_token_is_accepted() {
    let mut server = start(Options {
        access: Some(Access::new(Some(Secret::new("tok-3141".into())), vec![])),
        ..Options::default()
    })
    .await;
    let xml = valid_xml();
    let r = server
        .client()
        .post_xml(&xml, &[("authorization", "Bearer tok-3141")])
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    server.wait_for_reboots(1).await;
    server.stop().await;
}

#[tokio::test]
async fn refused_address_is_closed_before_tls() {
    let mut server = start(Options {
        access: Some(Access::new(None, vec!["10.0.0.0/8".parse().unwrap()])),
        ..Options::default()
    })
    .await;
    // Without sending a byte, the client sees the server close the connection: no TLS, no
    // HTTP, nothing read from the client.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut buf))
        .await
        .expect("the refused connection was closed");
    assert!(buf.is_empty(), "the server sent {} bytes", buf.len());
    assert!(
        r.is_ok() || r.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
        "{r:?}"
    );
    // A TLS client's handshake fails for want of a server hello (EOF or reset).
    let client = server.client();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client.config.clone());
    let hs = connector
        .connect(
            rustls::pki_types::ServerName::IpAddress(server.addr.ip().into()),
            tcp,
        )
        .await;
    let err = hs.expect_err("a refused client completed a TLS handshake");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;

    let mut server = start(Options {
        access: Some(Access::new(
            None,
            vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.0/8".parse().unwrap(),
            ],
        )),
        ..Options::default()
    })
    .await;
    let r = server.client().get("/api/v1/status", "*/*").await;
    assert_eq!(r.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn tls_1_2_and_1_3_both_work() {
    let mut server = start(Options::default()).await;
    for (version, name) in [
        (&rustls::version::TLS12, "TLSv1_2"),
        (&rustls::version::TLS13, "TLSv1_3"),
    ] {
        let mut client = server.client();
        client.config = https::client_config(&server.fingerprint, &[version]);
        let stream = client.connect().await;
        let got = stream.get_ref().1.protocol_version().unwrap();
        assert_eq!(format!("{got:?}"), name);
        assert_eq!(client.get("/api/v1/status", "*/*").await.status, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_pinning_another_certificate_is_refused_by_its_own_check() {
    let mut server = start(Options::default()).await;
    let mut client = server.client();
    client.config = https::client_config("SHA256:00", &[&rustls::version::TLS13]);
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client.config.clone());
    let r = connector
        .connect(
            rustls::pki_types::ServerName::IpAddress(server.addr.ip().into()),
            tcp,
        )
        .await;
    assert!(r.is_err());
    // The server survives the failed handshake.
    assert_eq!(
        server.client().get("/api/v1/status", "*/*").await.status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn handshake_garbage_and_plain_http_do_not_stop_the_server() {
    let mut server = start(Options::default()).await;
    for junk in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
        b"\x16\x03\x01\x00\x05hello-not-tls".as_slice(),
        &[0xffu8; 4096],
        b"".as_slice(),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let _ = tcp.write_all(junk).await;
        let _ = tcp.shutdown().await;
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
    }
    // A client that vanishes mid-handshake.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    drop(tcp);
    assert_eq!(
        server.client().get("/api/v1/status", "*/*").await.status,
        200
    );
    server.stop().await;
}

/// A server with `limits` and otherwise default options.
async fn start_with(limits: Limits) -> https::Server {
    start(Options {
        limits: Some(limits),
        ..Options::default()
    })
    .await
}

/// A server whose handshake, header and body timeouts are 300 ms.
async fn start_with_short_limits() -> https::Server {
    start_with(Limits {
        handshake_timeout: Duration::from_millis(300),
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await
}

/// Reads until the server closes the connection, for 20 s at most: whether it closed it,
/// and what it sent.
async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> (bool, Vec<u8>) {
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    (closed.is_ok(), buf)
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let mut server = start_with_short_limits().await;
    let mut stream = server.client().connect().await;
    stream
        .write_all(b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the headers: the server closes the connection on its own.
    let (closed, _) = read_until_closed(&mut stream).await;
    assert!(closed, "the server kept a slow client");
    server.stop().await;
}

#[tokio::test]
async fn idle_tls_connections_are_closed() {
    let mut server = start_with_short_limits().await;
    let mut stream = server.client().connect().await;
    let (closed, _) = read_until_closed(&mut stream).await;
    assert!(closed, "the server kept an idle client");
    server.stop().await;
}

#[tokio::test]
async fn slow_body_gets_408() {
    let mut server = start_with_short_limits().await;
    let mut stream = server.client().connect().await;
    stream
        .write_all(
            b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\n\
              Content-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<node-config",
        )
        .await
        .unwrap();
    let (_, buf) = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn silent_tcp_clients_are_dropped_after_the_handshake_timeout() {
    let mut server = start_with_short_limits().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (closed, _) = read_until_closed(&mut tcp).await;
    assert!(closed, "the server kept a silent client");
    server.stop().await;
}

#[tokio::test]
async fn connection_cap_queues_further_clients_until_one_leaves() {
    let mut server = start_with(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let client = server.client();
    let first = client.connect().await;
    let _second = client.connect().await;
    // A third client is not served while two are held; once one leaves, it is.
    let mut third = tokio::spawn({
        let addr = server.addr;
        let fp = server.fingerprint.clone();
        async move {
            https::Client::new(addr, &fp)
                .get("/api/v1/status", "*/*")
                .await
        }
    });
    // Not a performance figure: the third client waits in the backlog however fast the
    // machine is, so this can only pass more easily on a slow one.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut third).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were held"
    );
    drop(first);
    let reply = tokio::time::timeout(Duration::from_secs(20), third)
        .await
        .expect("the queued client was served once a slot freed")
        .unwrap();
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_returns_with_an_idle_connection_open() {
    let mut server = start(Options::default()).await;
    let _idle = server.client().connect().await;
    tokio::time::timeout(Duration::from_secs(20), server.stop())
        .await
        .expect("serve returned after shutdown");
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8).
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A TLS handshake over `tcp` with the server's pinned certificate.
async fn tls_over(
    server: &https::Server,
    tcp: tokio::net::TcpStream,
) -> std::io::Result<https::TlsStream> {
    let connector = tokio_rustls::TlsConnector::from(server.client().config.clone());
    connector
        .connect(
            rustls::pki_types::ServerName::IpAddress(server.addr.ip().into()),
            tcp,
        )
        .await
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    let mut server = start_with(Limits {
        max_per_address: 2,
        ..Limits::default()
    })
    .await;
    let first = tls_over(&server, connect_from("127.0.0.1", server.addr).await)
        .await
        .unwrap();
    let _second = tls_over(&server, connect_from("127.0.0.1", server.addr).await)
        .await
        .unwrap();
    // The third from the same address is closed without a byte sent either way.
    let mut third = connect_from("127.0.0.1", server.addr).await;
    let (closed, sent) = read_until_closed(&mut third).await;
    assert!(closed, "a connection over the cap was kept");
    assert!(sent.is_empty());
    // Another address has its own count.
    let mut other = tls_over(&server, connect_from("127.0.0.2", server.addr).await)
        .await
        .expect("another address is served");
    other
        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, reply) = read_until_closed(&mut other).await;
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
    // Once one of the two leaves, the address is served again (the server notices the
    // close asynchronously: try until it has).
    drop(first);
    let mut served = false;
    for _ in 0..200 {
        let tcp = connect_from("127.0.0.1", server.addr).await;
        if tls_over(&server, tcp).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "the address stayed refused after a connection closed"
    );
    server.stop().await;
}

/// A keep-alive HTTP/1.1 connection: (sender, whether the connection has ended).
async fn keep_alive(
    server: &https::Server,
) -> (
    hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = server.client().connect().await;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let ended = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, ended)
}

fn status_request() -> hyper::Request<http_body_util::Full<hyper::body::Bytes>> {
    hyper::Request::get("/api/v1/status")
        .header("host", "x")
        .body(http_body_util::Full::default())
        .unwrap()
}

#[tokio::test]
async fn a_busy_keep_alive_connection_is_closed_at_the_end_of_its_lifetime() {
    let mut server = start_with(Limits {
        max_lifetime: Duration::from_millis(800),
        ..Limits::default()
    })
    .await;
    let (mut sender, ended) = keep_alive(&server).await;
    // A request every 100 ms keeps it busy, well inside every idle timeout: it is closed
    // anyway once its lifetime is over.
    let mut answered = 0;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if sender.ready().await.is_err() {
                break;
            }
            match sender.send_request(status_request()).await {
                Ok(r) if r.status() == 200 => answered += 1,
                _ => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection outlived its lifetime");
    assert!(answered >= 1, "it served requests before");
    tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the connection ended")
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_serves_at_most_max_requests() {
    let mut server = start_with(Limits {
        max_requests: 3,
        ..Limits::default()
    })
    .await;
    let (mut sender, ended) = keep_alive(&server).await;
    for i in 1..=3 {
        sender.ready().await.unwrap();
        let r = sender.send_request(status_request()).await.unwrap();
        assert_eq!(r.status(), 200);
        let close = r.headers().get("connection").map(|v| v.to_str().unwrap());
        assert_eq!(close, (i == 3).then_some("close"), "request {i}");
    }
    let fourth = async {
        sender.ready().await?;
        sender.send_request(status_request()).await
    };
    assert!(fourth.await.is_err(), "a fourth request was served");
    tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the connection ended")
        .unwrap();
    server.stop().await;
}

fn token_server_options(limits: Limits) -> Options {
    Options {
        access: Some(Access::new(Some(Secret::new("tok-3141".into())), vec![])),
        limits: Some(limits),
        ..Options::default()
    }
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    // The body timeout is far longer than the wait below: a 401 can only come without the body.
    let mut server = start(token_server_options(Limits {
        body_timeout: Duration::from_secs(600),
        ..Limits::default()
    }))
    .await;
    for auth in ["", "Authorization: Bearer wrong\r\n"] {
        for ct in ["text/xml", "multipart/form-data; boundary=b"] {
            if ct.starts_with("multipart") && auth.is_empty() {
                continue; // a form may carry its token inside: see the next test
            }
            let mut stream = server.client().connect().await;
            let head = format!(
                "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\
                 {auth}Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n<node-config"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let (closed, reply) = read_until_closed(&mut stream).await;
            let text = String::from_utf8_lossy(&reply);
            assert!(
                text.starts_with("HTTP/1.1 401"),
                "{ct} {auth:?}: no 401 without the body: {text}"
            );
            assert!(closed, "{ct} {auth:?}: connection kept open");
            assert!(text.to_ascii_lowercase().contains("connection: close"));
        }
    }
    assert_eq!(server.reboot.calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_its_token_is_refused_after_a_few_kib() {
    let mut server = start(token_server_options(Limits {
        body_timeout: Duration::from_secs(600),
        ..Limits::default()
    }))
    .await;
    // A 1 MiB file first and no token: only the first 16 KiB are read, then 401. The client
    // sends 64 KiB of its 1 MiB and waits: the answer cannot wait for the rest.
    let big = vec![b'x'; 1000 * 1024];
    let (ct, body) = https::multipart(&[("file", Some("n.xml"), &big)]);
    let mut stream = server.client().connect().await;
    let head = format!(
        "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..64 * 1024]).await.unwrap();
    let (closed, reply) = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("it must come before the file"), "{text}");
    assert!(closed);

    // A wrong token in the form is refused as soon as it is read.
    let (ct, body) = https::multipart(&[("token", None, b"wrong"), ("file", Some("n.xml"), &big)]);
    let mut stream = server.client().connect().await;
    let head = format!(
        "POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..4096]).await.unwrap();
    let (_, reply) = read_until_closed(&mut stream).await;
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 401"));

    // With the token first, the file may be large (here 300 KiB of trailing white space).
    let mut xml = valid_xml();
    xml.resize(300 * 1024, b'\n');
    let r = server
        .client()
        .post_form(
            &[("token", None, b"tok-3141"), ("file", Some("n.xml"), &xml)],
            "*/*",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    server.wait_for_reboots(1).await;
    server.stop().await;
}

#[tokio::test]
async fn only_max_uploads_bodies_are_read_at_once_then_503() {
    let mut server = start_with(Limits {
        max_uploads: 1,
        upload_wait: Duration::from_millis(200),
        body_timeout: Duration::from_secs(600),
        ..Limits::default()
    })
    .await;
    // The first upload takes the only slot: hyper sends "100 Continue" when the body is
    // first read, which is after the slot was taken.
    let mut slow = server.client().connect().await;
    slow.write_all(
        b"POST /configuration/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n\
          Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
            .await
            .expect("100 Continue")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 100"));

    let r = server.client().post_xml(&valid_xml(), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), "5");
    assert!(r.json()["error"].as_str().unwrap().contains("again"));

    // The slow one finishes (an invalid file: 422) and frees the slot.
    slow.write_all(b"<x/><x/><x").await.unwrap();
    let mut head = [0u8; 12];
    slow.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 422");
    let r = server.client().post_xml(&valid_xml(), &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    server.wait_for_reboots(1).await;
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_findings_gets_bounded_reply_status_and_page() {
    let mut server = start(Options::default()).await;
    let client = server.client();
    // 1 MiB of unknown elements inside the root: one finding each, unless the parser stops.
    let mut flood = b"<node-config schema=\"1\">".to_vec();
    flood.extend_from_slice(&b"<x/>".repeat((1024 * 1024 - 64) / 4));
    flood.extend_from_slice(b"</node-config>");
    let r = client.post_xml(&flood, &[]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.len() < 64 * 1024, "422 of {} bytes", r.body.len());
    let v = r.json();
    let errors = v["errors"].as_array().unwrap();
    assert!(errors.len() <= 101, "{} findings", errors.len());
    let total = v["total"].as_u64().unwrap();
    assert!(total >= errors.len() as u64);
    println!("findings: {total}; reply {} bytes", r.body.len());

    // Just under the parser's element cap (nodeboot_config::MAX_ELEMENTS, past which it
    // reports one finding and stops): one finding per element until the parser caps its
    // own list.
    let mut many = b"<node-config schema=\"1\">".to_vec();
    many.extend_from_slice(&b"<x/>".repeat(nodeboot_config::MAX_ELEMENTS - 8));
    many.extend_from_slice(b"</node-config>");
    let r = client.post_xml(&many, &[]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.len() < 64 * 1024, "422 of {} bytes", r.body.len());
    let v = r.json();
    assert!(v["errors"].as_array().unwrap().len() <= 101);
    assert!(v["total"].as_u64().unwrap() > 21, "{}", v["total"]);

    // The page's list is bounded the same way.
    let smaller = many;
    let html = client
        .post_form(&[("file", Some("flood.xml"), &smaller)], HTML)
        .await;
    assert_eq!(html.status, 422);
    assert!(
        html.body.len() < 64 * 1024,
        "HTML 422 of {} bytes",
        html.body.len()
    );

    let status = client.get("/api/v1/status", "*/*").await;
    assert!(
        status.body.len() < 8 * 1024,
        "status of {} bytes",
        status.body.len()
    );
    let s = status.json();
    assert_eq!(s["last_attempt"]["outcome"], "rejected");
    assert!(s["last_attempt"]["total"].as_u64().unwrap() > 21, "{s}");
    assert!(s["errors"].as_array().unwrap().len() <= 21);
    let page = client.get("/", HTML).await;
    assert!(
        page.body.len() < 16 * 1024,
        "page of {} bytes",
        page.body.len()
    );
    assert!(page.body.contains("Rejected"));
    server.stop().await;
}
