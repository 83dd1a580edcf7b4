//! GRUB 2 for BIOS on the MBR disk: the configuration files (pure rendering) and the install,
//! which runs the image's own `grub-install` inside it, so the boot loader, its modules and
//! the `grub-pc` package the converters look for all come from the image.
//!
//! The kernel command line puts the console on the serial port and the first VGA console,
//! finds the root filesystem by UUID, and keeps the kernel's eth0/eth1 names.

/// Kernel arguments every node boots with (besides `root=`).
pub const KERNEL_ARGS: &str = "console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0";

/// `/boot/grub/grub.cfg` booting `kernel` and `initrd` (paths inside the root filesystem)
/// from the filesystem with `root_uuid`. GRUB talks on both the serial port and the screen.
/// The image's own `update-grub` rewrites this file from `/etc/default/grub` later on.
pub fn render_grub_cfg(root_uuid: &str, kernel: &str, initrd: &str) -> String {
    format!(
        "# Written by nodeboot-image; update-grub regenerates it from /etc/default/grub.\n\
         serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set timeout=1\n\
         set default=0\n\
         insmod part_msdos\n\
         insmod ext2\n\
         search --no-floppy --fs-uuid --set=root {root_uuid}\n\
         menuentry 'Debian GNU/Linux (nodeboot node)' {{\n\
         \tlinux {kernel} root=UUID={root_uuid} ro {KERNEL_ARGS} quiet\n\
         \tinitrd {initrd}\n\
         }}\n"
    )
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

/// `/etc/fstab` mounting the root filesystem by UUID.
pub fn render_fstab(root_uuid: &str) -> String {
    format!(
        "# <file system> <mount point> <type> <options> <dump> <pass>\nUUID={root_uuid} / ext4 errors=remount-ro 0 1\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0b6f3b4e-1f6c-4a55-9d8e-1a2b3c4d5e6f";

    #[test]
    fn grub_cfg_boots_by_uuid_with_both_consoles() {
        let cfg = render_grub_cfg(
            UUID,
            "/boot/vmlinuz-6.1.0-37-amd64",
            "/boot/initrd.img-6.1.0-37-amd64",
        );
        assert!(cfg.contains(&format!("search --no-floppy --fs-uuid --set=root {UUID}\n")));
        assert!(cfg.contains(&format!(
            "\tlinux /boot/vmlinuz-6.1.0-37-amd64 root=UUID={UUID} ro console=tty0 \
             console=ttyS0,115200n8 net.ifnames=0 biosdevname=0 quiet\n"
        )));
        assert!(cfg.contains("\tinitrd /boot/initrd.img-6.1.0-37-amd64\n"));
        assert!(cfg.contains("terminal_output serial console\n"));
    }

    #[test]
    fn grub_cfg_passes_grub_script_check_when_installed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grub.cfg");
        std::fs::write(&path, render_grub_cfg(UUID, "/vmlinuz", "/initrd.img")).unwrap();
        match std::process::Command::new("grub-script-check")
            .arg(&path)
            .output()
        {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => eprintln!("grub-script-check not installed: syntax not checked"),
        }
    }

    #[test]
    fn default_grub_keeps_the_same_kernel_arguments() {
        let d = render_default_grub();
        assert!(d.contains(&format!("GRUB_CMDLINE_LINUX=\"{KERNEL_ARGS}\"\n")));
        assert!(d.contains("GRUB_TERMINAL=\"serial console\"\n"));
    }

    #[test]
    fn fstab_mounts_root_by_uuid() {
        assert!(
            render_fstab(UUID).ends_with(&format!("UUID={UUID} / ext4 errors=remount-ro 0 1\n"))
        );
    }
}
