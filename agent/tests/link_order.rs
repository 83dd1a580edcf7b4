//! The agent's link order (`agent/link/nodeboot-agent.order`, passed to lld by agent/build.rs)
//! names symbols, and a symbol's name depends on the toolchain, the locked versions and the
//! manifests: when any of them changes, the names no longer match and an idle agent maps
//! about 0.5 MiB more of its text (docs/benchmarks.md, "Agent size budget"). This test says so
//! and how to mend it, rather than letting the figure drift.
use std::path::Path;

const ORDER: &str = "link/nodeboot-agent.order";
const REGENERATE: &str = "run scripts/order-agent (valgrind; about 2 min) and commit the file";

fn order_file() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(ORDER);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; {REGENERATE}", path.display()))
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key))
}

#[test]
fn the_order_file_was_generated_for_this_toolchain_lock_and_manifests() {
    let text = order_file();
    let rustc = env!("NODEBOOT_RUSTC_VERSION");
    assert_eq!(
        header(&text, "# rustc: "),
        Some(rustc),
        "agent/{ORDER} was generated with another toolchain than {rustc}: {REGENERATE}"
    );
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut keyed = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# sha256 ") else {
            continue;
        };
        let (file, recorded) = rest
            .split_once(": ")
            .unwrap_or_else(|| panic!("agent/{ORDER}: malformed line {line:?}; {REGENERATE}"));
        let bytes = std::fs::read(workspace.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (named by agent/{ORDER}); {REGENERATE}"));
        let now = nodeboot_config::digest(&bytes);
        assert_eq!(
            recorded, now,
            "{file} changed since agent/{ORDER} was generated: {REGENERATE}"
        );
        keyed += 1;
    }
    for file in [
        "Cargo.lock",
        "Cargo.toml",
        "agent/Cargo.toml",
        "config/Cargo.toml",
    ] {
        assert!(
            header(&text, &format!("# sha256 {file}: ")).is_some(),
            "agent/{ORDER} does not record {file}: {REGENERATE}"
        );
    }
    assert_eq!(keyed, 4, "agent/{ORDER} records unexpected files");
}

#[test]
fn the_order_file_lists_each_symbol_once_and_enough_of_them() {
    let text = order_file();
    let symbols: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for symbol in &symbols {
        assert!(
            !symbol.contains(char::is_whitespace) && symbol.is_ascii(),
            "agent/{ORDER}: {symbol:?} is not a symbol name"
        );
        assert!(seen.insert(*symbol), "agent/{ORDER}: {symbol} twice");
    }
    // The serving loop and the TLS handshake are on every idle agent's path.
    for needle in ["serve_connection", "ExpectClientHello"] {
        assert!(
            symbols.iter().any(|s| s.contains(needle)),
            "agent/{ORDER} lists no function of {needle}: was it generated from a serving agent?"
        );
    }
    assert!(
        symbols.len() > 1000,
        "agent/{ORDER} lists only {} functions",
        symbols.len()
    );
}
