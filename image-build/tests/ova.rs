//! `nodeboot-image ova` run for real on a small disk: the OVA is read back with independent
//! tools (`tar`, `qemu-img`) and our parsers, as an importer would read it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use nodeboot_image::{disk, ovf};
use nodeboot_tests::require::{require, tool};
use nodeboot_tests::run::stdout_of;

/// A 64 MiB raw disk with a partition table and some data, so the conversion has content.
fn small_disk(path: &Path) {
    let size = 64 * 1024 * 1024;
    let part = disk::root_partition(size).unwrap();
    disk::write_raw_disk(path, size, &disk::render_mbr(&part, 0x0b0b_0b0b)).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(part.offset() + 4096)).unwrap();
    f.write_all(&b"nodeboot".repeat(100_000)).unwrap();
}

#[test]
fn ova_is_descriptor_manifest_disk_and_reads_back() {
    if !require(tool("qemu-img"), "qemu-img (Debian qemu-utils)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("node.raw");
    small_disk(&raw);
    let ova = dir.path().join("edge.ova");
    let out = Command::new(env!("CARGO_BIN_EXE_nodeboot-image"))
        .args([
            "ova",
            raw.to_str().unwrap(),
            "--output",
            ova.to_str().unwrap(),
            "--cpus",
            "4",
            "--memory",
            "8192",
        ])
        .args(["--hw-version", "14"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("[1/2] convert to a streamOptimized VMDK (qemu-img): done in"),
        "{progress}"
    );
    assert!(
        progress.contains("[2/2] write the OVA (descriptor, manifest, disk): done in"),
        "{progress}"
    );

    // tar: USTAR, descriptor first, then manifest, then the disk.
    let listing = stdout_of(Command::new("tar").arg("tvf").arg(&ova));
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["edge.ovf", "edge.mf", "edge-disk1.vmdk"],
        "{listing}"
    );
    let header = std::fs::read(&ova).unwrap();
    assert_eq!(&header[257..263], b"ustar\0", "not a POSIX USTAR archive");
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    stdout_of(
        Command::new("tar")
            .arg("xf")
            .arg(&ova)
            .arg("-C")
            .arg(&unpacked),
    );

    // The manifest matches the files.
    let manifest =
        ovf::parse_manifest(&std::fs::read_to_string(unpacked.join("edge.mf")).unwrap()).unwrap();
    assert_eq!(manifest.len(), 2);
    for (name, hex) in &manifest {
        let actual = ovf::sha256_hex(std::fs::File::open(unpacked.join(name)).unwrap()).unwrap();
        assert_eq!(&actual, hex, "manifest entry for {name}");
    }
    let sha = stdout_of(
        Command::new("sha256sum")
            .arg("edge.ovf")
            .arg("edge-disk1.vmdk")
            .current_dir(&unpacked),
    );
    for line in sha.lines() {
        let (hex, name) = line.split_once("  ").unwrap();
        assert!(
            manifest.contains(&(name.to_string(), hex.to_string())),
            "sha256sum: {line}"
        );
    }

    // The descriptor: the disk's size and capacity, the hardware asked for.
    let descriptor = std::fs::read_to_string(unpacked.join("edge.ovf")).unwrap();
    let vmdk = unpacked.join("edge-disk1.vmdk");
    let vmdk_size = std::fs::metadata(&vmdk).unwrap().len();
    assert!(descriptor.contains(&format!(
        "ovf:href=\"edge-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"{vmdk_size}\""
    )));
    assert!(
        descriptor.contains("ovf:capacity=\"67108864\""),
        "{descriptor}"
    );
    assert!(descriptor.contains("<vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType>"));
    assert!(descriptor.contains("<rasd:VirtualQuantity>4</rasd:VirtualQuantity>"));
    assert!(descriptor.contains("<rasd:VirtualQuantity>8192</rasd:VirtualQuantity>"));
    assert!(descriptor.contains("<Name>edge</Name>"));

    // The VMDK: its embedded descriptor agrees with the OVF's hardware family.
    let text = ovf::read_vmdk_descriptor(std::fs::File::open(&vmdk).unwrap()).unwrap();
    assert_eq!(
        ovf::vmdk_descriptor_value(&text, "createType"),
        Some("streamOptimized")
    );
    assert_eq!(
        ovf::vmdk_descriptor_value(&text, "ddb.virtualHWVersion"),
        Some("14")
    );
    assert_eq!(
        ovf::vmdk_descriptor_value(&text, "ddb.adapterType"),
        Some("lsilogic")
    );

    // qemu-img reads it as a streamOptimized VMDK holding exactly the raw disk's content.
    let info: serde_json::Value = serde_json::from_str(&stdout_of(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&vmdk),
    ))
    .unwrap();
    assert_eq!(info["format"], "vmdk");
    assert_eq!(info["virtual-size"], 67108864);
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        "streamOptimized"
    );
    stdout_of(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "vmdk"])
            .arg(&raw)
            .arg(&vmdk),
    );
}

#[test]
fn a_missing_input_is_a_clear_error() {
    if !tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nodeboot-image"))
        .args(["ova", "/nonexistent/disk.raw", "--output"])
        .arg(dir.path().join("x.ova"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nodeboot-image: `"), "{err}");
    assert!(err.contains("qemu-img convert -O vmdk"), "{err}");
    assert!(err.contains("/nonexistent/disk.raw"), "{err}");
    assert!(!dir.path().join("x.ova").exists());
}
