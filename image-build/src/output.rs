//! The output formats of a node image and writing them from the raw disk: raw as is, qcow2
//! (KVM, Oracle Cloud), the streamOptimized VMDK alone (Oracle Cloud, ESXi) and the OVA.

use std::path::{Path, PathBuf};

use crate::ova::{self, Hardware};
use crate::progress::Steps;
use crate::tools::{self, QEMU_IMG};

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
