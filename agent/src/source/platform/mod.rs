//! The cloud or hypervisor a node runs on, detected from DMI (`/sys/class/dmi/id`) or named on
//! the kernel command line (`nodeboot.platform=NAME`), and its metadata service.
//!
//! Contract with the chain in `crate::source`:
//! - [`detect`]`(dmi_dir, kernel_cmdline) -> Option<Platform>`: pure apart from reading the DMI
//!   files; `None` means nothing is probed on the network.
//! - [`fetch`]`(platform, &Env) -> Result<Option<Found>, FetchError>` (async): `Ok(None)` is
//!   "the platform has no configuration for this node" (fall through); `Err` with
//!   [`FetchErrorKind::Unavailable`] is "the service could not be read within its budget" (the
//!   chain logs it and falls through, and the banner says so); `Err` with
//!   [`FetchErrorKind::Invalid`] is "a configuration is there but its transport encoding is
//!   broken" (bad base64, bad gzip, over the size bound): the chain fails closed on it.
//! - [`forget`]`(platform, &Env)` after a successful apply: deletes what the guest may delete
//!   (VMware `guestinfo.nodeboot.config`).
//! - [`kernel_token`]`(cmdline)`: the bootstrap token given as `nodeboot.token=`.
//! - [`ovf_properties`]`(xml)`: the OVF environment's properties, for `ovf-env.xml` on discs too.
//!
//! It does not read payloads as configurations (that is `payload`'s work), mount media or
//! apply anything. It never logs a payload or a token.

mod http;
mod ovf;
mod providers;
mod vmware;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ovf::{XmlError, azure_custom_data, ovf_properties};

use super::Found;
use nodeboot_config::Secret;

/// A platform whose metadata service the agent can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Oracle Cloud Infrastructure (IMDS v2, v1).
    Oracle,
    /// Google Compute Engine.
    Gce,
    /// OpenStack (Nova's metadata service).
    OpenStack,
    /// Amazon EC2 (IMDSv2).
    Ec2,
    /// Microsoft Azure (IMDS, the provisioning disc's customData, the wire server's ready report).
    Azure,
    /// VMware (guestinfo through `vmware-rpctool`).
    Vmware,
}

impl Platform {
    /// Every platform, in the order detection tries them.
    pub const ALL: [Platform; 6] = [
        Platform::Oracle,
        Platform::Gce,
        Platform::OpenStack,
        Platform::Ec2,
        Platform::Azure,
        Platform::Vmware,
    ];

    /// The name used on the kernel command line (`nodeboot.platform=NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Platform::Oracle => "oracle",
            Platform::Gce => "gce",
            Platform::OpenStack => "openstack",
            Platform::Ec2 => "ec2",
            Platform::Azure => "azure",
            Platform::Vmware => "vmware",
        }
    }

    /// The name shown to people.
    pub fn title(self) -> &'static str {
        match self {
            Platform::Oracle => "Oracle Cloud",
            Platform::Gce => "Google Compute Engine",
            Platform::OpenStack => "OpenStack",
            Platform::Ec2 => "Amazon EC2",
            Platform::Azure => "Azure",
            Platform::Vmware => "VMware",
        }
    }
}

/// The DMI strings detection reads (each trimmed; a missing file reads as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    /// `sys_vendor`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `product_serial` (root only).
    pub product_serial: String,
    /// `product_uuid` (root only).
    pub product_uuid: String,
    /// `chassis_asset_tag`.
    pub chassis_asset_tag: String,
}

/// Oracle Cloud's chassis asset tag.
pub const ORACLE_ASSET_TAG: &str = "OracleCloud.com";
/// Azure's chassis asset tag.
pub const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";
/// The largest DMI file read (they are a line each).
const MAX_DMI: u64 = 256;

/// The value of the last `KEY=value` on a kernel command line (the kernel's rule: the last
/// one wins), surrounding double quotes removed.
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(|v| v.trim_matches('"'))
}

