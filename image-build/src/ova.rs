//! `nodeboot-image ova`: packages a disk image as an OVA an importer accepts — the OVF
//! descriptor first, then the SHA-256 manifest, then the streamOptimized VMDK, in a USTAR
//! archive — and writes the VMDK on its own too (Oracle Cloud imports the VMDK, not the OVA).
//!
//! The descriptor and manifest are rendered in `ovf`; this module runs qemu-img and writes files.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cmdline::OvaArgs;
use crate::ovf::{self, OvfSpec};
use crate::progress::Steps;
use crate::tools::{self, QEMU_IMG};

/// The virtual hardware the OVF descriptor asks for (`--cpus`, `--memory`, … of
/// [`crate::cmdline::HardwareArgs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardware {
    /// The virtual machine's name in the OVF (`None`: the output's base name).
    pub vm_name: Option<String>,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory: u32,
    /// VMware virtual hardware version (the OVF's vmx-N and the VMDK's).
    pub hw_version: u32,
}

/// Runs `nodeboot-image ova`.
pub fn run(args: OvaArgs) -> anyhow::Result<std::process::ExitCode> {
    tools::require(&[QEMU_IMG])?;
    let hw = args.hardware.hardware();
    let mut steps = Steps::new(2, false);
    let vmdk = vmdk_path_for(&args.output);
    steps.step("convert to a streamOptimized VMDK (qemu-img)", || {
        write_stream_optimized_vmdk(&args.disk, &vmdk, hw.hw_version)
    })?;
    steps.step("write the OVA (descriptor, manifest, disk)", || {
        let name = hw
            .vm_name
            .clone()
            .unwrap_or_else(|| file_stem(&args.output));
        let capacity = virtual_size(&vmdk)?;
        write_ova(&args.output, &vmdk, &name, &hw, capacity)
    })?;
    eprintln!("wrote {} and {}", args.output.display(), vmdk.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// `dir/name.ova` → `dir/name-disk1.vmdk`.
pub fn vmdk_path_for(ova: &Path) -> PathBuf {
    ova.with_file_name(format!("{}-disk1.vmdk", file_stem(ova)))
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "nodeboot-node".into())
}

/// Converts any disk qemu-img reads into a single-file streamOptimized VMDK with an LSI Logic
/// adapter and the given hardware version, then reads its descriptor back to check them.
pub fn write_stream_optimized_vmdk(
    input: &Path,
    output: &Path,
    hw_version: u32,
) -> anyhow::Result<()> {
    let opts = format!("subformat=streamOptimized,adapter_type=lsilogic,hwversion={hw_version}");
    tools::run(
        &QEMU_IMG,
        [
            "convert".as_ref(),
            "-O".as_ref(),
            "vmdk".as_ref(),
            "-o".as_ref(),
            opts.as_ref(),
            input.as_os_str(),
            output.as_os_str(),
        ],
    )?;
    check_vmdk(output, hw_version)
}

/// Checks a VMDK's embedded descriptor: streamOptimized, lsilogic, the expected hardware version.
pub fn check_vmdk(path: &Path, hw_version: u32) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let descriptor =
        ovf::read_vmdk_descriptor(file).with_context(|| format!("reading {}", path.display()))?;
    let expect = [
        ("createType", "streamOptimized".to_string()),
        ("ddb.adapterType", "lsilogic".to_string()),
        ("ddb.virtualHWVersion", hw_version.to_string()),
    ];
    for (key, want) in expect {
        let got = ovf::vmdk_descriptor_value(&descriptor, key);
        if got != Some(want.as_str()) {
            bail!(
                "{}: descriptor has {key} = {got:?}, expected {want:?}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The virtual size of a disk image in bytes, as `qemu-img info` reports it.
pub fn virtual_size(path: &Path) -> anyhow::Result<u64> {
    let out = tools::run(
        &QEMU_IMG,
        ["info".as_ref(), "--output=json".as_ref(), path.as_os_str()],
    )?;
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading qemu-img info's JSON")?;
    info.get("virtual-size")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("qemu-img info gave no virtual-size for {}", path.display()))
}

/// Writes the OVA: `name.ovf`, `name.mf`, then the VMDK, as a USTAR archive.
pub fn write_ova(
    output: &Path,
    vmdk: &Path,
    name: &str,
    hw: &Hardware,
    capacity: u64,
) -> anyhow::Result<()> {
    let vmdk_name = vmdk
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", vmdk.display()))?;
    let vmdk_size = std::fs::metadata(vmdk)
        .with_context(|| format!("reading {}", vmdk.display()))?
        .len();
    let spec = OvfSpec {
        name: name.to_string(),
        cpus: hw.cpus,
        memory_mib: hw.memory,
        hw_version: hw.hw_version,
        disk_file: vmdk_name.clone(),
        disk_file_size: vmdk_size,
        capacity,
    };
    let stem = file_stem(output);
    let ovf_name = format!("{stem}.ovf");
    let mf_name = format!("{stem}.mf");
    let descriptor = ovf::render_ovf(&spec);
    let vmdk_hex = ovf::sha256_hex(BufReader::new(File::open(vmdk)?))?;
    let manifest = ovf::render_manifest(&[
        (&ovf_name, &ovf::sha256_hex(descriptor.as_bytes())?),
        (&vmdk_name, &vmdk_hex),
    ]);

    let partial = output.with_extension("ova.partial");
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut archive = tar::Builder::new(BufWriter::new(file));
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    append_bytes(&mut archive, &ovf_name, descriptor.as_bytes(), mtime)?;
    append_bytes(&mut archive, &mf_name, manifest.as_bytes(), mtime)?;
    let mut header = ustar_header(vmdk_size, mtime);
    archive
        .append_data(&mut header, &vmdk_name, BufReader::new(File::open(vmdk)?))
        .with_context(|| format!("adding {vmdk_name} to the OVA"))?;
    let mut writer = archive.into_inner().context("finishing the OVA")?;
    writer.flush()?;
    writer.get_ref().sync_all()?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("renaming to {}", output.display()))?;
    Ok(())
}

fn ustar_header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append_bytes<W: Write>(
    archive: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> anyhow::Result<()> {
    let mut header = ustar_header(bytes.len() as u64, mtime);
    archive
        .append_data(&mut header, name, bytes)
        .with_context(|| format!("adding {name} to the OVA"))
}
