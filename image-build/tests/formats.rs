//! The GPT layout and the cloud formats (Google's `disk.raw` archive, Azure's fixed VHD)
//! written for real on small disks and read back by tools that are not ours: `sgdisk -v` and
//! `sgdisk -p` for the partition table, `qemu-img info` and `qemu-img compare` for the VHD,
//! `tar -tvf` and `gzip -dc` for the archive. Both kinds of table (the GPT of built images, the
//! MBR of older ones) are found by the reader `bake` uses.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use nodeboot_image::disk::{self, Kind};
use nodeboot_image::output::{self, Format};
use nodeboot_image::ova::Hardware;
use nodeboot_image::progress::Steps;
use nodeboot_tests::require::{require, tool};
use nodeboot_tests::run::stdout_of;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn tools_present() -> bool {
    require(
        tool("sgdisk") && tool("qemu-img") && tool("tar") && tool("gzip"),
        "sgdisk (Debian gdisk), qemu-img (qemu-utils), tar and gzip",
    )
}

/// A sparse disk of `size` bytes with the node image's GPT written by sgdisk, and some data in
/// the root partition so the conversions have content.
fn gpt_disk(path: &Path, size: u64) -> Vec<disk::Partition> {
    let layout = disk::gpt_layout(size).unwrap();
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    stdout_of(
        Command::new("sgdisk")
            .args(disk::sgdisk_args(
                &layout,
                "5f0e7c4a-0c1d-4b7e-9a53-1d2c3b4a5f60",
            ))
            .arg(path),
    );
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(layout[2].offset() + 4096)).unwrap();
    f.write_all(&b"nodeboot".repeat(100_000)).unwrap();
    layout
}

fn sgdisk_verify(path: &Path) -> String {
    let out = stdout_of(Command::new("sgdisk").arg("-v").arg(path));
    assert!(
        out.contains("No problems found"),
        "sgdisk -v {}:\n{out}",
        path.display()
    );
    out
}

#[test]
fn the_gpt_layout_is_valid_for_sgdisk_and_bake_finds_its_root() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("node.raw");
    let layout = gpt_disk(&raw, GIB);
    sgdisk_verify(&raw);
    // sgdisk's own listing: BIOS boot EF02, ESP EF00, root 8300, at the sectors we chose.
    let listing = stdout_of(Command::new("sgdisk").arg("-p").arg(&raw));
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[5])).collect();
    assert_eq!(
        summary,
        [
            ("1", "262144", "8300"),
            ("14", "2048", "EF02"),
            ("15", "8192", "EF00")
        ],
        "{listing}"
    );
    let read = disk::read_partitions(&raw).unwrap();
    let mut expected = layout.clone();
    expected.sort_by_key(|p| p.number);
    let mut got = read.clone();
    got.sort_by_key(|p| p.number);
    assert_eq!(got, expected);
    assert_eq!(disk::find_root(&read).unwrap().number, 1);
    assert_eq!(disk::find_root(&read).unwrap().kind, Kind::Linux);
}

#[test]
fn an_old_mbr_image_still_has_its_root_found() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("old.raw");
    let part = disk::root_partition(64 * MIB).unwrap();
    disk::write_raw_disk(&raw, 64 * MIB, &disk::render_mbr(&part, 0x0b0b_0b0b)).unwrap();
    let read = disk::read_partitions(&raw).unwrap();
    assert_eq!(disk::find_root(&read).unwrap(), part);
    // A disk with no table at all is refused with the reason.
    let blank = dir.path().join("blank.raw");
    std::fs::File::create(&blank).unwrap().set_len(MIB).unwrap();
    assert_eq!(
        disk::read_partitions(&blank).unwrap_err().to_string(),
        "no MBR partition table: the first sector does not end in 55 AA"
    );
}

#[test]
fn gce_and_vhd_outputs_read_back_with_other_tools() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("work.raw");
    gpt_disk(&raw, GIB);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let hw = Hardware {
        vm_name: None,
        cpus: 2,
        memory: 4096,
        hw_version: 13,
    };
    let formats = [Format::Gce, Format::Vhd];
    let mut steps = Steps::new(output::step_count(&formats), true);
    let written = output::write_outputs(&raw, &out, "node", &formats, &hw, &mut steps).unwrap();
    assert_eq!(written, [out.join("node.vhd"), out.join("node.tar.gz")]);

    // The VHD: qemu-img reads a fixed vpc of exactly the disk's size, a whole number of MiB,
    // with the same content. (A fixed VHD has its footer only at the end, so qemu-img's probe
    // takes it for raw: the format is named.)
    let vhd = out.join("node.vhd");
    let info: serde_json::Value = serde_json::from_str(&stdout_of(
        Command::new("qemu-img")
            .args(["info", "-f", "vpc", "--output=json"])
            .arg(&vhd),
    ))
    .unwrap();
    assert_eq!(info["format"], "vpc", "{info}");
    assert_eq!(info["virtual-size"], GIB, "{info}");
    assert_eq!(info["virtual-size"].as_u64().unwrap() % MIB, 0);
    // Fixed: the data, then the 512-byte footer.
    assert_eq!(std::fs::metadata(&vhd).unwrap().len(), GIB + 512);
    stdout_of(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "vpc"])
            .arg(&raw)
            .arg(&vhd),
    );

    // The archive: one member, disk.raw, GNU format, the disk's content.
    let archive = out.join("node.tar.gz");
    let listing = stdout_of(Command::new("tar").arg("-tvf").arg(&archive));
    let members: Vec<&str> = listing.lines().collect();
    assert_eq!(members.len(), 1, "{listing}");
    assert!(members[0].ends_with(" disk.raw"), "{listing}");
    assert!(members[0].contains(&GIB.to_string()), "{listing}");
    let header = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc \"$1\" | head -c 512")
        .arg("sh")
        .arg(&archive)
        .output()
        .unwrap()
        .stdout;
    assert_eq!(&header[257..265], b"ustar  \0", "not a GNU tar header");
    // GNU's sparse member type 'S': the zeros of the disk are not stored.
    assert_eq!(header[156], b'S');
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    stdout_of(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    );
    stdout_of(Command::new("cmp").arg(&raw).arg(unpacked.join("disk.raw")));
    sgdisk_verify(&unpacked.join("disk.raw"));
}

#[test]
fn a_disk_of_no_whole_mebibyte_becomes_a_whole_mebibyte_vhd_with_a_valid_gpt() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("odd.raw");
    let size = 600 * MIB + 512 * 7;
    std::fs::File::create(&raw).unwrap().set_len(size).unwrap();
    stdout_of(
        Command::new("sgdisk")
            .args(["--new=14:2048:8191", "--typecode=14:EF02"])
            .args(["--new=1:8192:0", "--typecode=1:8300"])
            .arg(&raw),
    );
    let vhd = dir.path().join("odd.vhd");
    output::write_vhd(&raw, &vhd).unwrap();
    let info: serde_json::Value = serde_json::from_str(&stdout_of(
        Command::new("qemu-img")
            .args(["info", "-f", "vpc", "--output=json"])
            .arg(&vhd),
    ))
    .unwrap();
    assert_eq!(info["virtual-size"], 601 * MIB, "{info}");
    let back = dir.path().join("back.raw");
    stdout_of(
        Command::new("qemu-img")
            .args(["convert", "-f", "vpc", "-O", "raw"])
            .arg(&vhd)
            .arg(&back),
    );
    sgdisk_verify(&back);
}