/// Detection from DMI strings and the kernel command line (pure). `nodeboot.platform=NAME`
/// wins (`none` turns detection off); an unknown name is ignored and DMI decides.
pub fn detect_from(dmi: &Dmi, kernel_cmdline: &str) -> Option<Platform> {
    if let Some(name) = cmdline_value(kernel_cmdline, "nodeboot.platform") {
        if name.eq_ignore_ascii_case("none") {
            return None;
        }
        match Platform::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
        {
            Some(p) => return Some(p),
            None => tracing::warn!(
                name = %nodeboot_config::text::printable_line(name),
                "unknown nodeboot.platform on the kernel command line (oracle, gce, openstack, ec2, azure, vmware, none); detecting from DMI"
            ),
        }
    }
    let uuid = dmi.product_uuid.get(..3).unwrap_or("");
    if dmi.chassis_asset_tag == ORACLE_ASSET_TAG {
        Some(Platform::Oracle)
    } else if dmi.product_name == "Google Compute Engine"
        || dmi.product_serial.starts_with("GoogleCloud-")
    {
        Some(Platform::Gce)
    } else if dmi.product_name == "OpenStack Nova" || dmi.product_name == "OpenStack Compute" {
        Some(Platform::OpenStack)
    } else if uuid.eq_ignore_ascii_case("ec2") || dmi.sys_vendor == "Amazon EC2" {
        Some(Platform::Ec2)
    } else if dmi.chassis_asset_tag == AZURE_ASSET_TAG {
        Some(Platform::Azure)
    } else if dmi.sys_vendor == "VMware, Inc." {
        Some(Platform::Vmware)
    } else {
        None
    }
}

/// Reads the DMI strings under `dmi_dir` (`/sys/class/dmi/id`), each bounded to a few hundred
/// bytes; a missing or unreadable file reads as empty.
pub fn read_dmi(dmi_dir: &Path) -> Dmi {
    use std::io::Read;
    let read = |name: &str| {
        let mut buf = Vec::new();
        if let Ok(f) = std::fs::File::open(dmi_dir.join(name)) {
            let _ = f.take(MAX_DMI).read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).trim().to_owned()
    };
    Dmi {
        sys_vendor: read("sys_vendor"),
        product_name: read("product_name"),
        product_serial: read("product_serial"),
        product_uuid: read("product_uuid"),
        chassis_asset_tag: read("chassis_asset_tag"),
    }
}

/// The platform this node runs on, from the DMI files under `dmi_dir` and the kernel command
/// line; `None` when none is detected (nothing is then probed on the network).
pub fn detect(dmi_dir: &Path, kernel_cmdline: &str) -> Option<Platform> {
    detect_from(&read_dmi(dmi_dir), kernel_cmdline)
}

/// The bootstrap token given on the kernel command line as `nodeboot.token=…`; `None` when
/// absent or empty.
pub fn kernel_token(cmdline: &str) -> Option<Secret<String>> {
    cmdline_value(cmdline, "nodeboot.token")
        .filter(|v| !v.is_empty())
        .map(|v| Secret::new(v.to_owned()))
}

/// The time limits of one source. Defaults (see docs/sources.md): 60 s per source,
/// 2 s to connect, 5 s for an answer, backoff from 200 ms doubling to 5 s with jitter, and
/// 60 s of its own for Azure's ready report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Wall-clock budget of the whole source: lease wait, every request, every retry.
    pub source: Duration,
    /// Per-request connect timeout.
    pub connect: Duration,
    /// Per-request timeout for the whole answer (head and body).
    pub read: Duration,
    /// The first pause between retries; it doubles up to `backoff_max`, each pause drawn
    /// between half and all of it.
    pub backoff_first: Duration,
    /// The longest pause between retries.
    pub backoff_max: Duration,
    /// Azure's ready report, which runs after the source even when the source used its budget.
    pub ready_report: Duration,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            source: Duration::from_secs(60),
            connect: Duration::from_secs(2),
            read: Duration::from_secs(5),
            backoff_first: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            ready_report: Duration::from_secs(60),
        }
    }
}

/// Everything `fetch` reaches, so tests can point it elsewhere.
#[derive(Clone)]
pub struct Env {
    /// The metadata service (`169.254.169.254:80`).
    pub metadata: SocketAddr,
    /// Azure's wire server; `None`: from DHCP option 245 in networkd's lease of `interface`,
    /// else `168.63.129.16:80`.
    pub wire_server: Option<SocketAddr>,
    /// Where systemd-networkd keeps its DHCP leases (`/run/systemd/netif/leases`).
    pub lease_dir: PathBuf,
    /// The interface every request leaves from (`eth0`), bound with SO_BINDTODEVICE; `fetch`
    /// first waits for its IPv4 address. `None` (tests): no wait, no binding.
    pub interface: Option<String>,
    /// `vmware-rpctool`.
    pub rpctool: PathBuf,
    /// The bytes of Azure's `ovf-env.xml`, when the chain found the provisioning disc
    /// (label `rd_rdfe_stable…`/any disc with that file): its `CustomData` is read.
    pub azure_ovf_env: Option<Vec<u8>>,
    /// Time limits.
    pub budgets: Budgets,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // ovf-env.xml may carry customData with password hashes: its length only.
        f.debug_struct("Env")
            .field("metadata", &self.metadata)
            .field("wire_server", &self.wire_server)
            .field("lease_dir", &self.lease_dir)
            .field("interface", &self.interface)
            .field("rpctool", &self.rpctool)
            .field("azure_ovf_env", &self.azure_ovf_env.as_ref().map(Vec::len))
            .field("budgets", &self.budgets)
            .finish()
    }
}

