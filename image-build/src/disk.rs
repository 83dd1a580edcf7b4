//! The disk layout: one bootable Linux partition on an MBR (DOS) partition table, starting at
//! 1 MiB so GRUB's core image fits in the gap before it. Rendering and reading the table are
//! pure; writing it into an image file is one small function.
//!
//! Filesystems and the boot loader live elsewhere (`build`, `grub`).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// The size of a sector in bytes.
pub const SECTOR: u64 = 512;
/// Where the root partition starts: 1 MiB, the usual alignment, leaving room for GRUB.
pub const PARTITION_START: u64 = 1024 * 1024;
/// The MBR partition type of a Linux filesystem.
pub const LINUX_PARTITION_TYPE: u8 = 0x83;

/// One primary partition as the MBR describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The partition's number (1 to 4), as `/dev/sda1` numbers it.
    pub number: u32,
    /// Whether the active (bootable) flag is set.
    pub bootable: bool,
    /// The partition type byte.
    pub kind: u8,
    /// First sector (LBA).
    pub start_lba: u64,
    /// Length in sectors.
    pub sectors: u64,
}

impl Partition {
    /// The byte offset of the partition in the disk.
    pub fn offset(&self) -> u64 {
        self.start_lba * SECTOR
    }

    /// The partition's length in bytes.
    pub fn size(&self) -> u64 {
        self.sectors * SECTOR
    }
}

/// A disk layout that cannot be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The disk is too small for a partition after the 1 MiB gap.
    #[error("disk size {0} bytes is too small: it must be at least 64 MiB")]
    TooSmall(u64),
    /// The disk is larger than an MBR can address.
    #[error("disk size {0} bytes is too large for an MBR partition table (at most 2 TiB)")]
    TooLarge(u64),
    /// The disk size is not a whole number of sectors.
    #[error("disk size {0} bytes is not a multiple of 512")]
    Unaligned(u64),
    /// The first sector has no boot signature.
    #[error("no MBR partition table: the first sector does not end in 55 AA")]
    NoSignature,
    /// The table has no Linux partition.
    #[error("the MBR partition table has no Linux (type 0x83) partition")]
    NoLinuxPartition,
}

/// The single root partition of a disk of `disk_size` bytes: from 1 MiB to the end.
pub fn root_partition(disk_size: u64) -> Result<Partition, LayoutError> {
    if disk_size % SECTOR != 0 {
        return Err(LayoutError::Unaligned(disk_size));
    }
    if disk_size < 64 * 1024 * 1024 {
        return Err(LayoutError::TooSmall(disk_size));
    }
    let sectors = disk_size / SECTOR;
    if sectors > u64::from(u32::MAX) {
        return Err(LayoutError::TooLarge(disk_size));
    }
    let start_lba = PARTITION_START / SECTOR;
    Ok(Partition {
        number: 1,
        bootable: true,
        kind: LINUX_PARTITION_TYPE,
        start_lba,
        sectors: sectors - start_lba,
    })
}

