//! `nodeboot generate`: builds a valid configuration file from flags, or from one node of an
//! inventory (`--from inventory.toml --node NAME`), hashing passwords read without echo (or
//! from stdin). The file is written only when it validates.

use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use nodeboot_config::inventory::{GenerateInputs, Inventory, NodeParams, ParamError};
use nodeboot_config::{PasswordHash, Secret, hash_password};

use crate::cmdline::GenerateArgs;

/// The flags as the inventory's parameters.
impl GenerateArgs {
    /// The parameters the flags give, with unset flags left to the inventory.
    fn params(&self) -> anyhow::Result<NodeParams> {
        let mut keys = Vec::new();
        for f in &self.authorized_key_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading --authorized-key-file {}", f.display()))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        Ok(NodeParams {
            role: self.role.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            hostname: self.hostname.clone(),
            domain: self.domain.clone(),
            system_location: self.system_location.clone(),
            ip: self.ip.clone(),
            netmask: self.netmask.clone(),
            gateway: self.gateway.clone(),
            secondary_ip: self.secondary_ip.clone(),
            secondary_netmask: self.secondary_netmask.clone(),
            ipv6: self.ipv6.clone(),
            ipv6_gateway: self.ipv6_gateway.clone(),
            static_nat: self.static_nat.clone(),
            routes: self.route.clone(),
            dns: self.dns.clone(),
            ntp: self.ntp.clone(),
            ssh: self.ssh.clone(),
            authorized_keys: keys,
            sip_tls_fqdn: self.sip_tls_fqdn.clone(),
            tls_certificate_file: self.tls_certificate_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            distributed_database: self.distributed_database,
            management_node: self.management_node.clone(),
            web_admin_user: self.web_admin_user.clone(),
            incident_reporting: self.incident_reporting,
            usage_statistics: self.usage_statistics,
            contact_email: self.contact_email.clone(),
            password_hash: None,
            web_admin_password_hash: None,
        })
    }
}

/// Where passwords come from: a no-echo prompt or stdin lines. A seam for tests of the logic
/// above it; the real ones are in [`run`].
trait PasswordSource {
    fn password(&mut self, what: &str) -> anyhow::Result<Secret<String>>;
}

struct Prompt;

impl PasswordSource for Prompt {
    fn password(&mut self, what: &str) -> anyhow::Result<Secret<String>> {
        let first = Secret::new(rpassword::prompt_password(format!("{what}: ")).context(
            "reading the password from the terminal (use --password-stdin without one)",
        )?);
        let again = Secret::new(
            rpassword::prompt_password(format!("{what} (again): "))
                .context("reading the password from the terminal")?,
        );
        if first.expose() != again.expose() {
            bail!("the two {what} entries differ");
        }
        Ok(first)
    }
}

struct StdinLines<R>(R);

impl<R: BufRead> PasswordSource for StdinLines<R> {
    fn password(&mut self, what: &str) -> anyhow::Result<Secret<String>> {
        let mut line = String::new();
        let n = self.0.read_line(&mut line).context("reading stdin")?;
        if n == 0 {
            bail!("--password-stdin: stdin ended before the {what} (one password a line)");
        }
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        Ok(Secret::new(pw))
    }
}

fn hash(source: &mut dyn PasswordSource, what: &str) -> anyhow::Result<PasswordHash> {
    let pw = source.password(what)?;
    hash_password(pw.expose()).map_err(|e| anyhow::anyhow!("{what}: {} ({})", e.message, e.help))
}

