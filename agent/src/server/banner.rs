//! What the node's console shows above the login prompt while it waits for its configuration:
//! every URL the endpoint is reachable at and the certificate fingerprint. Also finds the
//! node's addresses and host name (the certificate's names and the URLs).
//!
//! Rendering is pure ([`render_banner`], [`urls`]); [`write_banner`] puts the text where getty
//! reads it (`<root>/run/issue.d/nodeboot.issue`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::rootfs::{Root, RootError, name};

/// Where the banner is written, relative to the root. agetty shows every `*.issue` file of
/// `/run/issue.d/` (and `/etc/issue.d/`) before the login prompt.
pub const BANNER_PATH: &str = "run/issue.d/nodeboot.issue";
const BANNER_DIR: &str = "run/issue.d";
const BANNER_FILE: &str = "nodeboot.issue";

/// Every address of the node's interfaces (up or not), IPv6 link-local ones left out (a URL
/// cannot carry their zone portably). Sorted: IPv4 first, loopback last.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(addr) = ifa.address else { continue };
            let ip = if let Some(v4) = addr.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                let ip = v6.ip();
                if (ip.segments()[0] & 0xffc0) == 0xfe80 {
                    continue;
                }
                IpAddr::V6(ip)
            } else {
                continue;
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6(), *ip));
    out
}

/// The node's host name, or `localhost` when it has none.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The URLs an operator can open: one per address when listening on all addresses
/// (loopback only when there is nothing else), else the one address listened on.
pub fn urls(listen: SocketAddr, addresses: &[IpAddr]) -> Vec<String> {
    let port = listen.port();
    let ips: Vec<IpAddr> = if listen.ip().is_unspecified() {
        let want_v6 = listen.ip().is_ipv6();
        let candidates: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|ip| want_v6 || ip.is_ipv4())
            .collect();
        let outside: Vec<IpAddr> = candidates
            .iter()
            .copied()
            .filter(|ip| !ip.is_loopback())
            .collect();
        if outside.is_empty() {
            candidates
        } else {
            outside
        }
    } else {
        vec![listen.ip()]
    };
    ips.iter()
        .map(|ip| format!("https://{}/", SocketAddr::new(*ip, port)))
        .collect()
}

/// The banner text. Plain ASCII with no backslash, so getty prints it as it is.
pub fn render_banner(urls: &[String], fingerprint: &str, configured: bool) -> String {
    let mut s = String::new();
    if configured {
        s.push_str("nodeboot: this node's configuration has been applied.\n");
        s.push_str("Status: ");
        for url in urls {
            s.push_str(&format!("{url}api/v1/status "));
        }
        s.push('\n');
    } else {
        s.push_str("nodeboot: this node is waiting for its configuration.\n");
        s.push_str("Upload it (browser, curl or `nodeboot push`) at:\n");
        for url in urls {
            s.push_str(&format!("    {url}\n"));
        }
    }
    s.push_str(&format!("Certificate fingerprint:\n    {fingerprint}\n\n"));
    s
}

