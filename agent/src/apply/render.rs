//! Rendering: a validated [`NodeConfig`] → the [`Plan`] of files a Debian 12 node reads.
//!
//! Pure functions: the few existing files that are edited rather than owned (`/etc/shadow`,
//! `/etc/hosts`) and the root's `/etc/passwd` come in as [`Inputs`]; nothing here reads or
//! writes the disk. The agent's own bookkeeping files (applied XML, apply record) are added by
//! `state`, not here. See docs/apply.md for why each file looks the way it does.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use nodeboot_config::{Ipv4Interface, NodeConfig, RoleSettings, SshMode};
use serde::Serialize;

use super::plan::{DirSpec, Mask, Owner, Plan};

/// systemd-networkd unit for eth0.
pub const ETH0_NETWORK: &str = "/etc/systemd/network/10-nodeboot-eth0.network";
/// systemd-networkd unit for eth1 (removed when eth1 is not configured).
pub const ETH1_NETWORK: &str = "/etc/systemd/network/10-nodeboot-eth1.network";
/// The static host name.
pub const HOSTNAME: &str = "/etc/hostname";
/// Host table: our lines are edited in, every other line kept byte for byte.
pub const HOSTS: &str = "/etc/hosts";
/// Resolver configuration, written directly (no systemd-resolved on the image).
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The targets an image may hold as a symbolic link (systemd-resolved's or resolvconf's
/// `/etc/resolv.conf`): replaced whole, never followed, and put back by `reset`. A link at any
/// other target is refused.
pub const REPLACEABLE_LINKS: &[&str] = &[RESOLV_CONF];
/// chrony's configuration (chrony is the time daemon, see docs/apply.md).
pub const CHRONY_CONF: &str = "/etc/chrony/chrony.conf";
/// Shadow passwords: only the `admin` line is edited.
pub const SHADOW: &str = "/etc/shadow";
/// The account database, read to find `admin`'s uid, gid and home.
pub const PASSWD: &str = "/etc/passwd";
/// sshd settings drop-in (Debian's sshd_config includes `sshd_config.d/*.conf`).
pub const SSHD_DROPIN: &str = "/etc/ssh/sshd_config.d/50-nodeboot.conf";
/// Debian's ssh.service has `ConditionPathExists=!/etc/ssh/sshd_not_to_be_run`: this file
/// present means SSH off.
pub const SSHD_OFF_MARKER: &str = "/etc/ssh/sshd_not_to_be_run";
/// The node's TLS certificate chain (PEM).
pub const TLS_CERT: &str = "/etc/nodeboot/tls/node.crt";
/// The node's TLS private key (PEM, 0600).
pub const TLS_KEY: &str = "/etc/nodeboot/tls/node.key";
/// The node identity the platform's services read (JSON, 0600: it may hold a password hash).
pub const IDENTITY: &str = "/etc/nodeboot/node.json";
/// The OS account the configuration's password hash and SSH keys belong to.
pub const ADMIN_USER: &str = "admin";

const HEADER: &str =
    "# Written by nodeboot-agent from the node configuration; an apply replaces it.\n";
/// Marks the `/etc/hosts` lines that nodeboot owns.
pub const HOSTS_MARKER: &str = "# nodeboot";

/// A file as found under the root, for files that are edited rather than replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct ExistingFile {
    /// Its bytes.
    pub content: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub owner: Owner,
}

impl fmt::Debug for ExistingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExistingFile")
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("owner", &self.owner)
            .finish()
    }
}

/// What rendering needs from the node besides the configuration.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Now, in seconds since the epoch (the shadow "last changed" day).
    pub now_unix: u64,
    /// The root's `/etc/passwd`.
    pub passwd: Vec<u8>,
    /// The root's `/etc/shadow`.
    pub shadow: ExistingFile,
    /// The root's `/etc/hosts`, if it has one.
    pub hosts: Option<ExistingFile>,
}