/// Resolves a path of the inventory relative to the inventory's directory.
fn relative_to(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn show_errors(errors: &[ParamError], from_flags: bool, origin: &str) -> String {
    let mut s = String::new();
    for e in errors {
        let field = if from_flags {
            format!("--{}", e.field.replace('_', "-"))
        } else {
            e.field.clone()
        };
        s.push_str(&format!("{origin}{field}: {}\n", e.message));
        if let Some(h) = &e.help {
            s.push_str(&format!("  = help: {h}\n"));
        }
    }
    s
}

/// Runs `nodeboot generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let flags = args.params()?;
    let (params, base, origin) = match (&args.from, &args.node) {
        (Some(inv_path), Some(node)) => {
            let text = std::fs::read_to_string(inv_path)
                .with_context(|| format!("reading {}", inv_path.display()))?;
            let inv = Inventory::parse(&text).map_err(|errs| {
                let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!("{}: {}", inv_path.display(), lines.join("\n"))
            })?;
            let Some(n) = inv.node(node) else {
                let names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
                bail!(
                    "{}: no node named {node:?} (nodes: {})",
                    inv_path.display(),
                    names.join(", ")
                );
            };
            if let Some(f) = &n.file {
                bail!(
                    "{}: node {node:?} names an existing file ({}); nothing to generate",
                    inv_path.display(),
                    f.display()
                );
            }
            (
                flags.merged_over(&n.params),
                inv_path.parent().map(Path::to_path_buf),
                format!("{}: node {node:?}: ", inv_path.display()),
            )
        }
        _ => (flags, None, "nodeboot generate: ".to_owned()),
    };
    let from_flags = args.from.is_none();

    // Report missing parameters before asking for any password.
    let mut inputs = GenerateInputs::default();
    let mut missing: Vec<ParamError> = params
        .missing(&inputs)
        .into_iter()
        .filter(|e| e.field != "password" && e.field != "web_admin_password")
        .collect();
    if !missing.is_empty() {
        missing.sort_by(|a, b| a.field.cmp(&b.field));
        eprint!("{}", show_errors(&missing, from_flags, &origin));
        return Ok(ExitCode::FAILURE);
    }

    if let (Some(c), Some(k)) = (&params.tls_certificate_file, &params.tls_key_file) {
        let c = relative_to(base.as_deref(), c);
        let k = relative_to(base.as_deref(), k);
        let cert =
            std::fs::read_to_string(&c).with_context(|| format!("reading {}", c.display()))?;
        let key =
            std::fs::read_to_string(&k).with_context(|| format!("reading {}", k.display()))?;
        inputs.tls = Some((cert, Secret::new(key)));
    }

    let mut source: Box<dyn PasswordSource> = if args.password_stdin {
        Box::new(StdinLines(std::io::stdin().lock()))
    } else {
        Box::new(Prompt)
    };
    if params.password_hash.is_none() {
        inputs.password_hash = Some(hash(source.as_mut(), "OS admin password")?);
    }
    if params.is_management() && params.web_admin_password_hash.is_none() {
        inputs.web_admin_password_hash = Some(hash(source.as_mut(), "web admin password")?);
    }

    let parsed = match params.generate(&inputs, SystemTime::now()) {
        Ok(p) => p,
        Err(errors) => {
            eprint!("{}", show_errors(&errors, from_flags, &origin));
            return Ok(ExitCode::FAILURE);
        }
    };
    let xml = nodeboot_config::to_xml(parsed.config());
    // Belt and braces: what is written must read back as the same configuration.
    match nodeboot_config::parse(xml.as_bytes()) {
        Ok(again) if again.config() == parsed.config() => {}
        _ => bail!("internal error: the generated document does not read back the same"),
    }
    for w in parsed.warnings() {
        eprintln!("warning: {}", w.message);
    }

    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.xml", parsed.config().fqdn())));
    if out.as_os_str() == "-" {
        let mut so = std::io::stdout().lock();
        so.write_all(xml.as_bytes())?;
        so.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    write_file(&out, xml.as_bytes(), args.force)?;
    eprintln!(
        "wrote {} ({} configuration for {})",
        out.display(),
        parsed.config().role(),
        parsed.config().fqdn()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the file readable by its owner only (it holds password hashes); refuses to replace
/// an existing file unless `force`.
fn write_file(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists; use --force to overwrite it or -o to choose another name",
                path.display()
            )
        } else {
            anyhow::anyhow!("creating {}: {e}", path.display())
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_passwords_are_one_a_line() {
        let mut s = StdinLines(std::io::Cursor::new("first pw\r\nsecond\n"));
        assert_eq!(s.password("a").unwrap().expose(), "first pw");
        assert_eq!(s.password("b").unwrap().expose(), "second");
        let e = s.password("web admin password").unwrap_err().to_string();
        assert!(
            e.contains("stdin ended before the web admin password"),
            "{e}"
        );
    }
}