/// The link-local metadata address every cloud here uses.
pub const METADATA_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80);
/// Azure's well-known wire server address, used when DHCP gives none.
pub const AZURE_WIRE_SERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

impl Env {
    /// The node's own: the real addresses, eth0, `/usr/bin/vmware-rpctool`, default budgets.
    pub fn production() -> Env {
        Env {
            metadata: METADATA_ADDR,
            wire_server: None,
            lease_dir: PathBuf::from("/run/systemd/netif/leases"),
            interface: Some("eth0".to_owned()),
            rpctool: PathBuf::from("/usr/bin/vmware-rpctool"),
            azure_ovf_env: None,
            budgets: Budgets::default(),
        }
    }
}

/// What went wrong with a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The service could not be read within its budget: fall through, and say so.
    Unavailable,
    /// A configuration is there but cannot be decoded (base64, gzip, size, OVF XML): fail closed.
    Invalid,
}

/// A source that could not be read. The message is safe for the banner: the platform, the
/// request's path and status, never a payload or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// Fall through or fail closed.
    pub kind: FetchErrorKind,
    /// What failed, cleaned for display.
    pub message: String,
}

impl FetchError {
    pub(crate) fn unavailable(message: impl AsRef<str>) -> Self {
        FetchError {
            kind: FetchErrorKind::Unavailable,
            message: nodeboot_config::text::printable_line(message.as_ref()),
        }
    }

    pub(crate) fn invalid(message: impl AsRef<str>) -> Self {
        FetchError {
            kind: FetchErrorKind::Invalid,
            message: nodeboot_config::text::printable_line(message.as_ref()),
        }
    }
}

/// Reads the platform's metadata service within `env.budgets.source` (see the module
/// documentation for the three outcomes). Azure's ready report is always sent, whatever the
/// outcome.
pub async fn fetch(platform: &Platform, env: &Env) -> Result<Option<Found>, FetchError> {
    let deadline = tokio::time::Instant::now() + env.budgets.source;
    let platform = *platform;
    if platform != Platform::Vmware {
        if let Some(ifname) = &env.interface {
            if let Err(e) = wait_for_ipv4(ifname, deadline).await {
                if platform == Platform::Azure {
                    providers::azure_ready_report(env).await;
                }
                return Err(e);
            }
        }
    }
    match platform {
        Platform::Oracle => providers::oracle(env, deadline).await,
        Platform::Gce => providers::gce(env, deadline).await,
        Platform::OpenStack => providers::openstack(env, deadline).await,
        Platform::Ec2 => providers::ec2(env, deadline).await,
        Platform::Azure => providers::azure(env, deadline).await,
        Platform::Vmware => vmware::fetch(env, deadline).await,
    }
}

/// After a successful apply: deletes the configuration where the guest may (VMware:
/// `guestinfo.nodeboot.config` is set to empty); a no-op elsewhere.
pub fn forget(platform: &Platform, env: &Env) -> Result<(), FetchError> {
    match platform {
        Platform::Vmware => vmware::forget(env),
        _ => Ok(()),
    }
}

/// Whether `ifname` has an IPv4 address now (getifaddrs).
fn has_ipv4(ifname: &str) -> bool {
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            a.interface_name == ifname
                && a.address
                    .as_ref()
                    .is_some_and(|s| s.as_sockaddr_in().is_some())
        })
    })
}

