//! `nodeboot-image build`: a minimal Debian 12 node image from packages, with the agent
//! installed and enabled, booting with GRUB 2 under BIOS and UEFI from a GPT disk (see `disk`)
//! whose root file system is found by UUID.
//!
//! Steps: bootstrap the tree with mmdebstrap (packages, the agent's .deb, the `admin` account,
//! the initramfs drivers of every platform), customize it (files rendered here: fstab, GRUB's
//! defaults, hostname, the unconfigured node's DHCP network; no machine-id, no SSH host keys),
//! make the disk (GPT by sgdisk, ext4 filled from the tree without mounting), install GRUB for
//! i386-pc and x86_64-efi with the image's own grub-install and write grub.cfg with its own
//! update-grub, convert to the outputs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cmdline::BuildArgs;
use crate::disk;
use crate::grub;
use crate::initramfs;
use crate::mounts::MountedImage;
use crate::output::{self, Format};
use crate::progress::Steps;
use crate::tools::{
    self, CHROOT, LOSETUP, MCOPY, MDIR, MKFS_EXT4, MKFS_VFAT, MMD, MMDEBSTRAP, MOUNT, PARTX,
    QEMU_IMG, SGDISK,
};

/// The hostname of an unconfigured node (the login prompt reads `nodeboot login:`).
pub const UNCONFIGURED_HOSTNAME: &str = "nodeboot";

/// The packages of every node: systemd with networkd, the time sync and SSH the apply engine
/// configures, sudo for the admin's wizard, a kernel, GRUB for BIOS (grub-pc, whose
/// `update-grub` writes grub.cfg) and GRUB's x86_64-efi modules beside it (grub-efi-amd64-bin
/// coexists with grub-pc; grub-efi-amd64 would replace it).
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "chrony",
    "udev",
    "dbus",
    "linux-image-amd64",
    "initramfs-tools",
    "grub-pc",
    "grub-efi-amd64-bin",
    "openssh-server",
    "sudo",
    "iproute2",
    "procps",
];