/// Outside text as one banner line: printable ASCII without a backslash (getty reads `\`
/// escapes), cut to 200 characters.
pub fn ascii_line(s: &str) -> String {
    let line: String = nodeboot_config::text::printable_line(s)
        .chars()
        .map(|c| match c {
            '\\' => '/',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .collect();
    crate::server::status::shorten(&line, 200).replace('…', "...")
}

/// The banner's note of the checks after the reboot: the summary line, each failed check
/// (at most 20), and when the read-only status window ends.
pub fn render_health_note(h: &nodeboot_config::api::HealthStatus, window_ends_unix: u64) -> String {
    let mut s = format!(
        "nodeboot: checks after the reboot: {}\n",
        ascii_line(&h.summary())
    );
    for c in h.report.failures().take(20) {
        s.push_str(&format!(
            "    failed: {} {}: {}\n",
            c.kind,
            ascii_line(&c.subject),
            ascii_line(&c.reason)
        ));
    }
    s.push_str(&format!(
        "The status is served read-only until {}.\n\n",
        crate::server::window::hh_mm_utc(window_ends_unix)
    ));
    s
}

/// The banner's note of a rollback, for the top of the banner: `rolled back: <reason>` and
/// each check that failed (at most 20).
pub fn render_rolled_back_note(r: &nodeboot_config::api::RolledBack) -> String {
    let mut s = format!(
        "nodeboot: ROLLED BACK. {}\n    The configuration sha256 {} was undone; the node is \
         back in its generic state.\n",
        ascii_line(&r.summary()),
        ascii_line(&r.digest)
    );
    for c in r.checks.iter().filter(|c| !c.passed).take(20) {
        s.push_str(&format!(
            "    failed: {} {}: {}\n",
            c.kind,
            ascii_line(&c.subject),
            ascii_line(&c.reason)
        ));
    }
    s.push('\n');
    s
}

/// The banner's note of a configuration source that failed closed: "configuration from
/// <origin> is invalid:" and its findings, at most 20 lines, ASCII with no backslash (getty
/// reads `\` escapes), each line cut to 200 characters.
pub fn render_source_note(r: &nodeboot_config::api::SourceReport) -> String {
    use nodeboot_config::api::SourceOutcome;
    let ascii = ascii_line;
    let mut s = String::new();
    match &r.outcome {
        SourceOutcome::Invalid { findings } => {
            s.push_str(&format!(
                "nodeboot: configuration from {} is invalid; nothing was applied:\n",
                ascii(&r.origin)
            ));
            for f in findings.iter().take(20) {
                let at = if f.line > 0 {
                    format!("line {}, column {}: ", f.line, f.column)
                } else if f.path.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", f.path)
                };
                s.push_str(&format!("    {}\n", ascii(&format!("{at}{}", f.message))));
            }
        }
        SourceOutcome::Unreadable { message } => s.push_str(&format!(
            "nodeboot: configuration from {} cannot be read; nothing was applied:\n    {}\n",
            ascii(&r.origin),
            ascii(message)
        )),
        SourceOutcome::RolledBack {
            reason, at_unix, ..
        } => s.push_str(&format!(
            "nodeboot: configuration from {} is not applied again:\n    {}\n",
            ascii(&r.origin),
            ascii(&crate::source::rolled_back_text(*at_unix, reason))
        )),
    }
    s
}

/// Writes the banner to `<root>/run/issue.d/nodeboot.issue` (a new temporary file, rename),
/// mode 0644, through [`crate::rootfs`]: a link at `run`, `run/issue.d` or either name is
/// refused, never followed. No fsync: `/run` is a tmpfs, rewritten at every start.
pub fn write_banner(root: &Path, text: &str) -> Result<PathBuf, RootError> {
    let root = Root::open(root)?;
    let (dir, file) = (Path::new(BANNER_DIR), name(BANNER_FILE));
    let dir = root.create_dir_all(dir, 0o755)?;
    dir.write_replace(file, text.as_bytes(), 0o644, None, false)?;
    Ok(dir.host_of(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_note_of_a_rolled_back_configuration_says_so_with_the_reason() {
        use nodeboot_config::api::{SourceOutcome, SourceReport};
        let r = SourceReport {
            origin: "/etc/nodeboot/node.xml".into(),
            outcome: SourceOutcome::RolledBack {
                digest: "ab".into(),
                reason: "gateway 10.0.2.1 did not answer ARP on eth0 within 120 s".into(),
                at_unix: 1_796_000_000,
            },
        };
        assert_eq!(
            render_source_note(&r),
            "nodeboot: configuration from /etc/nodeboot/node.xml is not applied again:\n    \
             rolled back on 2026-11-30 00:53:20 UTC: gateway 10.0.2.1 did not answer ARP on eth0 \
             within 120 s\n"
        );
    }

    #[test]
    fn urls_for_every_outside_address_when_listening_everywhere() {
        let addrs = ips(&[
            "10.0.0.31",
            "192.168.1.5",
            "2001:db8::31",
            "127.0.0.1",
            "::1",
        ]);
        assert_eq!(
            urls("0.0.0.0:8443".parse().unwrap(), &addrs),
            ["https://10.0.0.31:8443/", "https://192.168.1.5:8443/"]
        );
        assert_eq!(
            urls("[::]:8443".parse().unwrap(), &addrs),
            [
                "https://10.0.0.31:8443/",
                "https://192.168.1.5:8443/",
                "https://[2001:db8::31]:8443/"
            ]
        );
    }

    #[test]
    fn urls_fall_back_to_loopback_and_to_the_listen_address() {
        let addrs = ips(&["127.0.0.1"]);
        assert_eq!(
            urls("0.0.0.0:8443".parse().unwrap(), &addrs),
            ["https://127.0.0.1:8443/"]
        );
        assert_eq!(
            urls("127.0.0.1:9000".parse().unwrap(), &ips(&["10.0.0.1"])),
            ["https://127.0.0.1:9000/"]
        );
    }

    #[test]
    fn banner_lists_urls_and_fingerprint() {
        let text = render_banner(
            &["https://10.0.0.31:8443/".to_string()],
            "SHA256:ab:cd",
            false,
        );
        assert_eq!(
            text,
            "nodeboot: this node is waiting for its configuration.\n\
             Upload it (browser, curl or `nodeboot push`) at:\n\
             \x20   https://10.0.0.31:8443/\n\
             Certificate fingerprint:\n\
             \x20   SHA256:ab:cd\n\n"
        );
        assert!(!text.contains('\\'));
    }

    #[test]
    fn banner_is_written_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let path = write_banner(root.path(), "hello\n").unwrap();
        assert_eq!(path, root.path().join("run/issue.d/nodeboot.issue"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "hello\n");
    }

    #[test]
    fn a_link_on_the_banner_path_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        for link in ["run", "run/issue.d"] {
            let root = tempfile::tempdir().unwrap();
            let at = root.path().join(link);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(outside.path(), &at).unwrap();
            let e = write_banner(root.path(), "hello\n")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("{link}: is a symbolic link")), "{e}");
        }
        // A link at the banner's own name (or its temporary name) is replaced, not followed.
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run/issue.d");
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["nodeboot.issue", ".nodeboot.issue.tmp"] {
            std::os::unix::fs::symlink(outside.path().join(n), dir.join(n)).unwrap();
        }
        let path = write_banner(root.path(), "hello\n").unwrap();
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn local_addresses_include_loopback() {
        assert!(local_addresses().contains(&"127.0.0.1".parse().unwrap()));
    }
}
