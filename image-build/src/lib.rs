//! nodeboot-image: builds node images (raw, qcow2, VMDK, OVA, GCE tar.gz, VHD) with the nodeboot agent inside,
//! bakes the agent into existing images, and packages disks as OVAs.
//!
//! Pure parts (disk layout, GRUB and OVF rendering, manifests) are separate from the steps
//! that run Debian's tools (mmdebstrap, mkfs.ext4, grub-install, qemu-img). This crate depends
//! on no other crate of nodeboot: it installs the agent's Debian package.

pub mod bake;
pub mod build;
pub mod cmdline;
pub mod disk;
pub mod grub;
pub mod initramfs;
pub mod mounts;
pub mod output;
pub mod ova;
pub mod ovf;
pub mod progress;
pub mod tools;