/// What is left out of the image to keep it small: documentation (but not the copyright
/// files), man pages and translations.
pub const DPKG_EXCLUDES: &[&str] = &[
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/info/*",
];

/// Parses `2G`, `512M`, `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: use K, M or G (e.g. 2G)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: use e.g. 2G or 2048M"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The mmdebstrap customize hooks (run with the tree as `$1`, /dev and /proc mounted):
/// install the agent's package, create `admin` with an empty, expired password (its first
/// login must set one, as in the seed's dialog), enable networkd.
pub fn render_customize_hooks(agent_deb: &Path) -> Vec<String> {
    let deb = agent_deb.to_string_lossy();
    let name = agent_deb
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inside = shell_quote(&format!("/tmp/{name}"));
    vec![
        format!("copy-in {deb} /tmp"),
        format!("chroot \"$1\" dpkg -i {inside}"),
        format!("rm -f \"$1\"{inside}"),
        "chroot \"$1\" useradd --create-home --shell /bin/bash --comment 'node administrator' admin"
            .to_string(),
        "chroot \"$1\" passwd --delete admin".to_string(),
        "chroot \"$1\" chage --lastday 0 admin".to_string(),
        "chroot \"$1\" systemctl enable systemd-networkd.service chrony.service".to_string(),
    ]
}

/// The mmdebstrap essential hooks (run after the essential packages, before the kernel and
/// initramfs-tools are installed): the initramfs-tools setting and driver hook of
/// [`initramfs`], so the first initramfs the kernel package builds already has them.
pub fn render_essential_hooks() -> Vec<String> {
    let hooks = initramfs::HOOK_PATH;
    let conf = initramfs::CONF_PATH;
    vec![
        "mkdir -p \"$1/etc/initramfs-tools/hooks\" \"$1/etc/initramfs-tools/conf.d\"".to_string(),
        format!(
            "printf '%s' {} > \"$1/{hooks}\"",
            shell_quote(&initramfs::render_hook())
        ),
        format!("chmod 0755 \"$1/{hooks}\""),
        format!(
            "printf '%s' {} > \"$1/{conf}\"",
            shell_quote(&initramfs::render_conf())
        ),
    ]
}

/// The network of an unconfigured node: DHCP on eth0, so it can be reached on port 8443.
/// The apply engine's own files for eth0 sort before this one and replace it.
pub fn render_dhcp_network() -> String {
    "# nodeboot: an unconfigured node asks DHCP for its address. The configuration applied\n\
     # by nodeboot-agent takes precedence (its files sort before this one).\n\
     [Match]\nName=eth0\n\n[Network]\nDHCP=yes\n\n[DHCPv4]\nUseHostname=no\n"
        .to_string()
}

/// `/etc/resolv.conf` of an unconfigured node: no server (the applied configuration writes
/// the node's own).
pub const RESOLV_CONF_UNCONFIGURED: &str =
    "# nodeboot: this node is not configured yet; its configuration writes the DNS servers.\n";

/// `/etc/hosts` of an unconfigured node.
pub fn render_hosts() -> String {
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{UNCONFIGURED_HOSTNAME}\n\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )
}

/// `/etc/pam.d/common-password` with pam_unix hashing new passwords with SHA-512-crypt
/// instead of Debian 12's yescrypt: the wizard puts the admin password that the forced first
/// change wrote to /etc/shadow into the configuration, which accepts only `$6$` hashes.
pub fn render_common_password(existing: &str) -> String {
    existing
        .lines()
        .map(|line| {
            if !line.trim_start().starts_with('#') && line.contains("pam_unix.so") {
                let words: Vec<&str> = line
                    .split(' ')
                    .map(|w| if w == "yescrypt" { "sha512" } else { w })
                    .collect();
                let joined = words.join(" ");
                if joined.split_whitespace().any(|w| w == "sha512") {
                    joined
                } else {
                    format!("{joined} sha512")
                }
            } else {
                line.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// The newest kernel and its initramfs in `root/boot`, as paths inside the image.
pub fn find_kernel(root: &Path) -> anyhow::Result<(String, String)> {
    let boot = root.join("boot");
    let mut versions: Vec<String> = std::fs::read_dir(&boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("vmlinuz-")
                .map(str::to_string)
        })
        .collect();
    versions.sort_by_key(|v| natural_key(v));
    let Some(version) = versions.pop() else {
        bail!(
            "no kernel (vmlinuz-*) in {}: is linux-image-amd64 installed?",
            boot.display()
        );
    };
    let initrd = format!("initrd.img-{version}");
    if !boot.join(&initrd).exists() {
        bail!("no {initrd} in {} for kernel {version}", boot.display());
    }
    Ok((
        format!("/boot/vmlinuz-{version}"),
        format!("/boot/{initrd}"),
    ))
}

/// A sort key that orders the numbers inside a version by value (`6.1.0-10` after `6.1.0-9`).
fn natural_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    key
}

/// Writes the node's files into the tree at `root` and removes what must not be baked in
/// (machine-id, SSH host keys, the agent's TLS key: see [`remove_agent_state`]). Everything here is a file operation under `root`.
pub fn customize(root: &Path, root_uuid: &str) -> anyhow::Result<()> {
    find_kernel(root)?;
    let write = |rel: &str, content: &str| -> anyhow::Result<()> {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
    };
    write(
        "etc/fstab",
        &grub::render_fstab(root_uuid, &grub::esp_volume_id(root_uuid).1),
    )?;
    write("etc/default/grub", &grub::render_default_grub())?;
    write("etc/hostname", &format!("{UNCONFIGURED_HOSTNAME}\n"))?;
    write("etc/hosts", &render_hosts())?;
    // mmdebstrap leaves the build machine's resolver in the tree; the node must not inherit
    // it (nothing rewrites it on a DHCP node: systemd-networkd keeps the lease's DNS servers
    // in its own state, where the wizard reads them). The configuration writes the real one.
    let _ = std::fs::remove_file(root.join("etc/resolv.conf"));
    write("etc/resolv.conf", RESOLV_CONF_UNCONFIGURED)?;
    write(
        "etc/systemd/network/99-nodeboot-dhcp.network",
        &render_dhcp_network(),
    )?;
    let pam = root.join("etc/pam.d/common-password");
    if let Ok(existing) = std::fs::read_to_string(&pam) {
        write(
            "etc/pam.d/common-password",
            &render_common_password(&existing),
        )?;
    }
    // A persistent journal, so the first boot (the agent's start) can be read after the reboot.
    std::fs::create_dir_all(root.join("var/log/journal"))?;
    // Empty: systemd generates the machine-id at first boot.
    write("etc/machine-id", "")?;
    let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
    remove_agent_state(root)?;
    let ssh = root.join("etc/ssh");
    if ssh.is_dir() {
        for entry in std::fs::read_dir(&ssh)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// The agent's per-node state inside an image: its TLS key, certificate and the machine-id they
/// were made for (the agent's `server::tls` and `apply::state::PER_NODE_FILES` name the same
/// files). A node makes its own at first start; an image must never carry one, or every node
/// made from it would present the same certificate.
pub const AGENT_TLS_DIR: &str = "var/lib/nodeboot/tls";

/// Removes the agent's per-node state ([`AGENT_TLS_DIR`]) from the tree at `root`. Each
/// directory on the way is checked not to be a symbolic link first (a vendor's image is not
/// trusted to point `var/lib` somewhere else on the build machine): a link is an error that
/// names it, and nothing is removed. Absent is fine.
pub fn remove_agent_state(root: &Path) -> anyhow::Result<()> {
    let mut path = root.to_path_buf();
    for part in AGENT_TLS_DIR.split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            Ok(m) if m.file_type().is_symlink() => bail!(
                "{}: is a symbolic link; the agent's per-node state cannot be removed safely \
                 (make it a real directory in the image)",
                path.display()
            ),
            Ok(m) if !m.is_dir() => bail!("{}: is not a directory", path.display()),
            Ok(_) => {}
        }
    }
    // remove_dir_all removes links inside without following them.
    std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))
}

/// The apt sources of the machine that name bookworm (given to mmdebstrap as files, so no
/// mirror address is written anywhere by us).
pub fn host_sources() -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut candidates = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        candidates.extend(files);
    }
    for path in candidates {
        let is_source = path
            .extension()
            .is_some_and(|e| e == "list" || e == "sources")
            || path.file_name().is_some_and(|n| n == "sources.list");
        if is_source && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("bookworm")) {
            found.push(path);
        }
    }
    if found.is_empty() {
        bail!("no apt source naming bookworm in /etc/apt: pass --sources FILE");
    }
    Ok(found)
}

/// Runs `nodeboot-image build`.
pub fn run(args: BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    tools::require(&[
        MMDEBSTRAP, MKFS_EXT4, MKFS_VFAT, MCOPY, SGDISK, QEMU_IMG, LOSETUP, PARTX, MOUNT, CHROOT,
    ])?;
    output::check_formats(&args.formats, args.size)?;
    if !args.agent_deb.is_file() {
        bail!(
            "agent package {} not found: build it with packaging/build-deb",
            args.agent_deb.display()
        );
    }
    let agent_deb = std::fs::canonicalize(&args.agent_deb)?;
    let sources = if args.sources.is_empty() {
        host_sources()?
    } else {
        args.sources.clone()
    };
    let layout = disk::gpt_layout(args.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let partition = disk::find_root(&layout)?;
    std::fs::create_dir_all(&args.output_dir)?;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| args.output_dir.join(".work"));
    let tree = work.join("rootfs");
    if tree.exists() {
        // A tmpfs left mounted by an interrupted run.
        let _ = tools::run(&MOUNT.with_program("umount"), [tree.as_os_str()]);
        std::fs::remove_dir_all(&tree)
            .with_context(|| format!("removing the old tree {}", tree.display()))?;
    }
    std::fs::create_dir_all(&tree)?;
    // The tree lives in memory: bootstrapping and removing ~650 MB of small files is much
    // faster there than on disk (removal alone took 25 s on disk).
    let tmpfs = TmpfsMount::mount(&tree, "4G")?;
    let raw = work.join(format!("{}.raw", args.name));
    let uuid = new_uuid()?;
    let disk_guid = new_uuid()?;

    let mut steps = Steps::new(5 + output::step_count(&args.formats), false);
    steps.step(
        "bootstrap Debian 12 with mmdebstrap (packages, agent, admin account)",
        || {
            let mut cmd = std::process::Command::new(MMDEBSTRAP.locate()?);
            cmd.args(["--mode=root", "--variant=apt", "--quiet"]);
            let mut packages: Vec<String> = PACKAGES.iter().map(|s| s.to_string()).collect();
            packages.extend(args.packages.iter().cloned());
            cmd.arg(format!("--include={}", packages.join(",")));
            for hook in render_essential_hooks() {
                cmd.arg(format!("--essential-hook={hook}"));
            }
            for opt in DPKG_EXCLUDES {
                cmd.arg(format!("--dpkgopt={opt}"));
            }
            for hook in render_customize_hooks(&agent_deb) {
                cmd.arg(format!("--customize-hook={hook}"));
            }
            cmd.arg("bookworm").arg(&tree);
            for s in &sources {
                cmd.arg(s);
            }
            tools::run_command(&mut cmd)?;
            Ok(())
        },
    )?;
    steps.step(
        "customize (fstab, GRUB, hostname, network; no machine-id or host keys)",
        || customize(&tree, &uuid),
    )?;
    steps.step("make the disk (GPT, ext4 filled from the tree)", || {
        let file =
            std::fs::File::create(&raw).with_context(|| format!("creating {}", raw.display()))?;
        file.set_len(args.size)?;
        drop(file);
        let mut gpt = disk::sgdisk_args(&layout, &disk_guid);
        gpt.push(raw.to_string_lossy().into_owned());
        tools::run(&SGDISK, &gpt)?;
        let blocks = format!("{}k", partition.size() / 1024);
        let offset = format!("offset={}", partition.offset());
        tools::run(
            &MKFS_EXT4,
            [
                "-q".as_ref(),
                "-F".as_ref(),
                "-L".as_ref(),
                "nodeboot-root".as_ref(),
                "-U".as_ref(),
                uuid.as_ref(),
                "-E".as_ref(),
                offset.as_ref(),
                "-d".as_ref(),
                tree.as_os_str(),
                raw.as_os_str(),
                blocks.as_ref(),
            ],
        )?;
        Ok(())
    })?;
    steps.step(
        "install GRUB 2 for BIOS and UEFI, grub.cfg by update-grub (the image's own)",
        || install_grub(&raw, &work.join("mnt"), &uuid),
    )?;
    steps.step("remove the tree", || {
        drop(tmpfs);
        Ok(std::fs::remove_dir(&tree)?)
    })?;
    let written = output::write_outputs(
        &raw,
        &args.output_dir,
        &args.name,
        &args.formats,
        &args.hardware.hardware(),
        &mut steps,
    )?;
    if !args.formats.contains(&Format::Raw) {
        std::fs::remove_file(&raw)?;
    }
    let _ = std::fs::remove_dir(work.join("mnt"));
    let _ = std::fs::remove_dir(&work);
    print_summary(&written, steps.timings());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Installs GRUB on the raw GPT disk: mounts its root partition, makes the EFI system
/// partition's FAT32, runs the image's `grub-install` for i386-pc (boot sector and BIOS boot
/// partition) and its `grub-mkimage` for x86_64-efi (written to EFI/debian/grubx64.efi and the
/// removable path EFI/BOOT/BOOTX64.EFI with mtools; no NVRAM entry), then its `update-grub`;
/// checks what they wrote and that the initramfs holds every driver of [`initramfs::DRIVERS`].
pub fn install_grub(raw: &Path, mountpoint: &Path, root_uuid: &str) -> anyhow::Result<()> {
    let mut image = MountedImage::mount(raw, disk::ROOT_NUMBER, mountpoint)?;
    let esp = image.partition_device(disk::ESP_NUMBER)?;
    let (volume_id, _) = grub::esp_volume_id(root_uuid);
    tools::run(
        &MKFS_VFAT,
        [
            "-F",
            "32",
            "-n",
            "EFI",
            "-i",
            volume_id.as_str(),
            esp.as_str(),
        ],
    )?;
    std::fs::create_dir_all(image.root.join("boot/efi"))?;
    image.bind_system_dirs()?;
    let device = image.disk_device().to_string();
    image.chroot([
        "grub-install",
        "--target=i386-pc",
        "--no-floppy",
        device.as_str(),
    ])?;
    // x86_64-efi: grub-install insists on the ESP mounted as FAT, which a build host need not
    // be able to do (this one's kernel has no vfat). It makes its core image with grub-mkimage
    // and copies the modules; the same is done here with the image's own grub-mkimage, and
    // mtools writes the loader onto the ESP without mounting it.
    image.chroot([
        "sh",
        "-c",
        "mkdir -p /boot/grub/x86_64-efi && \
         cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst /boot/grub/x86_64-efi/",
    ])?;
    let staged_cfg = "tmp/nodeboot-efi-load.cfg";
    let staged_efi = "tmp/nodeboot-grubx64.efi";
    std::fs::write(
        image.root.join(staged_cfg),
        grub::render_efi_load_cfg(root_uuid),
    )?;
    let mut mkimage = vec![
        "grub-mkimage".to_string(),
        "--format=x86_64-efi".to_string(),
        format!("--output=/{staged_efi}"),
        format!("--config=/{staged_cfg}"),
        "--prefix=/boot/grub".to_string(),
    ];
    mkimage.extend(grub::EFI_CORE_MODULES.iter().map(|m| m.to_string()));
    image.chroot(&mkimage)?;
    let efi = image.root.join(staged_efi);
    tools::run(
        &MMD,
        ["-i", esp.as_str(), "::/EFI", "::/EFI/BOOT", "::/EFI/debian"],
    )?;
    for target in grub::EFI_LOADER_PATHS {
        tools::run(
            &MCOPY,
            [
                "-i".as_ref(),
                esp.as_ref(),
                efi.as_os_str(),
                format!("::/{target}").as_ref(),
            ],
        )?;
    }
    let _ = std::fs::remove_file(&efi);
    let _ = std::fs::remove_file(image.root.join(staged_cfg));
    let listing = tools::run(
        &MDIR,
        ["-b", "-i", esp.as_str(), "::/EFI/BOOT", "::/EFI/debian"],
    )?;
    let listing = String::from_utf8_lossy(&listing.stdout).to_ascii_uppercase();
    for target in grub::EFI_LOADER_PATHS {
        if !listing.contains(&target.to_ascii_uppercase()) {
            bail!("the EFI system partition has no {target} after mcopy:\n{listing}");
        }
    }
    for file in [
        "boot/grub/i386-pc/core.img",
        "boot/grub/x86_64-efi/normal.mod",
    ] {
        if !image.root.join(file).exists() {
            bail!("GRUB's install left no {file}");
        }
    }
    // update-grub names the root by UUID only when /dev/disk/by-uuid has it (udev's link,
    // which no udev makes here): the link lives while update-grub runs.
    let root_device = image.partition_device(disk::ROOT_NUMBER)?;
    let link = ByUuidLink::create(root_uuid, &root_device)?;
    let updated = image.chroot(["update-grub"]);
    drop(link);
    updated?;
    let cfg_path = image.root.join("boot/grub/grub.cfg");
    let cfg = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    grub::check_grub_cfg(&cfg, root_uuid).map_err(|e| anyhow::anyhow!("update-grub: {e}"))?;
    check_initramfs_drivers(&image)?;
    image.release()?;
    let mbr = disk::read_first_sector(raw)?;
    if !mbr[..440].windows(4).any(|w| w == b"GRUB") {
        bail!("no GRUB boot code in the first sector of {}", raw.display());
    }
    Ok(())
}

/// Lists the image's newest initramfs with its own `lsinitramfs` and fails when a driver of
/// [`initramfs::DRIVERS`] is neither in it nor built into the kernel.
fn check_initramfs_drivers(image: &MountedImage) -> anyhow::Result<()> {
    let (kernel, initrd) = find_kernel(&image.root)?;
    let version = kernel.trim_start_matches("/boot/vmlinuz-");
    let listing = image.chroot(["lsinitramfs", initrd.as_str()])?;
    let builtin = std::fs::read_to_string(
        image
            .root
            .join(format!("lib/modules/{version}/modules.builtin")),
    )
    .unwrap_or_default();
    let missing = initramfs::missing_drivers(&String::from_utf8_lossy(&listing.stdout), &builtin);
    if !missing.is_empty() {
        bail!(
            "the initramfs {initrd} lacks the drivers {} (see {})",
            missing.join(", "),
            initramfs::HOOK_PATH
        );
    }
    Ok(())
}

/// `/dev/disk/by-uuid/UUID` pointing at the root partition's device, removed on drop.
struct ByUuidLink(PathBuf);

impl ByUuidLink {
    fn create(uuid: &str, device: &str) -> anyhow::Result<Self> {
        let dir = Path::new("/dev/disk/by-uuid");
        std::fs::create_dir_all(dir)?;
        let link = dir.join(uuid);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(device, &link)
            .with_context(|| format!("linking {} to {device}", link.display()))?;
        Ok(ByUuidLink(link))
    }
}

impl Drop for ByUuidLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A tmpfs mounted for the lifetime of the guard.
#[derive(Debug)]
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn mount(dir: &Path, size: &str) -> anyhow::Result<Self> {
        let opts = format!("size={size},mode=0755");
        tools::run(
            &MOUNT,
            [
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                "tmpfs".as_ref(),
                dir.as_os_str(),
            ],
        )?;
        Ok(TmpfsMount(dir.to_path_buf()))
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if let Err(e) = tools::run(&MOUNT.with_program("umount"), [self.0.as_os_str()]) {
            eprintln!("warning: unmounting {}: {e}", self.0.display());
        }
    }
}

/// A random version-4 UUID for the root filesystem, from the kernel.
pub fn new_uuid() -> anyhow::Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a UUID from the kernel")?;
    Ok(uuid.trim().to_string())
}

fn print_summary(written: &[PathBuf], timings: &[(String, std::time::Duration)]) {
    let mut out = String::from("\nimages:\n");
    for path in written {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let _ = writeln!(
            out,
            "  {:>10.1} MiB  {}",
            size as f64 / 1048576.0,
            path.display()
        );
    }
    let total: f64 = timings.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let _ = writeln!(out, "total {total:.1} s");
    eprint!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_errors_say_how_to_fix() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(
            parse_size("2T"),
            Err("unknown size unit `T`: use K, M or G (e.g. 2G)".into())
        );
        assert_eq!(
            parse_size("G"),
            Err("`G` is not a size: use e.g. 2G or 2048M".into())
        );
    }

    #[test]
    fn hooks_install_the_agent_and_expire_the_admin_password() {
        let hooks = render_customize_hooks(Path::new("/x/it's/nodeboot-agent_0.1.0_amd64.deb"));
        assert_eq!(
            hooks[0],
            "copy-in /x/it's/nodeboot-agent_0.1.0_amd64.deb /tmp"
        );
        assert_eq!(
            hooks[1],
            "chroot \"$1\" dpkg -i '/tmp/nodeboot-agent_0.1.0_amd64.deb'"
        );
        assert!(
            hooks
                .iter()
                .any(|h| h == "chroot \"$1\" chage --lastday 0 admin")
        );
        assert!(
            hooks
                .iter()
                .any(|h| h == "chroot \"$1\" passwd --delete admin")
        );
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn customize_writes_the_node_files_and_removes_identities() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (rel, content) in [
            ("boot/vmlinuz-6.1.0-9-amd64", "k"),
            ("boot/initrd.img-6.1.0-9-amd64", "i"),
            ("boot/vmlinuz-6.1.0-10-amd64", "k"),
            ("boot/initrd.img-6.1.0-10-amd64", "i"),
            ("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
            (
                "var/lib/dbus/machine-id",
                "0123456789abcdef0123456789abcdef\n",
            ),
            ("etc/ssh/ssh_host_ed25519_key", "secret"),
            ("var/lib/nodeboot/tls/key.pem", "secret"),
            ("var/lib/nodeboot/tls/cert.pem", "public"),
            (
                "var/lib/nodeboot/tls/machine-id",
                "0123456789abcdef0123456789abcdef\n",
            ),
            ("etc/ssh/ssh_host_ed25519_key.pub", "public"),
            ("etc/ssh/sshd_config", "# kept\n"),
            ("etc/resolv.conf", "nameserver 10.255.255.53\n"),
            (
                "etc/pam.d/common-password",
                "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n",
            ),
        ] {
            std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
            std::fs::write(root.join(rel), content).unwrap();
        }
        customize(root, "11111111-2222-4333-8444-555555555555").unwrap();
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
        assert_eq!(read("etc/machine-id"), "");
        assert!(!root.join("var/lib/dbus/machine-id").exists());
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
        assert!(!root.join("var/lib/nodeboot/tls").exists());
        assert!(root.join("var/lib/nodeboot").is_dir());
        assert_eq!(read("etc/ssh/sshd_config"), "# kept\n");
        assert_eq!(read("etc/hostname"), "nodeboot\n");
        assert!(!read("etc/resolv.conf").contains("nameserver"));
        assert!(read("etc/pam.d/common-password").ends_with("pam_unix.so obscure sha512\n"));
        assert!(read("etc/fstab").contains("UUID=11111111-2222-4333-8444-555555555555 / ext4"));
        assert!(read("etc/fstab").contains("UUID=5555-5555 /boot/efi vfat"));
        // The newest kernel by version, not by text ("6.1.0-9" sorts after "6.1.0-10" as text).
        assert_eq!(find_kernel(root).unwrap().0, "/boot/vmlinuz-6.1.0-10-amd64");
        assert!(read("etc/systemd/network/99-nodeboot-dhcp.network").contains("Name=eth0\n"));
    }

    #[test]
    fn agent_state_behind_a_link_is_refused_and_nothing_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(outside.join("nodeboot/tls")).unwrap();
        std::fs::write(outside.join("nodeboot/tls/key.pem"), "host key").unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("var/lib")).unwrap();
        let e = remove_agent_state(&root).unwrap_err().to_string();
        assert!(e.ends_with("var/lib: is a symbolic link; the agent's per-node state cannot be removed safely (make it a real directory in the image)"), "{e}");
        assert!(outside.join("nodeboot/tls/key.pem").exists());
        // A link inside the directory is removed, not followed.
        std::fs::remove_file(root.join("var/lib")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/nodeboot/tls")).unwrap();
        std::os::unix::fs::symlink(
            outside.join("nodeboot/tls"),
            root.join("var/lib/nodeboot/tls/key.pem"),
        )
        .unwrap();
        remove_agent_state(&root).unwrap();
        assert!(!root.join("var/lib/nodeboot/tls").exists());
        assert!(outside.join("nodeboot/tls/key.pem").exists());
    }

    #[test]
    fn pam_unix_hashes_with_sha512() {
        let debian = "# here are the per-package modules\n\
            password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n\
            password\trequisite\t\t\tpam_deny.so\n";
        let out = render_common_password(debian);
        assert_eq!(
            out,
            "# here are the per-package modules\n\
             password\t[success=1 default=ignore]\tpam_unix.so obscure sha512\n\
             password\trequisite\t\t\tpam_deny.so\n"
        );
        assert_eq!(render_common_password(&out), out, "idempotent");
        assert!(
            render_common_password("password required pam_unix.so\n")
                .ends_with("pam_unix.so sha512\n")
        );
    }

    #[test]
    fn a_tree_without_kernel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        let err = find_kernel(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("no kernel (vmlinuz-*) in "), "{err}");
    }
}
