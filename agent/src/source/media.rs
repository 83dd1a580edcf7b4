//! Source 2: local media found by label and mounted read-only (`nosuid,nodev,noexec`, the
//! file system tried as iso9660, vfat, then udf): a NoCloud disc (`cidata`/`CIDATA`,
//! `user-data`), an OpenStack config drive (`config-2`/`CONFIG-2`,
//! `openstack/latest/user_data`), and an OVF environment disc (any CD with `ovf-env.xml` in the
//! `http://schemas.dmtf.org/ovf/environment/1` namespace; properties `nodeboot.config`, base64,
//! and `nodeboot.token`).
//!
//! Which devices exist is a seam ([`Devices`]): production looks in `/dev/disk/by-label/` and
//! at `/dev/sr*`, tests point at loop devices. Files on the medium are read through
//! [`crate::rootfs`] from the mount point, so a link or a FIFO on the medium is refused, and
//! every read is bounded.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::{Found, Read, read_bounded};
use crate::rootfs::Root;

/// The file systems tried, in order.
pub const FILE_SYSTEMS: &[&str] = &["iso9660", "vfat", "udf"];

/// The largest `ovf-env.xml` read: a 1 MiB configuration in base64 and the envelope.
pub const MAX_OVF_ENV: usize = 2 * 1024 * 1024;

/// Where the media are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// A directory of links named by file system label (`/dev/disk/by-label`).
    pub by_label: PathBuf,
    /// The optical drives an OVF environment disc may be in (`/dev/sr0`, …).
    pub discs: Vec<PathBuf>,
    /// The file systems tried, in order ([`FILE_SYSTEMS`]; tests on a kernel without them
    /// add `ext4`).
    pub file_systems: Vec<String>,
}

