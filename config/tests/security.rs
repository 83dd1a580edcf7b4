//! Hostile XML: entity expansion bombs and external entities are refused at the DOCTYPE,
//! before anything is expanded or read.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Instant;

#[test]
fn entity_bomb_is_refused_at_the_doctype_without_expansion() {
    // A billion-laughs document: 10 levels of 10 references, 10^10 "lol"s if expanded.
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE node-config [\n <!ENTITY l0 \"lol\">\n");
    for i in 1..=10 {
        let refs: String = (0..10).map(|_| format!("&l{};", i - 1)).collect();
        doc.push_str(&format!(" <!ENTITY l{i} \"{refs}\">\n"));
    }
    doc.push_str("]>\n<node-config schema=\"1\"><name>&l10;</name></node-config>\n");
    let started = Instant::now();
    let errs = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
    // Not a timed assertion: printed for the curious. Expansion would never finish.
    eprintln!("refused in {:?}", started.elapsed());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].line, errs[0].column), (2, 1));
    assert_eq!(
        errs[0].message,
        "a DOCTYPE (and any entity declaration) is not allowed"
    );
}

#[test]
fn external_entity_is_refused_without_reading_the_file() {
    // The entity names a FIFO with no writer: opening it for reading would block forever, so
    // this test finishing proves the file was never opened.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("secret");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let doc = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE node-config [\n <!ENTITY xxe SYSTEM \"file://{}\">\n]>\n<node-config schema=\"1\"><name>&xxe;</name></node-config>\n",
        fifo.display()
    );
    let errs = nodeboot_config::parse(doc.as_bytes()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].line, errs[0].column), (2, 1));
    assert!(errs[0].message.contains("DOCTYPE"));
}

#[test]
fn an_undeclared_entity_reference_is_not_expanded() {
    let doc = b"<node-config schema=\"1\"><name>&xxe;</name></node-config>";
    let errs = nodeboot_config::parse(doc).unwrap_err();
    assert_eq!(errs[0].message, "reference &xxe; is not allowed");
    assert_eq!((errs[0].line, errs[0].column), (1, 31));
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let doc = vec![b' '; nodeboot_config::MAX_FILE_SIZE + 1];
    let errs = nodeboot_config::parse(&doc).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("over the limit of 1048576 bytes"));
}

#[test]
fn odd_inputs_give_errors_not_panics() {
    for doc in [
        &b""[..],
        b"<",
        b"<node-config",
        b"<node-config schema='1'>",
        b"</node-config>",
        b"\xef\xbb\xbf<node-config schema=\"1\"/>",
        b"<node-config schema=\"1\"><network><ipv4/></network></node-config>",
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><node-config schema=\"1\"/>",
        b"<node-config schema=\"1\"><![CDATA[x]]></node-config>",
        b"<a:node-config xmlns:a=\"x\" schema=\"1\"/>",
    ] {
        let errs = nodeboot_config::parse(doc).unwrap_err();
        assert!(!errs.is_empty());
        for e in &errs {
            assert!(e.line >= 1 && e.column >= 1, "{e:?}");
        }
    }
}