/// The node image lacks something rendering needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RenderError {
    /// The file inside the root, e.g. `/etc/passwd`.
    pub path: String,
    /// What is missing and what the image needs.
    pub message: String,
}

/// The `admin` account as the root's `/etc/passwd` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// uid and gid.
    pub owner: Owner,
    /// Home directory (absolute inside the root).
    pub home: String,
}

/// Renders every file a node's configuration turns into.
pub fn render(config: &NodeConfig, inputs: &Inputs) -> Result<Plan, RenderError> {
    let admin = find_account(&inputs.passwd, ADMIN_USER)?;
    let mut plan = Plan {
        replaceable_links: REPLACEABLE_LINKS.iter().map(PathBuf::from).collect(),
        ..Plan::default()
    };

    // Network.
    let (eth0, eth1) = render_networkd(config);
    plan.write(ETH0_NETWORK, eth0, 0o644, Owner::ROOT, Mask::None);
    match eth1 {
        Some(unit) => plan.write(ETH1_NETWORK, unit, 0o644, Owner::ROOT, Mask::None),
        None => plan.remove(ETH1_NETWORK),
    }

    // Names.
    plan.write(
        HOSTNAME,
        format!("{}\n", config.hostname),
        0o644,
        Owner::ROOT,
        Mask::None,
    );
    let (hosts_content, hosts_mode, hosts_owner) = match &inputs.hosts {
        Some(h) => (h.content.as_slice(), h.mode, h.owner),
        None => (DEFAULT_HOSTS.as_bytes(), 0o644, Owner::ROOT),
    };
    plan.write(
        HOSTS,
        replace_owned_hosts_lines(hosts_content, &hosts_lines(config)),
        hosts_mode,
        hosts_owner,
        Mask::None,
    );
    plan.write(
        RESOLV_CONF,
        render_resolv_conf(config),
        0o644,
        Owner::ROOT,
        Mask::None,
    );
    plan.write(
        CHRONY_CONF,
        render_chrony_conf(config),
        0o644,
        Owner::ROOT,
        Mask::None,
    );

    // The admin account.
    let days = inputs.now_unix / 86_400;
    let shadow = set_shadow_password(
        &inputs.shadow.content,
        ADMIN_USER,
        config.ssh.password_hash.expose(),
        days,
    )
    .ok_or_else(|| RenderError {
        path: SHADOW.into(),
        message: format!(
            "no {ADMIN_USER:?} line; the image must have an {ADMIN_USER} account (useradd {ADMIN_USER})"
        ),
    })?;
    plan.write(
        SHADOW,
        shadow,
        inputs.shadow.mode,
        inputs.shadow.owner,
        Mask::ShadowHashes,
    );
    let home = admin.home.trim_end_matches('/');
    let ssh_dir = format!("{home}/.ssh");
    plan.dirs.push(DirSpec {
        path: home.into(),
        mode: 0o700,
        owner: admin.owner,
        owned: true,
    });
    plan.dirs.push(DirSpec {
        path: ssh_dir.clone().into(),
        mode: 0o700,
        owner: admin.owner,
        owned: true,
    });
    plan.write(
        format!("{ssh_dir}/authorized_keys"),
        render_authorized_keys(config),
        0o600,
        admin.owner,
        Mask::None,
    );

    // SSH on or off.
    plan.write(
        SSHD_DROPIN,
        render_sshd_dropin(),
        0o644,
        Owner::ROOT,
        Mask::None,
    );
    if ssh_enabled(config.ssh.mode) {
        plan.remove(SSHD_OFF_MARKER);
    } else {
        plan.write(
            SSHD_OFF_MARKER,
            format!(
                "{}SSH is off for this node (ssh enabled=\"off\").\n",
                HEADER
            ),
            0o644,
            Owner::ROOT,
            Mask::None,
        );
    }

    // TLS and identity.
    plan.dirs.push(DirSpec {
        path: "/etc/nodeboot/tls".into(),
        mode: 0o700,
        owner: Owner::ROOT,
        owned: false,
    });
    let tls = match &config.role {
        RoleSettings::Transcoding(c) | RoleSettings::Proxying(c) => c.tls.as_ref(),
        RoleSettings::Management(_) => None,
    };
    match tls {
        Some(t) => {
            let mut chain = t.certificate_chain_pem.clone();
            if !chain.ends_with('\n') {
                chain.push('\n');
            }
            let mut key = t.private_key_pem.expose().clone();
            if !key.ends_with('\n') {
                key.push('\n');
            }
            plan.write(TLS_CERT, chain, 0o644, Owner::ROOT, Mask::None);
            plan.write(TLS_KEY, key, 0o600, Owner::ROOT, Mask::Whole);
        }
        None => {
            plan.remove(TLS_CERT);
            plan.remove(TLS_KEY);
        }
    }
    let (identity, secrets) = render_identity(config, tls.is_some());
    plan.write(
        IDENTITY,
        identity,
        0o600,
        Owner::ROOT,
        Mask::Values(secrets),
    );
    Ok(plan)
}

