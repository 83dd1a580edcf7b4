//! The output formats of a node image and writing them from the raw disk: raw as is, qcow2
//! (KVM, Oracle Cloud), the streamOptimized VMDK alone (Oracle Cloud, ESXi), the OVA (VMware,
//! VirtualBox), Google Compute Engine's `NAME.tar.gz` holding `disk.raw` (GNU tar, sparse) and
//! Azure's fixed VHD (a whole number of MiB).

use std::path::{Path, PathBuf};

use crate::ova::{self, Hardware};
use crate::progress::Steps;
use crate::tools::{self, GZIP, QEMU_IMG, TAR};

/// One mebibyte: a VHD's virtual size must be a whole number of them (Azure).
pub const MIB: u64 = 1024 * 1024;
/// One gibibyte: Google Compute Engine imports only disks of a whole number of them.
pub const GIB: u64 = 1024 * MIB;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The raw disk (`NAME.raw`)
    Raw,
    /// QCOW2 (`NAME.qcow2`), compressed
    Qcow2,
    /// A streamOptimized VMDK on its own (`NAME-disk1.vmdk`)
    Vmdk,
    /// An OVF 1.0 package (`NAME.ova`) holding that VMDK
    Ova,
    /// Google Compute Engine: `NAME.tar.gz` holding `disk.raw` (GNU tar, sparse)
    Gce,
    /// Azure: a fixed VHD (`NAME.vhd`), its size a whole number of MiB
    Vhd,
}

/// Refuses formats the disk size cannot be written in, before any long work: GCE needs a
/// whole number of GiB.
pub fn check_formats(formats: &[Format], disk_size: u64) -> anyhow::Result<()> {
    if formats.contains(&Format::Gce) && disk_size % GIB != 0 {
        anyhow::bail!(
            "the gce format needs a disk of a whole number of GiB (Google Compute Engine \
             imports no other), not {disk_size} bytes: give --size in G"
        );
    }
    Ok(())
}

/// The size a VHD of a `size`-byte disk gets: rounded up to a whole MiB.
pub fn vhd_size(size: u64) -> u64 {
    size.div_ceil(MIB).saturating_mul(MIB)
}

/// How many progress steps writing `formats` takes.
pub fn step_count(formats: &[Format]) -> usize {
    let vmdk = formats
        .iter()
        .any(|f| matches!(f, Format::Vmdk | Format::Ova));
    usize::from(formats.contains(&Format::Raw))
        + usize::from(formats.contains(&Format::Qcow2))
        + usize::from(vmdk)
        + usize::from(formats.contains(&Format::Ova))
        + usize::from(formats.contains(&Format::Gce))
        + usize::from(formats.contains(&Format::Vhd))
}

/// Writes every requested format of `raw` into `dir` as `name.*`; returns the files written.
/// With the raw format, `raw` itself is moved into place.
pub fn write_outputs(
    raw: &Path,
    dir: &Path,
    name: &str,
    formats: &[Format],
    hw: &Hardware,
    steps: &mut Steps,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    if formats.contains(&Format::Qcow2) {
        let target = dir.join(format!("{name}.qcow2"));
        steps.step("convert to qcow2 (compressed)", || {
            tools::run(
                &QEMU_IMG,
                [
                    "convert".as_ref(),
                    "-c".as_ref(),
                    "-O".as_ref(),
                    "qcow2".as_ref(),
                    raw.as_os_str(),
                    target.as_os_str(),
                ],
            )?;
            Ok(())
        })?;
        written.push(target);
    }
    let ova_path = dir.join(format!("{name}.ova"));
    let vmdk = ova::vmdk_path_for(&ova_path);
    if formats
        .iter()
        .any(|f| matches!(f, Format::Vmdk | Format::Ova))
    {
        steps.step("convert to a streamOptimized VMDK", || {
            ova::write_stream_optimized_vmdk(raw, &vmdk, hw.hw_version)
        })?;
        if formats.contains(&Format::Vmdk) {
            written.push(vmdk.clone());
        }
    }
    if formats.contains(&Format::Ova) {
        steps.step("write the OVA (descriptor, manifest, disk)", || {
            let capacity = ova::virtual_size(raw)?;
            let vm_name = hw.vm_name.clone().unwrap_or_else(|| name.to_string());
            ova::write_ova(&ova_path, &vmdk, &vm_name, hw, capacity)
        })?;
        if !formats.contains(&Format::Vmdk) {
            std::fs::remove_file(&vmdk)?;
        }
        written.push(ova_path);
    }
    if formats.contains(&Format::Vhd) {
        let target = dir.join(format!("{name}.vhd"));
        steps.step("convert to a fixed VHD (whole MiB)", || {
            write_vhd(raw, &target)
        })?;
        written.push(target);
    }
    if formats.contains(&Format::Gce) {
        let target = dir.join(format!("{name}.tar.gz"));
        steps.step("write the GCE archive (disk.raw, GNU tar, sparse)", || {
            write_gce(raw, &target)
        })?;
        written.push(target);
    }
    if formats.contains(&Format::Raw) {
        // Last, because the other formats are made from it: the working disk is moved, or
        // copied sparsely by qemu-img when it is on another filesystem.
        let target = dir.join(format!("{name}.raw"));
        steps.step("write the raw disk", || {
            if target != raw && std::fs::rename(raw, &target).is_err() {
                tools::run(
                    &QEMU_IMG,
                    [
                        "convert".as_ref(),
                        "-O".as_ref(),
                        "raw".as_ref(),
                        raw.as_os_str(),
                        target.as_os_str(),
                    ],
                )?;
                std::fs::remove_file(raw)?;
            }
            Ok(())
        })?;
        written.push(target);
    }
    Ok(written)
}

