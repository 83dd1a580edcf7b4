//! Disk layouts. A built node image is GPT with three partitions laid out as Debian's own cloud
//! images are: 14, the BIOS boot partition (GRUB's i386-pc core image); 15, the EFI system
//! partition (FAT32, GRUB for x86_64-efi); 1, the root file system, from 128 MiB to the end.
//! The same disk boots under BIOS and UEFI. `sgdisk` writes the GPT ([`sgdisk_args`] renders
//! its arguments); reading either table (GPT, or the MBR of older images and of images `bake`
//! is given) is pure code here ([`read_partitions`]).
//!
//! File systems and the boot loader live elsewhere (`build`, `grub`).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// The size of a sector in bytes.
pub const SECTOR: u64 = 512;
/// Where the root partition starts: 1 MiB, the usual alignment, leaving room for GRUB.
pub const PARTITION_START: u64 = 1024 * 1024;
/// The MBR partition type of a Linux filesystem.
pub const LINUX_PARTITION_TYPE: u8 = 0x83;
/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// The GPT partition number of the root file system (as in Debian's cloud images).
pub const ROOT_NUMBER: u32 = 1;
/// The GPT partition number of the BIOS boot partition.
pub const BIOS_BOOT_NUMBER: u32 = 14;
/// The GPT partition number of the EFI system partition.
pub const ESP_NUMBER: u32 = 15;
/// Where the root partition starts on a GPT image: after the BIOS boot partition (1–4 MiB)
/// and the EFI system partition (4–128 MiB).
pub const GPT_ROOT_START: u64 = 128 * MIB;

/// The GPT type GUID of a Linux file system.
pub const GUID_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// The GPT type GUID of an x86-64 root partition (Discoverable Partitions Specification).
pub const GUID_LINUX_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
/// The GPT type GUID of an EFI system partition.
pub const GUID_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// The GPT type GUID of a BIOS boot partition (GRUB's core image on a GPT disk).
pub const GUID_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";

/// What a partition holds, as its table's type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Linux file system (MBR 0x83; GPT Linux file system or x86-64 root).
    Linux,
    /// An EFI system partition (MBR 0xEF; GPT C12A7328-…).
    EfiSystem,
    /// GRUB's BIOS boot partition (GPT only).
    BiosBoot,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind of an MBR type byte.
    pub fn from_mbr(byte: u8) -> Kind {
        match byte {
            LINUX_PARTITION_TYPE => Kind::Linux,
            0xef => Kind::EfiSystem,
            _ => Kind::Other,
        }
    }

    /// The kind of a GPT type GUID (upper-case text form).
    pub fn from_gpt(guid: &str) -> Kind {
        match guid {
            GUID_LINUX | GUID_LINUX_ROOT_X86_64 => Kind::Linux,
            GUID_ESP => Kind::EfiSystem,
            GUID_BIOS_BOOT => Kind::BiosBoot,
            _ => Kind::Other,
        }
    }

    /// The type code `sgdisk --typecode` takes for this kind.
    pub fn sgdisk_code(self) -> &'static str {
        match self {
            Kind::Linux => "8300",
            Kind::EfiSystem => "EF00",
            Kind::BiosBoot => "EF02",
            Kind::Other => "0700",
        }
    }
}

/// One partition as its table describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The partition's number, as `/dev/sda1` numbers it (MBR: 1 to 4; GPT: the entry's
    /// index plus one).
    pub number: u32,
    /// Whether the MBR's active (bootable) flag is set (always false on GPT).
    pub bootable: bool,
    /// What the partition holds.
    pub kind: Kind,
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
    /// The GPT image's size is not a whole number of MiB (Azure's VHD needs one).
    #[error("disk size {0} bytes is not a whole number of MiB: give the size in M or G")]
    NotWholeMib(u64),
    /// The disk is too small for the GPT layout.
    #[error("disk size {0} bytes is too small: a node image needs at least 512 MiB")]
    TooSmallForGpt(u64),
    /// The protective MBR announces a GPT that cannot be read.
    #[error("the GPT cannot be read: {0}")]
    BadGpt(String),
    /// The first sector has no boot signature.
    #[error("no MBR partition table: the first sector does not end in 55 AA")]
    NoSignature,
    /// The table has no Linux partition.
    #[error(
        "the partition table has no Linux partition (MBR type 0x83, GPT type {GUID_LINUX} \
         or {GUID_LINUX_ROOT_X86_64})"
    )]
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
        kind: Kind::Linux,
        start_lba,
        sectors: sectors - start_lba,
    })
}

