//! The list of nodes a command works on: one node from the command line, or a fleet from an
//! inventory file, narrowed by `--only`. Reads the files it names (configurations, tokens);
//! talks to no node.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use std::time::SystemTime;

use nodeboot_config::Secret;
use nodeboot_config::inventory::{GenerateInputs, Inventory, NodeParams};

use super::client::Endpoint;
use super::prepare::Material;
use super::trust::Fingerprint;

/// What a node is sent.
#[derive(Debug, Clone)]
pub enum Source {
    /// An existing configuration file.
    File(PathBuf),
    /// A configuration generated from inventory parameters (as `nodeboot generate` would);
    /// `base` is the inventory's folder, for the TLS files the parameters name.
    Generated {
        /// The parameters, defaults merged in.
        params: Box<NodeParams>,
        /// Where relative paths start.
        base: PathBuf,
    },
    /// Nothing (`status`).
    None,
}

/// One node to work on.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name shown in progress and the summary (the inventory name, or the address).
    pub name: String,
    /// Where its endpoint listens.
    pub endpoint: Endpoint,
    /// What it is sent (push).
    pub source: Source,
    /// The certificate it must present, if pinned by the inventory or the command line.
    pub fingerprint: Option<Fingerprint>,
    /// Its bootstrap token.
    pub token: Option<Secret<String>>,
}

/// Reads a bootstrap token file: its first line, trimmed; an empty file is an error. The
/// file must be a regular file of mode 0600 or stricter, not reached through a link
/// ([`crate::secret_file::read`]).
pub fn read_token(path: &Path) -> anyhow::Result<Secret<String>> {
    let text = crate::secret_file::read(path, "token file")?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        anyhow::bail!(
            "token file {} is empty (put the token on its first line)",
            path.display()
        );
    }
    Ok(Secret::new(token))
}

/// Reads what a node is sent: its file, or the file its parameters generate (as
/// `nodeboot generate` would). The only effect before [`super::prepare::prepare`].
pub fn material(target: &Target) -> Material {
    match &target.source {
        Source::File(path) => match std::fs::read(path) {
            Ok(bytes) => Material::Bytes {
                what: path.display().to_string(),
                bytes,
            },
            Err(e) => Material::Unreadable(
                anyhow::Error::new(e).context(format!("reading {}", path.display())),
            ),
        },
        Source::Generated { params, base } => match generate(params, base) {
            Ok(bytes) => Material::Bytes {
                what: format!("node `{}` (generated)", target.name),
                bytes,
            },
            Err(errors) => Material::Unusable {
                what: format!("node `{}` parameters", target.name),
                errors,
            },
        },
        Source::None => Material::Unreadable(anyhow::anyhow!(
            "node `{}` has no configuration (inventory: file = \"….xml\" or generate parameters)",
            target.name
        )),
    }
}

/// The file that maps node names to addresses in a folder inventory.
pub const FOLDER_ADDRESSES: &str = "addresses.csv";

/// Loads the nodes of an inventory, relative paths taken from the inventory's folder,
/// keeping only the names in `only` when it is not empty. A folder is read as a folder
/// inventory (see [`targets_from_folder`]).
pub fn load(path: &Path, only: &[String]) -> anyhow::Result<Vec<Target>> {
    if path.is_dir() {
        let csv = path.join(FOLDER_ADDRESSES);
        let text = std::fs::read_to_string(&csv).with_context(|| {
            format!(
                "reading {} (a folder inventory lists `hostname.domain,address[:port][,fingerprint]` there)",
                csv.display()
            )
        })?;
        return targets_from_folder(&text, path, only)
            .with_context(|| format!("in {}", csv.display()));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading inventory {}", path.display()))?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    targets_from_toml(&text, base, only).with_context(|| format!("in inventory {}", path.display()))
}

/// [`load`] on the inventory's text (token files are read from `base`).
pub fn targets_from_toml(text: &str, base: &Path, only: &[String]) -> anyhow::Result<Vec<Target>> {
    let inventory = Inventory::parse(text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    for name in only {
        if inventory.node(name).is_none() {
            anyhow::bail!("--only {name}: no node of that name in the inventory");
        }
    }
    let mut targets = Vec::new();
    for node in inventory.nodes {
        if !only.is_empty() && !only.contains(&node.name) {
            continue;
        }
        let at = |field: &str| format!("node `{}`, {field}", node.name);
        let endpoint = Endpoint::parse(&node.address, node.port)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at("address")))?;
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
        let source = match node.file {
            Some(f) => Source::File(base.join(f)),
            None => Source::Generated {
                params: Box::new(node.params),
                base: base.to_path_buf(),
            },
        };
        targets.push(Target {
            name: node.name,
            endpoint,
            source,
            fingerprint,
            token,
        });
    }
    if targets.is_empty() {
        anyhow::bail!("no nodes to work on (add [[node]] tables)");
    }
    Ok(targets)
}

