//! The list of nodes a command works on: one node from the command line, or a fleet from an
//! inventory file, narrowed by `--only`. Reads the files it names (configurations, tokens);
//! talks to no node.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nodeboot_config::Secret;
use serde::Deserialize;

use super::client::{DEFAULT_PORT, Endpoint};
use super::trust::Fingerprint;

/// One node to work on.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name shown in progress and the summary (the inventory name, or the address).
    pub name: String,
    /// Where its endpoint listens.
    pub endpoint: Endpoint,
    /// Its configuration file (push only).
    pub file: Option<PathBuf>,
    /// The certificate it must present, if pinned by the inventory or the command line.
    pub fingerprint: Option<Fingerprint>,
    /// Its bootstrap token.
    pub token: Option<Secret<String>>,
}

/// The inventory file as written (TOML, `[[node]]` tables).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    node: Vec<InventoryNode>,
}

/// One `[[node]]` of an inventory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryNode {
    name: String,
    address: String,
    port: Option<u16>,
    fingerprint: Option<String>,
    token_file: Option<PathBuf>,
    file: Option<PathBuf>,
}

/// Reads a bootstrap token file: its first line, trimmed; an empty file is an error.
pub fn read_token(path: &Path) -> anyhow::Result<Secret<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        anyhow::bail!(
            "token file {} is empty (put the token on its first line)",
            path.display()
        );
    }
    Ok(Secret::new(token))
}

/// Loads the nodes of an inventory, relative paths taken from the inventory's folder,
/// keeping only the names in `only` when it is not empty.
pub fn load(path: &Path, only: &[String]) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading inventory {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    targets_from_toml(&text, base, only).with_context(|| format!("in inventory {}", path.display()))
}

/// The pure part of [`load`] (token files aside): TOML text → targets.
pub fn targets_from_toml(text: &str, base: &Path, only: &[String]) -> anyhow::Result<Vec<Target>> {
    let parsed: InventoryFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut seen = std::collections::HashSet::new();
    for node in &parsed.node {
        if !seen.insert(node.name.as_str()) {
            anyhow::bail!(
                "node `{}` is listed twice (names must be unique)",
                node.name
            );
        }
    }
    for name in only {
        if !seen.contains(name.as_str()) {
            anyhow::bail!("--only {name}: no node of that name in the inventory");
        }
    }
    let mut targets = Vec::new();
    for node in parsed.node {
        if !only.is_empty() && !only.contains(&node.name) {
            continue;
        }
        let at = |field: &str| format!("node `{}`, {field}", node.name);
        let mut endpoint = Endpoint::parse(&node.address, node.port.unwrap_or(DEFAULT_PORT))
            .map_err(|e| anyhow::anyhow!("{}: {e}", at("address")))?;
        if let Some(port) = node.port {
            endpoint.port = port;
        }
        let fingerprint = match &node.fingerprint {
            Some(f) => Some(
                Fingerprint::parse(f).map_err(|e| anyhow::anyhow!("{}: {e}", at("fingerprint")))?,
            ),
            None => None,
        };
        let token = match &node.token_file {
            Some(p) => Some(read_token(&base.join(p)).with_context(|| at("token_file"))?),
            None => None,
        };
        targets.push(Target {
            name: node.name,
            endpoint,
            file: node.file.map(|f| base.join(f)),
            fingerprint,
            token,
        });
    }
    if targets.is_empty() {
        anyhow::bail!("no nodes to work on (add [[node]] tables)");
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_nodes_become_targets() {
        let text = r#"
            [[node]]
            name = "conf01"
            address = "10.0.0.31"
            file = "conf01.xml"
            fingerprint = "SHA256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"

            [[node]]
            name = "conf02"
            address = "10.0.0.32"
            port = 9443
            file = "/abs/conf02.xml"
        "#;
        let targets = targets_from_toml(text, Path::new("/fleet"), &[]).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].endpoint.to_string(), "10.0.0.31:8443");
        assert_eq!(
            targets[0].file.as_deref(),
            Some(Path::new("/fleet/conf01.xml"))
        );
        assert!(targets[0].fingerprint.is_some());
        assert_eq!(targets[1].endpoint.to_string(), "10.0.0.32:9443");
        assert_eq!(
            targets[1].file.as_deref(),
            Some(Path::new("/abs/conf02.xml"))
        );
        let only = targets_from_toml(text, Path::new("/f"), &["conf02".into()]).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].name, "conf02");
    }

    #[test]
    fn inventory_mistakes_are_named() {
        let cases = [
            (
                "[[node]]\nname = \"a\"\naddress = \"h\"\ncolour = 1\n",
                "unknown field `colour`",
            ),
            (
                "[[node]]\nname = \"a\"\naddress = \"h:x\"\n",
                "node `a`, address: `h:x` is not a node address",
            ),
            (
                "[[node]]\nname = \"a\"\naddress = \"h\"\nfingerprint = \"SHA256:00\"\n",
                "node `a`, fingerprint: `SHA256:00` is not a SHA-256 fingerprint",
            ),
            (
                "[[node]]\nname = \"a\"\naddress = \"h\"\n[[node]]\nname = \"a\"\naddress = \"g\"\n",
                "node `a` is listed twice",
            ),
            ("", "no nodes to work on"),
        ];
        for (text, want) in cases {
            let err = format!(
                "{:#}",
                targets_from_toml(text, Path::new("."), &[]).unwrap_err()
            );
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = targets_from_toml(
            "[[node]]\nname = \"a\"\naddress = \"h\"\n",
            Path::new("."),
            &["b".into()],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--only b: no node of that name in the inventory"
        );
    }

    #[test]
    fn token_files_are_read_and_kept_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "s3cret-token\n").unwrap();
        let text = "[[node]]\nname = \"a\"\naddress = \"h\"\ntoken_file = \"t\"\n";
        let targets = targets_from_toml(text, dir.path(), &[]).unwrap();
        let token = targets[0].token.as_ref().unwrap();
        assert_eq!(token.expose(), "s3cret-token");
        assert!(!format!("{targets:?}").contains("s3cret"));
        std::fs::write(dir.path().join("t"), "\n").unwrap();
        let err = format!(
            "{:#}",
            targets_from_toml(text, dir.path(), &[]).unwrap_err()
        );
        assert!(err.contains("is empty"), "{err}");
    }
}