impl Devices {
    /// `/dev/disk/by-label`, no optical drive, the production file systems.
    pub fn none() -> Self {
        Devices {
            by_label: PathBuf::from("/dev/disk/by-label"),
            discs: Vec::new(),
            file_systems: FILE_SYSTEMS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `/dev/disk/by-label` and every `/dev/sr*`.
    pub fn system() -> Self {
        let mut discs: Vec<PathBuf> = std::fs::read_dir("/dev")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("sr"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        discs.sort();
        Devices {
            by_label: PathBuf::from("/dev/disk/by-label"),
            discs,
            file_systems: FILE_SYSTEMS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// One kind of labelled medium.
struct Labelled {
    labels: &'static [&'static str],
    file: &'static str,
    what: &'static str,
}

const LABELLED: &[Labelled] = &[
    Labelled {
        labels: &["cidata", "CIDATA"],
        file: "user-data",
        what: "NoCloud disc",
    },
    Labelled {
        labels: &["config-2", "CONFIG-2"],
        file: "openstack/latest/user_data",
        what: "config drive",
    },
];

/// The disks that could carry a configuration medium, from sysfs (`/sys/class/block`, which
/// the kernel fills before udev has named anything): not a partition, not `root_disk`, not a
/// loop, ram or zram device, and with a medium in it (an empty optical drive has size 0).
/// When there are none, `acquire` need not wait for udev's by-label links.
pub fn candidate_media(sys_block: &Path, root_disk: Option<&str>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p))
                && Some(name.as_str()) != root_disk
        })
        .filter(|name| {
            let dev = sys_block.join(name);
            let size = std::fs::read_to_string(dev.join("size")).unwrap_or_default();
            !dev.join("partition").exists() && size.trim().parse::<u64>().is_ok_and(|s| s > 0)
        })
        .collect();
    out.sort();
    out
}

/// The disk (`vda`, `sda`) the file system at `path` is on, from its device number through
/// `/sys/dev/block/MAJOR:MINOR` (a partition's disk is its parent).
pub fn disk_of(path: &Path) -> Option<String> {
    let st = nix::sys::stat::stat(path).ok()?;
    let dev = st.st_dev;
    let link = format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let real = std::fs::canonicalize(link).ok()?;
    let node = if real.join("partition").exists() {
        real.parent()?
    } else {
        &real
    };
    node.file_name()?.to_str().map(str::to_owned)
}

/// Looks at the media in order; the first that has something wins.
pub fn read(devices: &Devices, mount_base: &Path) -> Read {
    for kind in LABELLED {
        for label in kind.labels {
            let dev = devices.by_label.join(label);
            if std::fs::symlink_metadata(&dev).is_err() {
                continue;
            }
            let origin = format!("{} {label} ({})", kind.what, kind.file);
            let result = with_mounted(&dev, devices, mount_base, |root| {
                read_bounded(root, Path::new(kind.file), super::MAX_PAYLOAD)
            });
            return match result {
                Ok(Ok(Some(bytes))) => Read::Found(Found {
                    origin,
                    bytes: Some(bytes),
                    token: None,
                }),
                // A labelled medium without the file: not ours to read, fall through.
                Ok(Ok(None)) => continue,
                Ok(Err(message)) | Err(message) => Read::Unreadable { origin, message },
            };
        }
    }
    for disc in &devices.discs {
        if std::fs::symlink_metadata(disc).is_err() {
            continue;
        }
        // An empty drive or a disc that mounts as none of the file systems is no source.
        let Ok(result) = with_mounted(disc, devices, mount_base, |root| {
            read_bounded(root, Path::new("ovf-env.xml"), MAX_OVF_ENV)
        }) else {
            continue;
        };
        let origin = format!("OVF environment disc {} (ovf-env.xml)", disc.display());
        let xml = match result {
            Ok(None) => continue,
            Ok(Some(xml)) => xml,
            Err(message) => return Read::Unreadable { origin, message },
        };
        match from_ovf_env(&xml) {
            Ok(None) => continue,
            Ok(Some(mut found)) => {
                found.origin = origin;
                return Read::Found(found);
            }
            Err(message) => return Read::Unreadable { origin, message },
        }
    }
    Read::Absent
}

/// The OVF environment's `nodeboot.config` (base64, decoded here) and `nodeboot.token`;
/// `None` when it has neither. `Err` when the environment cannot be read or the property is
/// not base64 (the message names the property).
pub fn from_ovf_env(xml: &[u8]) -> Result<Option<Found>, String> {
    let props = super::platform::ovf_properties(xml).map_err(|e| e.0)?;
    let mut config = None;
    let mut token = None;
    for (key, value) in props {
        match key.as_str() {
            "nodeboot.config" if !value.trim().is_empty() => config = Some(value),
            "nodeboot.token" if !value.trim().is_empty() => token = Some(value),
            _ => {}
        }
    }
    let bytes = match config {
        None => None,
        Some(b64) => {
            Some(nodeboot_config::decode_base64("nodeboot.config", &b64).map_err(|d| d.message)?)
        }
    };
    if bytes.is_none() && token.is_none() {
        return Ok(None);
    }
    Ok(Some(Found {
        origin: String::new(),
        bytes,
        token: token.map(|t| nodeboot_config::Secret::new(t.trim().to_owned())),
    }))
}

/// The file `name` (at most `limit` bytes) of the first optical disc that has it: Azure's
/// provisioning disc carries `ovf-env.xml` with the node's customData. `None` when no disc
/// has it or it cannot be read (the platform source then goes without).
pub fn disc_file(
    devices: &Devices,
    mount_base: &Path,
    name: &str,
    limit: usize,
) -> Option<Vec<u8>> {
    devices.discs.iter().find_map(|disc| {
        std::fs::symlink_metadata(disc).ok()?;
        with_mounted(disc, devices, mount_base, |root| {
            read_bounded(root, Path::new(name), limit)
        })
        .ok()?
        .ok()?
    })
}

/// Mounts `dev` read-only on a fresh directory under `mount_base`, runs `f` on it through a
/// [`Root`], unmounts and removes the directory. `Err` when no file system mounts.
fn with_mounted<T>(
    dev: &Path,
    devices: &Devices,
    mount_base: &Path,
    f: impl FnOnce(&Root) -> Result<T, String>,
) -> Result<Result<T, String>, String> {
    std::fs::create_dir_all(mount_base)
        .map_err(|e| format!("creating {}: {e}", mount_base.display()))?;
    let dir = nix::unistd::mkdtemp(&mount_base.join("media.XXXXXX"))
        .map_err(|e| format!("creating a mount point under {}: {e}", mount_base.display()))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut last = None;
    for fs in &devices.file_systems {
        match nix::mount::mount(Some(dev), &dir, Some(fs.as_str()), flags, None::<&str>) {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        let _ = std::fs::remove_dir(&dir);
        return Err(format!(
            "{} mounts as none of {}: {e}",
            dev.display(),
            devices.file_systems.join(", ")
        ));
    }
    let result = Root::open(&dir)
        .map_err(|e| e.to_string())
        .and_then(|r| f(&r));
    if let Err(e) = nix::mount::umount2(&dir, MntFlags::MNT_DETACH) {
        tracing::warn!(mount = %dir.display(), error = %e, "unmounting a configuration medium");
    }
    let _ = std::fs::remove_dir(&dir);
    Ok(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn only_disks_with_a_medium_other_than_the_root_disk_are_candidates() {
        let sys = tempfile::tempdir().unwrap();
        let dev = |name: &str, size: &str, partition: bool| {
            let d = sys.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("size"), size).unwrap();
            if partition {
                std::fs::write(d.join("partition"), "1\n").unwrap();
            }
        };
        dev("vda", "4194304\n", false);
        dev("vda1", "4192256\n", true);
        dev("vdb", "4096\n", false);
        dev("sr0", "0\n", false);
        dev("sr1", "1204\n", false);
        dev("loop0", "2048\n", false);
        dev("zram0", "2048\n", false);
        assert_eq!(
            super::candidate_media(sys.path(), Some("vda")),
            ["sr1", "vdb"]
        );
        assert_eq!(
            super::candidate_media(sys.path(), None),
            ["sr1", "vda", "vdb"]
        );
        assert!(super::candidate_media(&sys.path().join("absent"), None).is_empty());
    }

    #[test]
    fn the_disk_of_a_path_is_found_through_sysfs() {
        // This machine's root is on a block device (or an overlay without one): either way
        // the answer is a plain device name or nothing, never a path.
        if let Some(disk) = super::disk_of(std::path::Path::new("/")) {
            assert!(!disk.contains('/') && !disk.is_empty(), "{disk}");
        }
    }
}