/// A folder inventory: the configuration files as the platform writes them
/// (`<hostname>.<domain>.xml`, or `pexip-<hostname>.<domain>.xml`) beside an `addresses.csv`
/// whose lines are `hostname.domain,address[:port][,fingerprint]` (`#` comments allowed).
pub fn targets_from_folder(text: &str, dir: &Path, only: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("line {}", i + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (name, address, fingerprint) = match fields.as_slice() {
            [n, a] => (*n, *a, None),
            [n, a, f] => (*n, *a, Some(*f).filter(|f| !f.is_empty())),
            _ => anyhow::bail!(
                "{}: expected `hostname.domain,address[:port][,fingerprint]`, found `{line}`",
                at()
            ),
        };
        if targets.iter().any(|t| t.name == name) {
            anyhow::bail!("{}: `{name}` is listed twice", at());
        }
        let endpoint = Endpoint::parse(address, super::client::DEFAULT_PORT)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let fingerprint = fingerprint
            .map(Fingerprint::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let file = [format!("{name}.xml"), format!("pexip-{name}.xml")]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no {name}.xml (or pexip-{name}.xml) in {}",
                    at(),
                    dir.display()
                )
            })?;
        targets.push(Target {
            name: name.to_string(),
            endpoint,
            source: Source::File(file),
            fingerprint,
            token: None,
        });
    }
    for name in only {
        if !targets.iter().any(|t| &t.name == name) {
            anyhow::bail!("--only {name}: no node of that name in the inventory");
        }
    }
    targets.retain(|t| only.is_empty() || only.contains(&t.name));
    if targets.is_empty() {
        anyhow::bail!("no nodes to work on (add `hostname.domain,address` lines)");
    }
    Ok(targets)
}