/// Waits (polling every 100 ms) until `ifname` has an IPv4 address: the DHCP lease the
/// queries need. Bounded by the source's deadline.
async fn wait_for_ipv4(ifname: &str, deadline: tokio::time::Instant) -> Result<(), FetchError> {
    loop {
        if has_ipv4(ifname) {
            return Ok(());
        }
        if tokio::time::Instant::now() + Duration::from_millis(100) > deadline {
            return Err(FetchError::unavailable(format!(
                "{ifname} has no IPv4 address (no DHCP lease) within the source's budget"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Azure's wire server from a systemd-networkd lease file: `OPTION_245=<hex>` (networkd
/// writes private options 224–254 as `OPTION_<tag>=` and the bytes in hex). Pure.
pub fn wire_server_from_lease(lease: &str) -> Option<Ipv4Addr> {
    let hex = lease
        .lines()
        .find_map(|l| l.trim().strip_prefix("OPTION_245="))?
        .trim();
    if hex.len() != 8 || !hex.is_ascii() {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Ipv4Addr::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dmi(vendor: &str, name: &str, serial: &str, uuid: &str, tag: &str) -> Dmi {
        Dmi {
            sys_vendor: vendor.into(),
            product_name: name.into(),
            product_serial: serial.into(),
            product_uuid: uuid.into(),
            chassis_asset_tag: tag.into(),
        }
    }

    #[test]
    fn detection_table() {
        let cases: &[(Dmi, &str, Option<Platform>)] = &[
            (
                dmi("QEMU", "Standard PC", "", "", "OracleCloud.com"),
                "",
                Some(Platform::Oracle),
            ),
            (
                dmi("Google", "Google Compute Engine", "", "", ""),
                "",
                Some(Platform::Gce),
            ),
            (
                dmi("Google", "x", "GoogleCloud-ABC", "", ""),
                "",
                Some(Platform::Gce),
            ),
            (
                dmi("OpenStack Foundation", "OpenStack Nova", "", "", ""),
                "",
                Some(Platform::OpenStack),
            ),
            (
                dmi("RDO", "OpenStack Compute", "", "", ""),
                "",
                Some(Platform::OpenStack),
            ),
            (
                dmi(
                    "Xen",
                    "HVM domU",
                    "",
                    "ec2e1916-9099-7caf-fd21-012345abcdef",
                    "",
                ),
                "",
                Some(Platform::Ec2),
            ),
            (
                dmi(
                    "Xen",
                    "HVM domU",
                    "",
                    "EC2E1916-9099-7CAF-FD21-012345ABCDEF",
                    "",
                ),
                "",
                Some(Platform::Ec2),
            ),
            (
                dmi("Amazon EC2", "m5.large", "", "", ""),
                "",
                Some(Platform::Ec2),
            ),
            (
                dmi(
                    "Microsoft Corporation",
                    "Virtual Machine",
                    "",
                    "",
                    AZURE_ASSET_TAG,
                ),
                "",
                Some(Platform::Azure),
            ),
            (
                dmi("VMware, Inc.", "VMware7,1", "", "", ""),
                "",
                Some(Platform::Vmware),
            ),
            (
                dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", "", "", ""),
                "",
                None,
            ),
            (Dmi::default(), "", None),
            (
                Dmi::default(),
                "quiet nodeboot.platform=gce",
                Some(Platform::Gce),
            ),
            (
                Dmi::default(),
                "nodeboot.platform=oracle nodeboot.platform=EC2",
                Some(Platform::Ec2),
            ),
            (
                dmi("VMware, Inc.", "", "", "", ""),
                "nodeboot.platform=none",
                None,
            ),
            (
                dmi("VMware, Inc.", "", "", "", ""),
                "nodeboot.platform=bogus",
                Some(Platform::Vmware),
            ),
            (
                Dmi::default(),
                "nodeboot.platform=\"azure\"",
                Some(Platform::Azure),
            ),
            (Dmi::default(), "xnodeboot.platform=gce", None),
        ];
        for (d, cmdline, want) in cases {
            assert_eq!(detect_from(d, cmdline), *want, "{d:?} {cmdline:?}");
        }
        for p in Platform::ALL {
            assert_eq!(
                detect_from(&Dmi::default(), &format!("nodeboot.platform={}", p.name())),
                Some(p)
            );
        }
    }

    #[test]
    fn kernel_token_last_non_empty() {
        assert!(kernel_token("quiet").is_none());
        assert!(kernel_token("nodeboot.token=").is_none());
        let t = kernel_token("nodeboot.token=a nodeboot.token=\"b-c\" ro");
        assert_eq!(t.as_ref().map(|s| s.expose().as_str()), Some("b-c"));
    }

    #[test]
    fn lease_option_245() {
        let lease =
            "# This is private data. Do not parse.\nADDRESS=10.0.0.4\nOPTION_245=a83f8110\n";
        assert_eq!(
            wire_server_from_lease(lease),
            Some(Ipv4Addr::new(168, 63, 129, 16))
        );
        assert_eq!(
            wire_server_from_lease("OPTION_245=A83F8111"),
            Some(Ipv4Addr::new(168, 63, 129, 17))
        );
        assert_eq!(wire_server_from_lease("OPTION_245=a83f81"), None);
        assert_eq!(wire_server_from_lease("OPTION_245=zz3f8110"), None);
        assert_eq!(wire_server_from_lease("ADDRESS=10.0.0.4"), None);
    }

    #[test]
    fn errors_are_cleaned() {
        let e = FetchError::unavailable("GCE: GET /x\u{1b}[31m: 500");
        assert!(!e.message.contains('\u{1b}'), "{e}");
    }
}