/// Whether SSH serves on the node: `global` follows the platform-wide "Enable SSH" setting,
/// whose default is on; the node starts with that default and the platform may change it later.
pub fn ssh_enabled(mode: SshMode) -> bool {
    !matches!(mode, SshMode::Off)
}

/// The interface (0 = eth0, 1 = eth1) whose subnet holds `addr`; eth0 when neither does.
fn interface_for(config: &NodeConfig, addr: Ipv4Addr) -> usize {
    let on = |i: &Ipv4Interface| i.subnet().contains(&addr);
    if on(&config.network.ipv4.interface) {
        0
    } else if config.network.secondary_ipv4.as_ref().is_some_and(on) {
        1
    } else {
        0
    }
}

/// The systemd-networkd `.network` units for eth0 and, when configured, eth1.
pub fn render_networkd(config: &NodeConfig) -> (String, Option<String>) {
    let net = &config.network;
    let gateway_on = interface_for(config, net.ipv4.gateway);
    let mut eth0 = String::new();
    let _ = write!(eth0, "{HEADER}\n[Match]\nName=eth0\n\n[Network]\n");
    let _ = writeln!(eth0, "Address={}", net.ipv4.interface);
    if gateway_on == 0 {
        let _ = writeln!(eth0, "Gateway={}", net.ipv4.gateway);
    }
    match &net.ipv6 {
        Some(v6) => {
            let _ = writeln!(eth0, "Address={}", v6.interface);
            match v6.gateway {
                Some(g) => {
                    let _ = writeln!(eth0, "Gateway={g}\nIPv6AcceptRA=no");
                }
                None => eth0.push_str("IPv6AcceptRA=yes\n"),
            }
        }
        None => eth0.push_str("IPv6AcceptRA=no\n"),
    }
    for dns in &net.dns_servers {
        let _ = writeln!(eth0, "DNS={dns}");
    }
    let _ = writeln!(eth0, "Domains={}", config.domain);

    let mut eth1 = net.secondary_ipv4.as_ref().map(|iface| {
        let mut s = String::new();
        let _ = write!(s, "{HEADER}\n[Match]\nName=eth1\n\n[Network]\n");
        let _ = writeln!(s, "Address={iface}");
        if gateway_on == 1 {
            let _ = writeln!(s, "Gateway={}", net.ipv4.gateway);
        }
        s.push_str("IPv6AcceptRA=no\n");
        s
    });
    for route in &net.routes {
        let unit = match (interface_for(config, route.gateway), eth1.as_mut()) {
            (1, Some(u)) => u,
            _ => &mut eth0,
        };
        let _ = write!(
            unit,
            "\n# {}\n[Route]\nDestination={}\nGateway={}\n",
            route.name.replace('\n', " "),
            route.destination,
            route.gateway
        );
    }
    (eth0, eth1)
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\t\tlocalhost ip6-localhost ip6-loopback\n\
ff02::1\t\tip6-allnodes\n\
ff02::2\t\tip6-allrouters\n";

/// nodeboot's own `/etc/hosts` lines: the node's addresses with its FQDN and short name.
pub fn hosts_lines(config: &NodeConfig) -> Vec<String> {
    let fqdn = format!("{}.{}", config.hostname, config.domain);
    let mut lines = vec![format!(
        "{}\t{fqdn} {}\t{HOSTS_MARKER}",
        config.network.ipv4.interface.address(),
        config.hostname
    )];
    if let Some(v6) = &config.network.ipv6 {
        lines.push(format!(
            "{}\t{fqdn} {}\t{HOSTS_MARKER}",
            v6.interface.address(),
            config.hostname
        ));
    }
    lines
}

/// True for a `/etc/hosts` line nodeboot replaces: one it marked, or Debian's `127.0.1.1`
/// line for the image's generic host name.
fn is_owned_hosts_line(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    text.ends_with(HOSTS_MARKER) || text.split_whitespace().next() == Some("127.0.1.1")
}

/// The lines of a hosts file that [`replace_owned_hosts_lines`] would replace.
pub fn owned_hosts_lines(content: &[u8]) -> Vec<String> {
    content
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| is_owned_hosts_line(l))
        .map(|l| String::from_utf8_lossy(l).trim_end_matches('\n').to_owned())
        .collect()
}