/// The GPT layout of a node image of `disk_size` bytes: BIOS boot (14, 1–4 MiB), EFI system
/// partition (15, 4–128 MiB), root (1, 128 MiB to the last usable sector, which leaves the 33
/// sectors of the backup table at the end).
pub fn gpt_layout(disk_size: u64) -> Result<Vec<Partition>, LayoutError> {
    if disk_size % MIB != 0 {
        return Err(LayoutError::NotWholeMib(disk_size));
    }
    if disk_size < 512 * MIB {
        return Err(LayoutError::TooSmallForGpt(disk_size));
    }
    let part = |number, kind, start: u64, end: u64| Partition {
        number,
        bootable: false,
        kind,
        start_lba: start / SECTOR,
        sectors: (end - start) / SECTOR,
    };
    let last_usable = disk_size - 33 * SECTOR;
    Ok(vec![
        part(BIOS_BOOT_NUMBER, Kind::BiosBoot, MIB, 4 * MIB),
        part(ESP_NUMBER, Kind::EfiSystem, 4 * MIB, GPT_ROOT_START),
        part(ROOT_NUMBER, Kind::Linux, GPT_ROOT_START, last_usable),
    ])
}

/// The arguments of `sgdisk` that write `layout` onto a disk (a new GPT and protective MBR),
/// with the disk GUID `disk_guid` so one build has one identity.
pub fn sgdisk_args(layout: &[Partition], disk_guid: &str) -> Vec<String> {
    let mut args = vec!["--clear".to_string(), format!("--disk-guid={disk_guid}")];
    for p in layout {
        let n = p.number;
        let name = match p.kind {
            Kind::BiosBoot => "bios-boot",
            Kind::EfiSystem => "esp",
            Kind::Linux => "root",
            Kind::Other => "data",
        };
        args.push(format!(
            "--new={n}:{}:{}",
            p.start_lba,
            p.start_lba + p.sectors - 1
        ));
        args.push(format!("--typecode={n}:{}", p.kind.sgdisk_code()));
        args.push(format!("--change-name={n}:{name}"));
    }
    args
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
    entry[4] = match partition.kind {
        Kind::EfiSystem => 0xef,
        Kind::Other => 0x07,
        Kind::Linux | Kind::BiosBoot => LINUX_PARTITION_TYPE,
    };
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
            kind: Kind::from_mbr(kind),
            start_lba: start.into(),
            sectors: len.into(),
        });
    }
    Ok(out)
}

/// The MBR type of a protective MBR: the whole disk belongs to a GPT.
const PROTECTIVE_MBR_TYPE: u8 = 0xee;
/// The most GPT entry bytes read (128 entries of 128 bytes is the usual 16 KiB).
const MAX_GPT_ENTRY_BYTES: u64 = 1024 * 1024;

