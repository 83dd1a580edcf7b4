//! `nodeboot-image bake`: puts the agent into an existing image (raw, qcow2, VMDK or OVA)
//! without rebuilding it: the image's root partition (the largest Linux partition of its GPT,
//! or of its MBR for older images) is mounted and the agent's package
//! installed with the image's own dpkg, then the outputs are written as `build` writes them.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cmdline::BakeArgs;
use crate::disk;
use crate::mounts::MountedImage;
use crate::output::{self, Format};
use crate::progress::Steps;
use crate::tools::{self, CHROOT, LOSETUP, MOUNT, PARTX, QEMU_IMG};

/// The largest configuration baked in (the agent's limit).
pub const MAX_CONFIG: u64 = 1024 * 1024;

/// Where a baked configuration goes inside the image, by its kind: `node.xml` for XML (first
/// non-blank character `<`), `node.json` for JSON (`{`).
pub fn baked_config_path(content: &[u8]) -> anyhow::Result<&'static str> {
    let body = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Ok("/etc/nodeboot/node.xml"),
        Some(b'{') => Ok("/etc/nodeboot/node.json"),
        _ => bail!(
            "the configuration is neither XML (it would start with \"<\") nor JSON (\"{{\"): give the schema-1 XML or the Management Node JSON"
        ),
    }
}

/// Reads `--config`: a regular file of at most [`MAX_CONFIG`] bytes, XML or JSON.
pub fn read_config(path: &Path) -> anyhow::Result<(Vec<u8>, &'static str)> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut content = Vec::new();
    File::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut content)
        .with_context(|| format!("reading {}", path.display()))?;
    if content.len() as u64 > MAX_CONFIG {
        bail!("{}: over the limit of {MAX_CONFIG} bytes", path.display());
    }
    let target = baked_config_path(&content).with_context(|| path.display().to_string())?;
    Ok((content, target))
}

/// The name of the first disk an OVF descriptor references (`References/File/@ovf:href`).
pub fn first_disk_in_ovf(ovf: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(ovf);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "File" => {
                let href = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == "href")?;
                return href
                    .normalized_value(quick_xml::XmlVersion::default())
                    .ok()
                    .map(|v| v.into_owned());
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Extracts the disk an OVA's descriptor references into `dir`; returns its path.
pub fn extract_ova_disk(ova: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let open = || File::open(ova).with_context(|| format!("opening {}", ova.display()));
    let mut descriptor = None;
    for entry in tar::Archive::new(open()?).entries()? {
        let mut entry = entry?;
        if entry.path()?.extension().is_some_and(|e| e == "ovf") {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            descriptor = Some(text);
            break;
        }
    }
    let descriptor =
        descriptor.with_context(|| format!("{} holds no .ovf descriptor", ova.display()))?;
    let disk = first_disk_in_ovf(&descriptor).with_context(|| {
        format!(
            "the descriptor in {} references no disk file",
            ova.display()
        )
    })?;
    if disk.contains('/') || disk.starts_with('.') {
        bail!(
            "the descriptor in {} references a disk outside the archive: {disk}",
            ova.display()
        );
    }
    for entry in tar::Archive::new(open()?).entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == disk.as_str() {
            let target = dir.join(&disk);
            entry.unpack(&target)?;
            return Ok(target);
        }
    }
    bail!(
        "{} does not hold {disk}, which its descriptor references",
        ova.display()
    )
}