/// Replaces the owned lines of a hosts file with `new_lines`, keeping every other line byte
/// for byte. The new lines go where the first owned line was, else after the last
/// `127.0.0.1` line, else first.
pub fn replace_owned_hosts_lines(content: &[u8], new_lines: &[String]) -> Vec<u8> {
    let lines: Vec<&[u8]> = content.split_inclusive(|b| *b == b'\n').collect();
    let first_owned = lines.iter().position(|l| is_owned_hosts_line(l));
    let insert_at = first_owned.unwrap_or_else(|| {
        lines
            .iter()
            .rposition(|l| l.split(|b| b.is_ascii_whitespace()).next() == Some(b"127.0.0.1"))
            .map_or(0, |i| i + 1)
    });
    let mut out = Vec::with_capacity(content.len() + 128);
    let push_new = |out: &mut Vec<u8>| {
        if out.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
        for l in new_lines {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
    };
    for (i, line) in lines.iter().enumerate() {
        if i == insert_at {
            push_new(&mut out);
        }
        if !is_owned_hosts_line(line) {
            out.extend_from_slice(line);
        }
    }
    if insert_at >= lines.len() {
        push_new(&mut out);
    }
    out
}

/// The line of `user` in a shadow (or passwd) file, without its newline.
pub fn account_line<'a>(content: &'a [u8], user: &str) -> Option<&'a [u8]> {
    let prefix = format!("{user}:");
    content
        .split(|b| *b == b'\n')
        .find(|l| l.starts_with(prefix.as_bytes()))
}

