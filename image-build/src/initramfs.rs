//! The drivers every node's initramfs carries, whatever it is imported into: virtio (KVM,
//! Google, Oracle's paravirtualized mode), VMware (PVSCSI, VMXNET3, LSI Logic), Oracle Cloud's
//! emulated mode and VirtualBox (IDE/PIIX, AHCI, e1000), Hyper-V and Azure (storvsc, netvsc,
//! vmbus), NVMe. Pure rendering of the initramfs-tools files and the check of what an initramfs
//! lists; the build writes the files before the kernel package builds the first initramfs.
//!
//! `MODULES=most` (Debian's default) is set explicitly, so an image never gets `MODULES=dep`,
//! which would keep only the drivers of the build machine; the hook adds the list below on top
//! of it (udev loads them by their device aliases at boot, nothing is loaded unconditionally).

/// The driver modules (file names without `.ko`) every node's initramfs holds.
pub const DRIVERS: &[&str] = &[
    // virtio
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    // VMware: paravirtual SCSI and NIC, the LSI Logic SCSI controllers the OVA declares
    "vmw_pvscsi",
    "vmxnet3",
    "mptspi",
    "mptsas",
    // emulated IDE and SATA disks, Intel NICs (Oracle Cloud emulated mode, VirtualBox, the OVA's E1000)
    "ata_piix",
    "ata_generic",
    "ahci",
    "e1000",
    "e1000e",
    // Hyper-V and Azure
    "hv_vmbus",
    "hv_storvsc",
    "hv_netvsc",
    // NVMe disks (Google, AWS), SCSI disks
    "nvme",
    "sd_mod",
];

/// Where [`render_hook`] goes in the image.
pub const HOOK_PATH: &str = "etc/initramfs-tools/hooks/nodeboot-drivers";
/// Where [`render_conf`] goes in the image.
pub const CONF_PATH: &str = "etc/initramfs-tools/conf.d/nodeboot";

/// The initramfs-tools hook that adds [`DRIVERS`] (with their dependencies).
pub fn render_hook() -> String {
    format!(
        "#!/bin/sh\n\
         # Written by nodeboot-image: the drivers of every platform a node is imported into.\n\
         PREREQ=\"\"\n\
         prereqs() {{ echo \"$PREREQ\"; }}\n\
         case \"$1\" in prereqs) prereqs; exit 0 ;; esac\n\
         . /usr/share/initramfs-tools/hook-functions\n\
         manual_add_modules {}\n",
        DRIVERS.join(" ")
    )
}

/// The initramfs-tools setting: all storage and network drivers, never only the build
/// machine's.
pub fn render_conf() -> String {
    "# Written by nodeboot-image: a node image runs on hardware the build machine does not\n\
     # have, so never MODULES=dep.\nMODULES=most\n"
        .to_string()
}

/// The drivers of [`DRIVERS`] that neither `listing` (`lsinitramfs` output) holds as a module
/// file nor `builtin` (the kernel's `modules.builtin`) names.
pub fn missing_drivers(listing: &str, builtin: &str) -> Vec<&'static str> {
    let has = |text: &str, name: &str| {
        text.lines().any(|l| {
            let file = l.rsplit('/').next().unwrap_or(l);
            [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
                .iter()
                .any(|ext| file.strip_suffix(ext) == Some(name))
        })
    };
    DRIVERS
        .iter()
        .copied()
        .filter(|d| !has(listing, d) && !has(builtin, d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_adds_every_driver_and_the_conf_never_says_dep() {
        let hook = render_hook();
        assert!(hook.starts_with("#!/bin/sh\n"));
        assert!(hook.ends_with(
            "manual_add_modules virtio_pci virtio_blk virtio_scsi virtio_net vmw_pvscsi \
             vmxnet3 mptspi mptsas ata_piix ata_generic ahci e1000 e1000e hv_vmbus hv_storvsc \
             hv_netvsc nvme sd_mod\n"
        ));
        assert!(render_conf().ends_with("\nMODULES=most\n"));
    }

    #[test]
    fn a_driver_is_present_as_a_module_file_or_built_in() {
        let mut listing = String::new();
        for d in DRIVERS
            .iter()
            .filter(|d| **d != "sd_mod" && **d != "vmxnet3")
        {
            listing.push_str(&format!("usr/lib/modules/6.1.0-37-amd64/kernel/x/{d}.ko\n"));
        }
        let builtin = "kernel/drivers/scsi/sd_mod.ko\n";
        assert_eq!(missing_drivers(&listing, builtin), ["vmxnet3"]);
        listing.push_str("usr/lib/modules/6.1.0-37-amd64/kernel/x/vmxnet3.ko.xz\n");
        assert!(missing_drivers(&listing, builtin).is_empty());
        // A prefix is not the module (e1000 is not e1000e).
        assert_eq!(
            missing_drivers(&listing.replace("/e1000.ko", "/e1000x.ko"), builtin),
            ["e1000"]
        );
    }
}