/// Runs `nodeboot-image bake`.
pub fn run(args: BakeArgs) -> anyhow::Result<std::process::ExitCode> {
    tools::require(&[QEMU_IMG, LOSETUP, PARTX, MOUNT, CHROOT])?;
    if !args.agent_deb.is_file() {
        bail!(
            "agent package {} not found: build it with packaging/build-deb",
            args.agent_deb.display()
        );
    }
    // The cheap checks before the long work; the image's agent checks the rest.
    let config = args.config.as_deref().map(read_config).transpose()?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "node".into())
    });
    std::fs::create_dir_all(&args.output_dir)?;
    let work = args.output_dir.join(".bake");
    std::fs::create_dir_all(&work)?;
    let raw = work.join(format!("{name}.raw"));
    let mut steps = Steps::new(3 + output::step_count(&args.formats), false);
    steps.step("read the image into a raw working disk", || {
        let input = if args.image.extension().is_some_and(|e| e == "ova") {
            extract_ova_disk(&args.image, &work)?
        } else {
            args.image.clone()
        };
        tools::run(
            &QEMU_IMG,
            [
                "convert".as_ref(),
                "-O".as_ref(),
                "raw".as_ref(),
                input.as_os_str(),
                raw.as_os_str(),
            ],
        )?;
        if input != args.image {
            std::fs::remove_file(&input)?;
        }
        Ok(())
    })?;
    output::check_formats(&args.formats, std::fs::metadata(&raw)?.len())?;
    let partition = disk::read_partitions(&raw)
        .map_err(anyhow::Error::from)
        .and_then(|parts| Ok(disk::find_root(&parts)?))
        .with_context(|| format!("finding the root partition of {}", args.image.display()))?;
    steps.step("install the agent's package with the image's dpkg", || {
        let mut image = MountedImage::mount(&raw, partition.number, &work.join("mnt"))?;
        image.bind_system_dirs()?;
        let deb_name = "nodeboot-agent.deb";
        std::fs::copy(&args.agent_deb, image.root.join("tmp").join(deb_name))?;
        image.chroot(["dpkg", "-i", &format!("/tmp/{deb_name}")])?;
        std::fs::remove_file(image.root.join("tmp").join(deb_name))?;
        // An image that ran the agent before (booted once, or baked again) carries its key.
        crate::build::remove_agent_state(&image.root)?;
        if let Some((content, target)) = &config {
            bake_config(&image, content, target)?;
        }
        image.release()
    })?;
    steps.step("done with the working tree", || {
        Ok(std::fs::remove_dir(work.join("mnt"))?)
    })?;
    let written = output::write_outputs(
        &raw,
        &args.output_dir,
        &name,
        &args.formats,
        &args.hardware.hardware(),
        &mut steps,
    )?;
    if !args.formats.contains(&Format::Raw) {
        std::fs::remove_file(&raw)?;
    }
    let _ = std::fs::remove_dir(&work);
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Places the configuration at `target` inside the image (root-owned, 0600) with the image's
/// own `install`, so a link in the image resolves inside it, never on the build host; then
/// has the image's agent read it as it will at boot (`nodeboot-acquire --check`): an invalid
/// file fails the bake with the agent's findings, before any output is written.
fn bake_config(image: &MountedImage, content: &[u8], target: &str) -> anyhow::Result<()> {
    let staged = "nodeboot-baked-config";
    // `create_new` (O_CREAT|O_EXCL) never opens through a link at the name; the image's
    // `/tmp` itself must be a directory, not a link out of the image.
    let tmp_meta = std::fs::symlink_metadata(image.root.join("tmp"))?;
    if !tmp_meta.is_dir() {
        bail!("the image's /tmp is not a directory (a link?); refusing to stage the configuration");
    }
    let host_tmp = image.root.join("tmp").join(staged);
    let _ = std::fs::remove_file(&host_tmp);
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&host_tmp)
            .with_context(|| format!("staging the configuration at {}", host_tmp.display()))?;
        f.write_all(content)?;
    }
    let staged_in = format!("/tmp/{staged}");
    let result = image
        .chroot([
            "install", "-D", "-o", "root", "-g", "root", "-m", "0600", &staged_in, target,
        ])
        .and_then(|_| image.chroot(["/usr/bin/nodeboot-acquire", "--check"]));
    let _ = std::fs::remove_file(&host_tmp);
    result
        .map(|_| ())
        .with_context(|| format!("baking the configuration in as {target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baked_configuration_goes_where_its_kind_says() {
        assert_eq!(
            baked_config_path(b"  <node-config/>").unwrap(),
            "/etc/nodeboot/node.xml"
        );
        assert_eq!(
            baked_config_path(b"\xEF\xBB\xBF{}").unwrap(),
            "/etc/nodeboot/node.json"
        );
        assert_eq!(
            baked_config_path(b"#cloud-config\n")
                .unwrap_err()
                .to_string(),
            "the configuration is neither XML (it would start with \"<\") nor JSON (\"{\"): give the schema-1 XML or the Management Node JSON"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.xml");
        std::fs::write(&big, vec![b'<'; MAX_CONFIG as usize + 1]).unwrap();
        assert!(
            read_config(&big)
                .unwrap_err()
                .to_string()
                .ends_with("over the limit of 1048576 bytes")
        );
        assert!(
            read_config(dir.path())
                .unwrap_err()
                .to_string()
                .ends_with("is not a regular file")
        );
    }

    #[test]
    fn the_first_referenced_disk_is_found() {
        let ovf = r#"<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
            <References><File ovf:href="vendor-disk1.vmdk" ovf:id="file1"/><File ovf:href="b.vmdk" ovf:id="f2"/></References>
            </Envelope>"#;
        assert_eq!(first_disk_in_ovf(ovf).as_deref(), Some("vendor-disk1.vmdk"));
        assert_eq!(first_disk_in_ovf("<Envelope/>"), None);
    }
}