/// Replaces the line of `user` with `new_line`, every other byte unchanged; `None` when the
/// file has no such line.
pub fn replace_account_line(content: &[u8], user: &str, new_line: &[u8]) -> Option<Vec<u8>> {
    let prefix = format!("{user}:");
    let mut found = false;
    let mut out = Vec::with_capacity(content.len() + 128);
    for line in content.split_inclusive(|b| *b == b'\n') {
        if !found && line.starts_with(prefix.as_bytes()) {
            found = true;
            out.extend_from_slice(new_line);
            if line.ends_with(b"\n") {
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    found.then_some(out)
}

/// The `:`-separated fields of `user`'s line in a shadow file, padded with empty fields to
/// the nine of shadow(5); `None` when the file has no such line. The one reader of
/// `/etc/shadow` lines: the apply edits through it, the wizard reads the admin hash with it.
pub fn shadow_fields<'a>(content: &'a [u8], user: &str) -> Option<Vec<&'a [u8]>> {
    let line = account_line(content, user)?;
    let mut fields: Vec<&[u8]> = line.split(|b| *b == b':').collect();
    if fields.len() < 9 {
        fields.resize(9, b"");
    }
    Some(fields)
}

/// Sets `user`'s password hash and "last changed" day (which also lifts an expired-password
/// state the image may have set) in a shadow file; other fields and lines are kept.
pub fn set_shadow_password(content: &[u8], user: &str, hash: &str, days: u64) -> Option<Vec<u8>> {
    let mut fields = shadow_fields(content, user)?;
    let days = days.to_string();
    fields[1] = hash.as_bytes();
    fields[2] = days.as_bytes();
    replace_account_line(content, user, &fields.join(&b':'))
}

/// Finds an account's uid, gid and home in a passwd file.
pub fn find_account(passwd: &[u8], user: &str) -> Result<Account, RenderError> {
    let err = |message: String| RenderError {
        path: PASSWD.into(),
        message,
    };
    let line = account_line(passwd, user).ok_or_else(|| {
        err(format!(
            "no {user:?} account; the image must have one (useradd -m {user})"
        ))
    })?;
    let line = String::from_utf8_lossy(line);
    let fields: Vec<&str> = line.split(':').collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
    match (num(2), num(3), fields.get(5)) {
        (Some(uid), Some(gid), Some(home)) if home.starts_with('/') => Ok(Account {
            owner: Owner { uid, gid },
            home: (*home).to_owned(),
        }),
        _ => Err(err(format!(
            "the {user:?} line is not \"name:x:uid:gid:gecos:/home:shell\""
        ))),
    }
}

/// `/etc/resolv.conf`: search domain and name servers (glibc reads the first three).
pub fn render_resolv_conf(config: &NodeConfig) -> String {
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "search {}", config.domain);
    for dns in &config.network.dns_servers {
        let _ = writeln!(s, "nameserver {dns}");
    }
    s
}

/// chrony's configuration: the configured servers only (no default pool), step the clock at
/// boot if it is far off, keep the RTC in sync.
pub fn render_chrony_conf(config: &NodeConfig) -> String {
    let mut s = String::from(HEADER);
    for server in &config.network.ntp_servers {
        let _ = writeln!(s, "server {server} iburst");
    }
    s.push_str(
        "driftfile /var/lib/chrony/chrony.drift\n\
         makestep 1 3\n\
         rtcsync\n\
         leapsectz right/UTC\n\
         logdir /var/log/chrony\n",
    );
    s
}

/// `~admin/.ssh/authorized_keys`.
pub fn render_authorized_keys(config: &NodeConfig) -> String {
    let mut s = String::from(HEADER);
    for key in &config.ssh.authorized_keys {
        let _ = writeln!(s, "{}", key.as_str());
    }
    s
}

/// sshd settings (on or off is the marker file, not this): no root login, `admin` logs in
/// with its password or a key.
pub fn render_sshd_dropin() -> String {
    format!(
        "{HEADER}PermitRootLogin no\nPubkeyAuthentication yes\nPasswordAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys\n"
    )
}

#[derive(Serialize)]
struct Identity<'a> {
    schema: u32,
    role: &'static str,
    name: &'a str,
    description: Option<&'a str>,
    hostname: &'a str,
    domain: &'a str,
    fqdn: String,
    system_location: Option<&'a str>,
    static_nat: Option<Ipv4Addr>,
    sip_tls_fqdn: Option<&'a str>,
    management_node: Option<String>,
    distributed_database: Option<bool>,
    ssh: SshIdentity,
    tls: Option<TlsIdentity>,
    management: Option<ManagementIdentity<'a>>,
    ipv4_address: IpAddr,
}

#[derive(Serialize)]
struct SshIdentity {
    mode: SshMode,
    enabled: bool,
}