/// The configuration document generated from a node's inventory parameters, validated.
///
/// Push asks for no password: the parameters must carry `password_hash` (and
/// `web_admin_password_hash` for a management node); `nodeboot generate` is the way to type
/// them.
pub fn generate(params: &NodeParams, base: &Path) -> Result<Vec<u8>, Vec<String>> {
    let mut inputs = GenerateInputs::default();
    if let (Some(c), Some(k)) = (&params.tls_certificate_file, &params.tls_key_file) {
        let read = |p: &Path| {
            std::fs::read_to_string(base.join(p))
                .map_err(|e| vec![format!("reading {}: {e}", base.join(p).display())])
        };
        inputs.tls = Some((read(c)?, Secret::new(read(k)?)));
    }
    match params.generate(&inputs, SystemTime::now()) {
        Ok(parsed) => Ok(nodeboot_config::to_xml(parsed.config()).into_bytes()),
        Err(errors) => Err(errors
            .iter()
            .map(|e| match e.field.as_str() {
                "password" => "password_hash: missing (push asks for no password: put a \
                               SHA-512-crypt hash in the inventory, or write the file with \
                               nodeboot generate and name it with file = \"…\")"
                    .to_string(),
                "web_admin_password" => "web_admin_password_hash: missing (put a \
                                         SHA-512-crypt hash in the inventory)"
                    .to_string(),
                _ => e.to_string(),
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(t: &Target) -> Option<&Path> {
        match &t.source {
            Source::File(f) => Some(f),
            _ => None,
        }
    }

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
        assert_eq!(file_of(&targets[0]), Some(Path::new("/fleet/conf01.xml")));
        assert!(targets[0].fingerprint.is_some());
        assert_eq!(targets[1].endpoint.to_string(), "10.0.0.32:9443");
        assert_eq!(file_of(&targets[1]), Some(Path::new("/abs/conf02.xml")));
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
                "another node is named \"a\"",
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
        // group-readable: refused, naming the node's field and the fix
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |m| {
            std::fs::set_permissions(dir.path().join("t"), std::fs::Permissions::from_mode(m))
                .unwrap()
        };
        mode(0o640);
        let err = format!(
            "{:#}",
            targets_from_toml(text, dir.path(), &[]).unwrap_err()
        );
        assert!(err.contains("node `a`, token_file: token file "), "{err}");
        assert!(err.contains("has mode 0640"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        mode(0o600);
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

    #[test]
    fn generated_nodes_build_a_valid_document_or_name_the_missing_hash() {
        let text = r#"
            [defaults]
            role = "transcoding"
            domain = "example.com"
            netmask = "255.255.255.0"
            gateway = "10.0.0.1"
            dns = ["10.0.0.2"]
            ntp = ["10.0.0.3"]
            system_location = "London"
            management_node = "10.0.0.10"

            [[node]]
            name = "conf01"
            address = "127.0.0.1"
            hostname = "conf01"
            ip = "10.0.0.31"
            password_hash = "$6$nodebootsalt$D911Z.xpU/20.GOmWv6hQCOj3iCaPm.6.JisGFVWKxsB2gSHSPq9mnCmihYdeLhjjdIG1fNiQJdokl3zaGkzI/"

            [[node]]
            name = "conf02"
            address = "127.0.0.1"
            hostname = "conf02"
            ip = "10.0.0.32"
        "#;
        let targets = targets_from_toml(text, Path::new("."), &[]).unwrap();
        let Source::Generated { params, base } = &targets[0].source else {
            panic!("{:?}", targets[0].source)
        };
        let xml = generate(params, base).unwrap();
        let parsed = nodeboot_config::parse(&xml).unwrap();
        assert_eq!(parsed.config().hostname.as_str(), "conf01");
        let Source::Generated { params, base } = &targets[1].source else {
            panic!()
        };
        let errors = generate(params, base).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("password_hash: missing"),
            "{errors:?}"
        );
    }

    #[test]
    fn folder_inventories_pair_files_with_addresses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conf01.example.com.xml"), "x").unwrap();
        std::fs::write(dir.path().join("pexip-conf02.example.com.xml"), "y").unwrap();
        let text = "# fqdn,address\nconf01.example.com,10.0.0.31\n\
                    conf02.example.com, 10.0.0.32:9443 ,SHA256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12\n";
        let targets = targets_from_folder(text, dir.path(), &[]).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].name, "conf01.example.com");
        assert_eq!(targets[0].endpoint.to_string(), "10.0.0.31:8443");
        assert_eq!(
            file_of(&targets[0]),
            Some(dir.path().join("conf01.example.com.xml").as_path())
        );
        assert_eq!(targets[1].endpoint.to_string(), "10.0.0.32:9443");
        assert!(targets[1].fingerprint.is_some());
        assert_eq!(
            file_of(&targets[1]),
            Some(dir.path().join("pexip-conf02.example.com.xml").as_path())
        );
        let err =
            targets_from_folder("conf03.example.com,10.0.0.33\n", dir.path(), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1: no conf03.example.com.xml"),
            "{err}"
        );
        let err = targets_from_folder("a,b,c,d\n", dir.path(), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected `hostname.domain,address"),
            "{err}"
        );
    }
}
