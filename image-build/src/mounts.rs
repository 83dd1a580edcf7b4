//! Attaching a raw disk image and mounting its root partition, with everything undone in
//! reverse order when the guard is dropped (also on errors and panics).
//!
//! Loop partition devices are made with `partx -a`, and their device node by hand when no
//! udev runs (as on the build machines: `losetup -P` alone creates no partition device).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::tools::{self, CHROOT, LOSETUP, MOUNT, PARTX};

/// A disk image attached to a loop device with its root partition mounted.
#[derive(Debug)]
pub struct MountedImage {
    loop_dev: String,
    partition_nodes: Vec<PathBuf>,
    partx_added: bool,
    mounts: Vec<PathBuf>,
    /// Where the root filesystem is mounted.
    pub root: PathBuf,
}

impl MountedImage {
    /// Attaches `disk` and mounts partition `number` (1-based) at `mountpoint`.
    pub fn mount(disk: &Path, number: u32, mountpoint: &Path) -> anyhow::Result<Self> {
        let out = tools::run(
            &LOSETUP,
            ["-f".as_ref(), "--show".as_ref(), disk.as_os_str()],
        )?;
        let loop_dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut me = MountedImage {
            loop_dev: loop_dev.clone(),
            partition_nodes: Vec::new(),
            partx_added: false,
            mounts: Vec::new(),
            root: mountpoint.to_path_buf(),
        };
        tools::run(&PARTX, ["-a", loop_dev.as_str()])?;
        me.partx_added = true;
        let part = me.partition_device(number)?;
        std::fs::create_dir_all(mountpoint)?;
        tools::run(&MOUNT, [part.as_ref(), mountpoint.as_os_str()])?;
        me.mounts.push(mountpoint.to_path_buf());
        Ok(me)
    }

    /// The device node of partition `number` of the attached disk, made by hand from the
    /// kernel's numbers when no udev made it (removed again on release).
    pub fn partition_device(&mut self, number: u32) -> anyhow::Result<String> {
        let loop_dev = self.loop_dev.clone();
        let base = loop_dev.trim_start_matches("/dev/");
        let part = format!("/dev/{base}p{number}");
        if !Path::new(&part).exists() {
            let sys = format!("/sys/block/{base}/{base}p{number}/dev");
            let numbers = std::fs::read_to_string(&sys).with_context(|| {
                format!("the kernel made no partition {number} on {loop_dev} ({sys})")
            })?;
            let (major, minor) = numbers
                .trim()
                .split_once(':')
                .with_context(|| format!("unexpected device numbers {numbers:?} in {sys}"))?;
            tools::run_command(Command::new("mknod").args([part.as_str(), "b", major, minor]))?;
            self.partition_nodes.push(PathBuf::from(&part));
        }
        Ok(part)
    }

    /// The whole-disk loop device (what `grub-install` writes its boot sector to).
    pub fn disk_device(&self) -> &str {
        &self.loop_dev
    }

    /// Bind-mounts /dev, /proc and /sys into the image so tools can run chrooted in it.
    pub fn bind_system_dirs(&mut self) -> anyhow::Result<()> {
        for dir in ["dev", "proc", "sys"] {
            let target = self.root.join(dir);
            std::fs::create_dir_all(&target)?;
            tools::run(
                &MOUNT,
                [
                    "--bind".as_ref(),
                    Path::new("/").join(dir).as_os_str(),
                    target.as_os_str(),
                ],
            )?;
            self.mounts.push(target);
        }
        Ok(())
    }

    /// Runs a program chrooted into the image.
    pub fn chroot<I, S>(&self, args: I) -> anyhow::Result<std::process::Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(CHROOT.locate()?);
        cmd.arg(&self.root)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        Ok(tools::run_command(&mut cmd)?)
    }

    /// Unmounts and detaches now, reporting the first error.
    pub fn release(mut self) -> anyhow::Result<()> {
        self.undo()
    }

    fn undo(&mut self) -> anyhow::Result<()> {
        let mut first: Option<anyhow::Error> = None;
        while let Some(m) = self.mounts.pop() {
            if let Err(e) = tools::run(&MOUNT.with_program("umount"), [m.as_os_str()]) {
                first.get_or_insert(e.into());
            }
        }
        for node in self.partition_nodes.drain(..) {
            let _ = std::fs::remove_file(node);
        }
        if std::mem::take(&mut self.partx_added) {
            // The kernel refuses to drop a partition for a moment after its file system was
            // unmounted when another process looks at the device (seen once on a shared build
            // machine: "error deleting partition 1"); a few short retries cover that.
            let mut result = tools::run(&PARTX, ["-d", self.loop_dev.as_str()]);
            for _ in 0..10 {
                if result.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
                result = tools::run(&PARTX, ["-d", self.loop_dev.as_str()]);
            }
            if let Err(e) = result {
                first.get_or_insert(e.into());
            }
        }
        if !self.loop_dev.is_empty() {
            let dev = std::mem::take(&mut self.loop_dev);
            if let Err(e) = tools::run(&LOSETUP, ["-d", dev.as_str()]) {
                first.get_or_insert(e.into());
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        if let Err(e) = self.undo() {
            eprintln!("warning: cleaning up the mounted image: {e:#}");
        }
    }
}