/// The text form of a GPT GUID (its first three fields are little-endian on disk).
pub fn guid_text(b: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// Reads the GPT header (`header`: the sector at LBA 1) and the entries `read_at` returns;
/// used entries only, numbered by their index plus one.
pub fn parse_gpt(
    header: &[u8; 512],
    mut read_at: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<Partition>, LayoutError> {
    if &header[..8] != b"EFI PART" {
        return Err(LayoutError::BadGpt(
            "no \"EFI PART\" signature at LBA 1".into(),
        ));
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
    let mut lba = [0u8; 8];
    lba.copy_from_slice(&header[72..80]);
    let entries_lba = u64::from_le_bytes(lba);
    let count = u64::from(u32_at(80));
    let size = u64::from(u32_at(84));
    if size < 128 || size % 8 != 0 {
        return Err(LayoutError::BadGpt(format!(
            "entry size {size} is not valid"
        )));
    }
    let total = count.saturating_mul(size);
    if total > MAX_GPT_ENTRY_BYTES {
        return Err(LayoutError::BadGpt(format!(
            "{count} entries of {size} bytes is more than {MAX_GPT_ENTRY_BYTES} bytes"
        )));
    }
    let offset = entries_lba
        .checked_mul(SECTOR)
        .ok_or_else(|| LayoutError::BadGpt(format!("entries at LBA {entries_lba}")))?;
    let bytes = read_at(offset, usize::try_from(total).unwrap_or(0))
        .map_err(|e| LayoutError::BadGpt(format!("reading the entries: {e}")))?;
    let size = usize::try_from(size).unwrap_or(128);
    let mut out = Vec::new();
    for (i, e) in bytes.chunks_exact(size).enumerate() {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&e[..16]);
        if guid == [0u8; 16] {
            continue;
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&e[32..40]);
        let mut last = [0u8; 8];
        last.copy_from_slice(&e[40..48]);
        let (first, last) = (u64::from_le_bytes(first), u64::from_le_bytes(last));
        if last < first {
            return Err(LayoutError::BadGpt(format!(
                "entry {} ends (LBA {last}) before it starts (LBA {first})",
                i + 1
            )));
        }
        out.push(Partition {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            bootable: false,
            kind: Kind::from_gpt(&guid_text(&guid)),
            start_lba: first,
            sectors: last - first + 1,
        });
    }
    Ok(out)
}

/// The partitions of a raw disk image: its GPT when the MBR is a protective one (type 0xEE),
/// otherwise the MBR's primary partitions. `bake` finds the root in either.
pub fn read_partitions(path: &Path) -> Result<Vec<Partition>, ReadError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut first = [0u8; 512];
    file.read_exact(&mut first)?;
    let mbr = parse_mbr(&first)?;
    if !first[446..510]
        .chunks(16)
        .any(|e| e[4] == PROTECTIVE_MBR_TYPE)
    {
        return Ok(mbr);
    }
    let mut header = [0u8; 512];
    file.read_exact(&mut header)?;
    Ok(parse_gpt(&header, |offset, len| {
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
        Ok(buf)
    })?)
}

/// A partition table that could not be read from a file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The table is not valid.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The partition to put the agent into: the largest Linux partition.
pub fn find_root(partitions: &[Partition]) -> Result<Partition, LayoutError> {
    partitions
        .iter()
        .filter(|p| p.kind == Kind::Linux)
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
                kind: Kind::Linux,
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
    fn the_gpt_layout_is_debians_cloud_layout_and_refuses_bad_sizes() {
        let layout = gpt_layout(2 * GIB).unwrap();
        let numbers: Vec<(u32, Kind, u64)> = layout
            .iter()
            .map(|p| (p.number, p.kind, p.offset()))
            .collect();
        assert_eq!(
            numbers,
            [
                (14, Kind::BiosBoot, MIB),
                (15, Kind::EfiSystem, 4 * MIB),
                (1, Kind::Linux, 128 * MIB)
            ]
        );
        // The root ends before the 33 sectors of the backup table.
        assert_eq!(layout[2].offset() + layout[2].size(), 2 * GIB - 33 * 512);
        assert_eq!(find_root(&layout).unwrap().number, 1);
        assert_eq!(
            gpt_layout(2 * GIB + 512).unwrap_err().to_string(),
            "disk size 2147484160 bytes is not a whole number of MiB: give the size in M or G"
        );
        assert_eq!(
            gpt_layout(256 * MIB).unwrap_err(),
            LayoutError::TooSmallForGpt(256 * MIB)
        );
        let args = sgdisk_args(&layout, "11111111-2222-4333-8444-555555555555");
        assert_eq!(
            args[..5],
            [
                "--clear",
                "--disk-guid=11111111-2222-4333-8444-555555555555",
                "--new=14:2048:8191",
                "--typecode=14:EF02",
                "--change-name=14:bios-boot"
            ]
        );
    }

    #[test]
    fn a_gpt_is_read_from_its_header_and_entries() {
        let mut header = [0u8; 512];
        header[..8].copy_from_slice(b"EFI PART");
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&4u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        let mut entries = vec![0u8; 4 * 128];
        // Entry 3: a Linux file system from LBA 4096 to 8191 (GUID 0FC63DAF-8483-4772-…).
        let linux = [
            0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
            0x7d, 0xe4,
        ];
        assert_eq!(guid_text(&linux), GUID_LINUX);
        entries[256..272].copy_from_slice(&linux);
        entries[288..296].copy_from_slice(&4096u64.to_le_bytes());
        entries[296..304].copy_from_slice(&8191u64.to_le_bytes());
        let parts = parse_gpt(&header, |offset, len| {
            assert_eq!((offset, len), (1024, 512));
            Ok(entries.clone())
        })
        .unwrap();
        assert_eq!(
            parts,
            [Partition {
                number: 3,
                bootable: false,
                kind: Kind::Linux,
                start_lba: 4096,
                sectors: 4096
            }]
        );
        // Hostile headers: no signature, a huge entry array, an entry ending before it starts.
        assert!(matches!(
            parse_gpt(&[0u8; 512], |_, _| Ok(Vec::new())),
            Err(LayoutError::BadGpt(_))
        ));
        let mut huge = header;
        huge[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse_gpt(&huge, |_, _| panic!("must not read"))
                .unwrap_err()
                .to_string(),
            "the GPT cannot be read: 4294967295 entries of 128 bytes is more than 1048576 bytes"
        );
        entries[296..304].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(
            parse_gpt(&header, |_, _| Ok(entries.clone()))
                .unwrap_err()
                .to_string(),
            "the GPT cannot be read: entry 3 ends (LBA 1) before it starts (LBA 4096)"
        );
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