/// Renders the first sector: no boot code (GRUB writes its own), the disk signature, one
/// partition entry with LBA addressing (CHS fields set to the "use LBA" maximum), 55 AA.
pub fn render_mbr(partition: &Partition, disk_signature: u32) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    mbr[440..444].copy_from_slice(&disk_signature.to_le_bytes());
    let slot = usize::try_from(partition.number.clamp(1, 4) - 1).unwrap_or(0);
    let entry = &mut mbr[446 + 16 * slot..462 + 16 * slot];
    entry[0] = if partition.bootable { 0x80 } else { 0 };
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[4] = partition.kind;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    // root_partition keeps both values within u32.
    let start = u32::try_from(partition.start_lba).unwrap_or(u32::MAX);
    let len = u32::try_from(partition.sectors).unwrap_or(u32::MAX);
    entry[8..12].copy_from_slice(&start.to_le_bytes());
    entry[12..16].copy_from_slice(&len.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// Reads the four primary entries of an MBR; empty entries are left out.
pub fn parse_mbr(sector: &[u8; 512]) -> Result<Vec<Partition>, LayoutError> {
    if sector[510] != 0x55 || sector[511] != 0xaa {
        return Err(LayoutError::NoSignature);
    }
    let mut out = Vec::new();
    for i in 0..4 {
        let e = &sector[446 + 16 * i..462 + 16 * i];
        let kind = e[4];
        let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let len = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        if kind == 0 || len == 0 {
            continue;
        }
        let number = u32::try_from(i + 1).unwrap_or(1);
        out.push(Partition {
            number,
            bootable: e[0] == 0x80,
            kind,
            start_lba: start.into(),
            sectors: len.into(),
        });
    }
    Ok(out)
}

/// The partition to put the agent into: the largest Linux partition.
pub fn find_root(partitions: &[Partition]) -> Result<Partition, LayoutError> {
    partitions
        .iter()
        .filter(|p| p.kind == LINUX_PARTITION_TYPE)
        .max_by_key(|p| p.sectors)
        .copied()
        .ok_or(LayoutError::NoLinuxPartition)
}

/// Creates a sparse raw disk of `size` bytes at `path` holding `mbr` in its first sector.
pub fn write_raw_disk(path: &Path, size: u64, mbr: &[u8; 512]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.set_len(size)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(mbr)?;
    file.sync_all()
}

/// Reads the first sector of a raw disk.
pub fn read_first_sector(path: &Path) -> std::io::Result<[u8; 512]> {
    use std::io::Read;
    let mut sector = [0u8; 512];
    std::fs::File::open(path)?.read_exact(&mut sector)?;
    Ok(sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn root_partition_spans_from_one_mebibyte_to_the_end() {
        let p = root_partition(2 * GIB).unwrap();
        assert_eq!(
            p,
            Partition {
                number: 1,
                bootable: true,
                kind: 0x83,
                start_lba: 2048,
                sectors: 2 * GIB / 512 - 2048
            }
        );
        assert_eq!(p.offset(), 1024 * 1024);
        assert_eq!(p.offset() + p.size(), 2 * GIB);
    }

    #[test]
    fn bad_sizes_are_refused_with_the_reason() {
        assert_eq!(
            root_partition(1000).unwrap_err().to_string(),
            "disk size 1000 bytes is not a multiple of 512"
        );
        assert_eq!(
            root_partition(1024 * 1024).unwrap_err(),
            LayoutError::TooSmall(1024 * 1024)
        );
        assert_eq!(
            root_partition(4096 * GIB).unwrap_err(),
            LayoutError::TooLarge(4096 * GIB)
        );
    }

    #[test]
    fn mbr_round_trips_and_matches_the_layout_sfdisk_reads() {
        let p = root_partition(GIB).unwrap();
        let mbr = render_mbr(&p, 0x1234_5678);
        assert_eq!(&mbr[510..], &[0x55, 0xaa]);
        assert_eq!(&mbr[440..444], &0x1234_5678u32.to_le_bytes());
        assert_eq!(parse_mbr(&mbr).unwrap(), vec![p]);
        assert_eq!(find_root(&parse_mbr(&mbr).unwrap()).unwrap(), p);
    }

    #[test]
    fn a_written_disk_is_sparse_and_readable_by_sfdisk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let p = root_partition(GIB).unwrap();
        write_raw_disk(&path, GIB, &render_mbr(&p, 0xdead_beef)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), GIB);
        assert_eq!(
            parse_mbr(&read_first_sector(&path).unwrap()).unwrap(),
            vec![p]
        );
        // An independent reader, when installed: sfdisk's dump of the table.
        if let Ok(out) = std::process::Command::new("sfdisk")
            .arg("--dump")
            .arg(&path)
            .output()
        {
            if out.status.success() {
                let dump = String::from_utf8_lossy(&out.stdout);
                assert!(dump.contains("label: dos"), "{dump}");
                assert!(dump.contains("label-id: 0xdeadbeef"), "{dump}");
                assert!(
                    dump.contains("start=        2048, size=     2095104, type=83, bootable"),
                    "{dump}"
                );
            }
        }
    }

    #[test]
    fn a_sector_without_signature_is_not_a_table() {
        assert_eq!(
            parse_mbr(&[0u8; 512]).unwrap_err(),
            LayoutError::NoSignature
        );
        let mut mbr = render_mbr(&root_partition(GIB).unwrap(), 1);
        mbr[446 + 4] = 0x07;
        assert_eq!(
            find_root(&parse_mbr(&mbr).unwrap()).unwrap_err(),
            LayoutError::NoLinuxPartition
        );
    }
}