/// Writes a fixed VHD of `raw` at `target`. A disk whose size is not a whole MiB is grown to
/// one first (zeros at the end; a GPT's backup table is then moved to the new end by
/// `sgdisk -e`). `force_size` keeps the exact size instead of qemu-img's CHS rounding.
pub fn write_vhd(raw: &Path, target: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(raw)?.len();
    let rounded = vhd_size(size);
    if rounded != size {
        std::fs::OpenOptions::new()
            .write(true)
            .open(raw)?
            .set_len(rounded)?;
        let gpt = crate::disk::read_partitions(raw).is_ok_and(|p| {
            p.iter().any(|p| {
                p.kind == crate::disk::Kind::EfiSystem || p.kind == crate::disk::Kind::BiosBoot
            })
        });
        if gpt {
            tools::run(&crate::tools::SGDISK, ["-e".as_ref(), raw.as_os_str()])?;
        }
    }
    tools::run(
        &QEMU_IMG,
        [
            "convert".as_ref(),
            "-f".as_ref(),
            "raw".as_ref(),
            "-O".as_ref(),
            "vpc".as_ref(),
            "-o".as_ref(),
            "subformat=fixed,force_size=on".as_ref(),
            raw.as_os_str(),
            target.as_os_str(),
        ],
    )?;
    Ok(())
}

/// Writes Google Compute Engine's image archive: `disk.raw` alone in a gzip-compressed GNU tar
/// (the `oldgnu` format of Google's instructions, with sparse members so the zeros of the disk
/// are neither read back nor stored). The disk is linked (or sparsely copied) as `disk.raw`
/// into a directory of its own for the archive.
pub fn write_gce(raw: &Path, target: &Path) -> anyhow::Result<()> {
    tools::require(&[TAR, GZIP])?;
    let stage = target.with_extension("gce-stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;
    let disk = stage.join("disk.raw");
    if std::fs::hard_link(raw, &disk).is_err() {
        tools::run_command(
            std::process::Command::new("cp")
                .arg("--sparse=always")
                .arg(raw)
                .arg(&disk),
        )?;
    }
    let result = tools::run(
        &TAR,
        [
            "--format=oldgnu".as_ref(),
            "--sparse".as_ref(),
            "--owner=0".as_ref(),
            "--group=0".as_ref(),
            "--numeric-owner".as_ref(),
            "-czf".as_ref(),
            target.as_os_str(),
            "-C".as_ref(),
            stage.as_os_str(),
            "disk.raw".as_ref(),
        ],
    );
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhd_sizes_round_up_to_a_whole_mebibyte() {
        assert_eq!(vhd_size(2 * GIB), 2 * GIB);
        assert_eq!(vhd_size(2 * GIB + 1), 2 * GIB + MIB);
        assert_eq!(vhd_size(512), MIB);
    }

    #[test]
    fn gce_refuses_a_disk_of_no_whole_gibibytes() {
        check_formats(&[Format::Gce], 2 * GIB).unwrap();
        check_formats(&[Format::Vhd], 2 * GIB + MIB).unwrap();
        assert_eq!(
            check_formats(&[Format::Raw, Format::Gce], 2 * GIB + MIB)
                .unwrap_err()
                .to_string(),
            "the gce format needs a disk of a whole number of GiB (Google Compute Engine \
             imports no other), not 2148532224 bytes: give --size in G"
        );
    }
}
