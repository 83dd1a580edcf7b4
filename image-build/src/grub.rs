//! GRUB 2 for BIOS and UEFI on the GPT disk: the configuration files (pure rendering) and the
//! checks of what the install wrote. The install (in `build`) runs the image's own
//! `grub-install` for i386-pc and x86_64-efi and its own `update-grub`, so the boot loader, its
//! modules, the `grub-pc` package the converters look for and the `grub.cfg` that kernel
//! updates inside the node regenerate all come from the image.
//!
//! The kernel command line puts the console on the serial port and the first VGA console,
//! finds the root filesystem by UUID, and keeps the kernel's eth0/eth1 names.

/// Kernel arguments every node boots with (besides `root=`).
pub const KERNEL_ARGS: &str = "console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0";

/// Checks the `grub.cfg` that the image's own `update-grub` wrote: it must boot the root file
/// system by UUID with every kernel argument of [`KERNEL_ARGS`] (an `update-grub` that could
/// not see the UUID writes a loop device name instead, which boots nowhere). Returns what is
/// missing.
pub fn check_grub_cfg(cfg: &str, root_uuid: &str) -> Result<(), String> {
    let search = format!("--fs-uuid --set=root {root_uuid}");
    let root = format!("root=UUID={root_uuid}");
    let Some(linux) = cfg
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("linux\t") || l.starts_with("linux "))
    else {
        return Err("grub.cfg has no `linux` line (did update-grub find a kernel?)".into());
    };
    let mut missing: Vec<&str> = Vec::new();
    if !cfg.contains(&search) {
        missing.push(&search);
    }
    if !linux.contains(&root) {
        missing.push(&root);
    }
    for arg in KERNEL_ARGS.split(' ') {
        if !linux.split_whitespace().any(|w| w == arg) {
            missing.push(arg);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "grub.cfg lacks {} (its first kernel line: {linux})",
            missing.join(", ")
        ))
    }
}

/// The FAT volume id of the EFI system partition, from the root UUID's last 32 bits, and the
/// form fstab's `UUID=` takes (`ABCD-EF01`).
pub fn esp_volume_id(root_uuid: &str) -> (String, String) {
    let hex: String = root_uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_uppercase();
    let id = if hex.len() >= 8 {
        hex[hex.len() - 8..].to_string()
    } else {
        "4E4F4445".to_string()
    };
    let fstab = format!("{}-{}", &id[..4], &id[4..]);
    (id, fstab)
}

/// The modules built into the x86_64-efi core image: enough to find the root file system by
/// UUID on a GPT (or MBR) disk; the rest load from `/boot/grub/x86_64-efi` as grub.cfg asks.
pub const EFI_CORE_MODULES: &[&str] = &[
    "part_gpt",
    "part_msdos",
    "fat",
    "ext2",
    "search",
    "search_fs_uuid",
    "normal",
];

/// Where the EFI loader goes on the ESP: the removable-media path, which firmware with no boot
/// entry runs, and Debian's own.
pub const EFI_LOADER_PATHS: [&str; 2] = ["EFI/BOOT/BOOTX64.EFI", "EFI/debian/grubx64.efi"];

/// The configuration built into the EFI core image, as `grub-install` writes it when /boot/grub
/// is on another file system than the ESP: find the root by UUID and read grub.cfg there.
pub fn render_efi_load_cfg(root_uuid: &str) -> String {
    format!("search.fs_uuid {root_uuid} root\nset prefix=($root)'/boot/grub'\n")
}

/// `/etc/default/grub`: the same settings for the image's own `update-grub`.
pub fn render_default_grub() -> String {
    format!(
        "# Written by nodeboot-image.\n\
         GRUB_DEFAULT=0\n\
         GRUB_TIMEOUT=1\n\
         GRUB_DISTRIBUTOR=Debian\n\
         GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n\
         GRUB_CMDLINE_LINUX=\"{KERNEL_ARGS}\"\n\
         GRUB_TERMINAL=\"serial console\"\n\
         GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\"\n\
         GRUB_DISABLE_OS_PROBER=true\n"
    )
}

/// `/etc/fstab` mounting the root filesystem by UUID, and the EFI system partition (its FAT
/// volume id, `esp` as `ABCD-EF01`) at /boot/efi, where `grub-install --target=x86_64-efi`
/// finds it; `nofail`, so a copy of the disk without it (an import that kept only the root)
/// still boots.
pub fn render_fstab(root_uuid: &str, esp: &str) -> String {
    format!(
        "# <file system> <mount point> <type> <options> <dump> <pass>\n\
         UUID={root_uuid} / ext4 errors=remount-ro 0 1\n\
         UUID={esp} /boot/efi vfat umask=0077,nofail 0 1\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0b6f3b4e-1f6c-4a55-9d8e-1a2b3c4d5e6f";

    /// The lines of a grub.cfg that Debian 12's update-grub writes for the node.
    fn update_grub_output(linux_root: &str) -> String {
        format!(
            "insmod part_gpt\ninsmod ext2\n\
             search --no-floppy --fs-uuid --set=root {UUID}\n\
             menuentry 'Debian GNU/Linux' {{\n\
             \tlinux\t/boot/vmlinuz-6.1.0-37-amd64 root={linux_root} ro {KERNEL_ARGS} quiet\n\
             \tinitrd\t/boot/initrd.img-6.1.0-37-amd64\n}}\n"
        )
    }

    #[test]
    fn the_generated_grub_cfg_must_boot_by_uuid_with_both_consoles() {
        check_grub_cfg(&update_grub_output(&format!("UUID={UUID}")), UUID).unwrap();
        assert_eq!(
            check_grub_cfg(&update_grub_output("/dev/loop0p1"), UUID).unwrap_err(),
            format!(
                "grub.cfg lacks root=UUID={UUID} (its first kernel line: linux\t\
                 /boot/vmlinuz-6.1.0-37-amd64 root=/dev/loop0p1 ro {KERNEL_ARGS} quiet)"
            )
        );
        let no_serial =
            update_grub_output(&format!("UUID={UUID}")).replace(" console=ttyS0,115200n8", "");
        assert!(
            check_grub_cfg(&no_serial, UUID)
                .unwrap_err()
                .starts_with("grub.cfg lacks console=ttyS0,115200n8 (")
        );
        assert_eq!(
            check_grub_cfg("set timeout=1\n", UUID).unwrap_err(),
            "grub.cfg has no `linux` line (did update-grub find a kernel?)"
        );
    }

    #[test]
    fn the_efi_core_image_finds_the_root_by_uuid() {
        assert_eq!(
            render_efi_load_cfg(UUID),
            format!("search.fs_uuid {UUID} root\nset prefix=($root)'/boot/grub'\n")
        );
    }

    #[test]
    fn default_grub_keeps_the_same_kernel_arguments() {
        let d = render_default_grub();
        assert!(d.contains(&format!("GRUB_CMDLINE_LINUX=\"{KERNEL_ARGS}\"\n")));
        assert!(d.contains("GRUB_TERMINAL=\"serial console\"\n"));
    }

    #[test]
    fn fstab_mounts_root_by_uuid_and_the_esp_by_volume_id() {
        let (id, esp) = esp_volume_id(UUID);
        assert_eq!((id.as_str(), esp.as_str()), ("3C4D5E6F", "3C4D-5E6F"));
        assert!(render_fstab(UUID, &esp).ends_with(&format!(
            "UUID={UUID} / ext4 errors=remount-ro 0 1\n\
             UUID=3C4D-5E6F /boot/efi vfat umask=0077,nofail 0 1\n"
        )));
    }
}