#[derive(Serialize)]
struct TlsIdentity {
    certificate: &'static str,
    private_key: &'static str,
}

#[derive(Serialize)]
struct ManagementIdentity<'a> {
    web_admin_username: &'a str,
    web_admin_password_hash: &'a str,
    incident_reporting: bool,
    usage_statistics: bool,
    contact_email: Option<&'a str>,
}

/// The node identity JSON and the secrets it contains (for masking).
pub fn render_identity(config: &NodeConfig, has_tls: bool) -> (String, Vec<String>) {
    let (location, nat_role_fields, management) = match &config.role {
        RoleSettings::Management(m) => (
            None,
            None,
            Some(ManagementIdentity {
                web_admin_username: m.web_admin.username.as_str(),
                web_admin_password_hash: m.web_admin.password_hash.expose(),
                incident_reporting: m.incident_reporting,
                usage_statistics: m.usage_statistics,
                contact_email: m.contact_email.as_ref().map(|e| e.as_str()),
            }),
        ),
        RoleSettings::Transcoding(c) | RoleSettings::Proxying(c) => {
            (Some(c.system_location.as_str()), Some(c), None)
        }
    };
    let secrets = management
        .as_ref()
        .map(|m| vec![m.web_admin_password_hash.to_owned()])
        .unwrap_or_default();
    let identity = Identity {
        schema: 1,
        role: config.role().as_str(),
        name: &config.name,
        description: config.description.as_deref(),
        hostname: config.hostname.as_str(),
        domain: config.domain.as_str(),
        fqdn: format!("{}.{}", config.hostname, config.domain),
        system_location: location,
        static_nat: config.network.static_nat,
        sip_tls_fqdn: nat_role_fields.and_then(|c| c.sip_tls_fqdn.as_ref().map(|d| d.as_str())),
        management_node: nat_role_fields.map(|c| c.management_node.to_string()),
        distributed_database: nat_role_fields.map(|c| c.distributed_database),
        ssh: SshIdentity {
            mode: config.ssh.mode,
            enabled: ssh_enabled(config.ssh.mode),
        },
        tls: has_tls.then_some(TlsIdentity {
            certificate: TLS_CERT,
            private_key: TLS_KEY,
        }),
        management,
        ipv4_address: IpAddr::V4(config.network.ipv4.interface.address()),
    };
    let mut json = serde_json::to_string_pretty(&identity).unwrap_or_default();
    json.push('\n');
    (json, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keeps_foreign_lines_and_replaces_the_generic_name() {
        let old = b"127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n# mine\n10.9.9.9 other # x\n";
        let new =
            replace_owned_hosts_lines(old, &["10.0.0.31\tn.example.com n\t# nodeboot".into()]);
        assert_eq!(
            String::from_utf8(new.clone()).unwrap(),
            "127.0.0.1\tlocalhost\n10.0.0.31\tn.example.com n\t# nodeboot\n# mine\n10.9.9.9 other # x\n"
        );
        // applying again replaces our own line in place
        let again =
            replace_owned_hosts_lines(&new, &["10.0.0.32\tn.example.com n\t# nodeboot".into()]);
        assert_eq!(
            String::from_utf8(again).unwrap(),
            "127.0.0.1\tlocalhost\n10.0.0.32\tn.example.com n\t# nodeboot\n# mine\n10.9.9.9 other # x\n"
        );
        // no owned line, no 127.0.0.1, no final newline
        assert_eq!(
            replace_owned_hosts_lines(b"::1 localhost", &["x # nodeboot".into()]),
            b"x # nodeboot\n::1 localhost".to_vec()
        );
        assert_eq!(
            replace_owned_hosts_lines(b"127.0.0.1 localhost", &["x # nodeboot".into()]),
            b"127.0.0.1 localhost\nx # nodeboot\n".to_vec()
        );
    }

    #[test]
    fn shadow_edits_only_the_admin_line() {
        let old = b"root:*:19000:0:99999:7:::\nadmin:!:0:0:99999:7:::\nbob:$y$x:19001:0:99999:7:::";
        let new = set_shadow_password(old, "admin", "$6$s$h", 20000).unwrap();
        assert_eq!(
            new,
            b"root:*:19000:0:99999:7:::\nadmin:$6$s$h:20000:0:99999:7:::\nbob:$y$x:19001:0:99999:7:::"
                .to_vec()
        );
        assert_eq!(
            set_shadow_password(b"root:*:1::::::\n", "admin", "h", 1),
            None
        );
        // a short line is padded to nine fields
        assert_eq!(
            set_shadow_password(b"admin:x\n", "admin", "h", 5).unwrap(),
            b"admin:h:5::::::\n".to_vec()
        );
    }

    use proptest::prelude::*;

    fn foreign_line() -> impl Strategy<Value = String> {
        // any printable text, tabs and trailing spaces included, that is not one of ours
        "[ -~\t]{0,40}".prop_filter("not an owned line", |l| {
            !l.starts_with("admin:")
                && !is_owned_hosts_line(l.as_bytes())
                && !l.trim_end().ends_with(HOSTS_MARKER)
        })
    }

    proptest! {
        #[test]
        fn shadow_foreign_lines_survive(
            before in proptest::collection::vec(foreign_line(), 0..6),
            after in proptest::collection::vec(foreign_line(), 0..6),
            final_newline in any::<bool>(),
        ) {
            let mut text = before.join("\n");
            if !before.is_empty() { text.push('\n'); }
            text.push_str("admin:!:0:0:99999:7:::");
            for l in &after { text.push('\n'); text.push_str(l); }
            if final_newline { text.push('\n'); }
            let out = set_shadow_password(text.as_bytes(), "admin", "$6$s$h", 7).unwrap();
            let expected = text.replace("admin:!:0:0:99999:7:::", "admin:$6$s$h:7:0:99999:7:::");
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }

        #[test]
        fn hosts_foreign_lines_survive_in_order(
            lines in proptest::collection::vec(foreign_line(), 0..8),
            generic_at in 0usize..8,
        ) {
            let mut all: Vec<String> = lines.clone();
            all.insert(generic_at.min(all.len()), "127.0.1.1\tdebian".into());
            let text = all.join("\n") + "\n";
            let ours = vec![format!("10.0.0.1\tn.example.com n\t{HOSTS_MARKER}")];
            let out = String::from_utf8(replace_owned_hosts_lines(text.as_bytes(), &ours)).unwrap();
            let kept: Vec<&str> = out.lines().filter(|l| !l.ends_with(HOSTS_MARKER)).collect();
            prop_assert_eq!(kept, lines.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(out.lines().filter(|l| l.ends_with(HOSTS_MARKER)).count(), 1);
            // applying the same lines again changes nothing
            let again = replace_owned_hosts_lines(out.as_bytes(), &ours);
            prop_assert_eq!(String::from_utf8(again).unwrap(), out);
        }
    }

    #[test]
    fn accounts_come_from_the_given_passwd() {
        let passwd =
            b"root:x:0:0:root:/root:/bin/bash\nadmin:x:1001:1002:,,,:/home/admin:/bin/bash\n";
        assert_eq!(
            find_account(passwd, "admin").unwrap(),
            Account {
                owner: Owner {
                    uid: 1001,
                    gid: 1002
                },
                home: "/home/admin".into()
            }
        );
        let e = find_account(b"root:x:0:0::/root:/bin/sh\n", "admin").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/passwd: no \"admin\" account; the image must have one (useradd -m admin)"
        );
        let e = find_account(b"admin:x:zz:0::/home/admin:/bin/sh\n", "admin").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/passwd: the \"admin\" line is not \"name:x:uid:gid:gecos:/home:shell\""
        );
    }
}
